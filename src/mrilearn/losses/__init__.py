"""Training losses: pixel, segmentation (Dice, deep supervision) and adversarial."""
