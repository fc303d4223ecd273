"""MALIBU (§6.3): a network g with g(U0) ≈ U replaces the iterative spatial-factor estimate
of Multitasking MRI, thousands of times faster."""

from mrilearn.registry import Application

APPLICATION = Application(
    name="malibu",
    package=__name__,
    components=(
        "mrilearn.apps.malibu.data",
        "mrilearn.apps.malibu.models",
        "mrilearn.apps.malibu.trainer",
    ),  # fmt: skip
    commands="mrilearn.apps.malibu.cli",
    configs="malibu",
)
