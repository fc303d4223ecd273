"""Label-to-image synthesis with SPADE (§8.3.1): slice data sets, volume synthesis, the
synthetic-data experiment for ALAMO. Importing registers the data sets."""

from mrilearn.synthesis import data  # noqa: F401
