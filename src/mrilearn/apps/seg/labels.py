"""Label tables: organ names, label values and colours, and the mapping between label values
and the class indices a network predicts."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from mrilearn.errors import DataError


@dataclass
class LabelTable:
    """Organ names, label values and colours; class index i ≥ 1 is ``values[i - 1]``."""

    names: list[str]
    values: list[int]
    colours: list[str]

    @classmethod
    def from_config(cls, entries: Sequence[Mapping[str, Any]]) -> LabelTable:
        names, values, colours = [], [], []
        for i, e in enumerate(entries):
            if not {"name", "value"} <= set(e) or not isinstance(e["value"], int):
                raise DataError(f"data.labels[{i}]: need name and integer value, got {dict(e)}")
            if e["value"] <= 0:
                raise DataError(f"data.labels[{i}]: value {e['value']} ≤ 0 (0 is background)")
            names.append(str(e["name"]))
            values.append(int(e["value"]))
            colours.append(str(e.get("colour", "#ff00ff")))
        if len(set(values)) != len(values) or len(set(names)) != len(names):
            raise DataError(f"data.labels: repeated names or values in {list(zip(names, values))}")
        return cls(names, values, colours)

    @property
    def classes(self) -> int:
        """Number of network outputs: background + organs."""
        return len(self.values) + 1

    def to_classes(self, label: np.ndarray, where: str) -> np.ndarray:
        """Label values → class indices (uint8); values outside the table are an error."""
        lut_size = max(int(label.max(initial=0)), max(self.values)) + 1
        if label.min(initial=0) < 0:
            raise DataError(f"{where}: negative label values; labels are 0 (background) or ≥ 1")
        present = np.unique(label)
        unknown = sorted(set(present.tolist()) - {0, *self.values})
        if unknown:
            raise DataError(
                f"{where}: label values {unknown} are not in data.labels "
                f"({dict(zip(self.names, self.values))}); add them to the table or relabel"
            )
        lut = np.zeros(lut_size, np.uint8)
        lut[self.values] = np.arange(1, self.classes, dtype=np.uint8)
        return lut[label]

    @property
    def mirror(self) -> np.ndarray:
        """Class index → class index with ``left_*``/``right_*`` pairs swapped (identity
        elsewhere): the labels of a left-right mirrored image."""
        lut = np.arange(self.classes)
        index = {n: i + 1 for i, n in enumerate(self.names)}
        for name, i in index.items():
            for a, b in (("left", "right"), ("right", "left")):
                for sep in ("_", " ", "-"):
                    if name.lower().startswith(a + sep):
                        other = [n for n in index if n.lower() == b + sep + name[len(a) + 1 :]]
                        if other:
                            lut[i] = index[other[0]]
        return lut

    @property
    def class_values(self) -> list[int]:
        """The label value of each class index (0: background)."""
        return [0, *self.values]

    def to_values(self, classes: np.ndarray) -> np.ndarray:
        """Class indices → label values (int16)."""
        return np.asarray(self.class_values, np.int16)[classes]
