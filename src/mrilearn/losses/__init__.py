import mrilearn.losses.segmentation  # noqa: F401
from mrilearn.losses import image  # noqa: F401
