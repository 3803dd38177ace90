"""Start-up checks of the training CLI's options, each failing in one line that names the option.

Everything here runs before any data is read or weight is trained, so a wrong combination
costs a second, not a run:

* :func:`check_schedule`: ``trainer.max_epochs`` against the pix2pix LR schedule
  (``model.n_epochs + model.n_epochs_decay``): past its end the LR would be 0 for the remaining
  epochs, short of it the decay is skipped; unset, it is derived.
* :func:`check_plateau_validation`: ``lr_policy plateau`` needs validation to step on.
* :func:`refuse_unsupported`: Lightning options that this manually optimised GAN would ignore
  or break on, with the option to use instead.
* :func:`suggest_option`: the reference pix2pix's flag names (``--netG``, ``--direction``, ...)
  mapped to ours, for the parser's "unrecognized arguments" error.
* :func:`check_model_and_data`: channels and image size against the networks.
* :func:`check_shift_term`: the shift-equivariance term's options against the data.
* :func:`argument_defaults`: a class's constructor defaults (an option left at its default asks
  for nothing).
"""

from __future__ import annotations

import difflib
import inspect
import re
from typing import Any, Optional

import torch
from torch import nn

from pix2pix_aa.console import notice
from pix2pix_aa.losses import max_shift_problem

__all__ = ["LIGHTNING_FLAGS", "REFERENCE_FLAGS", "callback_monitors", "check_model_and_data",
           "check_plateau_validation", "check_schedule", "check_shift_term", "refuse_unsupported", "suggest_option",
           "validation_off"]


# -- schedule -----------------------------------------------------------------------------------

def argument_defaults(cls: type) -> dict[str, Any]:
    """``{name: default}`` of the parameters of ``cls``'s constructor that have a default; {} for
    a class without an inspectable signature."""
    try:
        params = inspect.signature(cls).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}

def check_schedule(config) -> None:
    """``trainer.max_epochs`` must equal ``model.n_epochs + model.n_epochs_decay``; None -> derived.

    The reference pix2pix trains exactly ``n_epochs + n_epochs_decay`` epochs. A Trainer that
    stops later keeps training at LR 0 (formerly at a negative LR); one that stops earlier never
    decays the LR. ``fast_dev_run`` is exempt. A ``trainer.min_epochs`` past the schedule would
    be ignored (Lightning stops at max_epochs): refused too.

    Raises:
        ValueError: one line naming both options and the fix.
    """
    trainer, model = config.trainer, config.model
    fast = trainer.get("fast_dev_run")
    if fast is not True and isinstance(fast, int) and fast > 1:
        # Lightning runs it as max_steps=N optimiser steps, two per pix2pix iteration: N // 2
        # batches, and the epoch cut before its validation.
        raise ValueError(f"trainer.fast_dev_run={fast} would train {fast // 2} batches and skip validation (Lightning "
                         "counts it in optimiser steps, two per iteration); use --trainer.fast_dev_run true (one batch "
                         f"of each), or --trainer.limit_train_batches {fast} --trainer.limit_val_batches {fast} "
                         "--model.n_epochs 1 --model.n_epochs_decay 0")
    if fast:
        return
    if trainer.get("min_steps"):  # Lightning's optimiser steps; ignored unless a callback stops the fit early
        raise ValueError(f"trainer.min_steps={trainer.get('min_steps')}: counted in optimiser steps (two per "
                         "iteration) and only binding when a callback stops the fit early; use --trainer.min_epochs, "
                         "which this CLI checks against the LR schedule")
    n, n_decay = int(model.n_epochs), int(model.n_epochs_decay)
    total = n + n_decay
    if total < 1:
        raise ValueError(f"model.n_epochs + model.n_epochs_decay = {n} + {n_decay} = 0: nothing would be trained; "
                         "set --model.n_epochs N (epochs at the base LR) and --model.n_epochs_decay N (decay epochs)")
    min_epochs = trainer.get("min_epochs")
    if min_epochs is not None and min_epochs > total:  # Lightning lets max_epochs win without a word
        raise ValueError(f"trainer.min_epochs={min_epochs} but the LR schedule ends after model.n_epochs + "
                         f"model.n_epochs_decay = {n} + {n_decay} = {total} epochs, where the run stops: pass "
                         f"--model.n_epochs_decay {max(min_epochs - n, 0)} to train {min_epochs} epochs, or drop "
                         "trainer.min_epochs")
    max_epochs = trainer.get("max_epochs")
    if max_epochs is None:
        trainer.max_epochs = total
        notice(f"trainer.max_epochs = {total} (model.n_epochs {n} + model.n_epochs_decay {n_decay})")
        return
    if max_epochs == total:
        return
    if max_epochs == -1:
        raise ValueError(f"trainer.max_epochs=-1 (no limit) but the LR schedule ends after model.n_epochs + "
                         f"model.n_epochs_decay = {n} + {n_decay} = {total} epochs; leave trainer.max_epochs unset")
    if max_epochs == 0:  # the fixes below would be refused in turn: nothing would be trained
        raise ValueError("trainer.max_epochs=0: fit would train nothing; leave trainer.max_epochs unset (derived "
                         f"from model.n_epochs + model.n_epochs_decay = {total})")
    extra = max_epochs - n
    fix = (f"--model.n_epochs_decay {extra} to train {max_epochs} epochs with the decay at the end"
           if extra >= 0 else f"--model.n_epochs {max_epochs} --model.n_epochs_decay 0")
    where = ("would keep training at LR 0 after epoch" if max_epochs > total
             else "would stop before the LR decay ends at epoch")
    raise ValueError(
        f"trainer.max_epochs={max_epochs} but model.n_epochs + model.n_epochs_decay = {n} + {n_decay} = {total}: "
        f"the run {where} {total}. Pass --trainer.max_epochs {total}, or {fix}, or --trainer.max_epochs null "
        "(derived from the schedule; the shipped configs and saved config.yaml files leave it unset)")


