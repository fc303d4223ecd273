"""Evaluation metrics; importing registers them in METRICS."""

from mrilearn.metrics import image  # noqa: F401
