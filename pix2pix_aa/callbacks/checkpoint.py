"""Checkpoint callbacks: a best checkpoint that is never NaN, and a ``last.ckpt`` that is always
the newest state.

* ``FiniteModelCheckpoint``: ``ModelCheckpoint`` turns a NaN monitored value into +inf and still
  saves the model while it has fewer than ``save_top_k`` entries, so a NaN model can become
  ``best-*.ckpt``. This subclass never ranks a non-finite score and never writes a model whose
  weights or buffers are not finite (not even ``last.ckpt``: the previous one stays). It
  overrides ModelCheckpoint's private ``_save_topk_checkpoint`` / ``_save_last_checkpoint``,
  the only hooks between "decide to save" and "save" (listed in :mod:`pix2pix_aa.compat`).
* ``LastCheckpoint``: see its docstring.
"""

from __future__ import annotations

import warnings

import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint

from pix2pix_aa.checkpoints import nonfinite_tensors

__all__ = ["FiniteModelCheckpoint", "LastCheckpoint"]


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

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        # every_n_train_steps / train_time_interval switch Lightning's epoch-end save off (its
        # triggers exclude each other), so a finished fit's last.ckpt was the last mid-epoch save,
        # short of the trained model, and a kill could lose more than the epoch in progress.
        if (self._every_n_epochs < 1 and self._should_save_on_train_epoch_end(trainer)
                and not self._should_skip_saving_checkpoint(trainer)):
            self._save_topk_checkpoint(trainer, self._monitor_candidates(trainer))

