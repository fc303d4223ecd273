"""Does adding SPADE-synthesised pairs to ALAMO training change the DSC? (§8.3.1)

One command runs the whole comparison in ``out``:

1. ``spade/``: SPADE trained on the ALAMO config's training subjects (its data section takes
   the segmentation config's source, labels, spacing, split and synthetic-subject settings).
2. ``synthetic/``: extra label maps (new synthetic-abdomen subjects whose images are never
   used, or ``extra_labels``) with SPADE images, as ``images/``, ``labels/``, ``manifest.csv``
   (labels cleared in slices too empty to synthesise, which hold background instead);
   with ``oracle`` also ``oracle/``: the same label maps with their real images.
3. ``seg_real/``, ``seg_real_synthetic/`` (and ``seg_real_oracle/``): the segmentation config
   trained with the same seed and iterations on the real training subjects, then on those plus
   the extra pairs (:class:`~mrilearn.apps.synthesis.data.SegVolumesWithExtra`), each evaluated on
   the same held-out test subjects.
4. ``comparison.json`` / ``comparison.md``: per-organ and mean DSC of each arm and paired
   tests of each arm's mean DSC against real only.
"""

from __future__ import annotations

import csv
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from mrilearn import components, plugins
from mrilearn.apps.seg.abdomen import synthetic_abdomen
from mrilearn.apps.synthesis.synthesize import label_files, spade_run
from mrilearn.config import Config, from_dict, load_config
from mrilearn.errors import ConfigError
from mrilearn.io import read_volume, write_nifti
from mrilearn.io.atomic import atomic_dir, write_json_atomic, write_text_atomic
from mrilearn.io.outputs import Output, check_outputs
from mrilearn.metrics.statistics import paired_test
from mrilearn.runs import load_run, train_run

log = logging.getLogger(__name__)

# everything run_experiment writes into its folder
EXPERIMENT_ENTRIES = ("spade", "synthetic", "oracle", "seg_*", "comparison.json", "comparison.md")

# SegVolumes arguments that decide which subjects exist, how they are split and resampled.
SHARED_DATA_KEYS = (
    "source", "labels", "spacing", "split", "split_seed", "normalize", "synthetic_subjects",
    "synthetic_shape", "synthetic_spacing", "synthetic_seed", "regions", "region_axis",
)  # fmt: skip


def spade_config(spade: Config, seg: Config, out: Path) -> Config:
    """The SPADE config with the segmentation config's subjects and split."""
    raw = spade.to_dict()
    data = {k: v for k, v in raw["data"].items() if k not in SHARED_DATA_KEYS}
    data.update({k: seg.data[k] for k in SHARED_DATA_KEYS if k in seg.data})
    return from_dict({**raw, "data": data, "output_dir": str(out), "experiment": "spade"})


def extra_label_maps(seg: Config, count: int, extra_labels: Path | None) -> list[tuple[str, Any]]:
    """(id, label Volume[, real image]) of the extra subjects: the label maps of a folder, or
    ``count`` new synthetic abdomens (the next data set seed; their images kept for the
    oracle arm only)."""
    if extra_labels is not None:
        return [(p.name.split(".")[0], read_volume(p, label=True), None)
                for p in label_files(extra_labels)]  # fmt: skip
    data = components.build("data", seg.data)
    if data.source != "synthetic_abdomen":
        raise ConfigError("--extra-labels FOLDER is needed unless data.source is synthetic_abdomen")
    _, shape, spacing, seed = data.synthetic
    out = []
    for i in range(count):
        image, label = synthetic_abdomen((seed + 1) * 100_003 + i, shape, spacing)
        out.append((f"extra_{seed + 1:03d}_{i:04d}", label, image))
    return out


def write_pairs(folder: Path, pairs: list[tuple[str, Any, Any]]) -> Path:
    """``images/``, ``labels/`` and ``manifest.csv`` of (id, label, image) pairs, atomically."""
    with atomic_dir(folder) as tmp:
        rows = []
        for sid, label, image in pairs:
            write_nifti(image, tmp / "images" / f"{sid}.nii.gz")
            write_nifti(label, tmp / "labels" / f"{sid}.nii.gz")
            rows.append([sid, f"images/{sid}.nii.gz", f"labels/{sid}.nii.gz"])
        with open(tmp / "manifest.csv", "w", newline="") as f:
            csv.writer(f).writerows([["subject", "image", "label"], *rows])
    return folder / "manifest.csv"


