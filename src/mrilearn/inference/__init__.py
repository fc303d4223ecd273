"""Whole-volume inference: sliding window and margin crop, multi-view fusion, MC dropout."""
