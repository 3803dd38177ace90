"""The training CLI (``train.py`` / ``pix2pix-aa-train``): LightningCLI with Pix2PixModule and
Pix2PixDataModule, subcommands fit / validate / test / predict.

Defaults a user of pix2pix expects: TensorBoard logging under ``runs/`` (no hp_metric),
``last.ckpt`` plus the best checkpoint by validation L1, the resolved config saved beside the
logs, seed 0, ``accelerator: auto``.

Reliability (docs/RELIABILITY.md): checkpoints are written atomically (``AtomicCheckpointIO``,
unless ``trainer.plugins`` names another CheckpointIO), read with ``weights_only=True`` (unless
``--weights_only false``), checked against the model before Lightning loads them, never
saved with a non-finite score as best, and carry the RNG state so that a resume continues the
random stream. ``--ckpt_path last`` finds the newest ``last.ckpt`` of the logger's run folders and
(fit) keeps logging into that run; a missing ``last.ckpt`` is reported, never silently ignored.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any, Optional

import torch
from jsonargparse import lazy_instance
from lightning_fabric.plugins import CheckpointIO
from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI
from pytorch_lightning.loggers import TensorBoardLogger

from pix2pix_aa.callbacks import ImageWriter
from pix2pix_aa.checkpoint_io import (AtomicCheckpointIO, CheckpointError, FiniteModelCheckpoint, LastCheckpoint,
                                      ResumeRNGState, check_module_checkpoint, check_state_matches,
                                      read_checkpoint)
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
        # FiniteModelCheckpoint: a ModelCheckpoint that never ranks a NaN score or saves NaN weights.
        parser.add_lightning_class_args(FiniteModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": "val/l1", "checkpoint.mode": "min", "checkpoint.save_last": False,
                             "checkpoint.filename": "best-{epoch:03d}", "checkpoint.auto_insert_metric_name": False})
        # last.ckpt comes from a callback of its own (LastCheckpoint: Lightning 2.6's save_last goes
        # stale once the monitored metric stops improving).
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_argument("--predict_output_dir", type=str, default="outputs/predictions",
                            help="predict: folder the generated PNGs are written to")

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        super().parse_arguments(parser, args)
        # Right after this, Lightning reads --ckpt_path to merge its hyper-parameters into the
        # config; a missing, junk or foreign file would fail there with a traceback or a usage dump.
        subcommand = self.config.get("subcommand")
        if not subcommand:
            return
        config = self.config[subcommand]
        config.trainer.strategy = gan_strategy(config.trainer.get("strategy"))
        if config.get("ckpt_path") == "last":
            resolve_last_checkpoint(config, subcommand)
        path = config.get("ckpt_path")
        if path and path not in ("best", "hpc", "registry") and "://" not in str(path):
            ckpt = read_checkpoint(path, trust=_trusted(config))
            check_module_checkpoint(path, ckpt, Pix2PixModule.__name__, "generator")
            # _check_checkpoint needs only names and shapes: keep those (meta tensors, no memory),
            # not a second read of the file nor the whole dict held through start-up.
            self._read_ckpt = (path, {"hyper_parameters": ckpt.get("hyper_parameters"),
                                      "state_dict": {k: torch.empty(v.shape, device="meta")
                                                     if isinstance(v, torch.Tensor) else v
                                                     for k, v in ckpt["state_dict"].items()}})

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as e:
            raise ValueError(explain_instantiation_error(e, self.config[self.subcommand])) from e
        check_compatible(self.model, self.datamodule)

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        plugins = self._get(self.config_init, "trainer", default={}).get("plugins")
        plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            # Atomic writes by default; a CheckpointIO given in trainer.plugins replaces this one.
            kwargs.setdefault("plugins", [*plugins, AtomicCheckpointIO()])
        trainer = super().instantiate_trainer(**kwargs)
        if not any(isinstance(c, ResumeRNGState) for c in trainer.callbacks):
            trainer.callbacks.append(ResumeRNGState())
        return trainer

    def _check_checkpoint(self) -> None:
        """Read ``--ckpt_path`` (weights only) and compare it with the model before Lightning loads it,
        so that a wrong file is one line, not a traceback from ``load_state_dict``."""
        path = self.config[self.subcommand].get("ckpt_path")
        if path is None or path in ("best", "last", "hpc", "registry") or "://" in str(path):
            return
        cached_path, ckpt = getattr(self, "_read_ckpt", None) or (None, None)
        self._read_ckpt = None
        if cached_path != path:
            ckpt = read_checkpoint(path, trust=_trusted(self.config[self.subcommand]))
        check_state_matches(path, ckpt, self.model)

    def before_fit(self) -> None:
        self._check_checkpoint()

    def before_validate(self) -> None:
        self._check_checkpoint()

    def before_test(self) -> None:
        self._check_checkpoint()

    def before_predict(self) -> None:
        self._check_checkpoint()
        output_dir = self.config[self.subcommand].predict_output_dir
        self.trainer.callbacks.append(ImageWriter(output_dir))


#: DDP strategies a two-optimiser GAN cannot use as they are (see gan_strategy).
_DDP_NAMES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def gan_strategy(strategy: Any) -> Any:
    """``ddp`` (and its spawn/fork/notebook forms) -> the same with find_unused_parameters=True.

    Each of the two backward passes leaves one player's parameters out of the graph (D's loss
    never reaches G; the G step switches D's gradients off), so DDP's reducer must be told that
    parameters may go unused, or the first G step fails. Other values pass through unchanged.
    """
    if isinstance(strategy, str) and strategy in _DDP_NAMES:
        return f"{strategy}_find_unused_parameters_true"
    return strategy


def _trusted(config) -> bool:
    """``--weights_only false`` (Lightning's own option) allows full unpickling of --ckpt_path."""
    return config.get("weights_only") is False


def _run_folders(config) -> tuple[list[Path], Optional[Path]]:
    """Folders that may hold this run's ``last.ckpt``, and the logger's ``save_dir/name`` (None
    when checkpoints do not follow the logger's ``version_N`` layout)."""
    dirpath = config.get("checkpoint", {}).get("dirpath")
    if dirpath:
        return [Path(dirpath)], None
    logger = config.trainer.get("logger")
    root_dir = Path(config.trainer.get("default_root_dir") or ".")
    if logger is False or logger is None:
        return [root_dir / "checkpoints"], None
    if logger is True:  # Lightning's default TensorBoardLogger
        save_dir, name = root_dir, "lightning_logs"
    else:
        init = logger.get("init_args") or {}
        if "save_dir" not in init:
            return [], None
        save_dir, name = Path(init.get("save_dir") or root_dir), init.get("name")
    base = save_dir / name if name else save_dir
    return sorted(base.glob("version_*/checkpoints")) + sorted(p for p in base.glob("*/checkpoints")
                                                                 if not p.parent.name.startswith("version_")), base


def resolve_last_checkpoint(config, subcommand: str) -> None:
    """Turn ``ckpt_path: last`` into the newest ``last*.ckpt`` of this run's folders.

    Lightning looks for ``last.ckpt`` only in the *new* run's folder (``version_{N+1}``), finds
    nothing, warns and trains from scratch (or predicts with random weights). Here: found -> the
    path, and for ``fit`` the logger is pinned to that run's version so checkpoints and logs
    continue in place (and ModelCheckpoint keeps its best score). Not found -> ``fit`` says so
    and starts fresh (so ``--ckpt_path last`` can be set once for every restart of a job); other
    subcommands raise ``FileNotFoundError``.
    """
    folders, base = _run_folders(config)
    found = [p for folder in folders if folder.is_dir() for p in folder.glob("last*.ckpt")
             if re.fullmatch(r"last(-v?\d+)?\.ckpt", p.name)]
    where = ", ".join(str(f) for f in folders[:3]) or "the logger's folder"
    if not found:
        if subcommand != "fit":
            raise FileNotFoundError(f"--ckpt_path last: no last.ckpt found under {where}; pass the checkpoint path")
        print(f"[pix2pix_aa] --ckpt_path last: no last.ckpt under {where} yet: training from scratch",
              file=sys.stderr, flush=True)
        config.ckpt_path = None
        return
    newest = max(found, key=lambda p: p.stat().st_mtime)
    config.ckpt_path = str(newest)
    print(f"[pix2pix_aa] --ckpt_path last: {newest}", file=sys.stderr, flush=True)
    logger = config.trainer.get("logger")
    if subcommand == "fit" and base is not None and hasattr(logger, "get") and logger.get("init_args") is not None:
        run = newest.parent.parent.name
        match = re.fullmatch(r"version_(\d+)", run)
        logger.init_args.version = int(match.group(1)) if match else run
        if "purge_step" in logger.init_args and logger.init_args.get("purge_step") is None:
            # TensorBoard hides events the killed run logged after this checkpoint.
            logger.init_args.purge_step = _logged_step(newest)


def explain_instantiation_error(error: ValueError, config) -> str:
    """One line for a class that failed to build from the config.

    jsonargparse reports a generator/discriminator whose ``__init__`` raised as "Does not
    validate against any of the Union subtypes" plus a dump of the config; the useful message
    is the original exception (its ``__cause__``), and the option is where that class_path sits.
    """
    root: BaseException = error
    while root.__cause__ is not None:
        root = root.__cause__
    if root is error:
        return str(error)
    message = " ".join(str(root).split())
    match = re.search(r"class_path='([\w.]+)'", str(error))
    if match:
        for key, value in config.items():  # flattened: "model.generator.class_path" -> value
            if key.endswith(".class_path") and value == match.group(1):
                return f"{key.removesuffix('.class_path')}.init_args: {message}"
    return message


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


def _logged_step(path: Path) -> Optional[int]:
    """The logging x-axis (batches) at which a checkpoint was written, if it can be read cheaply."""
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        return int(ckpt["loops"]["fit_loop"]["epoch_loop.state_dict"]["_batches_that_stepped"])
    except Exception:  # best effort: without it TensorBoard just shows the replayed steps twice
        return None


def main(args: Optional[list[str]] = None, run: bool = True) -> Pix2PixCLI:
    """Run the CLI. Configuration, data, checkpoint and non-finite-loss errors print one ``error:``
    line and exit with code 2; ``--debug`` (or ``PIX2PIX_AA_DEBUG=1``) shows the traceback."""
    debug = bool(os.environ.get("PIX2PIX_AA_DEBUG"))
    # Lightning 2.6 calls a torch pytree API that torch 2.14 deprecates, once per fit: not the
    # user's to act on.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    if args is None:  # LightningCLI reads sys.argv itself (it warns when given both)
        if "--debug" in sys.argv[1:]:
            sys.argv.remove("--debug")
            debug = True
    elif "--debug" in args:
        args = [a for a in args if a != "--debug"]
        debug = True
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
    except (ValueError, FileNotFoundError, FloatingPointError, CheckpointError) as e:
        if debug:
            raise
        print(f"error: {e}\n(pass --debug to see the traceback)", file=sys.stderr)
        raise SystemExit(2) from e


def console_main() -> int:
    """Entry point of the ``pix2pix-aa-train`` console script (exit code 0 on success)."""
    main()
    return 0


if __name__ == "__main__":
    main()
