"""The training CLI (``train.py`` / ``pix2pix-aa-train``): LightningCLI with Pix2PixModule and
Pix2PixDataModule, subcommands fit / validate / test / predict.

This module only wires the parser and Lightning together; each rule lives where it belongs:
option checks in :mod:`pix2pix_aa.options`, resuming (``--ckpt_path last``, which options win
over the checkpoint's) in :mod:`pix2pix_aa.resume`, checkpoint reading and writing in
:mod:`pix2pix_aa.checkpoints`, callbacks in :mod:`pix2pix_aa.callbacks`, uses of Lightning internals
in :mod:`pix2pix_aa.compat`.

Defaults a user of pix2pix expects: TensorBoard logging under ``runs/`` (no hp_metric),
``last.ckpt`` (plus the best checkpoint by validation KID with ``model.val_kid``), a reusable
``config.yaml`` saved beside the logs of ``fit`` (never with run-specific keys, never by validate/test/predict), seed 0,
``accelerator: auto``, ``trainer.max_epochs`` derived from the LR schedule, ``trainer.max_steps``
counted in training iterations (batches). Errors are one ``error:`` line (exit code 2).
"""

from __future__ import annotations

import difflib
import logging
import math
import os
import re
import shlex
import shutil
import sys
import textwrap
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Optional

import torch
from jsonargparse import DefaultHelpFormatter, lazy_instance
from lightning_fabric.plugins import CheckpointIO
from lightning_fabric.utilities.exceptions import MisconfigurationException
from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import ProgressBar
from pytorch_lightning.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from pytorch_lightning.loggers import TensorBoardLogger
from pytorch_lightning.utilities.exceptions import SIGTERMException

from pix2pix_aa.callbacks import (
    FiniteModelCheckpoint,
    HparamsAtFitEnd,
    ImageWriter,
    LastCheckpoint,
    MaxTimeNotice,
    QuietProgressBar,
    ResumeRNGState,
    StopAfterIterations,
    TrainingLog,
    fit_end_state,
)
from pix2pix_aa.checkpoints import (
    AtomicCheckpointIO,
    CheckpointError,
    check_module_checkpoint,
    check_state_matches,
    read_checkpoint,
)
from pix2pix_aa.compat import (
    batches_in_checkpoint,
    batches_that_stepped,
    cli_trainer_init,
    ddp_allow_unused_parameters,
    jsonargparse_debug_active,
    open_progress_bars,
    parser_actions,
    subcommand_parsers,
)
from pix2pix_aa.console import count, notice, output_path_problem, worker_error_line
from pix2pix_aa.data import Pix2PixDataModule
from pix2pix_aa.data.writer import GenerationStopped
from pix2pix_aa.locking import LockHeld, exclusive, held
from pix2pix_aa.module import (
    HIGHER_IS_BETTER,
    MONITORABLE,
    NO_BETTER_DIRECTION,
    TRAINER_OPTIONS_KEY,
    VAL_METRICS,
    Pix2PixModule,
    load_weights,
)
from pix2pix_aa.options import (
    argument_defaults,
    callback_monitors,
    check_model_and_data,
    check_plateau_validation,
    check_schedule,
    check_seed,
    check_shift_term,
    refuse_unsupported,
    suggest_option,
    validation_off,
)
from pix2pix_aa.resume import (
    FIT_LOCK,
    PREDICT_DATA_KEYS,
    check_resume_length,
    explicit_keys,
    merge_checkpoint_options,
    refuse_new_seeds,
    resolve_best_checkpoint,
    resolve_last_checkpoint,
    run_folders,
    set_purge_step,
)

TRAINER_DEFAULTS = {
    "accelerator": "auto",
    "logger": lazy_instance(TensorBoardLogger, save_dir="runs", name="pix2pix", default_hp_metric=False),
}

#: Values of --ckpt_path that are Lightning's keywords, not files.
_CKPT_KEYWORDS = ("best", "last", "hpc", "registry")


class _ErrorText:
    """The wording of jsonargparse's (and argparse's) error messages that the one-line errors read.

    jsonargparse raises no structured error: its exceptions carry English text only (no field for
    the option, the class or the value), so the option, the class and the value given are read out
    of that text. Every pattern that depends on that wording is here, so that an upgrade which
    rewords a message is one place to edit. A pattern that stops matching loses only the hint:
    the error line falls back to jsonargparse's own first lines (tests/test_cli_options.py checks
    each message).
    """

    #: argparse's "unrecognized arguments: --x" (the capital U varies between versions).
    UNRECOGNISED = "nrecognized arguments"
    FLAG = re.compile(r"--[\w.\-]+")
    #: An unknown key in a YAML config: "Group 'model' does not accept option 'lambda_L1'".
    NOT_ACCEPTED = re.compile(r"(Group|Subcommand) '([\w.]+)' does not accept option '([\w.]+)'")
    #: A network option: "Parser key "model.generator": ... Problem with given class_path 'x':" and
    #: the class's own complaint on the indented lines after it.
    PARSER_KEY = re.compile(r'Parser key "([\w.]+)"')
    CLASS_PROBLEM = re.compile(r"Problem with given class_path '([\w.]+)':\s*\n((?:\s{6,}.+\n?)+)")
    OPTION_NOT_ACCEPTED = re.compile(r"Option '(\w+)' is not accepted")
    #: A plain Union option (``Optional[dict]``): its key, the subtypes listed and the value given.
    UNION_KEY = re.compile(r'Parser key "([\w.]+)":\s*Does not validate against any of the Union subtypes')
    SUBTYPES = re.compile(r"Subtypes: \[(.*)\]")
    GIVEN = re.compile(r"Given value: (.*)")
    CLASS_PATH_MENTIONED = "class_path"
    SUBTYPE_SEPARATOR = re.compile(r",\s*(?![^\[]*\])")  # commas outside brackets
    PYTHON_CLASS = re.compile(r"<class '(\w+)'>")
    #: A class whose ``__init__`` raised while instantiating: "... class_path='pix2pix_aa...'".
    CLASS_PATH_VALUE = re.compile(r"class_path='([\w.]+)'")


class ShortHelpFormatter(DefaultHelpFormatter):
    """jsonargparse's help, with each "known subclasses" list cut to this project's classes.

    A network option typed ``nn.Module`` otherwise lists every ``torch.nn`` subclass: about 2,200
    of the 3,200 lines of ``fit --help``.
    """

    def _get_help_string(self, action: Any) -> str:
        text = super()._get_help_string(action)
        head, sep, tail = text.partition(", known subclasses: ")
        if not sep:
            return text
        names = [n.strip() for n in tail.split(",") if n.strip()]
        ours = [n for n in names if n.startswith("pix2pix_aa.")]
        shown = ours or names[:3]
        more = len(names) - len(shown)
        return head + sep + ", ".join(shown) + (f" (and {more} more)" if more else "")


#: The options a subcommand's short ``--help`` lists, in this order, with one line each (the
#: docstrings jsonargparse shows run to 20 lines an option; ``--help_all`` gives them all).
COMMON_OPTIONS: dict[str, str] = {
    "config": "YAML config (configs/*.yaml, or a run's config.yaml); flags after it override it",
    "print_config": "print the complete config after all flags, and exit",
    "ckpt_path": "checkpoint: fit resumes it (`last`: this run's newest); validate/test/predict use its weights "
                 "(a reference latest_net_G.pth too)",
    "seed_everything": "seed of the weights (and of crops and flips with data.num_workers 0); --data.seed seeds "
                       "the data order, and crops and flips in workers",
    "norm": "batch | instance | none for both networks",
    "untrained": "validate/test/predict with the random initialisation (refused without it)",
    "predict_output_dir": "predict: folder of the generated PNGs",
    "trainer.accelerator": "cpu | gpu | auto",
    "trainer.devices": "number of devices (or a list of ids)",
    "trainer.precision": "32-true | bf16-mixed | 16-mixed (bf16-mixed: CPUs with AMX, recent GPUs; 16-mixed: GPUs)",
    "trainer.max_steps": "stop after N training iterations (batches)",
    "trainer.limit_val_batches": "0 turns validation off",
    "trainer.check_val_every_n_epoch": "validate every N epochs",
    "model.generator": "generator class (UNetGenerator, ResNetGenerator); its options: "
                       "--model.generator.init_args.antialias bin5 ...",
    "model.lambda_l1": "weight of the L1 term (pix2pix: 100)",
    "model.lambda_shift": "weight of the shift-equivariance term (0 = off)",
    "model.lr": "Adam learning rate of both players",
    "model.n_epochs": "epochs at the base LR (trainer.max_epochs = n_epochs + n_epochs_decay)",
    "model.n_epochs_decay": "epochs of LR decay after them",
    "model.lr_policy": "linear | step | plateau | cosine",
    "model.generator_weights": "initial generator weights (.ckpt, state_dict or reference .pth); "
                               "validate/test/predict without --ckpt_path use them",
    "model.grad_clip_norm": "clip each player's gradient norm",
    "model.channels_last": "both networks in channels-last layout (faster with bf16 on CPUs with AMX)",
    "data.data_dir": "data folder (train/ val/ test/)",
    "data.dataset": "facades | photos | colorize (generated if missing) | aligned (A|B files) | paired (A/ and B/)",
    "data.direction": "AtoB | BtoA",
    "data.load_size": "training resize before the random crop",
    "data.crop_size": "training crop; val/test resize to it",
    "data.preprocess": "resize_and_crop | crop | scale_width | scale_width_and_crop | none",
    "data.batch_size": "images per batch (pix2pix: 1)",
    "data.num_workers": "DataLoader processes",
    "data.predict_dir": "predict: a folder of images or one image (default: the test split)",
    "data.predict_resize": "predict: resize inputs to crop_size (false: each at its own size)",
    "data.tile": "predict: generate in tiles of N px (large images)",
}

#: ``train.py <subcommand> --help_all``: jsonargparse's full help (every option of every class).
FULL_HELP_FLAG = "--help_all"


