"""The training CLI (``train.py`` / ``pix2pix-aa-train``): LightningCLI with Pix2PixModule and
Pix2PixDataModule, subcommands fit / validate / test / predict.

Defaults a user of pix2pix expects: TensorBoard logging under ``runs/`` (no hp_metric),
``last.ckpt`` plus the best checkpoint by validation L1, the resolved config saved beside the
logs, seed 0, ``accelerator: auto``.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from jsonargparse import lazy_instance
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger

from pix2pix_aa.callbacks import ImageWriter
from pix2pix_aa.data import Pix2PixDataModule
from pix2pix_aa.module import Pix2PixModule

TRAINER_DEFAULTS = {
    "accelerator": "auto",
    "logger": lazy_instance(TensorBoardLogger, save_dir="runs", name="pix2pix", default_hp_metric=False),
}


class Pix2PixCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Always checkpoint: last.ckpt (for resuming) and the best by validation L1. Configurable
        # in YAML under `checkpoint:`.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val/l1", "checkpoint.mode": "min", "checkpoint.save_last": True,
                             "checkpoint.filename": "best-{epoch:03d}", "checkpoint.auto_insert_metric_name": False})
        parser.add_argument("--predict_output_dir", type=str, default="outputs/predictions",
                            help="predict: folder the generated PNGs are written to")

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        check_compatible(self.model, self.datamodule)

    def before_predict(self) -> None:
        output_dir = self.config[self.subcommand].predict_output_dir
        self.trainer.callbacks.append(ImageWriter(output_dir))


def check_compatible(model: Pix2PixModule, datamodule: Pix2PixDataModule) -> None:
    """Model/data options that only conflict together, checked before any data is read."""
    multiple = getattr(model.generator, "size_multiple", None)
    crop = datamodule.crop_size
    if multiple and crop % multiple and not getattr(model.generator, "pad_input", False):
        deepest = max(1, (crop & -crop).bit_length() - 1)  # largest k with crop % 2**k == 0
        raise ValueError(
            f"data.crop_size={crop} is not a multiple of 2**num_downs = {multiple} "
            f"(model.generator.init_args.num_downs={model.generator.num_downs}); use a crop_size that is a multiple "
            f"of {multiple} (e.g. {max(multiple, crop // multiple * multiple)}), num_downs <= {deepest}, or "
            "model.generator.init_args.pad_input=true")


def main(args: Optional[list[str]] = None, run: bool = True) -> Pix2PixCLI:
    """Run the CLI. Configuration and data errors print one ``error:`` line and exit with code 2;
    set ``PIX2PIX_AA_DEBUG=1`` for the traceback."""
    try:
        return Pix2PixCLI(
            Pix2PixModule,
            Pix2PixDataModule,
            seed_everything_default=0,
            trainer_defaults=TRAINER_DEFAULTS,
            save_config_kwargs={"overwrite": True},
            args=args,
            run=run,
        )
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
        if os.environ.get("PIX2PIX_AA_DEBUG"):
            raise
        print(f"error: {e}\n(set PIX2PIX_AA_DEBUG=1 to see the traceback)", file=sys.stderr)
        raise SystemExit(2) from e


def console_main() -> int:
    """Entry point of the ``pix2pix-aa-train`` console script (exit code 0 on success)."""
    main()
    return 0


if __name__ == "__main__":
    main()
