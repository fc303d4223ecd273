"""Fills the registries: the framework's own components, then every application's.

Config validation checks names against the registries as they are, so this one explicit step
runs first; the command line and the run service call it. It imports each application's
component modules by the names its :class:`~mrilearn.registry.Application` declares, so the
framework itself imports no application.
"""

from __future__ import annotations

import importlib
import logging

from mrilearn.registry import Application, applications

log = logging.getLogger(__name__)

_loaded: set[str] = set()


def load() -> list[Application]:
    """Register every component (once per process); returns the applications."""
    import mrilearn.engine.supervised  # noqa: F401
    import mrilearn.inference.multiview  # noqa: F401
    import mrilearn.inference.sliding  # noqa: F401
    import mrilearn.losses.image  # noqa: F401
    import mrilearn.losses.segmentation  # noqa: F401
    import mrilearn.models.dcsrn  # noqa: F401
    import mrilearn.models.unet  # noqa: F401

    apps = applications()
    for app in apps:
        if app.name in _loaded:
            continue
        for module in app.components:
            importlib.import_module(module)
        _loaded.add(app.name)
        log.debug("registered the components of application %s", app.name)
    return apps
