"""Network architectures shared by the applications, and their building blocks."""

from mrilearn.models.blocks import BottleneckReconstruction, DenseBlock, DenseUnit, make_norm
from mrilearn.models.dcsrn import DCSRN, MDCSRN, mdcsrn_variant

__all__ = [
    "DCSRN",
    "MDCSRN",
    "BottleneckReconstruction",
    "DenseBlock",
    "DenseUnit",
    "make_norm",
    "mdcsrn_variant",
]
