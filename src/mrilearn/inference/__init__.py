"""Whole-volume inference; importing registers the inferers in INFERERS."""

from mrilearn.inference import sliding  # noqa: F401
from mrilearn.inference import multiview  # noqa: F401
