// The mrilearn report's slice viewer: plain JavaScript, no dependencies, works offline.
// Data: the JSON in #mrilearn-viewer-data (see mrilearn/report/viewer.py). Each image is a
// grey PNG mosaic of its slices along axis 2; slices are shown upright as in the figures
// (first in-plane axis left to right, second bottom to top). A URL hash "#viewer=P:K" opens
// plane P (0 sagittal, 1 coronal, 2 axial) at slice K.
(function () {
  "use strict";
  const root = document.getElementById("mrilearn-viewer");
  const meta = JSON.parse(document.getElementById("mrilearn-viewer-data").textContent);
  const shape = meta.shape;
  const spacing = meta.spacing;
  const cmap = meta.colormap;
  const PLANES = ["sagittal", "coronal", "axial"];
  const stride = [1, shape[0], shape[0] * shape[1]];
  const refIndex = meta.images.findIndex((im) => im.name === meta.reference);
  const state = { plane: meta.plane, index: shape.map((n) => Math.floor(n / 2)) };
  const vols = new Array(meta.images.length);
  const canvases = [];
  const errors = [];
  const buttons = [];
  let slider = null;
  let label = null;
  let scale = null;
  let pending = meta.images.length;

  meta.images.forEach((im, i) => {
    const img = new Image();
    img.onload = () => {
      vols[i] = unpack(img);
      pending -= 1;
      if (pending === 0) build();
    };
    img.onerror = () => {
      root.textContent = "The viewer could not decode the image " + im.name + ".";
    };
    img.src = im.data;
  });

  function unpack(img) {
    const [nx, ny, nz] = shape;
    const cols = Math.max(1, Math.ceil(Math.sqrt(nz)));
    const c = document.createElement("canvas");
    c.width = img.naturalWidth;
    c.height = img.naturalHeight;
    const ctx = c.getContext("2d", { willReadFrequently: true });
    ctx.drawImage(img, 0, 0);
    const px = ctx.getImageData(0, 0, c.width, c.height).data;
    const vol = new Uint8Array(nx * ny * nz);
    for (let z = 0; z < nz; z++) {
      const tx = (z % cols) * nx;
      const ty = Math.floor(z / cols) * ny;
      for (let y = 0; y < ny; y++) {
        const from = ((ty + y) * c.width + tx) * 4;
        const to = nx * (y + ny * z);
        for (let x = 0; x < nx; x++) vol[to + x] = px[from + 4 * x];
      }
    }
    return vol;
  }

  function el(tag, cls, text) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function cell(caption, content) {
    const fig = el("figure", "viewer-cell");
    fig.append(el("figcaption", "", caption), content);
    return fig;
  }

  function colourBar() {
    const bar = el("canvas", "viewer-colourbar");
    bar.width = 1;
    bar.height = 256;
    const ctx = bar.getContext("2d");
    for (let i = 0; i < 256; i++) {
      ctx.fillStyle = `rgb(${cmap[3 * i]},${cmap[3 * i + 1]},${cmap[3 * i + 2]})`;
      ctx.fillRect(0, 255 - i, 1, 1);
    }
    const top = (meta.error_max * meta.value_per_level).toPrecision(3);
    const box = el("div", "viewer-scale");
    const ticks = el("div", "viewer-ticks");
    ticks.append(el("span", "", "≥ " + top), el("span", "", "0"));
    box.append(bar, ticks);
    scale = [bar, ticks];
    return cell("absolute error", box);
  }

  function build() {
    root.textContent = "";
    const bar = el("div", "viewer-bar");
    PLANES.forEach((name, p) => {
      const b = el("button", "", name);
      b.type = "button";
      b.onclick = () => setState(p, state.index[p]);
      buttons.push(b);
      bar.append(b);
    });
    slider = el("input");
    slider.type = "range";
    slider.min = 0;
    slider.setAttribute("aria-label", "slice");
    slider.oninput = () => setState(state.plane, Number(slider.value));
    label = el("span", "viewer-label");
    bar.append(slider, label);
    const grid = el("div", "viewer-grid");
    grid.style.gridTemplateColumns = `repeat(${meta.images.length}, max-content)`;
    meta.images.forEach((im) => {
      const c = el("canvas");
      canvases.push(c);
      grid.append(cell(im.name, c));
    });
    meta.images.forEach((im, i) => {
      if (i === refIndex) {
        errors.push(null);
        grid.append(colourBar());
        return;
      }
      const c = el("canvas");
      errors.push(c);
      grid.append(cell(`|${im.name} − ${meta.reference}|`, c));
    });
    root.append(bar, grid);
    root.tabIndex = 0;
    grid.addEventListener("wheel", (e) => {
      e.preventDefault();
      setState(state.plane, state.index[state.plane] + Math.sign(e.deltaY));
    }, { passive: false });
    root.addEventListener("keydown", (e) => {
      const d = { ArrowUp: 1, ArrowRight: 1, ArrowDown: -1, ArrowLeft: -1 }[e.key];
      if (d) {
        e.preventDefault();
        setState(state.plane, state.index[state.plane] + d);
      }
    });
    setState(state.plane, state.index[state.plane]);
    const m = /viewer=([012]):(\d+)/.exec(window.location.hash);
    if (m) {  // as a person would: press the plane's button, then move the slider
      buttons[Number(m[1])].click();
      slider.value = m[2];
      slider.dispatchEvent(new Event("input"));
    }
  }

  function setState(plane, index) {
    state.plane = plane;
    state.index[plane] = Math.max(0, Math.min(shape[plane] - 1, index));
    draw();
  }

  function draw() {
    const p = state.plane;
    const k = state.index[p];
    const [u, v] = [0, 1, 2].filter((a) => a !== p);
    const nu = shape[u];
    const nv = shape[v];
    const room = (root.clientWidth || 1000) / meta.images.length - 14;
    const mm = Math.min(room / (nu * spacing[u]), 300 / (nv * spacing[v])); // CSS px per mm
    const ref = vols[refIndex];
    const base = k * stride[p];
    let checksum = 0;
    vols.forEach((vol, i) => {
      const grey = new ImageData(nu, nv);
      const err = errors[i] ? new ImageData(nu, nv) : null;
      for (let j = 0; j < nv; j++) {
        const row = (nv - 1 - j) * nu;
        for (let a = 0; a < nu; a++) {
          const at = base + a * stride[u] + j * stride[v];
          const g = vol[at];
          const o = 4 * (row + a);
          grey.data[o] = g;
          grey.data[o + 1] = g;
          grey.data[o + 2] = g;
          grey.data[o + 3] = 255;
          if (i === 0) checksum += g;
          if (err) {
            const e = Math.min(255, Math.round((Math.abs(g - ref[at]) / meta.error_max) * 255));
            err.data[o] = cmap[3 * e];
            err.data[o + 1] = cmap[3 * e + 1];
            err.data[o + 2] = cmap[3 * e + 2];
            err.data[o + 3] = 255;
          }
        }
      }
      paint(canvases[i], grey, nu * spacing[u] * mm, nv * spacing[v] * mm);
      if (err) paint(errors[i], err, nu * spacing[u] * mm, nv * spacing[v] * mm);
    });
    const barHeight = `${Math.max(80, nv * spacing[v] * mm).toFixed(1)}px`;
    if (scale) scale.forEach((node) => { node.style.height = barHeight; });
    slider.max = shape[p] - 1;
    slider.value = k;
    label.textContent = `${PLANES[p]} slice ${k} of 0–${shape[p] - 1}`;
    buttons.forEach((b, q) => b.classList.toggle("active", q === p));
    root.dataset.state = `${p}:${k}`;
    root.dataset.checksum = String(checksum);
  }

  function paint(canvas, data, width, height) {
    canvas.width = data.width;
    canvas.height = data.height;
    canvas.getContext("2d").putImageData(data, 0, 0);
    canvas.style.width = `${width.toFixed(1)}px`;
    canvas.style.height = `${height.toFixed(1)}px`;
  }
})();
