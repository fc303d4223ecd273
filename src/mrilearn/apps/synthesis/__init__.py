"""Label-to-image synthesis with SPADE (§8.3.1): slice data sets, volume synthesis, and the
experiment that trains ALAMO with and without synthesised pairs."""

from mrilearn.registry import Application

APPLICATION = Application(
    name="synthesis",
    package=__name__,
    components=(
        "mrilearn.apps.synthesis.data",
        "mrilearn.apps.synthesis.models",
        "mrilearn.apps.synthesis.trainer",
    ),  # fmt: skip
    commands="mrilearn.apps.synthesis.cli",
    configs="synth",
)