def validation_off(trainer) -> Optional[str]:
    """Why a fit with these trainer options validates never (the option that says so, as
    ``trainer.limit_val_batches=0`` or ``trainer.check_val_every_n_epoch=5 > trainer.max_epochs=2``),
    or None when it validates. Call after :func:`check_schedule`, which derives ``max_epochs``."""
    every, epochs = trainer.get("check_val_every_n_epoch"), trainer.get("max_epochs")
    if trainer.get("limit_val_batches") in (0, 0.0):
        return "trainer.limit_val_batches=0"
    if every is not None and epochs is not None and 0 <= epochs < every:
        return f"trainer.check_val_every_n_epoch={every} > trainer.max_epochs={epochs}"
    return None


def check_plateau_validation(config) -> None:
    """``model.lr_policy plateau`` steps on each validation's ``val/l1``: without validation it
    would never step, and the LR would stay constant without a word.

    Validation is off when ``trainer.limit_val_batches`` is 0 or ``trainer.check_val_every_n_epoch``
    exceeds ``trainer.max_epochs`` (call after :func:`check_schedule`, which derives the latter).
    A data folder without ``val/`` is refused by the CLI's own check while validation is on.

    Raises:
        ValueError: one line naming the option that switches validation off and the fixes.
    """
    model, trainer = config.model, config.trainer
    if model.get("lr_policy") != "plateau" or trainer.get("fast_dev_run"):
        return
    why = validation_off(trainer)
    if why is None:
        return
    raise ValueError(f"model.lr_policy=plateau steps on each validation's val/l1, but validation is off ({why}): "
                     "the LR would never change; validate (a val/ split and validation batches), or use "
                     "--model.lr_policy linear|step|cosine")


def check_seed(config) -> None:
    """Raises ValueError: a ``seed_everything`` that Lightning's ``seed_everything`` refuses (numpy
    takes seeds 0 to 2**32 - 1), named here rather than in Lightning's words without the option."""
    seed = config.get("seed_everything")
    if isinstance(seed, int) and not isinstance(seed, bool) and not 0 <= seed <= 2**32 - 1:
        raise ValueError(f"seed_everything={seed}: a seed is an integer from 0 to {2**32 - 1} (numpy's range)")


