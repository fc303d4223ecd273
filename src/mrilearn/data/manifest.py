"""Subjects of a data set and their deterministic, subject-wise split.

A data set is a folder of NIfTI files (one subject per file, or per sub-folder with
named files) or a CSV manifest with a ``subject`` column and one column per role
(``image``, ``target``, ``label``, ...), plus an optional ``domain`` tag. Relative
paths in a manifest are relative to the manifest.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from mrilearn.errors import DataError

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "eval", "test")
# what an empty split costs, for the warning
EMPTY_SPLIT_COST = {
    "val": "validation and the best checkpoint are skipped",
    "test": "evaluate has no test subjects (evaluation.split test)",
}
SPLIT_NAMES = {"val": "validation", "test": "test"}
NIFTI_SUFFIXES = (".nii", ".nii.gz")


@dataclass(frozen=True)
class Subject:
    """One subject: its id, files by role, and a domain tag (for DRAGAN-style mixing)."""

    id: str
    files: dict[str, Path] = field(hash=False)
    domain: str = ""


def is_nifti(path: Path) -> bool:
    return path.name.endswith(NIFTI_SUFFIXES)


def subject_id(path: Path) -> str:
    name = path.name
    for suffix in NIFTI_SUFFIXES[::-1]:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def read_subjects(source: str | Path, role: str = "image") -> list[Subject]:
    """Subjects from a CSV manifest or a folder of NIfTI files (sorted by id)."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".csv":
        return _read_csv(path)
    if not path.is_dir():
        raise DataError(
            f"{path}: data source not found (expected a folder of NIfTI files or a .csv manifest)"
        )
    files = sorted(p for p in path.iterdir() if p.is_file() and is_nifti(p))
    if not files:
        raise DataError(
            f"{path}: no .nii/.nii.gz files found; point data.source at a folder of volumes or a CSV manifest"
        )
    return [Subject(subject_id(f), {role: f}) for f in files]


def _read_csv(path: Path) -> list[Subject]:
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or "subject" not in rows[0]:
        raise DataError(
            f"{path}: a manifest needs a header with a 'subject' column and one column per file role"
        )
    subjects, seen = [], set()
    for line, row in enumerate(rows, start=2):
        sid = (row.pop("subject") or "").strip()
        if not sid or sid in seen:
            raise DataError(f"{path}:{line}: subject id {sid!r} is empty or repeated")
        seen.add(sid)
        domain = (row.pop("domain", "") or "").strip()
        files = {}
        for role, value in row.items():
            if value:
                p = Path(value) if Path(value).is_absolute() else path.parent / value
                if not p.exists():
                    raise DataError(f"{path}:{line}: file {p} for role {role!r} does not exist")
                files[role] = p
        subjects.append(Subject(sid, files, domain))
    return sorted(subjects, key=lambda s: s.id)


def split_subjects(
    subjects: list[Subject], ratios: list[float], seed: int = 0
) -> dict[str, list[Subject]]:
    """Split by subject into train/val/eval/test with the given ratios (7:1:1:1 in §3/§4).

    Subjects are ordered by a hash of (seed, id), so the split depends only on the
    ids and the seed, never on file-system order. Each non-zero ratio gets at least
    one subject when there are enough subjects; when there are not, :func:`report_split`
    warns (every application's data sets split here).
    """
    if len(ratios) != len(SPLITS) or any(r < 0 for r in ratios) or sum(ratios) <= 0:
        raise DataError(f"split ratios {ratios}: need four non-negative numbers for {SPLITS}")
    order = sorted(subjects, key=lambda s: hashlib.sha256(f"{seed}:{s.id}".encode()).hexdigest())
    n = len(order)
    total = sum(ratios)
    counts = [int(round(n * r / total)) for r in ratios]
    for i, r in enumerate(ratios):  # every requested split gets a subject if possible
        if r > 0 and counts[i] == 0 and n >= sum(1 for x in ratios if x > 0):
            donor = max(range(len(counts)), key=lambda j: counts[j])
            counts[donor] -= 1
            counts[i] += 1
    counts[0] += n - sum(counts)
    out, start = {}, 0
    for name, count in zip(SPLITS, counts):
        out[name] = sorted(order[start : start + count], key=lambda s: s.id)
        start += count
    report_split(out, ratios)
    return out


def report_split(split: dict[str, list[Subject]], ratios: Sequence[float]) -> None:
    """Log the split's sizes; warn when the validation or test split asked for (a ratio > 0)
    is empty because there are too few subjects, with a split that would fill it."""
    n = sum(len(v) for v in split.values())
    log.info("split %d subjects: %s", n, {k: len(v) for k, v in split.items()})
    shown = "[" + ", ".join(f"{r:g}" for r in ratios) + "]"
    fix = (
        f"add subjects or set data.split=[{n - 2},1,0,1]"
        if n >= 3
        else "add subjects: training, validation and test need one each"
    )
    for name, cost in EMPTY_SPLIT_COST.items():
        if not split[name] and ratios[SPLITS.index(name)] > 0:
            log.warning(
                "%s split is empty (%d subjects, data.split %s): %s; %s",
                SPLIT_NAMES[name], n, shown, cost, fix,
            )  # fmt: skip
