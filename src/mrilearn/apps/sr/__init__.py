"""Super-resolution of 3-D MRI from k-space-truncated scans (§3-§5): DCSRN, mDCSRN,
mDCSRN-GAN, DRAGAN, the interpolation and CNN baselines, attention maps and uncertainty."""

from mrilearn.registry import Application

APPLICATION = Application(
    name="sr",
    package=__name__,
    components=(
        "mrilearn.apps.sr.degrade",
        "mrilearn.apps.sr.data",
        "mrilearn.apps.sr.angio",
        "mrilearn.apps.sr.baselines",
        "mrilearn.apps.sr.discriminator",
        "mrilearn.apps.sr.trainer",
        "mrilearn.apps.sr.gan",
    ),
    commands="mrilearn.apps.sr.cli",
    configs="sr",
)
