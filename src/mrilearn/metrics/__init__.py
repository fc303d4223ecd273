"""Evaluation metrics; importing registers them in METRICS."""

import mrilearn.metrics.segmentation  # noqa: F401
from mrilearn.metrics import image  # noqa: F401
