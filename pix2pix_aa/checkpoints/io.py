"""Checkpoint files that survive crashes and never lie: atomic writes and safe reads.

Why each piece exists (measured on Lightning 2.6 / fsspec, see docs/RELIABILITY.md):

* ``AtomicCheckpointIO``: Lightning's ``TorchCheckpointIO`` writes through an fsspec
  "transaction" that puts the bytes in a temporary file under the *system* temp folder and then
  ``shutil.move``\\ s it over the target. When that folder is on another file system (a tmpfs
  ``/tmp``, a network drive for runs) the move is a copy that rewrites ``last.ckpt`` in place, and
  nothing is ``fsync``\\ ed. Here the temporary file sits beside the target, is flushed and
  ``fsync``\\ ed, then ``os.replace``\\ d over it: a reader sees the old file or the new one, never
  half of one. Reads use ``weights_only=True`` unless the plugin is built with ``trust=True``.
* ``read_checkpoint`` / ``check_state_matches``: one-line ``CheckpointError`` for every way a
  checkpoint file can be unusable, before Lightning would fail deep inside ``load_state_dict``.

The checkpoint *callbacks* (a finite best, ``last.ckpt``, the RNG state) are in
:mod:`pix2pix_aa.callbacks`.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import get_filesystem
from torch import nn

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointError",
    "atomic_torch_save",
    "check_archive",
    "check_module_checkpoint",
    "check_state_matches",
    "load_error_reason",
    "nonfinite_tensors",
    "process_gone",
    "read_checkpoint",
]


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message is one line meant for the user."""


