"""Device choice: auto falls back to what exists, an explicit device that is not there is a
one-line error naming the devices found."""

from __future__ import annotations

import pytest
import torch

from mrilearn.engine.device import available_devices, resolve_device
from mrilearn.errors import ConfigError


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(None).type in {d.split(":")[0] for d in available_devices()}
    assert "cpu" in available_devices()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_gpu_is_one_line_naming_the_devices():
    with pytest.raises(ConfigError) as err:
        resolve_device("cuda")
    assert "\n" not in str(err.value) and "found: cpu" in str(err.value)
    with pytest.raises(ConfigError, match="expected one of auto, cpu"):
        resolve_device("tpu")
