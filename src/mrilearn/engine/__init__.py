"""The training engine: one loop with hooks, checkpoints, distributed training, logging."""