class Pix2PixArgumentParser(LightningArgumentParser):
    """LightningArgumentParser whose errors are one line (plus a hint), not a usage dump, and
    whose ``--help`` is short enough to read: a subcommand's lists :data:`COMMON_OPTIONS`
    (``--help_all`` gives every option, with :class:`ShortHelpFormatter`'s short subclass lists).
    jsonargparse has no help levels of its own, hence the selection here.

    An unrecognised flag gets the reference pix2pix's name for it (``--netG`` -> ours) or the
    closest option name (difflib). Abbreviated flags are not expanded: argparse would take
    ``--trainer.max_step`` for ``--trainer.max_steps`` silently, and a typo must stop at start-up.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", ShortHelpFormatter)
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    #: Set by :func:`main` for ``--help_all``.
    full_help = False

    def format_help(self, formatter: Any = None) -> str:
        actions = parser_actions(self)
        by_dest = {a.dest: a for a in actions}
        if self.full_help or "model.lr" not in by_dest or formatter is not None:  # the main parser: its own
            return super().format_help() if formatter is None else super().format_help(formatter)
        prog = self.prog.replace(" [options]", "")
        rows = []
        for dest, text in COMMON_OPTIONS.items():
            action = by_dest.get(dest)
            if action is None:
                continue
            flag = next(o for o in action.option_strings if o.startswith("--") and not o.endswith("+"))
            default = action.default
            shown = "" if default is None or isinstance(default, str) and default.startswith("==SUPPRESS") or dest in (
                "config", "print_config", "model.generator") else f" (default: {default})"
            rows.append((flag, text + shown))
        width = max(len(flag) for flag, _ in rows) + 4
        total = sum(1 for a in actions if a.option_strings and not a.dest.endswith(".help"))
        lines = [textwrap.fill(text, 100, initial_indent=f"  {flag}".ljust(width), subsequent_indent=" " * width)
                 for flag, text in rows]
        return "\n".join([
            f"usage: {prog} [-c CONFIG] [--ckpt_path CKPT] [--GROUP.OPTION VALUE ...]", "", "common options:",
            *lines, "",
            f"{total} options in all (every Trainer, model, data and checkpoint option, with their documentation): "
            f"{prog} {FULL_HELP_FLAG}",
            f"A network's options: {prog} --model.generator.help UNetGenerator (or ResNetGenerator; "
            "--model.discriminator.help PatchGANDiscriminator)",
            "Run name: --trainer.logger.init_args.name NAME. Guide: docs/USAGE.md (Train), docs/RELIABILITY.md", ""])

    def error(self, message: str, ex: Optional[Exception] = None) -> NoReturn:
        if not self.exit_on_error or jsonargparse_debug_active():
            super().error(message, ex)
        parser = getattr(ex, "subcommand_parser", None) or self
        lines = [ln.strip() for ln in str(message).splitlines() if ln.strip()]
        text = " ".join(lines[:3])[:400]
        hints = []
        nested = _nested_option_problem(str(message)) or _union_value_problem(str(message))
        if nested is not None:
            text, hint = nested
            hints += [hint] if hint else []
        # A config file's error reaches the main parser: take the subcommands' options too.
        parsers = [parser, *subcommand_parsers(parser)]
        known = list(dict.fromkeys(o.lstrip("-") for p in parsers for a in parser_actions(p) for o in a.option_strings
                                   if o.startswith("--")))
        # Unknown flags on the command line; unknown keys in a YAML config ("Group 'model' does
        # not accept option 'lambda_L1'"): the same hint for both.
        flags = _ErrorText.FLAG.findall(text) if _ErrorText.UNRECOGNISED in text else [
            f"--{o}" if kind == "Subcommand" else f"--{g}.{o}" for kind, g, o in _ErrorText.NOT_ACCEPTED.findall(text)]
        for flag in flags:
            hint = suggest_option(flag, known)
            if hint:
                hints.append(hint)
        if _ErrorText.UNRECOGNISED in text:  # `train.py fit configs/x.yaml`: a config file given without --config
            hints += [f"did you mean --config {t}?" for t in text.split() if t.endswith((".yaml", ".yml"))
                      and not t.startswith("-")]
        hints = list(dict.fromkeys(hints))  # --optimizer X --optimizer.lr Y: one hint, not two
        sys.stderr.write(f"error: {text}\n" + "".join(f"  {h}\n" for h in hints)
                         + f"(run `{parser.prog.replace(' [options]', '')} --help` for the options)\n")
        raise SystemExit(2)


def _nested_option_problem(message: str) -> Optional[tuple[str, Optional[str]]]:
    """(one line, hint) for jsonargparse's "Does not validate against any of the Union subtypes"
    about a network option: the class's own complaint (``Option 'nfg' is not accepted``, a bad
    value) instead of a list of subtypes, and the closest parameter name for a typo."""
    key = _ErrorText.PARSER_KEY.search(message)
    problem = _ErrorText.CLASS_PROBLEM.search(message)
    if not key or not problem:
        return None
    option, class_path, detail = key.group(1), problem.group(1), " ".join(problem.group(2).split())
    hint = None
    bad = _ErrorText.OPTION_NOT_ACCEPTED.search(detail)
    if bad:
        import difflib
        import importlib
        import inspect

        module_name, _, cls_name = class_path.rpartition(".")
        try:
            params = list(inspect.signature(getattr(importlib.import_module(module_name), cls_name)).parameters)
        except (ImportError, AttributeError, ValueError):
            params = []
        close = difflib.get_close_matches(bad.group(1), params, n=1, cutoff=0.5)
        hint = f"did you mean --{option}.init_args.{close[0]}?" if close else (
            f"{cls_name} takes: {', '.join(params)}" if params else None)
    return f"{option} ({class_path}): {detail}"[:400], hint


#: Examples for the mapping options' errors.
MAPPING_EXAMPLES = {"data.generate_counts": "{train: 400, val: 100, test: 106}"}


def _union_value_problem(message: str) -> Optional[tuple[str, Optional[str]]]:
    """(one line, hint) for jsonargparse's Union error about a plain option (an ``Optional[dict]``
    such as ``data.generate_counts``): the types it takes and the value given, instead of
    ``<class 'NoneType'>`` lists; a mapping gets its YAML form as the hint."""
    key = _ErrorText.UNION_KEY.search(message)
    subtypes = _ErrorText.SUBTYPES.search(message)
    given = _ErrorText.GIVEN.search(message)
    if not key or not subtypes or _ErrorText.CLASS_PATH_MENTIONED in message:
        return None
    names = [t.strip() for t in _ErrorText.SUBTYPE_SEPARATOR.split(subtypes.group(1))]
    names = ["null" if "NoneType" in t else _ErrorText.PYTHON_CLASS.sub(r"\1", t) for t in names]
    text = f"--{key.group(1)} expects {' or '.join(names)}" + (f", got {given.group(1).strip()!r}" if given else "")
    hint = None
    if any(t.startswith("dict") for t in names):
        example = MAPPING_EXAMPLES.get(key.group(1), "{key: value, key2: value2}")
        hint = f"give a mapping in YAML form, e.g. --{key.group(1)} '{example}'"
    return text, hint


class ReusableConfig(SaveConfigCallback):
    """Saves ``config.yaml`` for ``fit`` only, without the keys that tie it to one run.

    ``ckpt_path``, the logger's ``version`` and ``purge_step`` are set when resuming; kept in
    the file, ``fit --config that.yaml --model... --trainer.logger.init_args.name new`` would
    resume the old run and its checkpoint instead of starting the new one, and a later resume
    from it would purge the steps logged since. validate/test/predict never write into a
    training run's folder. Without a logger, an existing ``config.yaml`` in the run's folder
    (``trainer.default_root_dir``) is never overwritten.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        if trainer.logger is None and not self.already_saved:
            # Without a logger the run's folder is trainer.default_root_dir, the working directory
            # unless given: a folder of the user's own files, where overwriting an existing
            # config.yaml (their --config, say) would destroy it.
            path = Path(trainer.log_dir) / self.config_filename
            if path.exists():
                if trainer.is_global_zero:
                    notice(f"config.yaml not saved: {path} exists and is kept (without a logger this run's folder "
                           "is trainer.default_root_dir); give --trainer.default_root_dir a folder of its own to "
                           "save it")
                self.already_saved = True
                return
        config = self.config.clone()
        config.ckpt_path = None
        # --norm is already written into both networks' init_args; kept, it would override a later
        # per-network flag given with this file.
        if "norm" in config:
            config.norm = None
        # max_epochs is derived from the schedule: saved as null, a later --model.n_epochs_decay
        # given with this file changes the run's length instead of clashing with a stale number.
        trainer_cfg, model_cfg = config.get("trainer"), config.get("model")
        if trainer_cfg is not None and model_cfg is not None and trainer_cfg.get("max_epochs") == (
                model_cfg.get("n_epochs", 0) + model_cfg.get("n_epochs_decay", 0)):
            trainer_cfg.max_epochs = None
        logger = config.get("trainer", {}).get("logger")
        if hasattr(logger, "get") and logger.get("init_args") is not None:
            for key in ("version", "purge_step"):
                if key in logger.init_args:
                    logger.init_args[key] = None
        self.config = config
        super().setup(trainer, pl_module, stage)


