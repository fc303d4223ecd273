"""Does MC-dropout uncertainty track the SR error on held-out subjects? (§8.4.2)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mrilearn.apps.sr.trainer import SRTrainer
from mrilearn.inference.uncertainty import (
    check_samples,
    mc_dropout,
    reliability_figure,
    uncertainty_error_relation,
)
from mrilearn.io.atomic import write_json_atomic


def evaluate_sr_uncertainty(
    trainer: SRTrainer, split: str, samples: int, out_dir: Path, mask_threshold: float = 0.05
) -> dict[str, Any]:
    """On every pair of ``split`` (held-out subjects): MC-dropout mean and std of the
    region, |mean − HR| and their relation, pooled over subjects (voxels with HR above
    ``mask_threshold`` × max). Writes uncertainty.json and figures/reliability.png."""
    check_samples(samples)
    unc, err = [], []
    for pair in trainer.sr_data.pairs(split):
        with mc_dropout(trainer):
            stack = np.stack([trainer.predict_region(pair) for _ in range(samples)])
        mean, stds = stack.mean(0), stack.std(0, ddof=1 if samples > 1 else 0)
        hr = pair.hr[pair.region]
        mask = hr > mask_threshold * hr.max()
        unc.append(stds[mask])
        err.append(np.abs(mean - hr)[mask])
    relation = uncertainty_error_relation(np.concatenate(unc), np.concatenate(err))
    relation.update({"split": split, "samples": samples, "subjects": len(unc)})
    write_json_atomic(Path(out_dir) / "uncertainty.json", relation)
    reliability_figure(
        relation, Path(out_dir) / "figures" / "reliability.png", "MC-dropout std", "SR"
    )
    return relation
