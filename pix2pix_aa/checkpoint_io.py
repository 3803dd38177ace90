"""Checkpoints that survive crashes and never lie: atomic writes, safe reads, a finite "best",
and the RNG state needed to resume a run where it stopped.

Why each piece exists (measured on Lightning 2.6 / fsspec, see docs/RELIABILITY.md):

* ``AtomicCheckpointIO``: Lightning's ``TorchCheckpointIO`` writes through an fsspec
  "transaction" that puts the bytes in a temporary file under the *system* temp folder and then
  ``shutil.move``\\ s it over the target. When that folder is on another file system (a tmpfs
  ``/tmp``, a network drive for runs) the move is a copy that rewrites ``last.ckpt`` in place, and
  nothing is ``fsync``\\ ed. Here the temporary file sits beside the target, is flushed and
  ``fsync``\\ ed, then ``os.replace``\\ d over it: a reader sees the old file or the new one, never
  half of one. Reads use ``weights_only=True`` unless the plugin is built with ``trust=True``.
* ``FiniteModelCheckpoint``: ``ModelCheckpoint`` turns a NaN monitored value into +inf and still
  saves the model while it has fewer than ``save_top_k`` entries, so a NaN model can become
  ``best-*.ckpt``. This subclass never ranks a non-finite score and never writes a model whose
  weights or buffers are not finite (not even ``last.ckpt``: the previous one stays).
* ``ResumeRNGState``: Lightning does not store RNG states in checkpoints, so dropout and (with
  ``num_workers=0``) the random crops/flips after a resume differ from an uninterrupted run. This
  callback saves the torch / CUDA / numpy / ``random`` states with each checkpoint and restores
  them before training resumes.
* ``read_checkpoint`` / ``check_state_matches``: one-line ``CheckpointError`` for every way a
  checkpoint file can be unusable, before Lightning would fail deep inside ``load_state_dict``.
"""

from __future__ import annotations

import os
import pickle
import random
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import numpy as np
import pytorch_lightning as pl
import torch
from lightning_fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning_fabric.utilities.cloud_io import get_filesystem
from pytorch_lightning.callbacks import Callback, ModelCheckpoint
from torch import nn

