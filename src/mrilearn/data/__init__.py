"""Data loading, pre-processing and degradation; importing registers the components."""

from mrilearn.data import degrade  # noqa: F401
from mrilearn.data import seg  # noqa: F401
