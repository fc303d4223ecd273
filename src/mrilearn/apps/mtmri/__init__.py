"""Multitasking MRI (§2.3.2, §6.2): simulate free-breathing, non-ECG IR radial scans and
reconstruct them as low-rank tensors (gating, Φ from the navigator, NUFFT, ADMM, T1 maps)."""

from mrilearn.registry import Application

APPLICATION = Application(
    name="mtmri", package=__name__, commands="mrilearn.apps.mtmri.cli", configs="mtmri"
)