def best_checkpoint_default(config: Any) -> Optional[str]:
    """Which best checkpoint a fit keeps, unless ``checkpoint.monitor`` names a metric.

    Not validation L1: L1 is minimised by the conditional median of the targets, a smoothed image,
    and pix2pix's GAN term trades L1 for sharpness as training goes on, so ranking by val/l1 keeps
    early, blurry generators (in ``make demo`` the recommended design's best by val/l1 was its first
    validation, epoch 1 of 12; the reference pix2pix keeps the latest weights). With
    ``model.val_kid`` on and the Inception weights reachable: the best by validation KID (lower is
    closer to the targets' distribution, blur included). Otherwise ``last.ckpt`` only, said in one
    line. ``checkpoint.save_top_k`` 1 without a monitor (a copy of last.ckpt named best) becomes 0.
    Returns why validation KID is skipped (``model.val_kid`` on, no weights; said here), or None.
    """
    from pix2pix_aa.metrics.pretrained import resolve_weights

    ckpt, val_kid = config.checkpoint, bool(config.model.get("val_kid"))
    status = resolve_weights("fid", announce=notice, has_option=False) if val_kid else None
    skipped = status.skipped if status else None
    if skipped:  # said here, before any epoch is trained; the module then logs no val/kid
        notice(f"model.val_kid: {skipped}; validation goes on without val/kid")
    elif status:  # the file behind every val/kid (also recorded in each checkpoint)
        notice(f"model.val_kid: {status.describe()}")
    kid_logged = val_kid and not skipped
    if ckpt.get("monitor") is None and kid_logged:
        ckpt.monitor, ckpt.mode = "val/kid", "min"
    elif ckpt.get("monitor") == "val/kid" and not kid_logged:  # e.g. a saved config.yaml reused offline
        ckpt.monitor, ckpt.save_top_k = None, 0
        notice("checkpoint.monitor val/kid: this run logs no val/kid (" + (
            "no FID Inception weights" if val_kid else "model.val_kid is off") + "): last.ckpt only")
        return skipped
    if ckpt.get("monitor") is None and ckpt.get("save_top_k") == 1:
        ckpt.save_top_k = 0
        # With val_kid on and no weights (said above), advising --model.val_kid true read as if the flag was ignored.
        kid = ("model.val_kid would keep the best by validation KID once the FID weights are reachable" if skipped
               else "--model.val_kid true keeps the best by validation KID")
        notice("checkpoints: last.ckpt only; no best-*.ckpt by validation L1, which ranks early, blurry "
               f"generators first ({kid}; --checkpoint.monitor val/l1 the L1 ranking)")
    return skipped


@dataclass
class StartupState:
    """What :meth:`Pix2PixCLI.parse_arguments` decided that later hooks act on.

    Attributes:
        resumed_batches: training iterations (batches) the ``--ckpt_path`` checkpoint had done;
            a fit that fails before doing more removes its new, empty run folder.
        checkpoint: ``(path, names and shapes)`` of the checkpoint read at start-up (its
            ``hyper_parameters`` and a ``state_dict`` of meta tensors, no memory), compared with
            the model before Lightning loads it; used once, then None.
        reference_generator: the generator built from a reference ``latest_net_G.pth`` given as
            ``--ckpt_path``; its weights go into the model once it is built.
        reference_path: that file (validate / test log beside it).
        generator_weights: the ``model.generator_weights`` file validate / test / predict load
            once the model is built (None: the checkpoint's weights, or ``--untrained``);
            ``generator_weights_read`` that file as the start-up check read it, loaded from there.
        finished: why ``fit --ckpt_path`` has nothing left to train (the fit is then skipped:
            no run folder or config.yaml is touched), or None.
        kid_skipped: why a fit's validation KID is skipped (said at start-up), or None.
        resumed_world_size: the processes the resumed checkpoint's fit trained in (None: not a
            resumed fit, or a checkpoint from before it was recorded).
    """

    resumed_batches: int = 0
    resumed_world_size: Optional[int] = None
    finished: Optional[str] = None
    kid_skipped: Optional[str] = None
    checkpoint: Optional[tuple[str, dict]] = None
    reference_generator: Optional[torch.nn.Module] = None
    reference_path: Optional[str] = None
    generator_weights: Optional[str] = None
    generator_weights_read: Optional[dict] = None


def _command_line(args: Any) -> list[str]:
    """The command-line words LightningCLI parsed: ``sys.argv`` without the program, or the
    ``args`` list given to :func:`main` (a dict or namespace of options has none)."""
    return sys.argv[1:] if args is None else list(args) if isinstance(args, (list, tuple)) else []


def _apply_norm(config, explicit: set[str]) -> set[str]:
    """``--norm X``: the norm of both networks. Returns the keys it set (to count as given on the
    command line), or an empty set without ``--norm``.

    Raises:
        ValueError: a network's own norm flag on the command line that disagrees with it.
    """
    if config.get("norm") is None:
        return set()
    for net in ("generator", "discriminator"):
        flag = f"model.{net}.norm"
        if flag in explicit and config.model[net].init_args.get("norm") != config.norm:
            raise ValueError(f"--norm {config.norm} and --{flag.replace('.norm', '.init_args.norm')} "
                             f"{config.model[net].init_args.get('norm')} disagree; pass one of them")
        config.model[net].init_args.norm = config.norm
    return {"model.generator.norm", "model.discriminator.norm"}


PREDICT_OUTPUT_DIR = "outputs/predictions"

#: Options that only predict reads: given to another subcommand they would be accepted, do
#: nothing, and (data.*) be saved into the run's checkpoint and config.yaml.
PREDICT_ONLY = (*(f"data.{key}" for key in PREDICT_DATA_KEYS), "predict_output_dir")


#: Module options only a fit uses (losses, optimisers, schedule, the shift term, the step's
#: safeguards): validate / test / predict score the generator's outputs with none of them.
FIT_ONLY = tuple(f"model.{key}" for key in (
    "gan_mode", "lambda_l1", "lambda_shift", "shift_images", "shift_every", "max_shift", "lr", "beta1", "beta2",
    "fused_adam", "channels_last", "n_epochs", "n_epochs_decay", "lr_policy", "lr_decay_iters",
    "discriminator_weights", "grad_clip_norm", "on_nonfinite", "log_images_every_n_batches"))


def _refuse_fit_options(subcommand: str, explicit: set[str]) -> None:
    """Fit-only options on the command line of validate / test / predict: they were accepted and
    reported as "changed from the checkpoint", as if they had changed the scores.

    Raises:
        ValueError: naming them.
    """
    given = [k for k in FIT_ONLY if k in explicit] if subcommand != "fit" else []
    if given:
        it = "it" if len(given) == 1 else "them"
        does = "writes the generator's outputs" if subcommand == "predict" else "scores the generator's outputs"
        raise ValueError(f"--{', --'.join(given)}: used by fit only ({subcommand} {does} without {it}); drop {it}")


def _refuse_predict_options(config, subcommand: str, explicit: set[str]) -> None:
    """Predict-only options for fit / validate / test: refused on the command line; from a config
    file (one YAML may serve every subcommand) named in one line as not used.

    Raises:
        ValueError: predict-only options on the command line of fit / validate / test.
    """
    if subcommand == "predict":
        return
    given = [k for k in PREDICT_ONLY if k in explicit]
    if given:
        raise ValueError(f"--{', --'.join(given)}: predict only ({subcommand} would ignore "
                         f"{'it' if len(given) == 1 else 'them'}); drop {'it' if len(given) == 1 else 'them'}, or "
                         "run train.py predict")
    defaults = argument_defaults(Pix2PixDataModule)
    set_here = [f"data.{k}={config.data.get(k)!r}" for k in PREDICT_DATA_KEYS if config.data.get(k) != defaults.get(k)]
    if config.get("predict_output_dir") not in (None, PREDICT_OUTPUT_DIR):
        set_here.append(f"predict_output_dir={config.get('predict_output_dir')!r}")
    if set_here:
        notice(f"{', '.join(set_here)}: predict only, not used by {subcommand} (nor taken from its checkpoint by a "
               "later predict)")


def _logger_init_args(config) -> Any:
    """The configured logger's ``init_args`` (a namespace), or None (``logger: false`` / unset)."""
    logger = config.trainer.get("logger")
    init = logger.get("init_args") if hasattr(logger, "get") else None
    return init if hasattr(init, "get") else None


def _runs_written_by(ckpt: dict) -> set[str]:
    """The run names (``<name>/<version>/checkpoints``) the checkpoint's callbacks wrote into."""
    return {Path(str(state["dirpath"])).parent.parent.name for key, state in (ckpt.get("callbacks") or {}).items()
            if "Checkpoint" in str(key) and isinstance(state, dict) and state.get("dirpath")}


def _refuse_resuming_another_run(config, path: str, ckpt: dict, explicit: set[str]) -> None:
    """``fit --config A.yaml --ckpt_path runs/B/version_0/checkpoints/last.ckpt`` went on training
    B's networks (kept from the checkpoint) in a run named A, where every later ``--ckpt_path last``
    of A then found them. A resume goes on in a run of the checkpoint's name, unless a name is given.
    The checkpoint's run is read from the folder its checkpoint callbacks wrote into (recorded in
    it), so a copy or another spelling of the path is the same run.

    Raises:
        ValueError: the checkpoint was written into another run's ``<name>/<version>/checkpoints``
            folder and no logger name was given on the command line.
    """
    if "trainer.logger.name" in explicit:
        return
    written = _runs_written_by(ckpt)
    init_args = _logger_init_args(config)
    name = init_args.get("name") if init_args is not None else None
    if name is None or len(written) != 1 or name in written:
        return
    theirs = written.pop()
    raise ValueError(f"--ckpt_path {path} is a checkpoint of run {theirs!r}, and this fit would go on training its "
                     f"networks in a run named {name!r} (from the config): resume it with its own config (its run "
                     "folder's config.yaml), or name the new run with --trainer.logger.init_args.name")


def _refuse_overwriting_a_run(config) -> None:
    """A new fit whose ``last.ckpt`` has no ``version_N`` folder of its own (``trainer.logger
    false``, or ``last_checkpoint.dirpath``) would write over an earlier run's ``last.ckpt`` there,
    with only Lightning's "exists and is not empty" warning.

    Raises:
        ValueError: naming the file and the two ways on.
    """
    folders, base = run_folders(config)
    existing = [f / "last.ckpt" for f in folders if (f / "last.ckpt").is_file()] if base is None else []
    if existing:
        raise ValueError(f"{existing[0]} exists (an earlier run without version folders: trainer.logger false or "
                         "last_checkpoint.dirpath) and this fit would overwrite it; resume it with --ckpt_path last, "
                         "or give --trainer.default_root_dir (or --last_checkpoint.dirpath) a folder of its own")
    # A version named in the logger's options is that folder, trained or not: Lightning writes into it
    # (a second event file in one TensorBoard run, the trained last.ckpt replaced).
    init = _logger_init_args(config)
    version = init.get("version") if base is not None and init is not None else None
    if version is not None:
        folder = base / (version if isinstance(version, str) else f"version_{version}")
        if (folder / "checkpoints" / "last.ckpt").is_file():
            raise ValueError(f"trainer.logger.init_args.version {version}: {folder} holds a trained run "
                             f"({folder / 'checkpoints' / 'last.ckpt'}) that this fit would overwrite; resume it with "
                             "--ckpt_path last, or leave the version out for a new version_N")


