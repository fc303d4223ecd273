"""Defaults of the synthetic abdomens (:mod:`mrilearn.apps.seg.abdomen`), in a module of
their own so that the command line shows them without importing the generator."""

DEFAULT_SHAPE = (96, 80, 64)
DEFAULT_SPACING = (4.0, 3.5, 3.5)  # mm: in-plane coarser than 1.2 mm so resampling is exercised
DATASET_ENTRIES = ("images", "labels", "manifest.csv")  # what write_abdomen_dataset writes
