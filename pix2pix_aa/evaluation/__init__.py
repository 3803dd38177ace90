"""Stability evaluation of trained checkpoints (imports the training module to rebuild them)."""