def _apply_root_dir(config, explicit: set[str]) -> set[str]:
    """``trainer.default_root_dir DIR`` (a flag or a config file's) moves the run: the logger's
    ``save_dir`` becomes DIR, unless ``--trainer.logger.init_args.save_dir`` is on the command line.

    Lightning puts a logged run's events, config.yaml and checkpoints under the logger's folder and
    uses default_root_dir only without a logger; every config here (and train.py's default) names
    a logger with ``save_dir: runs``, so the flag would otherwise be accepted and change nothing.
    Returns the keys it set (to count as given on the command line), or an empty set.

    Raises:
        ValueError: ``--trainer.logger.init_args.save_dir`` on the command line too, and different.
    """
    root = config.trainer.get("default_root_dir")
    init = _logger_init_args(config)
    if root is None or init is None or "save_dir" not in init:
        return set()
    if init.save_dir is not None and Path(init.save_dir).resolve() == Path(root).resolve():
        return set()
    if "trainer.logger.save_dir" in explicit:
        if "trainer.default_root_dir" not in explicit:
            return set()  # the command line's save_dir over a config file's default_root_dir
        raise ValueError(f"--trainer.default_root_dir {root} and --trainer.logger.init_args.save_dir "
                         f"{init.save_dir} disagree: the run's logs and checkpoints go under the logger's "
                         "save_dir; pass one of them")
    notice(f"trainer.default_root_dir {root}: the logger's save_dir (was {init.save_dir}), so this run's "
           "logs, config.yaml and checkpoints go under it")
    init.save_dir = str(root)
    return {"trainer.logger.save_dir"}


def _names_and_shapes(ckpt: dict) -> dict:
    """The part of a checkpoint that the start-up comparison with the model needs: its
    ``hyper_parameters`` and its tensors as meta tensors (names and shapes, no memory), rather
    than a second read of the file or the whole dict held through start-up."""
    return {"hyper_parameters": ckpt.get("hyper_parameters"),
            "state_dict": {k: torch.empty(v.shape, device="meta") if isinstance(v, torch.Tensor) else v
                           for k, v in ckpt["state_dict"].items()}}


def _refuse_initial_weights_on_resume(config, explicit: set[str]) -> None:
    """A resumed fit goes on from its checkpoint's weights: ``--model.generator_weights`` (or the
    discriminator's) given beside ``--ckpt_path`` was printed as changed, never loaded, and then
    recorded in the run's config.yaml and checkpoints as where the weights came from."""
    given = [key for key in ("model.generator_weights", "model.discriminator_weights")
             if key in explicit and config.model.get(key.split(".", 1)[1])]
    if given:
        raise ValueError(f"--ckpt_path and --{' and --'.join(given)} both give weights: a resumed fit goes on from the "
                         f"checkpoint's, so {'these' if len(given) > 1 else 'this'} would be ignored; drop --ckpt_path "
                         f"to start a new run from {'them' if len(given) > 1 else 'it'}, or drop "
                         f"--{' and --'.join(given)} to resume")


def _check_fit_options(config) -> Optional[str]:
    """fit's own checks (schedule, plateau validation, no ``--untrained``), the best checkpoint's
    default (:func:`best_checkpoint_default`) and its notices: validation off (no best
    checkpoint), ``trainer.max_steps`` counted in iterations. Returns why validation KID is
    skipped (``model.val_kid`` on, no weights), said already, or None.

    Raises:
        ValueError: ``--untrained``, ``trainer.limit_train_batches=0``, or a schedule / plateau
        option that cannot run.
    """
    if config.get("untrained"):
        raise ValueError("--untrained is for validate / test / predict (a generator without trained "
                         "weights); fit starts from the initialisation anyway: drop the flag")
    if config.trainer.get("limit_train_batches") in (0, 0.0):  # Lightning exits 0 having trained nothing
        raise ValueError("trainer.limit_train_batches=0: fit would train nothing and save no checkpoint; drop it "
                         "(validate / test score a checkpoint without training)")
    if config.trainer.get("max_steps") == 0:  # the same: exit 0, an empty run folder
        raise ValueError("trainer.max_steps=0: fit would train nothing and save no checkpoint; drop it (-1: no "
                         "limit; N: N training iterations)")
    every = config.trainer.get("check_val_every_n_epoch")
    if every is not None and every < 1:  # Lightning divided by it at the first epoch's end
        raise ValueError(f"trainer.check_val_every_n_epoch={every}: must be >= 1; --trainer.limit_val_batches 0 turns "
                         "validation off")
    check_schedule(config)
    check_plateau_validation(config)
    policy, step = config.model.get("lr_policy"), config.model.get("lr_decay_iters")
    n, n_decay = int(config.model.n_epochs), int(config.model.n_epochs_decay)
    if policy == "cosine" and n_decay > 0:  # the reference's schedule, which "annealing to 0" does not describe
        notice(f"model.lr_policy cosine: the LR anneals to 0 over model.n_epochs ({n}) and rises again over the "
               f"model.n_epochs_decay ({n_decay}) epochs after (the reference pix2pix's CosineAnnealingLR, T_max = "
               "n_epochs); --model.n_epochs_decay 0 ends the run at LR 0")
    if policy != "step" and step != argument_defaults(Pix2PixModule)["lr_decay_iters"]:
        notice(f"model.lr_decay_iters={step}: not used (the step of model.lr_policy step; this run's policy is "
               f"{policy})")
    monitor, kid_skipped = config.checkpoint.get("monitor"), None
    # A misspelt EarlyStopping monitor in trainer.callbacks was a traceback after the first epoch.
    for where, name in [("checkpoint.monitor", monitor), *((f"trainer.callbacks: {cls} monitor", watched)
                                                            for cls, watched in callback_monitors(config))]:
        if name is not None and name not in MONITORABLE:
            close = difflib.get_close_matches(name, MONITORABLE, n=1)
            raise ValueError(f"{where} {name!r}: not a metric this module logs"
                             + (f" (did you mean {close[0]}?)" if close else "") + "; the validation metrics are "
                             + ", ".join(VAL_METRICS) + " (val/kid with --model.val_kid true)")
    if monitor in NO_BETTER_DIRECTION:
        raise ValueError(f"checkpoint.monitor {monitor}: has no better direction (TV measures sharpness, its ratio is "
                         "best at 1, the targets' TV and KID's spread are no scores), so no epoch is its best; "
                         "monitor val/kid (--model.val_kid true), val/l1 or val/psnr")
    if monitor in HIGHER_IS_BETTER and config.checkpoint.get("mode", "min") == "min":
        config.checkpoint.mode = "max"  # mode min kept the worst epoch as best-*.ckpt, without a word
        notice(f"checkpoint.monitor {monitor}: higher is better, so checkpoint.mode max (min would keep the worst "
               "epoch)")
    if config.trainer.get("enable_checkpointing") is False:
        pass  # no checkpoint at all, said once when the trainer is built (Pix2PixCLI._instantiate_trainer)
    elif config.trainer.get("limit_val_batches") in (0, 0.0) and (monitor is None or monitor.startswith("val/")):
        # No validation, no val/*: ModelCheckpoint would warn at every epoch and keep nothing useful.
        config.checkpoint.monitor, config.checkpoint.save_top_k = None, 0
        notice("validation is off (trainer.limit_val_batches=0): no best checkpoint"
               + (f" by {monitor}" if monitor else "") + ", last.ckpt only")
    else:
        kid_skipped = best_checkpoint_default(config)
        monitor, off = config.checkpoint.get("monitor"), validation_off(config.trainer)
        if (monitor or "").startswith("val/") and off:
            notice(f"{off}: no validation runs, so no best checkpoint by {monitor}, last.ckpt only")
    steps = config.trainer.get("max_steps")
    if steps is not None and steps > 0:
        notice(f"trainer.max_steps={steps} counts training iterations (batches); each "
               "iteration makes one D and one G optimiser step")
    for section in ("checkpoint", "last_checkpoint"):
        steps_every = (config.get(section) or {}).get("every_n_train_steps")
        if steps_every:  # Lightning's global_step, as {step} in file names: not the iterations TensorBoard shows
            notice(f"{section}.every_n_train_steps={steps_every} counts optimiser steps, two per training iteration: "
                   f"a checkpoint every {steps_every / 2:g} iterations")
    return kid_skipped


def _announce_data(config, subcommand: str) -> None:
    """validate / test / predict: one notice of the data they will run on."""
    data = config.data
    if subcommand == "predict":
        source = data.get("predict_dir") or f"the test split of {data.data_dir}"
        sizing = (f"resized to crop_size {data.crop_size}" if data.get("predict_resize") else
                  f"each at its own size (the model was trained on {data.crop_size} px crops; "
                  "--data.predict_resize true resizes to crop_size, as test does)")
        notice(f"predict inputs: {source}, direction {data.direction}, {sizing}")
    else:
        notice(f"{subcommand} data: {data.dataset} at {data.data_dir}, direction "
               f"{data.direction}, crop_size {data.crop_size}, preprocess "
               f"{data.get('preprocess', 'resize_and_crop')}")