# -- writing -------------------------------------------------------------------------------------
def _is_local(path: str | os.PathLike) -> bool:
    return "://" not in str(path) or str(path).startswith("file://")


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened (Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _write_bytes(data: bytes, f) -> None:
    f.write(data)


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` runs on this machine (a temporary file of it is an orphan).
    Another user's live process counts as running: not ours to touch."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _orphaned_temporaries(path: Path) -> list[Path]:
    """``.<name>.<pid>.tmp`` beside ``path`` of writers that no longer run. A live one is another
    process saving the same file (a second fit of the run): removing it made that save fail."""
    found = []
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        pid = tmp.name[len(path.name) + 2:-len(".tmp")]
        if pid.isdigit() and int(pid) != os.getpid() and process_gone(int(pid)):
            found.append(tmp)
    return found


def atomic_torch_save(obj: Any, path: str | os.PathLike, _write: Callable[[bytes, Any], None] = _write_bytes) -> None:
    """``torch.save(obj, path)`` that either fully replaces ``path`` or leaves it untouched.

    Serialises to memory first (as Lightning's own ``_atomic_save``), then writes
    ``.<name>.<pid>.tmp`` in the same folder (same file system, so the rename is atomic),
    ``fsync``\\ s it, ``os.replace``\\ s it over ``path`` and ``fsync``\\ s the folder. A crash at any
    point leaves the previous file intact (plus, at worst, a hidden ``.tmp`` that the next save of
    the same name removes). ``_write(data, file)`` exists for tests that simulate a crash mid-write.

    Raises:
        CheckpointError: the file could not be written (disk full, no permission, ...): one
            line naming the file, the OS error and the ``last.ckpt`` a resume would start from;
            the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    # In memory first: torch.save streaming into a file that fails (disk full) reports a
    # RuntimeError of its zip writer ("unexpected pos 704 vs 598"), not the OS error.
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for stale in _orphaned_temporaries(path):  # left by a killed writer
            stale.unlink(missing_ok=True)
        with open(tmp, "wb") as f:
            _write(buffer.getbuffer(), f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write the checkpoint {path}: {e}; {_resume_hint(path)}") from e
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _resume_hint(path: Path) -> str:
    """What a failed checkpoint write left to resume from (the files are written atomically)."""
    last = path.parent / "last.ckpt"
    if last.is_file():
        return (f"the earlier checkpoints are intact, and --ckpt_path last resumes from {last} (the previous one) once "
                "the cause is fixed")
    return "no last.ckpt had been written before this one, so there is nothing to resume from"


class AtomicCheckpointIO(TorchCheckpointIO):
    """``TorchCheckpointIO`` with crash-safe local writes and ``weights_only`` reads.

    The default checkpoint plugin of ``train.py`` (``trainer.plugins``); remote URLs (``s3://``
    ...) are left to Lightning's fsspec code.

    Args:
        trust: allow full unpickling when reading checkpoints (runs code from the file: only for
            files you trust). Default: ``weights_only=True``, which reads tensors and plain values.
    """

    def __init__(self, trust: bool = False) -> None:
        super().__init__()
        self.trust = trust

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Optional[Any] = None) -> None:
        if storage_options is not None or not _is_local(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        atomic_torch_save(checkpoint, str(path).removeprefix("file://"))

    def load_checkpoint(self, path, map_location: Optional[Any] = lambda storage, loc: storage,
                        weights_only: Optional[bool] = None) -> dict[str, Any]:
        if weights_only is None:
            weights_only = not self.trust
        if not get_filesystem(path).exists(path):
            raise FileNotFoundError(f"checkpoint file not found: {path}")
        try:
            ckpt = super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except pickle.UnpicklingError as e:
            raise CheckpointError(_unpickling_message(Path(path), e, weights_only)) from e
        if _is_local(path) and zipfile.is_zipfile(str(path).removeprefix("file://")):
            check_archive(str(path).removeprefix("file://"))
        return ckpt


# -- reading -------------------------------------------------------------------------------------
def _first_line(e: BaseException, limit: int = 160) -> str:
    """The exception's first line, cut after its last full sentence within ``limit`` characters."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # torch colours part of its message
    if not text:
        return type(e).__name__
    line = text.splitlines()[0]
    if len(line) > limit:
        cut = line[:limit].rfind(". ")
        line = line[:cut + 1] if cut > 0 else line[:limit] + "..."
    return f"{type(e).__name__}: {line}"


def _refused_objects(e: Exception) -> Optional[str]:
    """For ``weights_only``'s refusal, "objects that are not plain weights (the refused one)";
    else None. torch's message is a page long; the line naming the refused object is what matters."""
    if not (isinstance(e, pickle.UnpicklingError) and "weights_only" in str(e).lower().replace(" ", "_")):
        return None
    detail = next((ln.strip() for ln in str(e).splitlines() if "Unsupported" in ln), "")
    detail = re.sub(r"^WeightsUnpickler error:\s*", "", detail).split(". ")[0][:160]
    return f"objects that are not plain weights{f' ({detail})' if detail else ''}"


def _torch_file_head(head: bytes) -> bool:
    """Whether a file's first bytes are torch.save's: a zip archive (PK..) or, in the legacy
    format, a pickle (protocol byte 0x80)."""
    return head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"


def load_error_reason(e: Exception, head: bytes) -> str:
    """Why ``torch.load`` failed on a file that starts with ``head``, in a few words: torch's own
    message is pages long, coloured, and does not say that a zip without its end is truncated."""
    if not head:
        return "the file is empty"
    if not _torch_file_head(head):
        return f"it starts with bytes {head!r}, not the zip archive or pickle that torch.save writes"
    if head.startswith(b"PK") and ("central directory" in str(e) or "not a ZIP archive" in str(e)):
        return ("the file is truncated (its zip archive has no end record): an interrupted copy or download? copy it "
                "again")
    if head.startswith(b"PK") and ("PytorchStreamReader" in str(e) or "inline_container" in str(e)):
        return "a zip archive, but not one torch.save wrote (no data.pkl in it)"
    if "Unsupported operand" in str(e):  # an opcode torch.save never writes: pickle.dump's own file
        return "a pickle, but not one torch.save wrote (pickle.dump of other data?)"
    refused = _refused_objects(e)
    return f"it holds pickled {refused}" if refused else _first_line(e)


def _unpickling_message(path: Path, e: Exception, weights_only: bool) -> str:
    refused = _refused_objects(e) if weights_only else None
    if refused:
        return (f"{path}: refused to unpickle {refused}; if you trust this file, pass --trust-checkpoint "
                "(evaluate.py) or --weights_only false (train.py)")
    return f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})"


def read_checkpoint(path: str | os.PathLike, trust: bool = False, lightning: bool = True) -> dict[str, Any]:
    """Load a Lightning checkpoint dict on the CPU, with ``weights_only=True`` unless ``trust``.
    ``lightning=False`` accepts any dict (e.g. a bare state_dict ``.pth``).

    Raises:
        CheckpointError: missing file, a folder, not a PyTorch file (junk, truncated), pickled
            objects refused by ``weights_only``, or a PyTorch file without a ``state_dict``.
    """
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: file not found")
    if path.is_dir():
        raise CheckpointError(f"{path}: is a folder, expected a .ckpt file")
    with open(path, "rb") as f:
        head = f.read(4)
    # Anything but torch.save's formats (an image, random bytes) is no checkpoint at all: say so,
    # rather than let weights_only's unpickler call it an unsafe one that the user might "trust".
    if not _torch_file_head(head):
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({load_error_reason(ValueError(), head)})")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_unpickling_message(path, e, not trust)) from e
    except Exception as e:  # torch.load on junk raises many types (KeyError, EOFError, RuntimeError, ...)
        reason = load_error_reason(e, head)
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint" + (
            f": {reason}" if reason.startswith("the file is truncated") else f" ({reason})")) from e
    if head.startswith(b"PK"):
        check_archive(path)
    if not isinstance(ckpt, dict) or (lightning and "state_dict" not in ckpt):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return ckpt


def check_archive(path: str | os.PathLike) -> None:
    """Check every member of a checkpoint's zip archive against the CRC-32 stored beside it.

    torch.load never reads those checksums, so bytes changed by a damaged copy or disk load as
    weights without a word and give plausible wrong outputs. The check reads the file once more
    (about 0.1 s per 100 MB from the page cache).

    Raises:
        CheckpointError: one line naming the file and the first damaged member.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as e:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from e
    if bad is not None:
        raise CheckpointError(f"{path}: the file is damaged: its member {bad} fails the archive's CRC-32 check (a "
                              "damaged copy or disk?); copy it again from where it was written")


def check_module_checkpoint(path: str | os.PathLike, ckpt: dict[str, Any], class_name: str, submodule: str) -> None:
    """Refuse a checkpoint of another LightningModule class, or one without ``<submodule>.`` weights.

    Raises:
        CheckpointError: naming the checkpoint's class, or what the state_dict holds instead.
    """
    hp = ckpt.get("hyper_parameters")
    saved_class = hp.get("_class_path") if isinstance(hp, dict) else None
    if saved_class and saved_class.rsplit(".", 1)[-1] != class_name:
        raise CheckpointError(f"{path}: a checkpoint of {saved_class}, expected a {class_name}")
    if not any(str(k).startswith(f"{submodule}.") for k in ckpt["state_dict"]):
        raise CheckpointError(f"{path}: no {submodule} weights (is it a {class_name} checkpoint? it holds "
                              f"e.g. {list(ckpt['state_dict'])[:2]})")


def check_state_matches(path: str | os.PathLike, ckpt: dict[str, Any], model: nn.Module) -> None:
    """Check that ``ckpt`` was saved from a model of ``model``'s class with the same layer shapes.

    Raises:
        CheckpointError: naming the checkpoint's class, or the first missing / unexpected /
            differently shaped weight and the option most likely responsible.
    """
    hp = ckpt.get("hyper_parameters") or {}
    saved_class = hp.get("_class_path") if isinstance(hp, dict) else None
    ours = type(model).__name__
    if saved_class and saved_class.rsplit(".", 1)[-1] != ours:
        raise CheckpointError(f"{path}: a checkpoint of {saved_class}, expected a {ours}")
    saved, expected = ckpt["state_dict"], model.state_dict()
    missing = [k for k in expected if k not in saved]
    unexpected = [k for k in saved if k not in expected]
    if not saved or len(missing) == len(expected):
        raise CheckpointError(f"{path}: none of the {ours}'s weights are in the checkpoint (a checkpoint of another "
                              f"model? it holds e.g. {list(saved)[:2]})")
    shapes = [(k, tuple(saved[k].shape), tuple(v.shape)) for k, v in expected.items()
              if k in saved and hasattr(saved[k], "shape") and tuple(saved[k].shape) != tuple(v.shape)]
    if missing or unexpected or shapes:
        parts = []
        if shapes:
            k, got, want = shapes[0]
            parts.append(f"{len(shapes)} weights differ in shape, e.g. {k}: checkpoint {got}, model {want}")
        if missing:
            parts.append(f"{len(missing)} missing, e.g. {missing[0]}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected, e.g. {unexpected[0]}")
        section = next(iter({k.split(".")[0] for k, *_ in shapes} | {k.split(".")[0] for k in missing + unexpected}))
        raise CheckpointError(f"{path}: the model config does not match the weights ({'; '.join(parts)}); use the "
                              f"config the checkpoint was trained with (check model.{section}.init_args)")


def nonfinite_tensors(module: nn.Module) -> list[str]:
    """Names of parameters / floating buffers (BatchNorm running statistics) holding NaN or Inf."""
    named = list(module.named_parameters()) + [(n, b) for n, b in module.named_buffers() if b.is_floating_point()]
    return [name for name, t in named if not torch.isfinite(t).all()]

