"""Figures and results tables for reports."""

from mrilearn.report import figures  # noqa: F401
