"""Training-loop callbacks the CLI adds: ``max_steps`` in iterations, a ``max_time`` stop named, a quieter
progress bar."""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import Timer, TQDMProgressBar

from pix2pix_aa.compat import batches_that_stepped
from pix2pix_aa.console import notice

__all__ = ["MaxTimeNotice", "QuietProgressBar", "StopAfterIterations"]


class StopAfterIterations(Callback):
    """``trainer.max_steps`` as users read it: training iterations (batches).

    Lightning counts optimiser steps, and each GAN iteration takes two (D, then G), so
    ``max_steps=6`` trained 3 batches. The CLI hands Lightning ``max_steps=-1`` and this
    callback stops after ``iterations`` batches (counted as the logging x-axis, so a resumed
    run continues the count).
    """

    def __init__(self, iterations: int) -> None:
        self.iterations = iterations
        self.stopped = False
        self.short_epoch: tuple[int, int, int] | None = None  # (epoch, batches trained, batches in it)

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if batches_that_stepped(trainer) >= self.iterations:  # a resumed run that is already done
            trainer.should_stop = self.stopped = True

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if batches_that_stepped(trainer) + 1 >= self.iterations:  # Lightning counts this batch after the hook
            trainer.should_stop = self.stopped = True
            total = trainer.num_training_batches
            if isinstance(total, int) and batch_idx + 1 < total:
                self.short_epoch = (trainer.current_epoch, batch_idx + 1, total)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Lightning's own line names max_epochs whenever the loop ends in its last epoch.
        if self.stopped:
            line = (f"stopped after {batches_that_stepped(trainer)} training iterations "
                    f"(trainer.max_steps={self.iterations})")
            if self.short_epoch is not None:
                line += ", " + _cut_epoch(*self.short_epoch)
            notice(line)


def _cut_epoch(epoch: int, done: int, total: int) -> str:
    # Lightning ends the epoch at the stop, and last.ckpt records it as finished.
    return (f"{done} of epoch {epoch}'s {total} batches: last.ckpt counts epoch {epoch} as finished, so a resume "
            f"(--ckpt_path last) goes on with epoch {epoch + 1}, and the other {total - done} batches of epoch {epoch} "
            "are not trained")


class MaxTimeNotice(Callback):
    """One line when ``trainer.max_time`` stopped a fit inside an epoch: Lightning says only
    "Time limit reached", and a resume silently skipped the rest of that epoch (as after a
    ``trainer.max_steps`` stop, which :class:`StopAfterIterations` announces)."""

    def __init__(self) -> None:
        self.last: tuple[int, int, Any] | None = None  # (epoch, batches trained in it, batches in it)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self.last = (trainer.current_epoch, batch_idx + 1, trainer.num_training_batches)

    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is None or self.last is None or not isinstance(self.last[2], int) or self.last[1] >= self.last[2]:
            return
        left = timer.time_remaining()
        if left is not None and left <= 0:
            notice("stopped by trainer.max_time after " + _cut_epoch(*self.last))


class QuietProgressBar(TQDMProgressBar):
    """Lightning's progress bar without ``v_num``: a run is named by its folder (printed by the
    logger), and a bare version number beside the losses tells nothing."""

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