def _refuse_another_generator(config, weights: str, subcommand: str) -> Optional[dict]:
    """``validate`` / ``test`` / ``predict --model.generator_weights RUN.ckpt`` load the weights into
    the config's generator. Anti-aliasing, padding and the full-resolution path add no weights, so a
    checkpoint trained with other such options loaded without a word and ran through another
    network. (A fit may start a new design from a run's weights: it is not checked.) Returns the
    file as read, for :func:`pix2pix_aa.module.load_weights` (None: it does not read, said there).

    Raises:
        ValueError: the checkpoint records a generator that differs from the config's.
    """
    from pix2pix_aa.checkpoints import CheckpointError, read_checkpoint
    from pix2pix_aa.resume import generator_differences, show_differences

    try:
        ckpt = read_checkpoint(weights, lightning=False)
    except CheckpointError:
        return None  # said when the weights are loaded
    differs = generator_differences(config, ckpt)
    if differs:
        raise ValueError(f"model.generator_weights: {weights} was trained with another generator than the config "
                         f"builds: {show_differences(differs)}; {subcommand} would run its weights through that "
                         f"other network. Pass --ckpt_path {weights} instead (its generator and data options are "
                         "taken from it), or these options")
    return ckpt


class Pix2PixCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        # Always checkpoint last.ckpt (for resuming); a best checkpoint only by a figure that does not
        # reward blur: validation KID when model.val_kid is on (best_checkpoint_default), or what
        # `checkpoint.monitor` names. Configurable in YAML under `checkpoint:`.
        # FiniteModelCheckpoint: a ModelCheckpoint that never ranks a NaN score or saves NaN weights.
        parser.add_lightning_class_args(FiniteModelCheckpoint, "checkpoint")
        parser.set_defaults({"checkpoint.monitor": None, "checkpoint.mode": "min", "checkpoint.save_last": False,
                             "checkpoint.filename": "best-{epoch:03d}", "checkpoint.auto_insert_metric_name": False})
        # last.ckpt comes from a callback of its own (LastCheckpoint: Lightning 2.6's save_last goes
        # stale once the monitored metric stops improving).
        parser.add_lightning_class_args(LastCheckpoint, "last_checkpoint")
        parser.add_argument("--predict_output_dir", type=str, default=PREDICT_OUTPUT_DIR,
                            help="predict: folder the generated PNGs are written to")
        parser.add_argument("--norm", type=Optional[str], default=None,
                            help="batch | instance | none for both networks (the reference's --norm); "
                                 "default: each network's own norm option")
        parser.add_argument("--untrained", type=bool, default=False,
                            help="validate / test / predict: run the randomly initialised generator (no "
                                 "--ckpt_path, no --model.generator_weights); refused without it")
        parser.add_argument("--allocator", type=str, choices=list(ALLOCATORS), default="keep",
                            help="keep (default): glibc malloc keeps freed memory mapped for the next step "
                                 "(no page faults on every step's activations; docs/PERFORMANCE.md section 7); "
                                 "system: glibc's defaults")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: What parse_arguments decided about weights and checkpoints, for the hooks that act on
        #: it later (LightningCLI parses inside its own __init__, so this comes first).
        self.startup = StartupState()
        super().__init__(*args, **kwargs)

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """LightningCLI's parse, then this project's start-up steps, each its own method: the
        checks and rewrites of the options, the checkpoint's options merged under the command
        line's, where the generator's weights come from, and the start-up notices. Decisions
        that later hooks need are kept in :attr:`startup`."""
        super().parse_arguments(parser, args)
        subcommand = self.config.get("subcommand")
        apply_allocator((self.config[subcommand] if subcommand else self.config).get("allocator", "keep"))
        if not subcommand:
            return
        config = self.config[subcommand]
        explicit = explicit_keys(_command_line(args))
        config.trainer.strategy = gan_strategy(config.trainer.get("strategy"))
        refuse_unsupported(config)
        limit = {"validate": "limit_val_batches", "test": "limit_test_batches", "predict": "limit_predict_batches"}
        if subcommand in limit and config.trainer.get(limit[subcommand]) in (0, 0.0):  # exit 0, nothing done
            raise ValueError(f"trainer.{limit[subcommand]}=0: {subcommand} would run on no batch; drop it")
        check_seed(config)
        explicit |= _apply_norm(config, explicit)
        explicit |= _apply_root_dir(config, explicit)
        _refuse_predict_options(config, subcommand, explicit)
        _refuse_fit_options(subcommand, explicit)
        from_last = config.get("ckpt_path") == "last"
        if from_last:
            resolve_last_checkpoint(config, subcommand)
        elif config.get("ckpt_path") == "best":
            resolve_best_checkpoint(config, subcommand)
        elif subcommand == "fit" and config.get("ckpt_path") is None and _on_slurm():
            _take_requeue_checkpoint(config)
        # A fast_dev_run writes no checkpoint: it overwrites nothing.
        if (subcommand == "fit" and config.get("ckpt_path") is None and not from_last
                and not config.get("trainer", {}).get("fast_dev_run")):
            _refuse_overwriting_a_run(config)
        path = config.get("ckpt_path")
        if path and subcommand == "fit":
            _refuse_initial_weights_on_resume(config, explicit)
        if path and subcommand != "fit" and str(path).endswith(".pth"):
            self._use_reference_generator(parser, subcommand, path, explicit)
            path = None
        if path and path not in _CKPT_KEYWORDS and "://" not in str(path):
            self._merge_checkpoint(parser, subcommand, path, from_last, explicit)
        if from_last and subcommand == "fit" and config.get("ckpt_path") is not None:
            # The resume goes on in its run's folder on purpose: Lightning's "exists and is not empty"
            # read to every user as a problem, at every resume.
            warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
        config = self.config[subcommand]
        if subcommand == "fit":
            self.startup.kid_skipped = _check_fit_options(config)
        elif subcommand in ("validate", "test", "predict"):
            self._choose_generator_weights(config, subcommand, explicit)
            _announce_data(config, subcommand)

    def _merge_checkpoint(self, parser: LightningArgumentParser, subcommand: str, path: str, from_last: bool,
                          explicit: set[str]) -> None:
        """Read ``--ckpt_path`` once and merge its options under the command line's.

        What Lightning's own merge did (checkpoint over command line), by this project's rules:
        command-line flags win, the rest comes from the checkpoint, and both are printed. A fit
        also checks the merged schedule and the resumed run's length. Records in :attr:`startup`
        the iterations the checkpoint had done and its tensors' names and shapes.

        Raises:
            CheckpointError: unreadable, not a Pix2PixModule checkpoint, or a resume that cannot go on.
        """
        config = self.config[subcommand]
        ckpt = read_checkpoint(path, trust=_trusted(config))
        check_module_checkpoint(path, ckpt, Pix2PixModule.__name__, "generator")
        if from_last and subcommand == "fit":
            set_purge_step(config, ckpt)
        elif subcommand == "fit":
            _refuse_resuming_another_run(config, path, ckpt, explicit)
        if subcommand == "fit":
            refuse_new_seeds(config, ckpt, explicit)
        self.startup.resumed_batches = batches_in_checkpoint(ckpt) or 0  # trained before this process
        if subcommand == "fit":
            self.startup.resumed_world_size = (ckpt.get(TRAINER_OPTIONS_KEY) or {}).get("world_size")
        merge, updates = merge_checkpoint_options(config, ckpt, subcommand, explicit)
        if updates:
            self.config = parser.parse_object({subcommand: updates}, self.config)
            config = self.config[subcommand]
        merge.report(str(path), fit=subcommand == "fit")
        if subcommand == "fit":
            check_schedule(config)  # max_epochs derived from the merged schedule
            self.startup.finished = check_resume_length(config, ckpt, str(path))
            workers = config.data.get("num_workers") or 0
            trained = (ckpt.get("datamodule_hyper_parameters") or {}).get("num_workers") or 0
            if workers > 0 and not self.startup.finished:
                notice(f"data.num_workers {workers}: this resume goes on with other random crops and flips than an "
                       "uninterrupted run would (its DataLoader workers start again with new seeds); a run trained "
                       "with --data.num_workers 0 resumes exactly")
            elif trained > 0 and not self.startup.finished:  # the checkpoint's crops came from workers' streams
                notice(f"data.num_workers 0: the checkpoint's fit drew its crops and flips in {trained} DataLoader "
                       f"worker{'s' if trained > 1 else ''}; this resume draws them in this process, so it is not the "
                       "run an uninterrupted fit would have been")
        self.startup.checkpoint = (path, _names_and_shapes(ckpt))

    def _use_reference_generator(self, parser: LightningArgumentParser, subcommand: str, path: str,
                                 explicit: set[str]) -> None:
        """``--ckpt_path latest_net_G.pth`` (validate/test/predict): a reference pix2pix generator
        file. Its architecture is read from its keys (:func:`pix2pix_aa.reference.load_reference_generator`)
        and becomes ``model.generator``; the weights are loaded after the model is built. The data
        come from the config and the command line (a reference file records none).

        Raises:
            ValueError: ``--model.generator...`` options on the command line, which the file's
            architecture would replace.
        """
        from pix2pix_aa.reference import load_reference_generator

        given = sorted(k for k in explicit if k == "model.generator" or k.startswith("model.generator."))
        if given:
            raise ValueError(f"--ckpt_path {path} is a reference pix2pix generator: the file gives the generator's "
                             f"architecture, so --{', --'.join(given)} would be ignored; drop them, or pass the file "
                             "as --model.generator_weights with the generator options you want")
        generator, info = load_reference_generator(path)
        self.startup.reference_generator, self.startup.reference_path = generator, str(path)
        # Every option of the file's class: merged over the config's generator, the file's few
        # would have kept the config's others (anti-aliasing, padding, a full-resolution path).
        init_args = {**argument_defaults(type(generator)), **info["init_args"]}
        updates = {"generator": {"class_path": info["class_path"], "init_args": init_args}}
        self.config = parser.parse_object({subcommand: {"model": updates}}, self.config)
        self.config[subcommand].ckpt_path = None
        notice(f"--ckpt_path {path}: a reference pix2pix generator ({info['netG']}, norm {info['norm']}, "
               f"ngf {info['ngf']}, {info['input_nc']} -> {info['output_nc']} channels) in place of the config's "
               "model.generator; data from the config")

    def _choose_generator_weights(self, config, subcommand: str, explicit: set[str]) -> None:
        """Where validate / test / predict take the generator's weights from: ``--ckpt_path`` (or a
        reference file given there), else ``model.generator_weights`` (loaded once the model is
        built; a fit loads it only when it starts), else nothing, which is refused unless
        ``--untrained true`` asks for the initialisation: an untrained generator writes images and
        scores that look like results.

        Raises:
            ValueError: no weights and no ``--untrained``; or both ``--ckpt_path`` and
            ``--model.generator_weights`` on the command line, or ``--untrained`` with either (one of
            them would be ignored).
        """
        weights = config.model.get("generator_weights")
        has_ckpt = config.get("ckpt_path") is not None or self.startup.reference_generator is not None
        self.startup.generator_weights = None
        if config.get("untrained") and (has_ckpt or weights):
            given = "ckpt_path" if has_ckpt else "model.generator_weights"
            raise ValueError(f"--untrained true and --{given} disagree: {subcommand} would run the trained weights; "
                             "pass one of them")
        if has_ckpt:
            if weights and "model.generator_weights" in explicit:
                raise ValueError(f"--ckpt_path and --model.generator_weights both give the generator's weights "
                                 f"({subcommand} would use the checkpoint's): pass one of them")
            return
        if weights:
            self.startup.generator_weights_read = _refuse_another_generator(config, weights, subcommand)
            self.startup.generator_weights = weights
            return
        if config.get("untrained"):
            notice(f"{subcommand}: --untrained: the generator is randomly initialised (no trained weights)")
            return
        raise ValueError(f"{subcommand} needs trained weights: pass --ckpt_path CKPT (a train.py checkpoint, `last`, "
                         "or a reference latest_net_G.pth) or --model.generator_weights FILE (--untrained true runs "
                         "the randomly initialised generator)")

    def _parse_ckpt_path(self) -> None:
        """Replaced by :func:`pix2pix_aa.resume.merge_checkpoint_options` in ``parse_arguments``
        (Lightning's merge lets the checkpoint override the command line, silently)."""

    def instantiate_classes(self) -> None:
        try:
            super().instantiate_classes()
        except ValueError as e:
            config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
            raise ValueError(explain_instantiation_error(e, config)) from e
        reference = self.startup.reference_generator
        if reference is not None:
            self.model.generator.load_state_dict(reference.state_dict())
        weights = self.startup.generator_weights
        if weights:
            load_weights(self.model.generator, weights, "generator", data=self.startup.generator_weights_read)
            self.startup.generator_weights_read = None  # the file's tensors: not held past the load
            notice(f"model.generator_weights: {self.subcommand} with the generator from {weights}")
        if self.startup.kid_skipped:  # said at start-up: the module would say it again at its first validation
            self.model.__dict__["_kid_net"] = None
        check_model_and_data(self.model.generator, self.model.discriminator, self.datamodule)
        check_shift_term(self.model.hparams, self.datamodule, training=self.subcommand == "fit")

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        config = self.config[self.subcommand] if self.subcommand else self.config  # run=False: no subcommand
        plugins = cli_trainer_init(self, "plugins")
        plugins = [] if plugins is None else list(plugins) if isinstance(plugins, (list, tuple)) else [plugins]
        if not any(isinstance(p, CheckpointIO) for p in plugins):
            # Atomic writes by default; a CheckpointIO given in trainer.plugins replaces this one.
            kwargs.setdefault("plugins", [*plugins, AtomicCheckpointIO()])
        steps = config.trainer.get("max_steps")
        if self.subcommand == "fit" and steps is not None and steps > 0:
            kwargs["max_steps"] = -1  # counted in batches by StopAfterIterations instead
        if self.subcommand == "predict":
            kwargs["logger"] = False  # predict logs nothing: no empty run folder
        elif self.subcommand in ("validate", "test"):
            weights = config.get("ckpt_path") or self.startup.reference_path or self.startup.generator_weights
            run_dir = _run_dir_of(weights)
            if run_dir is None and weights and weights not in _CKPT_KEYWORDS and "://" not in str(weights):
                # A file outside a training run (a downloaded reference generator): beside it. The config's
                # logger made a runs/<config name>/version_N that looked like a training run without checkpoints.
                run_dir = Path(weights).parent
            if run_dir is not None:  # beside the training run's events, never into them
                kwargs["logger"] = TensorBoardLogger(save_dir=str(run_dir), name=self.subcommand,
                                                     default_hp_metric=False)
        callbacks = cli_trainer_init(self, "callbacks") or []
        callbacks = list(callbacks) if isinstance(callbacks, (list, tuple)) else [callbacks]
        if config.trainer.get("enable_progress_bar") is not False and not any(
                isinstance(c, ProgressBar) for c in callbacks):
            kwargs["callbacks"] = [*callbacks, QuietProgressBar()]
        precision = str(config.trainer.get("precision"))
        if precision in ("16-true", "bf16-true") and self.subcommand != "fit":
            rounded = "bfloat16" if precision == "bf16-true" else "float16"
            raise ValueError(f"trainer.precision {precision}: {self.subcommand} would run the generator with its "
                             f"weights rounded to {rounded}, not the trained model; use bf16-mixed (autocast, float32 "
                             "weights) or 32-true")
        if precision == "16-true":
            # measured: NaN losses within 3 batches, and at a low LR half the weights never moved
            raise ValueError("trainer.precision 16-true: float16 weights and Adam state cannot train this GAN (Adam's "
                             "eps 1e-8 is 0 in float16, small updates round away, the losses overflow to NaN); use "
                             "16-mixed (autocast, float32 weights; a GPU), bf16-mixed, or 32-true")
        if precision == "bf16-true":
            # measured (cpu_quick, iterations 4 -> 24): every batch-norm weight of G stayed where it was.
            # bfloat16 keeps 8 bits of mantissa: an Adam step of lr 2e-4 on a weight near 1 rounds to 0.
            raise ValueError("trainer.precision bf16-true: bfloat16 weights round Adam's small updates away (a "
                             "weight near 1, as every batch-norm scale, never moves at lr 2e-4); use bf16-mixed "
                             "(autocast, float32 weights) or 32-true")
        # On the CPU Lightning swaps 16-mixed for bf16 and says "Using bfloat16 Automatic Mixed
        # Precision" before the refusal below: a line that read as if the run went on in bf16.
        swap_line = (_DropLines(r"^Using bfloat16 Automatic Mixed Precision") if precision in ("16", "16-mixed")
                     else None)
        rank_zero_log = logging.getLogger("pytorch_lightning.utilities.rank_zero")
        if swap_line:
            rank_zero_log.addFilter(swap_line)
        try:
            trainer = super().instantiate_trainer(**kwargs)
        finally:
            if swap_line:
                rank_zero_log.removeFilter(swap_line)
        if precision in ("16", "16-mixed") and str(trainer.precision) == "bf16-mixed":
            # Lightning swaps float16 autocast for bfloat16 on the CPU with a warning, while the run's
            # config.yaml (and a later --config of it) keeps saying 16-mixed.
            raise ValueError(f"trainer.precision {config.trainer.get('precision')}: float16 autocast needs a GPU; "
                             "on the CPU Lightning would run bf16-mixed instead while the run's config.yaml said "
                             "16-mixed. Pass --trainer.precision bf16-mixed (CPUs with AMX) or 32-true")
        # Every DDP strategy, however it was given (auto on several devices, a class_path), needs
        # find_unused_parameters (gan_strategy): refused here, at start-up, rather than at the
        # first generator step with DDP's error from each process.
        if ddp_allow_unused_parameters(trainer.strategy) is False:
            raise ValueError("trainer.strategy: DDP with find_unused_parameters false cannot train Pix2PixModule: "
                             "each of its two backward passes leaves one player's parameters unused, and DDP would "
                             "stop at the first generator step. Use --trainer.strategy ddp, or give DDPStrategy "
                             "init_args find_unused_parameters: true")
        if not any(isinstance(c, ResumeRNGState) for c in trainer.callbacks):
            trainer.callbacks.append(ResumeRNGState())
        if self.subcommand == "fit" and not any(isinstance(c, HparamsAtFitEnd) for c in trainer.callbacks):
            trainer.callbacks.append(HparamsAtFitEnd())
        if kwargs.get("max_steps") == -1:
            trainer.callbacks.append(StopAfterIterations(int(steps)))
        if self.subcommand == "fit" and config.trainer.get("max_time"):
            trainer.callbacks.append(MaxTimeNotice())
        if self.subcommand == "fit":
            trainer.callbacks.append(TrainingLog())
        return trainer

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list[Any]) -> Trainer:
        # trainer.enable_checkpointing false: leave out the checkpoint callbacks this CLI always
        # adds (Lightning refuses a ModelCheckpoint beside it), and say what that costs.
        if config.get("enable_checkpointing") is False:
            callbacks = [c for c in callbacks if not isinstance(c, FiniteModelCheckpoint)]
            if self.subcommand == "fit":
                notice("trainer.enable_checkpointing=false: no last.ckpt and no best checkpoint are written, so "
                       "this run can be neither resumed nor evaluated afterwards")
        return super()._instantiate_trainer(config, callbacks)

    def _run_subcommand(self, subcommand: str) -> None:
        """Run it; if it fails before anything was trained, remove the log folders it created
        (``runs/<name>/version_N``, ``<run>/test/version_K``): TensorBoard would list an empty run
        for every failed start-up. A fit that trained a batch (in this process: a resumed one
        starts from its checkpoint's count) keeps its folder (events and checkpoints to look at or
        resume from)."""
        created = _new_log_dirs(self.trainer)
        try:
            super()._run_subcommand(subcommand)
        except BaseException:
            if created and self.trainer.is_global_zero and not (
                    subcommand == "fit" and batches_that_stepped(self.trainer) > self.startup.resumed_batches):
                for log_dir, top in created:
                    # A folder whose lock another fit holds is that fit's (a second fit refused there).
                    if not log_dir.is_dir() or any(log_dir.rglob("*.ckpt")) or held(log_dir / FIT_LOCK):
                        continue
                    shutil.rmtree(log_dir, ignore_errors=True)
                    # Its new parents (runs/<name>) only if empty: another run may be writing there.
                    for parent in log_dir.parents:
                        if parent == top.parent:
                            break
                        try:
                            parent.rmdir()
                        except OSError:
                            break
            raise

    def _check_checkpoint(self) -> None:
        """Read ``--ckpt_path`` (weights only) and compare it with the model before Lightning loads it,
        so that a wrong file is one line, not a traceback from ``load_state_dict``."""
        path = self.config[self.subcommand].get("ckpt_path")
        if path is None or path in _CKPT_KEYWORDS or "://" in str(path):
            return
        cached_path, ckpt = self.startup.checkpoint or (None, None)
        self.startup.checkpoint = None
        if cached_path != path:
            ckpt = read_checkpoint(path, trust=_trusted(self.config[self.subcommand]))
        check_state_matches(path, ckpt, self.model)

    def before_fit(self) -> None:
        self._check_checkpoint()
        self._check_validation_data()
        self._check_val_kid_images()
        self._note_val_stability_images()
        if self.config[self.subcommand].get("ckpt_path") is not None and not self.startup.finished:
            for line in resume_process_notes(self.trainer.world_size, self.startup.resumed_world_size):
                notice(line)

    def fit(self, model: LightningModule, **kwargs: Any) -> None:
        """``Trainer.fit``, unless the resumed run has nothing left to train: then one line, and
        no run folder, event file or config.yaml is touched (a job script may always pass
        ``--ckpt_path last``)."""
        if self.startup.finished:
            notice(self.startup.finished)
            return
        started = time.time()
        with self._one_fit_of_the_run():
            self.trainer.fit(model, **kwargs)
        last = next((Path(c.dirpath) / "last.ckpt" for c in self.trainer.callbacks
                     if isinstance(c, LastCheckpoint) and c.dirpath), None)
        # Written by this fit (2 s: coarse file-system clocks): a fast_dev_run saves nothing, and
        # the file there may be an earlier run's.
        written = last is not None and last.is_file() and last.stat().st_mtime >= started - 2
        if not self.trainer.state.finished or self.trainer.interrupted:
            return
        if self.trainer.fast_dev_run:
            trained = batches_that_stepped(self.trainer) - self.startup.resumed_batches  # this fit's own
            notice(f"fast_dev_run done ({count(trained, 'iteration')}): a check of the loop; Lightning writes no "
                   "checkpoint or log in it")
        elif written:
            # The run folder; without a logger that is trainer.default_root_dir (often the working
            # folder), where evaluate.py would score every run beneath: the file itself then.
            target = last.parent.parent if self.trainer.logger is not None else last
            # The end said nothing: where the model is, and the next step (README's quick start).
            log = next((c for c in self.trainer.callbacks if isinstance(c, TrainingLog)), None)
            state = fit_end_state(self.trainer, cut=log is not None and log.last_epoch_cut)
            notice(f"fit {state} ({count(self.trainer.current_epoch, 'epoch')}, "
                   f"{count(batches_that_stepped(self.trainer), 'iteration')}): "
                   f"{last}; score it with: python evaluate.py {shlex.quote(str(target))}")

    @contextmanager
    def _one_fit_of_the_run(self) -> Iterator[None]:
        """Hold the run folder's lock (``<run>/.fit.lock``) for the fit. Two fits of one run (a job
        relaunched while the first still trains, two array jobs started at once into one new version)
        each rewrote the other's last.ckpt, config.yaml and TensorBoard events without a word."""
        log_dir = self.trainer.log_dir  # on every rank: a broadcast from rank 0 once processes are joined
        log_dir = log_dir if self.trainer.is_global_zero else None
        if not log_dir or "://" in str(log_dir):
            yield
            return
        try:
            with exclusive(Path(log_dir) / FIT_LOCK):
                yield
        except LockHeld as e:
            # Without a logger the run folder is trainer.default_root_dir itself (checkpoints/, config.yaml).
            other = ("another --trainer.logger.init_args.version" if self.trainer.logger is not None
                     else "another --trainer.default_root_dir")
            resume = " and then resume with --ckpt_path last" if self.config[self.subcommand].get("ckpt_path") else ""
            raise ValueError(f"another fit ({e.holder}) is training this run, {log_dir}: two fits would overwrite "
                             f"each other's checkpoints and events. Wait for it to end (or stop it){resume}, or "
                             f"train in {other}") from None

    def _check_validation_data(self) -> None:
        """A data folder without val/ while validation is on: the data module's error at start-up,
        before the model summary and the first epoch (it would otherwise stop the sanity check)."""
        missing = self.datamodule.missing_validation() if isinstance(self.datamodule, Pix2PixDataModule) else None
        if missing and self.trainer.limit_val_batches != 0:
            raise FileNotFoundError(missing)

    def _val_images_scored(self) -> Optional[tuple[int, int]]:
        """(validation images, those a validation epoch scores under ``limit_val_batches``), or
        None where validation is off or the count is not known before the set is read."""
        if self.trainer.limit_val_batches == 0 or not isinstance(self.datamodule, Pix2PixDataModule):
            return None
        count = self.datamodule.val_image_count()
        if count is None:
            return None
        limit, batch = self.trainer.limit_val_batches, self.datamodule.batch_size
        batches = math.ceil(count / batch)
        # Lightning's reading of the limit: a number of batches, or a fraction of them rounded down.
        batches = min(batches, limit) if isinstance(limit, int) else int(batches * limit)
        return count, min(count, batches * batch)

    def _note_val_stability_images(self) -> None:
        """``model.val_stability_images`` above the images a validation scores: said, since the
        curve's figure is then over fewer images than the option reads."""
        asked = self.model.hparams.get("val_stability_images") or 0
        counts = self._val_images_scored() if asked and self.model.hparams.get("val_stability_shifts") else None
        if counts is not None and 0 < counts[1] < asked:
            notice(f"model.val_stability_images={asked}: a validation epoch scores {counts[1]} image(s), so "
                   f"val/stability_psnr is over {counts[1]}")

    def _check_val_kid_images(self) -> None:
        """``model.val_kid`` with a validation of fewer than 2 images: refused at start-up. KID
        compares two sets and needs 2 images each; the fit trained its first epoch, logged no
        val/kid, and stopped at the best checkpoint's monitor without writing any checkpoint."""
        if not self.model.hparams.get("val_kid") or self.startup.kid_skipped:
            return
        counts = self._val_images_scored()
        if counts is None:
            return
        count, scored = counts
        limit, batch = self.trainer.limit_val_batches, self.datamodule.batch_size
        if scored < 2:
            limited = f", --trainer.limit_val_batches {limit} of batch size {batch}" if scored < count else ""
            raise ValueError(f"model.val_kid: KID needs at least 2 validation images, and this fit's validation scores "
                             f"{scored} ({count} in {self.datamodule.data_dir / 'val'}{limited}); add validation "
                             "images, raise the limit, or drop --model.val_kid")

    def _quiet_checkpoint_callbacks(self) -> None:
        # validate/test/predict restore the checkpoint callbacks' state and warn that their
        # folder "changed": true and irrelevant, since these subcommands write no checkpoint.
        warnings.filterwarnings("ignore", message="The dirpath has changed from")

    def before_validate(self) -> None:
        self._check_checkpoint()
        self._quiet_checkpoint_callbacks()
        self._say_what_stability_psnr_is()

    def before_test(self) -> None:
        self._check_checkpoint()
        self._quiet_checkpoint_callbacks()
        self._say_what_stability_psnr_is()

    def _say_what_stability_psnr_is(self) -> None:
        # Printed beside PSNR / SSIM over every image, it read as a figure of the same set.
        k, shifts = self.model.hparams.val_stability_images, self.model.hparams.val_stability_shifts
        if k:
            notice(f"{self.subcommand}/stability_psnr: the training curve's quick figure, on the first {k} images x "
                   f"{shifts} shifts (model.val_stability_images, model.val_stability_shifts); evaluate.py scores "
                   "every image and shift")

    def before_predict(self) -> None:
        self._check_checkpoint()
        self._quiet_checkpoint_callbacks()
        output_dir = self.config[self.subcommand].predict_output_dir
        problem = output_path_problem(output_dir, "--predict_output_dir")
        inputs = self.config[self.subcommand].data.get("predict_dir")
        if not problem and inputs and Path(inputs).is_dir() and Path(output_dir).resolve() == Path(inputs).resolve():
            problem = (f"--predict_output_dir {output_dir} is --data.predict_dir: the outputs would be written among "
                       "the inputs (replacing any named like them, and read as inputs by the next predict); pass "
                       "another folder")
        if problem:
            raise ValueError(problem)
        self.trainer.callbacks.append(ImageWriter(output_dir))


