"""Evaluation metrics: image quality, segmentation overlap and distance, no-reference scores."""
