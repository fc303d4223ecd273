"""The DICOM node (``mrilearn serve``) on loopback, and rigid registration per LR/HR pair.

Node: the demo SR network (``sr/demo_mni152``: mDCSRN b2u4, k = 12, residual, MarginCrop
64³; random weights, timing only) on 16-slice MR series cut from the MNI152 T1 (``--matrix``
in plane, 1 mm), sent by a C-STORE client to a node in this process that forwards to a
Storage SCP here. Baseline: the same model's ``infer_volume`` on the same series read from
disk, in process (no network, no spool), run just before each series is sent (medians of
``--repeats``). One series alone gives the time from the last
instance received to the derived series stored at the destination, split as the node's
audit line splits it; then ``--senders`` clients send one series each at the same moment
(series per minute, first send to last series stored).

Registration: ``register_rigid`` of an LR made from the MNI152 T1 (moved 6 mm and 8° about an
oblique axis, 1.5 x 1.5 x 3 mm, another field of view) onto the T1 (197×233×189 at 1 mm),
multi-resolution (the default) against one full-resolution level (the baseline).

    .venv/bin/python bench/node.py
    .venv/bin/python bench/node.py --senders 3 --matrix 128 --skip-registration
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from _common import machine_line, timed

from mrilearn import plugins
from mrilearn.config import load_config
from mrilearn.io import Volume, load_mni152, read_dicom_series, write_dicom_series
from mrilearn.runs import build_trainer

SERIES_TIMEOUT = 1.0


class Destination:
    """A Storage SCP that notes when each series is complete (``count`` instances)."""

    def __init__(self, count: int) -> None:
        from pynetdicom import AE, AllStoragePresentationContexts, evt

        self.count, self.arrived, self.done = count, {}, {}
        self._lock = threading.Lock()
        self.ae = AE("PACS")
        self.ae.supported_contexts = AllStoragePresentationContexts
        handlers = [(evt.EVT_C_STORE, self._stored)]
        self.server = self.ae.start_server(("127.0.0.1", 0), block=False, evt_handlers=handlers)

    def _stored(self, event) -> int:
        uid = str(event.dataset.SeriesInstanceUID)
        with self._lock:
            self.arrived[uid] = self.arrived.get(uid, 0) + 1
            if self.arrived[uid] == self.count:
                self.done[uid] = time.perf_counter()
        return 0x0000

    def wait(self, series: int, timeout: float = 1800) -> None:
        deadline = time.monotonic() + timeout
        while len(self.done) < series:
            if time.monotonic() > deadline:
                raise TimeoutError("the derived series did not all arrive")
            time.sleep(0.02)


def mr_series(root: Path, count: int, matrix: int) -> list[list[Path]]:
    """``count`` 16-slice series (each its own SeriesInstanceUID) from the MNI152 T1 centre."""
    t1 = load_mni152("t1")
    centre = [s // 2 for s in t1.shape]
    box = [slice(c - matrix // 2, c + matrix // 2) for c in centre[:2]]
    crop = (*box, slice(centre[2] - 8, centre[2] + 8))
    affine = t1.affine.copy()
    affine[:3, 3] = t1.affine[:3, :3] @ [s.start for s in crop] + t1.affine[:3, 3]
    slab = Volume(np.ascontiguousarray(t1.data[crop]) * 1000, affine)
    return [sorted(write_dicom_series(slab, root / f"src{i}").glob("*.dcm")) for i in range(count)]


def node_rows(args: argparse.Namespace, root: Path) -> list[str]:
    from mrilearn.node.send import Sender
    from mrilearn.node.server import Node
    from mrilearn.node.settings import Destination as Address
    from mrilearn.node.settings import NodeSettings

    plugins.load()
    predictor = build_trainer(load_config("sr/demo_mni152"), root / "run")
    series = mr_series(root, args.repeats + args.senders, args.matrix)
    dest = Destination(16)
    settings = NodeSettings(
        spool=root / "spool", host="127.0.0.1", port=0, series_timeout=SERIES_TIMEOUT,
        forward=Address("PACS", "127.0.0.1", dest.server.server_address[1]),
    )  # fmt: skip
    alone, direct = [], []
    with Node(predictor, settings) as node:
        sender = Sender("SCANNER", Address("MRILEARN", "127.0.0.1", node.port))
        for i, files in enumerate(series[: args.repeats]):  # baseline and node side by side
            direct.append(
                timed(lambda f=files: predictor.infer_volume(read_dicom_series(f[0].parent)), 1)[0]
            )
            sender.send(files)
            last = time.perf_counter()
            dest.wait(i + 1)
            alone.append(max(dest.done.values()) - last)
        t0 = time.perf_counter()
        threads = [threading.Thread(target=sender.send, args=(s,)) for s in series[args.repeats :]]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        dest.wait(len(series))
        together = max(dest.done.values()) - t0
        audit = [json.loads(line) for line in node.audit.path.read_text().splitlines()]
    dest.ae.shutdown()
    parts = ("receive_s", "wait_s", "read_s", "infer_s", "write_s", "send_s")
    split = ", ".join(
        f"{k[:-2]} {statistics.median(a[k] for a in audit[: args.repeats]):.2f}" for k in parts
    )
    one, direct = statistics.median(alone), statistics.median(direct)
    return [
        f"| one 16-slice series {args.matrix}×{args.matrix}: last instance received -> "
        f"stored at the destination | {one:.2f} s ({split}) | {one / direct:.2f}× |",
        f"| {args.senders} senders at once, first instance -> last series stored | "
        f"{together:.1f} s: {60 * args.senders / together:.1f} series/min | "
        f"{together / args.senders / direct:.2f}× per series |",
        f"| baseline: `infer_volume` of the series read from disk, in process | {direct:.2f} s "
        "| 1.00× |",
    ]


def moved_lr(hr: Volume) -> tuple[Volume, object]:
    """``hr`` moved 6 mm and 8° about an oblique axis through its centre, on a 1.5 x 1.5 x 3 mm
    grid with a smaller field of view; and the transform (LR points -> HR points)."""
    import SimpleITK as sitk
    from scipy.spatial.transform import Rotation

    from mrilearn.apps.sr.registration import to_sitk

    axis = np.array([1.0, 2.0, 3.0]) / np.linalg.norm([1.0, 2.0, 3.0])
    moved = sitk.Euler3DTransform()
    moved.SetCenter(to_sitk(hr).TransformContinuousIndexToPhysicalPoint(
        [s / 2 for s in hr.shape]))  # fmt: skip
    moved.SetMatrix(Rotation.from_rotvec(np.radians(8) * axis).as_matrix().flatten().tolist())
    moved.SetTranslation([3.6, -4.8, 0.0])
    spacing = np.array([1.5, 1.5, 3.0])
    shape = (np.array(hr.shape) * np.abs(np.diag(hr.affine)[:3]) / spacing * 0.9).astype(int)
    affine = hr.affine @ np.diag([*(spacing / np.abs(np.diag(hr.affine)[:3])), 1.0])
    affine[:3, 3] += hr.affine[:3, :3] @ (np.array(hr.shape) * 0.05)
    grid = to_sitk(Volume(np.zeros(shape, np.float32), affine))
    image = sitk.Resample(to_sitk(hr), grid, moved, sitk.sitkLinear, 0.0)
    return Volume(sitk.GetArrayFromImage(image).transpose(2, 1, 0), affine), moved


def registration_rows() -> list[str]:
    from scipy.spatial.transform import Rotation

    from mrilearn.apps.sr.registration import register_rigid

    hr = load_mni152("t1")
    lr, moved = moved_lr(hr)
    centre = np.asarray(moved.GetCenter())
    box = centre + np.array(np.meshgrid(*[(-60.0, 60.0)] * 3)).reshape(3, -1).T
    rows, base = [], None
    for name, shrink in (("one level (baseline)", [1]), ("multi-resolution 4, 2, 1", None)):
        seconds, r = timed(lambda shrink=shrink: register_rigid(lr, hr, shrink=shrink), 1)
        base = base or seconds
        back = [moved.TransformPoint(r.transform.TransformPoint(p.tolist())) for p in box]
        mm = np.linalg.norm(np.asarray(back) - box, axis=1).max()
        deg = np.degrees(Rotation.from_matrix(
            np.asarray(moved.GetMatrix()).reshape(3, 3) @ r.matrix).magnitude())  # fmt: skip
        rows.append(f"| registration of an MNI152 T1 pair, {name} | {seconds:.1f} s "
                    f"({r.iterations} iterations; error {mm:.2f} mm, {deg:.2f}°) | "
                    f"{seconds / base:.2f}× |")  # fmt: skip
    return rows


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--senders", type=int, default=3, help="clients sending at the same moment")
    p.add_argument("--matrix", type=int, default=128, help="in-plane matrix of the series")
    p.add_argument("--repeats", type=int, default=3, help="single series sent one after another")
    p.add_argument("--skip-registration", action="store_true")
    p.add_argument("--skip-node", action="store_true")
    args = p.parse_args()
    rows = []
    if not args.skip_node:
        with tempfile.TemporaryDirectory() as tmp:
            rows += node_rows(args, Path(tmp))
    if not args.skip_registration:
        rows += registration_rows()
    print(f"{machine_line()}; series timeout {SERIES_TIMEOUT:g} s\n")
    print("| case | time | vs baseline |\n|---|---|---|")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