class _DropLines(logging.Filter):
    """A logging filter dropping the records whose message holds ``pattern`` (re.search)."""

    def __init__(self, pattern: str) -> None:
        super().__init__()
        self.pattern = re.compile(pattern)

    def filter(self, record: logging.LogRecord) -> bool:
        return not self.pattern.search(record.getMessage())


def _new_log_dirs(trainer: Trainer) -> list[tuple[Path, Path]]:
    """For each logger with a ``log_dir`` that does not exist yet: (that folder, the outermost of
    its folders that does not exist: ``runs/<name>`` for a new name, else ``runs/<name>/version_N``)."""
    created = []
    for logger in trainer.loggers:
        log_dir = getattr(logger, "log_dir", None)
        if not log_dir or "://" in str(log_dir):
            continue
        path = Path(log_dir).absolute()
        if path.exists():
            continue
        top = path
        while not top.parent.exists():
            top = top.parent
        created.append((path, top))
    return created


def _run_dir_of(ckpt_path: Optional[str]) -> Optional[Path]:
    """``runs/<name>/version_N`` for a checkpoint inside a training run's ``checkpoints/``."""
    if not ckpt_path or ckpt_path in _CKPT_KEYWORDS:
        return None
    path = Path(ckpt_path)
    return path.parent.parent if path.parent.name == "checkpoints" else None


