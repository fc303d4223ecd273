from mrilearn.losses import image  # noqa: F401
from mrilearn.losses import segmentation  # noqa: F401
