"""Evaluation metrics; importing registers them in METRICS."""

from mrilearn.metrics import image  # noqa: F401
from mrilearn.metrics import segmentation  # noqa: F401
