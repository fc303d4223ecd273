"""Defaults of the synthetic angiography data set (:mod:`mrilearn.apps.sr.angio`), in a
module of their own so that the command line shows them without importing the generator."""

ANGIO_DOMAIN = "angio"
DEFAULT_SHAPE = (64, 64, 64)
DEFAULT_FACTORS = (4.0, 4.0)  # in-plane k-space truncation of §5.3
DEFAULT_AXES = (1, 2)
DATASET_ENTRIES = ("hr", "lr", "manifest.csv")  # what write_angio_dataset writes