# -- options this GAN cannot honour ---------------------------------------------------------------
def refuse_unsupported(config) -> None:
    """Lightning options that the two-optimiser, manually optimised module would not honour.

    Raises:
        ValueError: naming the option and the one to use instead.
    """
    trainer = config.trainer
    if trainer.get("gradient_clip_val") is not None:
        raise ValueError("trainer.gradient_clip_val cannot be used with the GAN's manual optimisation (two "
                         "optimisers); use --model.grad_clip_norm VALUE (clips each player's gradient norm)")
    if trainer.get("gradient_clip_algorithm") is not None:  # Lightning ignores it without gradient_clip_val
        raise ValueError("trainer.gradient_clip_algorithm cannot be used with the GAN's manual optimisation (two "
                         "optimisers); use --model.grad_clip_norm VALUE (clips each player's gradient norm)")
    if trainer.get("accumulate_grad_batches") not in (None, 1):
        raise ValueError("trainer.accumulate_grad_batches is not supported by the GAN's manual optimisation; "
                         "raise --data.batch_size instead")
    for callback in trainer.get("callbacks") or []:  # the same through a callback: a traceback at the fit's start
        if str(_class_path(callback)).endswith("GradientAccumulationScheduler"):
            raise ValueError("trainer.callbacks: GradientAccumulationScheduler is not supported by the GAN's manual "
                             "optimisation; raise --data.batch_size instead")
    filename = (config.get("last_checkpoint") or {}).get("filename")
    if filename not in (None, "last"):  # --ckpt_path last, evaluate.py and export look for last.ckpt
        raise ValueError(f"last_checkpoint.filename {filename!r}: the newest checkpoint must be last.ckpt, which "
                         "--ckpt_path last, evaluate.py and pix2pix-aa-export look for (a resume trained a new run "
                         "from scratch); drop the option (checkpoint.filename names the best checkpoints)")
    # Spawned processes receive the trainer pickled, and the CLI's parsed config holds
    # jsonargparse's local lambdas: the fit stopped after start-up with a pickling traceback.
    strategy = trainer.get("strategy")
    init_args = (strategy.get("init_args") or {}) if hasattr(strategy, "get") else {}
    if (isinstance(strategy, str) and "spawn" in strategy) or init_args.get("start_method") in ("spawn", "forkserver"):
        raise ValueError("trainer.strategy: spawn-started processes (ddp_spawn, start_method spawn or forkserver) "
                         "cannot receive train.py's trainer (it does not pickle); use --trainer.strategy ddp "
                         "(Lightning starts the script once per process, or torchrun does) or ddp_fork")


def _class_path(callback: Any) -> Optional[str]:
    """A callback's class path, given as a config mapping or as an object."""
    if hasattr(callback, "get"):
        return callback.get("class_path")
    return f"{type(callback).__module__}.{type(callback).__name__}"


def callback_monitors(config) -> list[tuple[str, str]]:
    """``(class name, monitor)`` of each ``trainer.callbacks`` entry that has a ``monitor``
    (EarlyStopping, ModelCheckpoint), for the start-up check of the metric's name."""
    found = []
    for callback in config.trainer.get("callbacks") or []:
        args = (callback.get("init_args") or {}) if hasattr(callback, "get") else vars(callback)
        monitor = args.get("monitor")
        if monitor:
            found.append((str(_class_path(callback)).rsplit(".", 1)[-1], str(monitor)))
    return found


