"""Training-loop callbacks the CLI adds: ``max_steps`` in iterations, a ``max_time`` stop named, a quieter
progress bar, and the fit's progress in a file (``train.log``)."""

from __future__ import annotations

import math
import shlex
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Optional

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import Timer, TQDMProgressBar

from pix2pix_aa.compat import batches_that_stepped
from pix2pix_aa.console import count, notice, worker_error_line

__all__ = ["MaxTimeNotice", "QuietProgressBar", "StopAfterIterations", "TrainingLog"]


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
            f"(--ckpt_path last) goes on with epoch {epoch + 1}, and the other "
            f"{'batch' if total - done == 1 else f'{total - done} batches'} of epoch {epoch} "
            f"{'is' if total - done == 1 else 'are'} not trained")


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


class TrainingLog(Callback):
    """The fit's progress in a file, ``<run folder>/train.log`` (``tail -f`` it): one timestamped
    line at the start (iteration, epoch, the command), at most one every :attr:`EVERY_S` seconds
    inside an epoch (batch, iteration, iterations per second), one at each epoch's end (the
    epoch's mean losses, the validation figures, its time and the time left at that pace) and one
    at the end (done, or what stopped it). Appended: a resumed fit continues its run's file.

    Why a file: the progress bar rewrites one terminal line, and a batch job's log holds the
    bar's carriage returns, or nothing from a job killed before its output was flushed.
    """

    #: Seconds between two lines inside an epoch.
    EVERY_S = 60.0
    #: Logged values written at an epoch's end, in this order (those the fit logs).
    FIGURES = ("train/loss_G_epoch", "train/loss_D_epoch", "val/l1", "val/psnr", "val/ssim", "val/stability_psnr",
               "val/kid")

    def __init__(self) -> None:
        self.path: Optional[Path] = None
        self._fit_start = self._epoch_start = self._last_line = 0.0
        self._seconds = 0.0  # in the epochs this process trained to their end
        self._iterations = 0  # in those epochs
        self._first_batch = self._batches = 0  # the iteration an epoch started at; batches of it done
        self._validated = False
        self._cut = False  # the last epoch ended before its last batch (a max_steps / max_time stop)

    def _write(self, line: str) -> None:
        if self.path is None:
            return
        with self.path.open("a") as f:
            f.write(f"{datetime.now().isoformat(timespec='seconds')} {line}\n")

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        log_dir = trainer.log_dir  # on every rank: under DDP it is a broadcast from rank 0
        if not trainer.is_global_zero or not log_dir or "://" in str(log_dir):
            return
        self.path = Path(log_dir) / "train.log"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fit_start = self._last_line = time.monotonic()

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Here, not at on_fit_start: a resumed fit's counters are restored from its checkpoint by now.
        resumed = f", resumed from {trainer.ckpt_path}" if trainer.ckpt_path else ""
        self._write(f"fit started at iteration {batches_that_stepped(trainer)}, epoch {trainer.current_epoch} (epochs "
                    f"0 to {trainer.max_epochs - 1}){resumed}: {shlex.join(sys.argv)}")

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._epoch_start = time.monotonic()
        self._first_batch = batches_that_stepped(trainer)
        self._validated = False

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # Only this epoch's validation: an epoch without one still holds the last one's val/*.
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        self._batches = batch_idx + 1  # of the epoch: a mid-epoch resume starts past 0
        now = time.monotonic()
        if self.path is None or now - self._last_line < self.EVERY_S:
            return
        self._last_line = now
        done = batches_that_stepped(trainer) + 1 - self._first_batch  # Lightning counts this batch after the hook
        total = trainer.num_training_batches
        of = f"/{total}" if isinstance(total, int) else ""
        self._write(f"epoch {trainer.current_epoch}, batch {batch_idx + 1}{of}, iteration "
                    f"{batches_that_stepped(trainer) + 1}, {done / max(now - self._epoch_start, 1e-9):.2f} it/s")

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if self.path is None:
            return
        now = time.monotonic()
        seconds = now - self._epoch_start
        self._last_line = now
        metrics = trainer.callback_metrics
        figures = ", ".join(f"{k} {_figure(float(metrics[k]))}" for k in self.FIGURES
                            if k in metrics and (self._validated or not k.startswith("val/")))
        figures = figures or "no figures logged"
        total = trainer.num_training_batches
        at = f"at iteration {batches_that_stepped(trainer)}: {figures}; {seconds:.1f} s"
        self._cut = isinstance(total, int) and self._batches < total
        if self._cut:  # Lightning ends the epoch at a max_steps / max_time stop, as if it were finished
            self._write(f"epoch {trainer.current_epoch} stopped after {self._batches} of its {total} batches {at}")
            return
        self._seconds += seconds
        self._iterations += batches_that_stepped(trainer) - self._first_batch
        left = self._time_left(trainer)
        eta = f", about {_minutes(left)} left" if left is not None and left > 0 else ""
        self._write(f"epoch {trainer.current_epoch} done ({trainer.current_epoch + 1} of {trainer.max_epochs}) "
                    f"{at}{eta}")

    def _time_left(self, trainer: Trainer) -> Optional[float]:
        """Seconds to the fit's end at this process's pace: the soonest of its stops (max_epochs,
        max_steps in iterations, max_time), or None when a callback has already stopped it."""
        total = trainer.num_training_batches
        if trainer.should_stop or self._iterations == 0 or not isinstance(total, int):
            return None
        per_iteration = self._seconds / self._iterations  # validation included
        iterations = [((trainer.max_epochs or 0) - trainer.current_epoch - 1) * total]
        stop = next((c for c in trainer.callbacks if isinstance(c, StopAfterIterations)), None)
        if stop is not None:
            iterations.append(stop.iterations - batches_that_stepped(trainer))
        left = [min(iterations) * per_iteration]
        timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
        if timer is not None and timer.time_remaining() is not None:
            left.append(timer.time_remaining())
        soonest = min(left)
        return soonest if math.isfinite(soonest) else None

    @property
    def last_epoch_cut(self) -> bool:
        """Whether the fit's last epoch was stopped part-way (max_steps / max_time)."""
        return bool(self._cut)

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        state = fit_end_state(trainer, self._cut)
        self._write(f"fit {state}: {count(batches_that_stepped(trainer), 'iteration')}, "
                    f"{count(trainer.current_epoch, 'epoch')}, "
                    f"{_minutes(time.monotonic() - self._fit_start)} in this process")

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        # The console's rule: a DataLoader worker's error by its own message, not torch's wrapper line.
        first = (worker_error_line(exception).strip().splitlines() or [""])[0][:200]
        # A validation inside the fit runs before Lightning counts the batch it follows.
        done = batches_that_stepped(trainer) + int(trainer.validating and not trainer.sanity_checking)
        self._write(f"fit stopped at iteration {done} by {type(exception).__name__}"
                    + (f": {first}" if first else ""))


def fit_end_state(trainer: Trainer, cut: bool = False) -> str:
    """What ended a fit, for train.log's and the console's last line: ``done``, ``stopped by
    trainer.max_steps=N``, ``stopped by trainer.max_time``, ``stopped before its last epoch`` or
    ``interrupted``. ``cut``: the last epoch was stopped part-way (max_epochs reached by a cut
    epoch is no finished schedule)."""
    stop = next((c for c in trainer.callbacks if isinstance(c, StopAfterIterations)), None)
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if trainer.interrupted:
        return "interrupted"
    if trainer.current_epoch >= (trainer.max_epochs or 0) and not cut:
        return "done"
    if stop is not None and stop.stopped:
        return f"stopped by trainer.max_steps={stop.iterations}"
    if timer is not None and (timer.time_remaining() or 1) <= 0:
        return "stopped by trainer.max_time"
    return "stopped before its last epoch"


def _figure(value: float) -> str:
    # Four significant digits, trailing zeros kept: 39.9953 dB reads 40.00, not a round 40.
    return f"{value:#.4g}"


def _minutes(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"
