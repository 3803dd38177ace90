"""What the generated data sets share: per-sample seeds, request checks and an atomic writer.

Both generators (:mod:`pix2pix_aa.data.facades`, :mod:`pix2pix_aa.data.photos`) write the aligned
pix2pix layout ``<out>/<split>/<i>.png`` plus ``generation.json`` (their arguments). Here:

* :func:`sample_seed`: sample ``i`` of a split is drawn from ``SeedSequence([seed, offset(split)
  + i])``, so it depends only on (seed, split, i): not on the generation order, the worker count
  or the other splits' sizes;
* :func:`check_request`: split names, counts and the image size, checked before any work;
* :func:`staged_dataset`: the files are written into a temporary sibling folder renamed into
  place at the end, so an interrupted run never leaves a half-written data set behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Union

import numpy as np

__all__ = ["META_FILE", "SPLIT_OFFSETS", "GenerationStopped", "check_request", "sample_seed", "staged_dataset"]

#: Sample index offset per split so splits never share a seed (and stay fixed when counts change).
SPLIT_OFFSETS: dict[str, int] = {"train": 0, "val": 1_000_000, "test": 2_000_000}
#: Name of the metadata file written next to the splits.
META_FILE = "generation.json"


class GenerationStopped(Exception):
    """SIGTERM arrived while :func:`staged_dataset` was writing: the partial folder was removed."""


def sample_seed(seed: int, split: str, index: int) -> np.random.SeedSequence:
    """The seed of sample ``index`` (0-based) of ``split``.

    Raises:
        ValueError: for a split other than train / val / test.
    """
    if split not in SPLIT_OFFSETS:
        raise ValueError(f"unknown split {split!r}; expected one of {tuple(SPLIT_OFFSETS)}")
    return np.random.SeedSequence([int(seed), SPLIT_OFFSETS[split] + int(index)])


def check_request(splits: Mapping[str, int], size: int, allowed=SPLIT_OFFSETS) -> dict[str, int]:
    """``splits`` as {split: int count}, after checking the names (``allowed``), the counts
    (non-negative integers) and ``size`` (an integer >= 16).

    Raises:
        ValueError: naming the split or value and what was expected.
    """
    out = {}
    for split, n in splits.items():
        if split not in allowed:
            raise ValueError(f"unknown split {split!r}; expected a subset of {tuple(allowed)}")
        if int(n) != n or n < 0:
            raise ValueError(f"split {split!r}: count must be a non-negative integer, got {n!r}")
        out[split] = int(n)
    if int(size) != size or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    return out


@contextlib.contextmanager
def staged_dataset(out_dir: Union[str, os.PathLike], splits: Mapping[str, int], meta: dict,
                   overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder (with an empty folder per split) to write the files into; on a
    clean exit write ``generation.json`` (``meta``) and rename the folder to ``out_dir``.

    Raises:
        FileExistsError: ``out_dir`` exists and not ``overwrite``; ``overwrite`` of a folder that
            holds files but no ``generation.json``; or another process (e.g. a second DDP node)
            created it while this one was writing.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"{out} is a file, not a data set folder: choose another output folder")
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} already exists; pass --overwrite (Python: overwrite=True) to replace it")
    if out.is_dir() and overwrite and not (out / META_FILE).is_file() and any(out.iterdir()):
        # --overwrite removes the folder: only one a generator wrote (a mistyped --out data was deleted).
        raise FileExistsError(f"{out} holds files that no generator wrote (no {META_FILE}); --overwrite replaces only "
                              "a generated data set: choose another --out, or move them away first")
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    for stale in [tmp, *_orphans(out)]:
        shutil.rmtree(stale, ignore_errors=True)
    try:
        for split in splits:
            (tmp / split).mkdir(parents=True)
        with _sigterm_raises(out):
            yield tmp
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if out.exists() and overwrite:
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        try:
            tmp.rename(out)
        except OSError:
            if out.exists():
                raise FileExistsError(f"{out} was created by another process during generation") from None
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _orphans(out: Path) -> list[Path]:
    """Staging folders of ``out`` left by a process that no longer runs (killed by SIGKILL, or
    the machine went down): nothing else would ever remove them."""
    from pix2pix_aa.checkpoints import process_gone  # here: generation itself needs numpy only

    found = []
    for path in out.parent.glob(f".{out.name}.tmp-*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and process_gone(int(pid)):
            found.append(path)
    return found


_handler_installed = False  # True while _sigterm_raises' handler is this process's


def _default_sigterm_in_child() -> None:
    """A forked child does not inherit :func:`_sigterm_raises`' handler. A Python handler runs only
    between bytecodes, so a worker blocked in C (a lock that another thread held at fork time) would
    never run it: ``Pool`` ends its workers with SIGTERM, and the parent would wait for that one for
    good. The default action ends a process wherever it is."""
    global _handler_installed
    if _handler_installed:
        _handler_installed = False
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


os.register_at_fork(after_in_child=_default_sigterm_in_child)


@contextlib.contextmanager
def _sigterm_raises(out: Path) -> Iterator[None]:
    """SIGTERM (a scheduler's preemption, kill) raises :class:`GenerationStopped` in this process,
    so the staging folder is removed and the caller can say so in one line; Python's default would
    end the process on the spot, leaving the hidden folder behind. Processes forked meanwhile (the
    generation workers) get the default action back at fork (:func:`_default_sigterm_in_child`)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set a handler; the default stays
        return
    global _handler_installed

    def stop(signum: int, frame: object) -> None:
        raise GenerationStopped(f"stopped by SIGTERM while generating {out}: the partial data set was removed; "
                                "the next run generates it again")

    previous = signal.signal(signal.SIGTERM, stop)
    _handler_installed = True
    try:
        yield
    finally:
        _handler_installed = False
        # None: the earlier handler was not set from Python and cannot be put back; the default then.
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
