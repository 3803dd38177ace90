"""Training-loop callbacks the CLI adds: ``max_steps`` in iterations, a quieter progress bar."""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import TQDMProgressBar

from pix2pix_aa.compat import batches_that_stepped
from pix2pix_aa.console import notice

__all__ = ["QuietProgressBar", "StopAfterIterations"]


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
                # Lightning ends the epoch at the stop, and last.ckpt records it as finished.
                epoch, done, total = self.short_epoch
                line += (f", {done} of epoch {epoch}'s {total} batches: last.ckpt counts epoch {epoch} as finished, so "
                         f"a resume (--ckpt_path last) goes on with epoch {epoch + 1}, and the other {total - done} "
                         f"batches of epoch {epoch} are not trained")
            notice(line)


class QuietProgressBar(TQDMProgressBar):
    """Lightning's progress bar without ``v_num``: a run is named by its folder (printed by the
    logger), and a bare version number beside the losses tells nothing."""

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        items = super().get_metrics(trainer, pl_module)
        items.pop("v_num", None)
        return items
