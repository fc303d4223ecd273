"""SPADE synthesis (§8.3.1): normalisation, generator geometry, training/resume, synthesis of
label maps (nearly empty slices, geometry, errors), extra training pairs for ALAMO."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import config_dir

from mrilearn.apps.seg.abdomen import synthetic_abdomen
from mrilearn.apps.synthesis.data import LabelSlices, SegVolumesWithExtra, nearly_empty
from mrilearn.apps.synthesis.experiment import spade_config, write_pairs
from mrilearn.apps.synthesis.models import SPADE, SpadeDiscriminator, SpadeGenerator, one_hot
from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.engine.checkpoint import load_checkpoint
from mrilearn.errors import DataError
from mrilearn.io import Volume, read_volume, write_nifti
from mrilearn.runs import load_run, train_run

pytestmark = pytest.mark.usefixtures("single_thread")

CONFIG = config_dir("synth") / "spade_abdomen.yaml"
TINY = [
    "data.spacing=8.0", "data.synthetic_shape=[40,32,24]", "data.synthetic_spacing=[9.0,8.0,9.0]",
    "data.crop=[24,24]", "data.synthetic_subjects=3", "data.split=[2,1,0,0]", "data.val_slabs=2",
    "model.channels=[8,4]", "model.hidden=4", "model.z_dim=2",
    "trainer.discriminator.channels=[4,8]", "train.batch_size=2", "train.val_every=2",
    "train.log_every=1", "train.checkpoint_every=0",
]  # fmt: skip
# oblique-ish, axis-permuted geometry: synthesis must still come back on this grid
AFFINE = np.array([[0.0, 0.0, 9.0, -90.0], [-8.0, 0.0, 0.0, 120.0], [0.0, 9.0, 0.0, -50.0],
                   [0, 0, 0, 1]])  # fmt: skip


@pytest.fixture(scope="module")
def spade_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    out = tmp_path_factory.mktemp("spade")
    cfg = load_config(CONFIG, [*TINY, f"output_dir={out}", "train.iterations=3"])
    yield train_run(cfg, resume=False, overwrite=False, devices=1)
    torch.set_num_threads(threads)


def _label_map() -> Volume:
    """A synthetic abdomen's label map stored with axes permuted (Z, X, Y order on disk)."""
    _, label = synthetic_abdomen(7, (40, 32, 24), (9.0, 8.0, 9.0))
    return Volume(np.ascontiguousarray(label.data.transpose(1, 2, 0)), AFFINE)


def test_spade_with_a_constant_label_is_a_plain_affine_normalisation():
    torch.manual_seed(0)
    spade = SPADE(channels=3, label_channels=4, hidden=5)
    x = torch.randn(2, 3, 9, 7) * 3 + 1
    label = one_hot(torch.full((2, 1, 9, 7), 2), 4)
    gamma, beta = spade.modulation(label, (9, 7))
    # replicate padding: γ, β constant over the whole plane, edges included
    assert torch.allclose(gamma, gamma[..., :1, :1].expand_as(gamma), atol=1e-6)
    assert torch.allclose(beta, beta[..., :1, :1].expand_as(beta), atol=1e-6)
    plain = torch.nn.InstanceNorm2d(3, affine=True)
    with torch.no_grad():
        plain.weight.copy_(1 + gamma[0, :, 0, 0])
        plain.bias.copy_(beta[0, :, 0, 0])
    assert torch.allclose(spade(x, label), plain(x), atol=1e-5)


def test_spade_modulation_changes_only_near_a_label_boundary():
    torch.manual_seed(0)
    spade = SPADE(channels=2, label_channels=3, hidden=4)
    classes = torch.zeros(1, 1, 8, 20, dtype=torch.long)
    classes[..., 10:] = 1
    gamma, _ = spade.modulation(one_hot(classes, 3), (8, 20))
    # two 3x3 convs: γ depends on the label within 2 pixels only
    assert torch.allclose(gamma[..., :8], gamma[..., :1].expand(-1, -1, -1, 8), atol=1e-6)
    assert torch.allclose(gamma[..., 12:], gamma[..., 19:].expand(-1, -1, -1, 8), atol=1e-6)
    assert (gamma[..., 0] - gamma[..., 19]).abs().max() > 1e-3


