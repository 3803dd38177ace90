"""The training run's row in TensorBoard's HPARAMS dashboard (evaluations already write theirs)."""

from __future__ import annotations

import math
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger

from pix2pix_aa.compat import batches_that_stepped

__all__ = ["DATA_HPARAMS", "TRAINING_HPARAMS", "TRAINING_METRICS", "HparamsAtFitEnd"]

#: Module options shown as hyper-parameters (``model/<name>``), beside the generator's (``generator/<name>``).
TRAINING_HPARAMS = ("gan_mode", "lambda_l1", "lambda_shift", "shift_images", "lr", "n_epochs", "n_epochs_decay",
                    "lr_policy", "init_type", "generator_weights")
#: Data options shown as hyper-parameters (``data/<name>``).
DATA_HPARAMS = ("dataset", "data_dir", "direction", "crop_size", "load_size", "preprocess", "batch_size")
#: Logged metric -> HPARAMS column: the last validation's figures.
TRAINING_METRICS = {"val/l1": "hparam/val_l1", "val/psnr": "hparam/val_psnr", "val/ssim": "hparam/val_ssim",
                    "val/stability_psnr": "hparam/val_stability_psnr", "val/tv_ratio": "hparam/val_tv_ratio"}


def _plain(value: Any) -> Any:
    """A TensorBoard hyper-parameter value: bool, int, float or str (others as their text)."""
    return value if isinstance(value, (bool, int, float, str)) else str(value)


class HparamsAtFitEnd(Callback):
    """At the end of a fit, one HPARAMS session in each TensorBoard logger's run folder: the
    generator's options, the objective and schedule, the data, and as metrics the last
    validation's figures (``hparam/val_l1``, ...) and, when a best checkpoint is kept, its figure
    (``hparam/best_val_kid`` with ``model.val_kid``; ``hparam/best_<metric>`` for any
    ``checkpoint.monitor``), each also a scalar at the last training iteration (the dashboard
    reads its metrics from scalars). Written by the same summary function evaluate.py uses
    (``torch.utils.tensorboard.summary.hparams``), so training and evaluation runs sit in one table.
    Nothing is written by a fit that fails (its metrics would not be final).
    """

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if not loggers or not trainer.is_global_zero:
            return
        from torch.utils.tensorboard.summary import hparams as hparams_summary

        from pix2pix_aa.evaluation.report import generator_hparams

        hp_module = dict(pl_module.hparams)
        generator = hp_module.get("generator")
        init_args = generator.get("init_args") if hasattr(generator, "get") else None
        hp = {**generator_hparams({"generator": dict(init_args or {})}),
              **{f"model/{k}": _plain(hp_module[k]) for k in TRAINING_HPARAMS if k in hp_module}}
        if hasattr(generator, "get") and generator.get("class_path"):
            hp["generator/class_path"] = str(generator["class_path"])
        datamodule = trainer.datamodule
        data_hp = dict(getattr(datamodule, "hparams", {}) or {})
        hp.update({f"data/{k}": _plain(data_hp[k]) for k in DATA_HPARAMS if k in data_hp})
        hp["epochs"] = int(trainer.current_epoch)
        metrics = {}
        for key, column in TRAINING_METRICS.items():
            value = trainer.callback_metrics.get(key)
            if value is not None and math.isfinite(float(value)):
                metrics[column] = float(value)
        for cb in trainer.checkpoint_callbacks:  # the best checkpoint's figure, whatever it ranks by
            if isinstance(cb, ModelCheckpoint) and cb.monitor and cb.best_model_score is not None:
                if math.isfinite(float(cb.best_model_score)):
                    metrics["hparam/best_" + cb.monitor.replace("/", "_")] = float(cb.best_model_score)
        step = batches_that_stepped(trainer)
        for logger in loggers:
            writer = logger.experiment
            for summary in hparams_summary(hp, metrics):  # the experiment, session start and end
                writer.file_writer.add_summary(summary)
            for key, value in metrics.items():
                writer.add_scalar(key, value, step)
            writer.flush()
