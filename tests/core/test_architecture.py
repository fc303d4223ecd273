"""The framework's shape: import-linter contracts, and an application added as a throwaway
package (one data set, one trainer, one config) that trains and infers touching no core file."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np

from mrilearn.cli import main
from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.io import Volume, read_volume, write_nifti
from mrilearn.registry import Application, add_application, applications


def test_import_contracts_hold():
    """Layers (the core imports no application, nothing imports the CLI) and no cycles."""
    lint = Path(sys.executable).with_name("lint-imports")
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run([str(lint)], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


TOY = '''
"""A toy denoising application: noisy phantom patches, a one-layer net, whole-volume infer."""

import numpy as np
import torch

from mrilearn.data.phantoms import ellipsoid_phantom
from mrilearn.engine.supervised import SupervisedTrainer
from mrilearn.io import Volume
from mrilearn.registry import DATASETS, MODELS, TRAINERS


@DATASETS.register()
class ToyNoise:
    def __init__(self, size: int = 12, sigma: float = 0.1) -> None:
        self.size, self.sigma = size, sigma

    def _pair(self, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        seed = int(torch.randint(1000, (1,), generator=generator))
        clean = torch.from_numpy(ellipsoid_phantom((self.size,) * 3, seed=seed))[None]
        noise = self.sigma * torch.randn(clean.shape, generator=generator)
        return clean + noise, clean

    def train_batch(self, batch_size: int, generator: torch.Generator) -> dict:
        pairs = [self._pair(generator) for _ in range(batch_size)]
        return {"image": torch.stack([p[0] for p in pairs]),
                "target": torch.stack([p[1] for p in pairs])}

    def val_batches(self) -> list[dict]:
        return [self.train_batch(1, torch.Generator().manual_seed(7))]

    def subject_count(self, split: str) -> int:
        return 1


@MODELS.register()
class ToyNet(torch.nn.Conv3d):
    def __init__(self, kernel: int = 3) -> None:
        super().__init__(1, 1, kernel, padding=kernel // 2)


@TRAINERS.register()
class ToyTrainer(SupervisedTrainer):
    def infer_volume(self, volume: Volume) -> Volume:
        x = torch.from_numpy(np.asarray(volume.data, np.float32))[None, None]
        with torch.inference_mode():
            out = self.inference_net().eval()(x)[0, 0].numpy()
        return volume.with_data(out)
'''

CONFIG = """
description: toy denoising
experiment: toy
data: {name: ToyNoise, size: 12}
model: {name: ToyNet}
trainer: {name: ToyTrainer}
optim: {name: Adam, lr: 0.01}
train: {iterations: 2, batch_size: 2, val_every: 1, log_every: 1}
"""


def test_a_new_application_is_one_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / "toyapp"
    (package / "configs").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "parts.py").write_text(textwrap.dedent(TOY))
    (package / "configs" / "denoise.yaml").write_text(CONFIG)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    add_application(
        Application(name="toy", package="toyapp", components=("toyapp.parts",), configs="toy")
    )
    assert "toy" in [a.name for a in applications()]

    runs = tmp_path / "runs"
    assert main(["train", "toy/denoise", f"output_dir={runs}"]) == 0  # by its packaged name
    run = runs / "toy"
    assert (run / "checkpoints" / "latest.pt").is_file() and (run / "report.html").is_file()

    scan = tmp_path / "scan.nii.gz"
    affine = np.diag([1.5, 1.5, 2.0, 1.0])
    write_nifti(Volume(ellipsoid_phantom((14, 16, 10), seed=3), affine), scan)
    out = tmp_path / "denoised.nii.gz"
    assert main(["infer", "--run", str(run), str(scan), str(out)]) == 0
    result = read_volume(out)
    assert result.shape == (14, 16, 10)
    np.testing.assert_allclose(result.affine, affine)
    assert np.isfinite(result.data).all() and result.data.std() > 0