@pytest.mark.parametrize("size", [(64, 64), (37, 50), (9, 5)])
def test_generator_output_has_the_label_geometry(size):
    g = SpadeGenerator(classes=5, channels=[8, 8, 4, 4], hidden=4, z_dim=3).eval()
    label = torch.randint(0, 5, (2, 1, *size))
    with torch.no_grad():
        out = g(label)
        assert out.shape == (2, 1, *size)
        z = torch.zeros(2, 3)
        assert torch.equal(g(label, z), g(label, z))  # z given: deterministic
        assert not torch.allclose(g(label, z), g(label, z + 1))  # z changes the image
    d = SpadeDiscriminator(classes=5, channels=[4, 8], scales=2)
    feats = d(out, label)
    assert len(feats) == 2 and all(f[-1].shape[1] == 1 for f in feats)


def test_nearly_empty_slices_are_found_per_axial_slice():
    classes = np.zeros((10, 10, 4), np.uint8)
    classes[:5, :, 1] = 1  # 50 %
    classes[0, 0, 2] = 3  # 1 %
    assert nearly_empty(classes, 0.02).tolist() == [True, False, True, True]
    assert nearly_empty(classes, 0.01).tolist() == [True, False, False, True]


def test_slice_batches_skip_nearly_empty_slices():
    data = LabelSlices(source="synthetic_abdomen", spacing=8.0, crop=[24, 24],
                       synthetic_subjects=3, synthetic_shape=[40, 32, 24],
                       synthetic_spacing=[9.0, 8.0, 9.0], split=[2, 1, 0, 0],
                       min_foreground=0.05, val_slabs=2)  # fmt: skip
    batch = data.train_batch(3, torch.Generator().manual_seed(0))
    assert batch["image"].shape == batch["label"].shape == (3, 1, 24, 24)
    assert batch["label"].dtype == torch.int64
    for i, z in data.usable_slices("train"):
        assert (data.prepared("train")[i].label[:, :, z] > 0).mean() >= 0.05
    n_all = sum(s.label.shape[2] for s in data.prepared("train"))
    assert 0 < len(data.usable_slices("train")) < n_all
    assert len(data.val_batches()) == 2
    with pytest.raises(DataError, match="single axial slices"):
        LabelSlices(slices=3)


def test_training_resumes_to_the_same_weights(spade_run, tmp_path):
    part = [*TINY, f"output_dir={tmp_path}", "experiment=paused"]
    paused = train_run(load_config(CONFIG, [*part, "train.iterations=2"]), False, False, 1)
    train_run(load_config(CONFIG, [*part, "train.iterations=3"]), True, False, 1)
    straight = load_checkpoint(spade_run / "checkpoints" / "latest.pt")  # 3 iterations at once
    resumed = load_checkpoint(paused / "checkpoints" / "latest.pt")
    assert resumed["iteration"] == straight["iteration"] == 3
    for net in ("G", "D"):
        for key, value in straight["nets"][net].items():
            assert torch.equal(value, resumed["nets"][net][key]), (net, key)
    assert (spade_run / "figures" / "synthesis.png").is_file()


def test_synthesis_skips_nearly_empty_slices_and_keeps_the_geometry(spade_run):
    trainer = load_run(spade_run)
    label = _label_map()  # (y, z, x) on disk: input axis 1 is the axial (superior) axis
    label.data[:, 12:, :] = 0
    label.data[0, 18, :5] = 1  # five voxels of liver: a nearly empty slice
    result = trainer.synthesize(label, min_foreground=0.01)
    assert result.image.shape == label.shape and np.array_equal(result.image.affine, AFFINE)
    assert result.image.data.dtype == np.float32 and np.isfinite(result.image.data).all()
    assert result.synthesised.shape == label.shape and len(result.skipped_slices) >= 13
    assert not result.synthesised[:, 14:, :].any() and result.synthesised[:, 2:10, :].all()
    background = result.image.data[:, 16:, :]
    assert np.allclose(background, background.flat[0])
    assert background.flat[0] <= result.image.data[result.synthesised].min() + 1e-6
    seeded = trainer.synthesize(label, seed=3, min_foreground=0.01).image.data
    assert not np.allclose(seeded, result.image.data)  # another z, another image
    label.data[:] = 0
    label.data[0, 0, 0] = 2
    with pytest.raises(DataError, match="every axial slice"):
        trainer.synthesize(label)


