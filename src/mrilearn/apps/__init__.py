"""The applications built on the framework; each package declares an ``APPLICATION``."""
