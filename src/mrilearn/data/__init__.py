"""Data loading, pre-processing and degradation; importing registers the components."""

import mrilearn.data.seg  # noqa: F401
from mrilearn.data import (
    degrade,  # noqa: F401
    malibu,  # noqa: F401
)
