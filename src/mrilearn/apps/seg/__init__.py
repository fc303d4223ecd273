"""Abdominal multi-organ segmentation (ALAMO, §7): multi-view multi-slice U-nets, deep
supervision, multi-view fusion, synthetic abdomens and the MNI152 tissue demo."""

from mrilearn.registry import Application

APPLICATION = Application(
    name="seg",
    package=__name__,
    components=("mrilearn.apps.seg.data", "mrilearn.apps.seg.trainer"),
    commands="mrilearn.apps.seg.cli",
    configs="seg",
)
