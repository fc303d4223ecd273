"""Deployable model packages (§8.2.3, §8.4.1): safetensors weights, config, conventions, ONNX."""