#: The reference pix2pix's options (``options/*.py`` of junyanz/pytorch-CycleGAN-and-pix2pix)
#: and what to pass here instead.
REFERENCE_FLAGS: dict[str, str] = {
    "direction": "--data.direction AtoB|BtoA",
    "dataroot": "--data.data_dir PATH",
    "dataset_mode": "--data.dataset aligned|paired|facades|photos|colorize",
    "name": "--trainer.logger.init_args.name NAME",
    "checkpoints_dir": "--trainer.logger.init_args.save_dir DIR",
    "netG": "--model.generator.init_args.num_downs 8 (unet_256) or 7 (unet_128)",
    "netD": "--model.discriminator.init_args.n_layers 3 (basic, 70x70) or --model.discriminator "
            "pix2pix_aa.networks.PixelDiscriminator (pixel)",
    "n_layers_D": "--model.discriminator.init_args.n_layers N",
    "ngf": "--model.generator.init_args.ngf N",
    "ndf": "--model.discriminator.init_args.ndf N",
    "norm": "--norm batch|instance|none (sets both networks)",
    "no_dropout": "--model.generator.init_args.dropout 0",
    "init_type": "--model.init_type normal|xavier|kaiming|orthogonal",
    "init_gain": "--model.init_gain X",
    "input_nc": "--data.input_nc N and --model.generator.init_args.in_channels N",
    "output_nc": "--data.output_nc N and --model.generator.init_args.out_channels N",
    "no_flip": "--data.no_flip true",
    "load_size": "--data.load_size N",
    "preprocess": "--data.preprocess resize_and_crop|crop|scale_width|scale_width_and_crop|none",
    "crop_size": "--data.crop_size N",
    "batch_size": "--data.batch_size N",
    "num_threads": "--data.num_workers N",
    "serial_batches": "(not supported: the training loader always shuffles, seeded by --data.seed)",
    "pool_size": "(not needed: pix2pix trains with pool_size 0, no image pool, as this module does)",
    "max_dataset_size": "--trainer.limit_train_batches N (batches per epoch; --data.max_val_images N for validation)",
    "use_dropout": "--model.generator.init_args.dropout 0.5 (0: none)",
    "gan_mode": "--model.gan_mode vanilla|lsgan|hinge",
    "lambda_L1": "--model.lambda_l1 X",
    "lr": "--model.lr X",
    "beta1": "--model.beta1 X",
    "n_epochs": "--model.n_epochs N",
    "n_epochs_decay": "--model.n_epochs_decay N",
    "lr_policy": "--model.lr_policy linear|step|plateau|cosine",
    "lr_decay_iters": "--model.lr_decay_iters N",
    "continue_train": "--ckpt_path last",
    "epoch_count": "--ckpt_path last (the epoch comes from the checkpoint)",
    "gpu_ids": "--trainer.accelerator gpu --trainer.devices N",
    "display_freq": "--model.log_images_every_n_batches N",
    "print_freq": "--trainer.log_every_n_steps N",
    "save_epoch_freq": "--checkpoint.every_n_epochs N",
}

#: LightningCLI / Trainer options this GAN does not take, and what to pass instead.
LIGHTNING_FLAGS: dict[str, str] = {
    "optimizer": "--model.lr / --model.beta1 / --model.beta2 (both players use Adam, as in pix2pix)",
    "lr_scheduler": "--model.lr_policy linear|step|plateau|cosine (and --model.lr_decay_iters)",
}


def suggest_option(flag: str, known: Optional[list[str]] = None) -> Optional[str]:
    """A hint for an unrecognised ``--flag``: the reference pix2pix's name, else the closest of
    ``known`` option names (difflib), else None."""
    name = flag.lstrip("-").split("=", 1)[0]
    root = name.split(".", 1)[0]
    if root in LIGHTNING_FLAGS:
        return f"--{root} (LightningCLI's) is not used by this GAN; use {LIGHTNING_FLAGS[root]}"
    if name in REFERENCE_FLAGS:
        hint = REFERENCE_FLAGS[name]
        return f"{flag.split('=', 1)[0]} is the reference pix2pix's option" + (
            f" {hint}" if hint.startswith("(") else f"; here: {hint}")
    if name.rsplit(".", 1)[-1] in REFERENCE_FLAGS and "." in name:
        tail = name.rsplit(".", 1)[-1]
        hint = REFERENCE_FLAGS[tail]
        # "did you mean (not supported: ...)?" read as garbled
        return f"{tail} is the reference pix2pix's option {hint}" if hint.startswith("(") else f"did you mean {hint}?"
    if known:
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        tail = [k for k in known if k.rsplit(".", 1)[-1] == name.rsplit(".", 1)[-1]]
        if tail:
            return f"did you mean --{tail[0]}?"
        if close:
            return f"did you mean --{close[0]}?"
    return None


