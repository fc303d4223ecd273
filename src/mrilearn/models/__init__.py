"""Networks; importing this package registers every model in ``mrilearn.registry.MODELS``."""

from mrilearn.models import (  # noqa: F401
    attention,
    baselines,
    blocks,
    discriminator,
    malibu,
    sr,
    unet,  # noqa: F401
)
from mrilearn.models.baselines import FSRCNN2d, FSRCNN3d, SRDenseNet3d, SRResNet3d
from mrilearn.models.blocks import BottleneckReconstruction, DenseBlock, DenseUnit, make_norm
from mrilearn.models.sr import DCSRN, MDCSRN, mdcsrn_variant

__all__ = [
    "DCSRN",
    "FSRCNN2d",
    "FSRCNN3d",
    "MDCSRN",
    "BottleneckReconstruction",
    "DenseBlock",
    "DenseUnit",
    "SRDenseNet3d",
    "SRResNet3d",
    "make_norm",
    "mdcsrn_variant",
]