#: --allocator values: keep freed memory mapped (the default), or glibc's own behaviour.
ALLOCATORS = ("keep", "system")


def apply_allocator(allocator: str) -> None:
    """``keep``: glibc's malloc serves large blocks from the heap and never trims it
    (:func:`pix2pix_aa.evaluation.speed.keep_freed_memory`, process-wide; a no-op on other C
    libraries), so each step reuses the pages of the last one instead of mapping and faulting
    them in again: the same arithmetic, 0-16% less CPU per training iteration, peak memory within
    50 MB (measured in docs/PERFORMANCE.md section 7). ``system`` leaves glibc's defaults, which cannot be restored
    once a process has kept freed memory: that case gets a notice, not silence."""
    from pix2pix_aa.evaluation import speed

    if allocator == "keep":
        speed.keep_freed_memory()
    elif speed.freed_memory_kept():
        notice("--allocator system: this process already keeps freed memory (set earlier in it); glibc's "
               "defaults apply from a fresh process")


#: DDP strategies a two-optimiser GAN cannot use as they are (see gan_strategy).
_DDP_NAMES = ("ddp", "ddp_spawn", "ddp_fork", "ddp_notebook")


def resume_process_notes(processes: int, trained_in: Optional[int]) -> list[str]:
    """What a resumed fit in ``processes`` processes cannot repeat of a run that trained in
    ``trained_in`` (None: not recorded): each process's crop and flip stream starts again, and
    another count changes every epoch's batches. Lightning resumes both without a word."""
    notes = []
    if trained_in is not None and trained_in != processes:
        notes.append(f"trainer: this resume runs {processes} process{'es' if processes > 1 else ''}, the checkpoint's "
                     f"fit {trained_in}: each epoch now has {trained_in / processes:g}x the batches of its, and each "
                     f"optimiser step averages {processes / trained_in:g}x the images; not the run an uninterrupted "
                     "fit would have been")
    if processes > 1:
        notes.append(f"trainer: a resume in {processes} processes goes on with other random crops and flips than an "
                     "uninterrupted run (each process's stream starts again); one process with --data.num_workers 0 "
                     "resumes exactly")
    return notes


