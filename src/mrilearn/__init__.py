"""mrilearn: deep learning for MRI in one config-driven framework."""

__version__ = "0.1.0"