def train_and_evaluate(seg: Config, out: Path, arm: str, extra: Path | None) -> dict[str, Any]:
    """Train the segmentation config as arm ``arm`` (plus ``extra`` training pairs) and
    evaluate its best checkpoint on the test split."""
    raw = seg.to_dict()
    raw.update(output_dir=str(out), experiment=f"seg_{arm}")
    if extra is not None:
        raw["data"] = {
            **raw["data"],
            "name": "SegVolumesWithExtra",
            "extra_train": str(extra.resolve()),
        }
    t0 = time.perf_counter()
    run = train_run(from_dict(raw), resume=False, overwrite=True, devices=1)
    seconds = time.perf_counter() - t0
    result = load_run(run, "best").evaluate("test", run)
    return {"run": str(run), "train_s": seconds, "result": result}


def compare(arms: dict[str, dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Per-organ and mean DSC (fused inference method) of each arm, paired tests vs real."""
    first = next(iter(arms.values()))["result"]
    organs = list(first["organs"])
    method = list(first["per_subject"])[-1]  # the fused result (the only view if just one)
    dsc = {
        arm: {k: a["result"]["per_subject"][method][f"dsc_{k}"] for k in [*organs, "mean"]}
        for arm, a in arms.items()
    }
    tests = {
        arm: paired_test(dsc[arm]["mean"], dsc["real"]["mean"]) for arm in arms if arm != "real"
    }
    head = "| organ | " + " | ".join(arms) + " |\n|---|" + "---|" * len(arms) + "\n"
    lines = []
    for k in [*organs, "mean"]:
        cells = [f"{_nanmean(dsc[arm][k]):.3f}" for arm in arms]
        lines.append(f"| {'**mean**' if k == 'mean' else k} | " + " | ".join(cells) + " |")
    md = head + "\n".join(lines) + "\n"
    for arm, t in tests.items():
        md += f"\n{arm} − real, mean DSC over test subjects: {_fmt_test(t)}"
    summary = {
        "method": method,
        "subjects": first["subjects"],
        "dsc_per_subject": dsc,
        "paired_tests_vs_real": tests,
        "train_s": {arm: a["train_s"] for arm, a in arms.items()},
    }
    return summary, md + "\n"


def run_experiment(
    spade_path: Path, seg_path: Path, out: Path, extra_subjects: int = 8,
    extra_labels: Path | None = None, oracle: bool = False, seed: int | None = None,
    spade_overrides: list[str] = (), seg_overrides: list[str] = (), overwrite: bool = False,
) -> str:  # fmt: skip
    """Run steps 1-4 of the module notes; returns the markdown table. An earlier experiment
    in ``out`` is replaced only with ``overwrite``."""
    inputs = [spade_path, seg_path, *([extra_labels] if extra_labels else [])]
    check_outputs([Output.folder(out, *EXPERIMENT_ENTRIES)], inputs, overwrite)
    plugins.load()
    seg = load_config(seg_path, list(seg_overrides))
    spade = spade_config(load_config(spade_path, list(spade_overrides)), seg, out)
    t0 = time.perf_counter()
    train_run(spade, resume=False, overwrite=True, devices=1)
    spade_s = time.perf_counter() - t0
    trainer = spade_run(out / "spade")
    extra = extra_label_maps(seg, extra_subjects, extra_labels)
    synthetic, skipped = [], {}
    for sid, label, _ in extra:
        result = trainer.synthesize(label, seed, where=sid)
        # nearly empty slices hold background, not anatomy: their labels go too
        kept = label.with_data(np.where(result.synthesised, label.data, 0).astype(label.data.dtype))
        synthetic.append((sid, kept, result.image))
        skipped[sid] = result.skipped_slices
    arms = {"real": None, "real+synthetic": write_pairs(out / "synthetic", synthetic)}
    if oracle:
        if any(image is None for _, _, image in extra):
            raise ConfigError("--oracle needs generated extra subjects (their real images)")
        arms["real+real_extra"] = write_pairs(out / "oracle", extra)
    results = {
        arm: train_and_evaluate(seg, out, arm.replace("+", "_"), manifest)
        for arm, manifest in arms.items()
    }
    summary, md = compare(results)
    summary.update(spade_train_s=spade_s, extra_subjects=[sid for sid, _, _ in extra],
                   skipped_slices=skipped, seed=seed)  # fmt: skip
    write_json_atomic(out / "comparison.json", summary)
    write_text_atomic(out / "comparison.md", md)
    return md


def _nanmean(values: list[float]) -> float:
    finite = [v for v in values if v == v]
    return sum(finite) / len(finite) if finite else float("nan")


def _fmt_test(t: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in t.items())
