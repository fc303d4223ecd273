from mrilearn.losses import image  # noqa: F401
