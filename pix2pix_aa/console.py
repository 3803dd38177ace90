"""The console: one plain ``[pix2pix_aa] ...`` line per notice, on stderr, the check every
command makes of the output path it was given (:func:`output_path_problem`), and the one line an
error is told in (:func:`worker_error_line`).

Every module that tells the user something at start-up or during a run (option checks, resume,
data set listings, callbacks) prints through :func:`notice`, so the lines look alike and a
multi-process run prints each once. Deliberately not ``warnings.warn``: a UserWarning prints the
source line that raised it, which is noise to someone running ``train.py``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional, Union

import torch

__all__ = ["count", "notice", "output_path_problem", "worker_error_line"]


def notice(message: str) -> None:
    """Print one plain ``[pix2pix_aa] ...`` line to stderr (no warning machinery, no source line);
    under torch.distributed only on rank 0, so a line is not repeated once per process."""
    if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return
    print(f"[pix2pix_aa] {message}", file=sys.stderr, flush=True)


def count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``count(1, "epoch")`` is "1 epoch"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


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


def worker_error_line(error: BaseException) -> str:
    """The message of ``error``, without the worker traceback a DataLoader adds.

    An exception raised in a DataLoader worker process (``num_workers > 0``) is re-raised in the
    main process by torch with the worker's whole traceback in its text ("Caught ValueError in
    DataLoader worker process 0. Original Traceback ... ValueError: <message>"); the original
    message (one line here: our data errors name the file and what is wrong) is its last line.
    """
    text = str(error)
    if not re.match(r"Caught \w+ in DataLoader worker process \d+", text):
        return text
    return re.sub(r"^[\w.]+: ", "", text.rstrip().splitlines()[-1])
