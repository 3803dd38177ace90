"""Checkpoint files (one home): atomic writes, safe reads, one-line errors for every unusable
file. Loading a generator for evaluation from a checkpoint: :mod:`pix2pix_aa.evaluation.checkpoints`."""

from pix2pix_aa.checkpoints.io import (
    AtomicCheckpointIO,
    CheckpointError,
    atomic_torch_save,
    check_archive,
    check_module_checkpoint,
    check_state_matches,
    load_error_reason,
    nonfinite_tensors,
    process_gone,
    read_checkpoint,
)

__all__ = ["AtomicCheckpointIO", "CheckpointError", "atomic_torch_save", "check_archive", "check_module_checkpoint",
           "check_state_matches", "load_error_reason", "nonfinite_tensors", "process_gone",
           "read_checkpoint"]
