"""The console: one plain ``[pix2pix_aa] ...`` line per notice, on stderr, and the check every
command makes of the output path it was given (:func:`output_path_problem`).

Every module that tells the user something at start-up or during a run (option checks, resume,
data set listings, callbacks) prints through :func:`notice`, so the lines look alike and a
multi-process run prints each once. Deliberately not ``warnings.warn``: a UserWarning prints the
source line that raised it, which is noise to someone running ``train.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Union

import torch

__all__ = ["notice", "output_path_problem"]


def notice(message: str) -> None:
    """Print one plain ``[pix2pix_aa] ...`` line to stderr (no warning machinery, no source line);
    under torch.distributed only on rank 0, so a line is not repeated once per process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    print(f"[pix2pix_aa] {message}", file=sys.stderr, flush=True)


def output_path_problem(path: Union[str, Path], option: str, file: bool = False) -> Optional[str]:
    """Why ``path`` cannot be written (one line naming ``option``), or None: the folder to create
    (``file``: the folder the file goes into) is an existing file, or sits under one; or, for a
    ``file``, ``path`` is an existing folder. Checked at start-up so that the command stops before
    its work, not with ``FileExistsError`` from ``mkdir`` after it."""
    path = Path(path)
    if file and path.is_dir():
        return f"{option} {path}: is a folder; pass the path of the file to write"
    folder = path.parent if file else path
    for above in (folder, *folder.parents):
        if above.exists():
            if above.is_dir():
                return None
            if file:
                return f"{option} {path}: {above} is a file, not a folder to write into; pass a path in a folder"
            what = "is a file" if above == folder else f"{above} is a file"
            return f"{option} {path}: {what}, not a folder; pass a new or existing folder"
    return None
