"""Whole-volume inference; importing registers the inferers in INFERERS."""

import mrilearn.inference.multiview  # noqa: F401
from mrilearn.inference import sliding  # noqa: F401