# -- networks against data ----------------------------------------------------------------------
def check_model_and_data(generator: nn.Module, discriminator: nn.Module, datamodule: Any) -> None:
    """Channels and image size of the data against the networks, before anything is read.

    * generator ``in_channels`` / ``out_channels`` = data ``input_nc`` / ``output_nc``; the
      (conditional) discriminator's ``in_channels`` = their sum;
    * ``crop_size`` a multiple of the generator's ``size_multiple`` (2**num_downs), unless the
      generator pads its input;
    * the discriminator's output at ``crop_size`` is at least 1x1 and no BatchNorm (at batch 1) or
      InstanceNorm in it sees a single value per channel (1x1 fails mid-run with PyTorch's own message):
      checked by one forward pass of a zero image on the meta device (shapes only, no compute).

    Raises:
        ValueError: one line naming the options to change.
    """
    in_nc, out_nc = getattr(datamodule, "input_nc", 3), getattr(datamodule, "output_nc", 3)
    g_in, g_out = getattr(generator, "in_channels", None), getattr(generator, "out_channels", None)
    if g_in is not None and g_in != in_nc:
        raise ValueError(f"model.generator.init_args.in_channels={g_in} but data.input_nc={in_nc}: "
                         f"set both to the number of input channels (1 grayscale, 3 RGB)")
    if g_out is not None and g_out != out_nc:
        raise ValueError(f"model.generator.init_args.out_channels={g_out} but data.output_nc={out_nc}: "
                         f"set both to the number of target channels (1 grayscale, 3 RGB)")
    d_in = getattr(discriminator, "in_channels", None)
    if d_in is not None and d_in != in_nc + out_nc:
        raise ValueError(f"model.discriminator.init_args.in_channels={d_in} but the discriminator sees the input "
                         f"and the image concatenated: data.input_nc + data.output_nc = {in_nc} + {out_nc} = "
                         f"{in_nc + out_nc}; set --model.discriminator.init_args.in_channels {in_nc + out_nc}")
    crop = datamodule.crop_size
    multiple = getattr(generator, "size_multiple", None)
    # With these, the networks see each image's own (scaled) size, not crop_size; the data
    # module checks every image's size against the generator when it reads the headers.
    variable = getattr(datamodule, "preprocess", "resize_and_crop") in ("none", "scale_width")
    if variable:
        return
    step = multiple if multiple and not getattr(generator, "pad_input", False) else 1
    if crop % step:
        deepest = (crop & -crop).bit_length() - 1  # largest k with crop % 2**k == 0
        # A U-Net needs num_downs >= 2: an odd crop has no num_downs to offer.
        fewer = f"num_downs <= {deepest}, " if deepest >= 2 else ""
        # The example is one the discriminator takes too.
        nearest = max(step, crop // step * step)
        example = _smallest_crop(discriminator, d_in or in_nc + out_nc, nearest, step) or nearest
        raise ValueError(
            f"data.crop_size={crop} is not a multiple of 2**num_downs = {step} "
            f"(model.generator.init_args.num_downs={generator.num_downs}); use a crop_size that is a multiple "
            f"of {step} (e.g. {example}), {fewer}or model.generator.init_args.pad_input=true")
    _check_discriminator_size(discriminator, d_in or in_nc + out_nc, crop, step)


#: The shift term's options and their defaults: set away from them with the term off, they do nothing.
SHIFT_TERM_OPTIONS = {"shift_images": 1, "max_shift": 8, "shift_every": 1}


def check_shift_term(hparams: Any, datamodule: Any, training: bool = True) -> None:
    """The shift-equivariance term (``model.lambda_shift`` > 0) against the data: it shifts
    ``shift_images`` of each batch's inputs by up to ``max_shift - 1`` pixels with reflect padding.
    With the term off, ``training`` says in a notice which of its options are set and do nothing
    (not refused: turning the term off on resume keeps the checkpoint's other term options).

    Raises:
        ValueError: ``shift_images`` above ``data.batch_size``, or ``max_shift`` not below the crop
        size (reflection needs a pad smaller than the image). Data of variable size (preprocess
        ``none`` / ``scale_width``) are checked on each batch by the training step instead.
    """
    if not hparams.get("lambda_shift"):
        unused = [f"model.{k}={hparams.get(k)}" for k, default in SHIFT_TERM_OPTIONS.items()
                  if hparams.get(k, default) != default]
        if unused and training:
            notice(f"{', '.join(unused)}: no effect, the shift-equivariance term is off (model.lambda_shift 0)")
        return
    batch = getattr(datamodule, "batch_size", None)
    if batch is not None and hparams["shift_images"] > batch:
        raise ValueError(f"model.shift_images={hparams['shift_images']} exceeds data.batch_size={batch}: the shift "
                         f"term uses that many of each batch's inputs; set it to at most {batch}")
    crop = getattr(datamodule, "crop_size", None)
    if crop is not None and getattr(datamodule, "preprocess", "resize_and_crop") not in ("none", "scale_width"):
        problem = max_shift_problem(hparams["max_shift"], crop, crop, f"the data.crop_size={crop} crops")
        if problem:
            raise ValueError(problem)


def _kernel_sizes(err: Exception) -> str:
    """The sizes in PyTorch's "kernel larger than input" error, e.g. ``padded input 3x3, kernel 4x4``;
    its whole first line where that wording is not found (a cut there ended mid-word)."""
    text = " ".join(str(err).split())
    found = re.search(r"input size per channel: \((\d+) x (\d+)\)\. Kernel size: \((\d+) x (\d+)\)", text)
    if found is None:
        return text
    h, w, kh, kw = found.groups()
    return f"padded input {h}x{w}, kernel {kh}x{kw}"


def discriminator_size_problem(discriminator: nn.Module, channels: int, crop: int) -> Optional[str]:
    """Why ``discriminator`` cannot train on ``crop`` x ``crop`` images at batch 1, or None."""
    small: list[str] = []

    def watch(module: nn.Module, inputs: tuple) -> None:
        x = inputs[0]
        if x.shape[-2] * x.shape[-1] < 2:  # batch norm at batch 1; instance norm at any batch
            batch = " at batch 1" if isinstance(module, nn.modules.batchnorm._BatchNorm) else ""
            small.append(f"{module.__class__.__name__} at {x.shape[-2]}x{x.shape[-1]} would normalise a single "
                         f"value per channel{batch}")

    hooks = [m.register_forward_pre_hook(watch) for m in discriminator.modules()
             if isinstance(m, (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm))]
    try:
        # Meta tensors carry shapes through every layer without memory or arithmetic.
        with torch.device("meta"):
            x = torch.zeros(1, channels, crop, crop)
        out = _meta_forward(discriminator, x)
    except (RuntimeError, ValueError) as err:
        if isinstance(err, ValueError) and small:  # instance norm refuses a 1x1 map itself
            return f"its {small[0]}"
        return f"a layer's input would be smaller than its kernel ({_kernel_sizes(err)})"
    finally:
        for h in hooks:
            h.remove()
    if out is not None and (out.shape[-2] < 1 or out.shape[-1] < 1):
        return f"its output would be {out.shape[-2]}x{out.shape[-1]}"
    if small:
        return f"its {small[0]}"
    return None


def _smallest_crop(discriminator: nn.Module, channels: int, start: int, step: int) -> Optional[int]:
    """The smallest multiple of ``step`` from ``start`` on (up to 4096) that the discriminator
    takes, or None."""
    first = -(-start // step) * step
    return next((c for c in range(first, 4097, step) if discriminator_size_problem(discriminator, channels, c)
                 is None), None)


def _check_discriminator_size(discriminator: nn.Module, channels: int, crop: int, step: int = 1) -> None:
    """Raises ValueError: the discriminator cannot train at ``crop``; names the smallest crop above
    it that is a multiple of ``step`` (the generator's size multiple: a size that one takes and the
    generator refuses sent the user back and forth between the two messages)."""
    problem = discriminator_size_problem(discriminator, channels, crop)
    if problem is None:
        return
    smallest = _smallest_crop(discriminator, channels, crop + 1, step)
    fix = ("use a larger data.crop_size" if smallest is None else f"use data.crop_size >= {smallest}" if step == 1
           else f"use data.crop_size {smallest} (or a larger multiple of {step}, the generator's)")
    raise ValueError(f"data.crop_size={crop} is too small for the discriminator: {problem}; {fix} or fewer "
                     "model.discriminator.init_args.n_layers")


def _meta_forward(module: nn.Module, x: torch.Tensor) -> Optional[torch.Tensor]:
    """Run ``module`` on a meta tensor with meta copies of its parameters and buffers (the real
    ones stay where they are)."""
    from torch.func import functional_call

    state = {k: torch.empty_like(v, device="meta") for k, v in
             list(module.named_parameters()) + list(module.named_buffers())}
    was_training = module.training
    module.eval()  # no running-statistics update; shapes are the same as in training
    try:
        with torch.no_grad():
            return functional_call(module, state, (x,))
    finally:
        module.train(was_training)