def _take_requeue_checkpoint(config) -> None:
    """On SLURM, Lightning resumes a fit without ``--ckpt_path`` from the newest ``hpc_ckpt_N.ckpt``
    in ``trainer.default_root_dir`` (its save on SIGUSR1 before a requeue), which every run there
    shares: a fit of another run continued that run's weights (or failed with a size-mismatch
    traceback), past every check of this CLI's resume. This run's file becomes ``--ckpt_path``
    (the requeued job resumes from it, with those checks); another run's is refused.

    Raises:
        ValueError: the newest requeue checkpoint there is another run's.
    """
    root = Path(config.trainer.get("default_root_dir") or os.getcwd())
    found = sorted((p for p in root.glob("hpc_ckpt_*.ckpt") if p.stem.rsplit("_", 1)[-1].isdigit()),
                   key=lambda p: int(p.stem.rsplit("_", 1)[-1]))
    if not found:
        return
    hpc = found[-1]
    ckpt = read_checkpoint(hpc, trust=_trusted(config))
    written = _runs_written_by(ckpt)
    init_args = _logger_init_args(config)
    name = init_args.get("name") if init_args is not None else None
    if name is None or name not in written:
        raise ValueError(f"{hpc}: a SLURM requeue checkpoint of run {', '.join(sorted(written)) or '(unknown)'}, which "
                         f"Lightning would resume this fit ({name}) from; move it away, or pass --ckpt_path")
    config.ckpt_path = str(hpc)
    notice(f"--ckpt_path {hpc}: this run's SLURM requeue checkpoint, resumed as a requeued job does")


def _on_slurm() -> bool:
    """Whether Lightning takes this process for a SLURM job (and so looks for requeue checkpoints)."""
    from lightning_fabric.plugins.environments import SLURMEnvironment

    return SLURMEnvironment.detect()


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
    match = _ErrorText.CLASS_PATH_VALUE.search(str(error))
    if match:
        for key, value in config.items():  # flattened: "model.generator.class_path" -> value
            if key.endswith(".class_path") and value == match.group(1):
                return f"{key.removesuffix('.class_path')}.init_args: {message}"
    return message


class _NoTips(_DropLines):
    """Lightning 2.6's advertisement for a cloud logger (a class of its own: added once per logger)."""

    def __init__(self) -> None:
        super().__init__(r"Tip: For seamless cloud logging")


def main(args: Optional[list[str]] = None, run: bool = True) -> Pix2PixCLI:
    """Run the CLI. Configuration, data, checkpoint and non-finite-loss errors print one ``error:``
    line and exit with code 2; ``--debug`` (or ``PIX2PIX_AA_DEBUG=1``) shows the traceback."""
    debug = bool(os.environ.get("PIX2PIX_AA_DEBUG"))
    # Lightning 2.6 calls a torch pytree API that torch 2.14 deprecates, once per fit: not the
    # user's to act on.
    warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")
    # The model summary's size estimate under bf16-mixed: the weights stay float32, so its
    # 32-bit figure is the right one, and the warning says nothing the user can act on.
    warnings.filterwarnings("ignore", message=r"Precision bf16-mixed is not supported by the model summary")
    # Lightning's swap of 16-mixed for bf16-mixed on the CPU: refused in one line instead
    # (Pix2PixCLI.instantiate_trainer).
    warnings.filterwarnings("ignore", message=r"You passed `Trainer\(accelerator='cpu', precision='16-mixed'\)`")
    # Lightning 2.6 prints an advertisement for a cloud logger at every Trainer start.
    for name in ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero"):
        if not any(isinstance(f, _NoTips) for f in logging.getLogger(name).filters):
            logging.getLogger(name).addFilter(_NoTips())
    if args is None:  # LightningCLI reads sys.argv itself (it warns when given both)
        if "--debug" in sys.argv[1:]:
            sys.argv.remove("--debug")
            debug = True
    elif "--debug" in args:
        args = [a for a in args if a != "--debug"]
        debug = True
    args = None if args is None else list(args)  # never the caller's list: --help_all is replaced below
    argv = sys.argv if args is None else args
    Pix2PixArgumentParser.full_help = FULL_HELP_FLAG in argv[1 if args is None else 0:]
    if Pix2PixArgumentParser.full_help:
        argv[argv.index(FULL_HELP_FLAG)] = "--help"
    try:
        return Pix2PixCLI(
            Pix2PixModule,
            Pix2PixDataModule,
            seed_everything_default=0,
            trainer_defaults=TRAINER_DEFAULTS,
            parser_class=Pix2PixArgumentParser,
            save_config_callback=ReusableConfig,
            save_config_kwargs={"overwrite": True},
            # Both players use Adam with the pix2pix schedule (--model.lr, --model.lr_policy);
            # LightningCLI's --optimizer / --lr_scheduler would be ignored or break the GAN.
            auto_configure_optimizers=False,
            args=args,
            run=run,
        )
    # SIGTERM (a scheduler's preemption, kill): Lightning stops at the next step with a SystemExit of
    # code None, i.e. exit status 0, as if the run had finished; when the signal also reached the
    # DataLoader workers, torch raises from its SIGCHLD handler instead, with two pages of traceback.
    except (SIGTERMException, GenerationStopped) as e:
        _stopped_by_sigterm(debug, e)
    except (KeyboardInterrupt, SystemExit) as e:
        # Ctrl-C: Lightning says "Detected KeyboardInterrupt" and exits 1, a crash's status; before
        # the fit (start-up, data generation), Python's traceback.
        if isinstance(e, SystemExit) and not isinstance(e.__context__, KeyboardInterrupt):
            raise
        if debug:
            raise
        _end_progress_line()
        print("error: interrupted (Ctrl-C): the steps since the last checkpoint are lost (last.ckpt is written at each "
              "epoch's end); a fit goes on with the same command and --ckpt_path last", file=sys.stderr)
        raise SystemExit(128 + 2) from None
    except RuntimeError as e:
        if "is killed by signal: Terminated" not in str(e):
            raise
        _stopped_by_sigterm(debug, e)
    # MisconfigurationException: Lightning's own refusals of trainer options (an accelerator this
    # machine lacks, ...): already one sentence for the user.
    except (ValueError, FileNotFoundError, FloatingPointError, CheckpointError, MisconfigurationException) as e:
        if debug:
            raise
        _end_progress_line()
        line = worker_error_line(e)
        if isinstance(e, MisconfigurationException):
            line = f"the trainer options (--trainer.*) were refused by Lightning: {line}"
        print(f"error: {line}\n(pass --debug to see the traceback)", file=sys.stderr)
        raise SystemExit(2) from e


def _stopped_by_sigterm(debug: bool, error: BaseException) -> None:
    """One line for a run stopped by SIGTERM, and exit status 143 (128 + 15, the shell's)."""
    if debug:
        raise error
    _end_progress_line()
    if isinstance(error, GenerationStopped):  # before any training: nothing to resume
        print(f"error: {error}", file=sys.stderr)
    else:
        print("error: stopped by SIGTERM (a scheduler's preemption or a kill): the steps since the last checkpoint "
              "are lost (last.ckpt is written at each epoch's end); resume with the same command and --ckpt_path last",
              file=sys.stderr)
    raise SystemExit(128 + 15) from None


def _end_progress_line() -> None:
    """End the line of a progress bar the error stopped mid-line (tqdm, on stdout), so that the
    error starts a line of its own in a terminal instead of being glued to the bar."""
    if open_progress_bars():
        print(flush=True)


def console_main() -> int:
    """Entry point of the ``pix2pix-aa-train`` console script (exit code 0 on success)."""
    main()
    return 0


if __name__ == "__main__":
    main()
