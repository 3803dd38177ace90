"""The console: one plain ``[pix2pix_aa] ...`` line per notice, on stderr.

Every module that tells the user something at start-up or during a run (option checks, resume,
data set listings, callbacks) prints through :func:`notice`, so the lines look alike and a
multi-process run prints each once. Deliberately not ``warnings.warn``: a UserWarning prints the
source line that raised it, which is noise to someone running ``train.py``.
"""

from __future__ import annotations

import sys

import torch

__all__ = ["notice"]


def notice(message: str) -> None:
    """Print one plain ``[pix2pix_aa] ...`` line to stderr (no warning machinery, no source line);
    under torch.distributed only on rank 0, so a line is not repeated once per process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    print(f"[pix2pix_aa] {message}", file=sys.stderr, flush=True)