__all__ = [
    "AtomicCheckpointIO",
    "CheckpointError",
    "FiniteModelCheckpoint",
    "LastCheckpoint",
    "ResumeRNGState",
    "atomic_torch_save",
    "check_state_matches",
    "check_module_checkpoint",
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


def atomic_torch_save(obj: Any, path: str | os.PathLike, _write: Callable[[Any, Any], None] = torch.save) -> None:
    """``torch.save(obj, path)`` that either fully replaces ``path`` or leaves it untouched.

    Writes ``.<name>.<pid>.tmp`` in the same folder (same file system, so the rename is atomic),
    ``fsync``\\ s it, ``os.replace``\\ s it over ``path`` and ``fsync``\\ s the folder. A crash at any
    point leaves the previous file intact (plus, at worst, a hidden ``.tmp`` that the next save of
    the same name removes). ``_write`` exists for tests that simulate a crash mid-write.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):  # left by a killed writer
        stale.unlink(missing_ok=True)
    tmp = path.parent / f".{path.name}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            _write(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


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
            return super().load_checkpoint(path, map_location=map_location, weights_only=weights_only)
        except pickle.UnpicklingError as e:
            raise CheckpointError(_unpickling_message(Path(path), e, weights_only)) from e


# -- reading -------------------------------------------------------------------------------------
def _first_line(e: BaseException, limit: int = 160) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(e)).strip()  # torch colours part of its message
    return f"{type(e).__name__}: {text.splitlines()[0][:limit]}" if text else type(e).__name__


def _unpickling_message(path: Path, e: Exception, weights_only: bool) -> str:
    if weights_only and "weights_only" in str(e).lower().replace(" ", "_"):
        # torch's message is a page long; the line naming the refused object is what matters.
        detail = next((ln.strip() for ln in str(e).splitlines() if "Unsupported global" in ln or "Unsupported" in ln),
                      "")
        detail = re.sub(r"^WeightsUnpickler error:\s*", "", detail).split(". ")[0][:160]
        return (f"{path}: refused to unpickle objects that are not plain weights{f' ({detail})' if detail else ''}; "
                "if you trust this file, pass --trust-checkpoint (evaluate.py) or --weights_only false (train.py)")
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
    # torch.save writes a zip archive (PK..) or, in the legacy format, a pickle (protocol byte
    # 0x80). Anything else (an image, random bytes) is no checkpoint at all: say so, rather than
    # let weights_only's unpickler call it an unsafe one that the user might "trust".
    if not (head.startswith(b"PK\x03\x04") or head[:1] == b"\x80"):
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (it starts with bytes {head!r}, not the zip "
                              "archive or pickle that torch.save writes)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as e:
        raise CheckpointError(_unpickling_message(path, e, not trust)) from e
    except Exception as e:  # torch.load on junk raises many types (KeyError, EOFError, RuntimeError, ...)
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({_first_line(e)})") from e
    if not isinstance(ckpt, dict) or (lightning and "state_dict" not in ckpt):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (no 'state_dict')")
    return ckpt


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


# -- never a non-finite best ---------------------------------------------------------------------
def nonfinite_tensors(module: nn.Module) -> list[str]:
    """Names of parameters / floating buffers (BatchNorm running statistics) holding NaN or Inf."""
    named = list(module.named_parameters()) + [(n, b) for n, b in module.named_buffers() if b.is_floating_point()]
    return [name for name, t in named if not torch.isfinite(t).all()]


class FiniteModelCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` that never records a non-finite score as best and never saves a model
    with non-finite weights (the previous checkpoint files are kept instead, with a warning)."""

    def _model_is_finite(self, trainer: pl.Trainer, what: str) -> bool:
        bad = nonfinite_tensors(trainer.lightning_module)
        if bad:
            warnings.warn(f"not saving the {what} checkpoint at epoch {trainer.current_epoch}: {len(bad)} tensors hold "
                          f"NaN/Inf (e.g. {bad[0]}); the previous checkpoint is kept", stacklevel=2)
        return not bad

    def _save_topk_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self.save_top_k == 0:
            return
        current = monitor_candidates.get(self.monitor) if self.monitor else None
        if current is not None and not torch.isfinite(torch.as_tensor(current)).all():
            warnings.warn(f"{self.monitor} = {float(current)} at epoch {trainer.current_epoch} is not finite: not "
                          "ranked as a best checkpoint", stacklevel=2)
            return
        if self._model_is_finite(trainer, "best"):
            super()._save_topk_checkpoint(trainer, monitor_candidates)

    def _save_last_checkpoint(self, trainer: pl.Trainer, monitor_candidates: dict[str, torch.Tensor]) -> None:
        if self.save_last and self._model_is_finite(trainer, "last"):
            super()._save_last_checkpoint(trainer, monitor_candidates)


# -- exact resume --------------------------------------------------------------------------------
class ResumeRNGState(Callback):
    """Saves the global RNG states with every checkpoint and restores them on resume.

    Restored in ``load_state_dict``, which Lightning calls before it builds the training
    iterator, so the first batch after a resume already draws from the saved state. Stored as
    tensors and lists of ints (numpy's key as a list), so ``weights_only=True`` can read them.
    What this cannot restore: the state of the training DataLoader's own ``generator`` (shuffle
    order, worker seeds), which the data module re-seeds every time ``fit`` starts, and the RNG
    inside DataLoader worker processes; see docs/RELIABILITY.md.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, key, pos, has_gauss, gauss = np.random.get_state()
        version, py_state, py_gauss = random.getstate()
        state = {"torch": torch.get_rng_state(), "numpy": [kind, key.tolist(), pos, has_gauss, gauss],
                 "python": [version, list(py_state), py_gauss]}
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        kind, key, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
        version, py_state, py_gauss = state_dict["python"]
        random.setstate((version, tuple(py_state), py_gauss))
        if "cuda" in state_dict and torch.cuda.is_available() and len(state_dict["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state_dict["cuda"])


class LastCheckpoint(FiniteModelCheckpoint):
    """``last.ckpt``: always the newest state (the file ``--ckpt_path last`` resumes from).

    Its own callback, because Lightning 2.6's ``ModelCheckpoint(save_last=True)`` only writes
    last.ckpt in a step where the monitored checkpoint was saved too, so it goes stale once the
    monitored metric stops improving. A class of its own also gives it a state key of its own
    beside the monitored ``FiniteModelCheckpoint``. Configure it under ``last_checkpoint:``
    (e.g. ``every_n_train_steps`` for mid-epoch snapshots).
    """

    def __init__(self, dirpath=None, filename: str = "last", save_on_train_epoch_end: bool = True,
                 every_n_train_steps: int | None = None, every_n_epochs: int | None = None,
                 train_time_interval=None) -> None:
        super().__init__(dirpath=dirpath, filename=filename, monitor=None, save_top_k=1, save_last=False,
                         save_on_train_epoch_end=save_on_train_epoch_end, every_n_train_steps=every_n_train_steps,
                         every_n_epochs=every_n_epochs, train_time_interval=train_time_interval,
                         enable_version_counter=False)