def test_synthesize_cli_writes_images_in_the_label_geometry(spade_run, tmp_path, capsys):
    src = write_nifti(_label_map(), tmp_path / "labels" / "a.nii.gz")
    out = tmp_path / "a_synth.nii.gz"
    assert main(["synthesize", "--run", str(spade_run), str(src), "-o", str(out)]) == 0
    image = read_volume(out)
    assert image.shape == (32, 24, 40) and np.allclose(image.affine, AFFINE)
    record = json.loads((tmp_path / "a_synth.json").read_text())
    assert record["files"][0]["slices"] > 0 and record["min_foreground"] == 0.01
    # a folder: same names, one record
    write_nifti(_label_map(), tmp_path / "labels" / "b.nii")
    folder = tmp_path / "synth"
    assert main(["synthesize", "--run", str(spade_run), str(tmp_path / "labels"),
                 "-o", str(folder)]) == 0  # fmt: skip
    assert sorted(p.name for p in folder.iterdir()) == ["a.nii.gz", "b.nii", "synthesis.json"]
    # a bad label map: one line, exit 2, nothing written
    bad = _label_map()
    bad.data[0, 0, 0] = 42
    write_nifti(bad, tmp_path / "labels" / "c.nii.gz")
    capsys.readouterr()
    assert main(["synthesize", "--run", str(spade_run), str(tmp_path / "labels" / "c.nii.gz"),
                 "-o", str(tmp_path / "none.nii.gz")]) == 2  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert "[42]" in err and len(err.splitlines()) == 1
    assert not list(tmp_path.glob("none*"))
    # ... in a folder: reported in one line and skipped, the others written, exit 1
    assert main(["synthesize", "--run", str(spade_run), str(tmp_path / "labels"),
                 "-o", str(tmp_path / "some")]) == 1  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert [line for line in err if "[42]" in line] == [err[0]] and err[0].startswith(
        "mrilearn: skipped c.nii.gz: "
    )
    assert err[-1] == "mrilearn: 2 written, 1 failed: c.nii.gz"
    some = tmp_path / "some"
    assert sorted(p.name for p in some.iterdir()) == ["a.nii.gz", "b.nii", "synthesis.json"]
    record = json.loads((some / "synthesis.json").read_text())
    assert [f["image"] for f in record["files"]] == [str(some / "a.nii.gz"), str(some / "b.nii")]
    assert [f["label"] for f in record["failed"]] == [str(tmp_path / "labels" / "c.nii.gz")]
    four_d = write_nifti(Volume(np.zeros((4, 4, 4, 2), np.int16), AFFINE), tmp_path / "4d.nii")
    assert main(["synthesize", "--run", str(spade_run), str(four_d),
                 "-o", str(tmp_path / "x.nii.gz")]) == 2  # fmt: skip
    assert "3-D" in capsys.readouterr().err and not (tmp_path / "x.nii.gz").exists()


def test_extra_pairs_join_the_training_split_only(tmp_path):
    image, label = synthetic_abdomen(11, (40, 32, 24), (9.0, 8.0, 9.0))
    manifest = write_pairs(tmp_path / "extra", [("extra_0", label, image)])
    kwargs = dict(source="synthetic_abdomen", spacing=8.0, synthetic_subjects=4,
                  synthetic_shape=[40, 32, 24], synthetic_spacing=[9.0, 8.0, 9.0],
                  split=[2, 1, 0, 1])  # fmt: skip
    base = SegVolumesWithExtra(extra_train=str(manifest), **kwargs)
    plain = LabelSlices(**kwargs)  # same subjects and split
    ids = {s: [c.id for c in base.cases(s)] for s in ("train", "val", "test")}
    assert ids["train"] == [c.id for c in plain.cases("train")] + ["extra_0"]
    assert ids["test"] == [c.id for c in plain.cases("test")]
    assert ids["val"] == [c.id for c in plain.cases("val")]


def test_spade_config_takes_the_segmentation_subjects_and_split(tmp_path):
    seg = load_config(CONFIG.parent / "alamo_small.yaml", ["data.split_seed=5"])
    spade = spade_config(load_config(CONFIG), seg, tmp_path)
    for key in ("source", "spacing", "split", "split_seed", "synthetic_subjects"):
        assert spade.data[key] == seg.data[key]
    assert spade.data["crop"] == [64, 64] and spade.data["name"] == "LabelSlices"
    assert "slices" not in spade.data and spade.output_dir == str(tmp_path)


@pytest.mark.parametrize("command", ["synthesize", "synthesize-experiment"])
def test_commands_have_help(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0 and "label" in capsys.readouterr().out
