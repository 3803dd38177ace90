"""Pix2PixModule: the pix2pix conditional GAN (Isola et al. 2017) as a LightningModule.

``training_step`` reads as the algorithm: generate, one discriminator step on (input, real)
vs (input, fake.detach()) with the loss halved, one generator step on GAN + lambda_L1 * L1.
Manual optimisation, because the two players have their own optimisers and the D step must
finish before the G step reads D.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from typing import Any, Optional

import pytorch_lightning as pl
import torch
import torch.nn.functional as F
import torchvision
from pytorch_lightning.callbacks import ModelSummary
from pytorch_lightning.plugins.precision import MixedPrecision
from torch import nn

from pix2pix_aa.compat import batches_that_stepped, built_by_cli
from pix2pix_aa.console import notice
from pix2pix_aa.data.transforms import VARIABLE_SIZE
from pix2pix_aa.layers.padding import pad_to_multiple
from pix2pix_aa.losses import (
    GAN_MODES,
    gan_loss,
    generate_with_shift,
    max_shift_problem,
    shift_equivariance_l1,
    training_shift,
)
from pix2pix_aa.metrics import (
    COLLAPSE_CONTENT_RATIO,
    COLLAPSE_IMAGE_FRACTION,
    COLLAPSE_TV_RATIO,
    MAX_PSNR_DB,
    content_lost,
    pooled_psnr,
    quality,
    reflect_pad_source,
    shift_grid,
    stability_crop,
)
from pix2pix_aa.metrics.distribution import distribution_features, kid_from_features
from pix2pix_aa.metrics.flicker import same_channels
from pix2pix_aa.metrics.psnr import scale_known
from pix2pix_aa.networks import PatchGANDiscriminator, UNetGenerator, init_weights

__all__ = ["LR_POLICIES", "MONITORABLE", "Pix2PixModule", "linear_decay_factor", "load_weights"]

#: LR schedules as the reference pix2pix names them (``--lr_policy``).
LR_POLICIES: tuple[str, ...] = ("linear", "step", "plateau", "cosine")


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """pix2pix LR multiplier: 1 for ``n_epochs`` epochs, then linear decay towards 0 over
    ``n_epochs_decay`` epochs (reference: ``1 - max(0, e + 1 - n) / (n_decay + 1)``), and never
    below 0: an epoch past the schedule keeps LR 0 instead of a negative one, which Adam would
    turn into ascent."""
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))


#: What the module logs, by the names ``checkpoint.monitor`` takes (Lightning's): the validation
#: metrics (``val/kid*`` with ``val_kid``), the training losses as epoch means, per step
#: (``_step``) and per epoch (``_epoch``; ``loss_G_shift`` with the shift term), the LRs, and the
#: epoch and step counters Lightning adds. A misspelt monitor failed at the first validation, an
#: epoch or two in, with no last.ckpt written.
VAL_METRICS = ("val/l1", "val/psnr", "val/ssim", "val/tv", "val/tv_target", "val/tv_ratio", "val/content_lost",
               "val/stability_psnr", "val/kid", "val/kid_std")
TRAIN_LOSSES = ("train/loss_G", "train/loss_D", "train/loss_G_GAN", "train/loss_G_L1", "train/loss_G_shift",
                "train/loss_D_real", "train/loss_D_fake")
MONITORABLE = (*VAL_METRICS, *(f"{k}{suffix}" for k in TRAIN_LOSSES for suffix in ("", "_step", "_epoch")),
               "lr/G", "lr/D", "epoch", "step")

#: Validation metrics where higher is better (a best checkpoint by them takes ``mode max``), and
#: those with no better direction (TV is sharpness, its ratio best at 1; the targets' TV is the data's).
HIGHER_IS_BETTER = ("val/psnr", "val/ssim", "val/stability_psnr")
NO_BETTER_DIRECTION = ("val/tv", "val/tv_target", "val/tv_ratio", "val/kid_std")

#: The options that set a run's LR at each epoch: a resume that changes one recomputes the LR.
SCHEDULE_OPTIONS = ("lr", "lr_policy", "n_epochs", "n_epochs_decay", "lr_decay_iters")


def schedule_factor(policy: str, epoch: int, n_epochs: int, n_epochs_decay: int,
                    lr_decay_iters: int) -> Optional[float]:
    """The LR multiplier of ``policy`` at 0-based ``epoch``, as the reference's schedulers give it
    from the start of a run (``linear``: :func:`linear_decay_factor`; ``step``: 0.1 every
    ``lr_decay_iters`` epochs; ``cosine``: annealing to 0 over ``n_epochs``, torch's closed form);
    None for ``plateau``, whose LR follows the validation history."""
    if policy == "linear":
        return linear_decay_factor(epoch, n_epochs, n_epochs_decay)
    if policy == "step":
        return 0.1 ** (epoch // lr_decay_iters)
    if policy == "cosine":
        return (1 + math.cos(math.pi * epoch / max(1, n_epochs))) / 2
    return None


def load_weights(net: nn.Module, path: str, name: str, data: Optional[dict] = None) -> None:
    """Load ``net``'s weights from a train.py checkpoint (its ``<name>.*`` entries), a bare
    state_dict file, or a reference pix2pix / CycleGAN file (``latest_net_G.pth`` /
    ``latest_net_D.pth``, recognised from its keys: :mod:`pix2pix_aa.reference`), exactly
    (every key, every shape). ``data``: the file as a caller already read it
    (:func:`pix2pix_aa.checkpoints.read_checkpoint`), so it is not read twice.

    Raises:
        ValueError: one line naming the file, the option and what did not match.
    """
    from pix2pix_aa.checkpoints import CheckpointError, read_checkpoint

    option = f"model.{name}_weights"
    try:
        data = read_checkpoint(path, lightning=False) if data is None else data
    except CheckpointError as err:
        raise ValueError(f"{option}: {err}") from None
    if isinstance(data, dict) and isinstance(data.get("state_dict"), dict):
        prefix = f"{name}."
        state = {k[len(prefix):]: v for k, v in data["state_dict"].items() if k.startswith(prefix)}
        if not state:
            raise ValueError(f"{option}: {path} holds no {name} weights (no '{prefix}*' entries in its state_dict)")
    elif isinstance(data, dict) and data and all(isinstance(v, torch.Tensor) for v in data.values()):
        state = data
        from pix2pix_aa.reference import is_reference_state_dict, map_reference_state_dict

        if set(state) != set(net.state_dict()) and is_reference_state_dict(state):  # a reference pix2pix file
            try:
                state = map_reference_state_dict(state, net, f"model.{name}")
            except ValueError as err:
                raise ValueError(f"{option}: {path}: {err}") from None
    else:
        raise ValueError(f"{option}: {path} is neither a train.py checkpoint nor a state_dict of tensors")
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    wrong = [k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        shapes = [(k, tuple(state[k].shape), tuple(own[k].shape)) for k in wrong[:1]]
        detail = (f"{len(missing)} missing (e.g. {missing[:2]}), {len(unexpected)} unexpected (e.g. {unexpected[:2]}), "
                  f"{len(wrong)} of another shape (e.g. {shapes})")
        raise ValueError(f"{option}: {path} does not fit model.{name} ({detail}); the network options (ngf, "
                         "num_downs, norm, channels) must be those the weights were trained with")
    net.load_state_dict(state)


@contextlib.contextmanager
def frozen(net: nn.Module) -> Iterator[None]:
    """``net``'s parameters take no gradient inside the block; each one's ``requires_grad`` is
    restored after it (a parameter frozen before stays frozen)."""
    saved = [(p, p.requires_grad) for p in net.parameters()]
    for p, _ in saved:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in saved:
            p.requires_grad_(flag)


def to_unit(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> [0, 1] for image logging."""
    return (x.detach().float().clamp(-1, 1) + 1) / 2


#: The side S of the quick validation stability's shift grid [0, S)^2 (``val/stability_psnr``):
#: evaluate.py's default grid, the paper's 8 x 8 = 64 shifts. A measurement protocol, fixed, and
#: deliberately not the ``max_shift`` hyper-parameter, which sets the training shift term's grid.
VAL_STABILITY_GRID = 8


#: Checkpoint key of the Trainer options a resumed fit keeps (``{"precision": "bf16-mixed"}``), and
#: the number of processes it trained in (``world_size``).
TRAINER_OPTIONS_KEY = "pix2pix_aa_trainer"
#: Checkpoint key of the FID Inception weights that scored ``val/kid`` (path, source, sha256, resize).
VAL_KID_WEIGHTS_KEY = "pix2pix_aa_val_kid_weights"


class Pix2PixModule(pl.LightningModule):
    """pix2pix GAN training with optional anti-aliased networks.

    Args:
        generator: any image -> image network (default ``UNetGenerator()``, the reference
            ``unet_256``). From YAML: ``class_path`` / ``init_args``.
        discriminator: conditional discriminator on concat(input, image) (default 70x70 PatchGAN).
        gan_mode: ``vanilla`` | ``lsgan`` | ``hinge``.
        lambda_l1: weight of the L1 reconstruction term (100 in pix2pix).
        lambda_shift: weight of a shift-equivariance term (0 = off, pix2pix's objective): each
            step, the first ``shift_images`` inputs also go through G shifted by one nonzero
            shift of the [0, max_shift)^2 grid (``losses.training_shift``: a function of the step),
            in the same forward pass as the batch, and G is penalised by the L1 distance of the
            two outputs on the region both show (``losses.shift_equivariance_l1``: the error the
            crop-protocol stability reads). Costs G a forward/backward of those extra images.
        shift_images: inputs per step that the shift term uses (1..batch size).
        shift_every: apply the shift term on every k-th training iteration only (1 = every one,
            the default), at weight ``lambda_shift`` there. k > 1 cuts the term's cost by (k - 1) / k
            (at batch 1 the term is about a third of an iteration: docs/PERFORMANCE.md section 10)
            and changes the trained model; whether it keeps the term's stability gain is measured,
            not assumed (same section). Without the term (``lambda_shift`` 0) it does nothing, and
            train.py says so at start-up.
        max_shift: the side S of the shift term's grid (training only; evaluate.py's default grid is
            8). The validation stability figure does not use it: it is always measured on
            :data:`VAL_STABILITY_GRID`, so runs trained with different grids are measured alike.
        lr, beta1, beta2: Adam settings for both players.
        fused_adam: use PyTorch's fused Adam kernel (one kernel for all of a player's parameters):
            the same update to float32 rounding (max |diff| 7e-9 after 20 steps), 4.5x faster
            optimiser step for unet_256 on CPU (docs/PERFORMANCE.md). Falls back to the default
            implementation, with a warning, on devices without the fused kernel, and silently
            when ``grad_clip_norm`` is combined with mixed precision (Lightning refuses to clip a
            fused optimiser's gradients there).
        channels_last: keep both networks' weights, and so their activations, in channels-last
            memory format during a fit. With bf16 autocast on a CPU with AMX a training
            iteration is 8-17% faster than bf16 alone (docs/PERFORMANCE.md section 11); in float32
            it was 0-11% slower on both CPUs measured, so it is off. The same arithmetic in another
            summation order: float rounding apart, the same model.
        n_epochs, n_epochs_decay: constant LR for ``n_epochs``, then linear decay to 0 over
            ``n_epochs_decay`` (``lr_policy=linear``). The Trainer's ``max_epochs`` must equal
            their sum (train.py derives it when unset and refuses a mismatch).
        lr_policy: the reference pix2pix's schedules: ``linear`` (above), ``step`` (x0.1 every
            ``lr_decay_iters`` epochs), ``plateau`` (x0.2 when ``val/l1`` has not improved by 1%
            for 5 validations; one step per validation, so it needs validation on: train.py
            refuses it otherwise), ``cosine`` (cosine annealing to 0 over ``n_epochs`` epochs, then
            rising again over ``n_epochs_decay``, as the reference's ``CosineAnnealingLR``).
        lr_decay_iters: the step of ``lr_policy=step``, in epochs (reference: 50).
        init_type, init_gain: weight initialisation (pix2pix: normal(0, 0.02)).
        generator_weights, discriminator_weights: start a new fit from these weights instead of
            the initialisation: a train.py checkpoint (``.ckpt``) or a bare state_dict file
            (``.pth``, e.g. a baseline's weights for an anti-aliased generator: anti-aliasing adds
            no parameters, so the names and shapes are the same). Loaded when a fit starts from
            scratch; a resumed fit (``--ckpt_path``) takes its checkpoint's weights instead.
            train.py validate / test / predict without ``--ckpt_path`` load ``generator_weights``
            too (pix2pix_aa.cli).
        grad_clip_norm: clip each player's gradient norm to this (> 0; None = no clipping; Trainer's
            gradient_clip_val is refused under manual optimisation).
        on_nonfinite: ``raise`` (stop with a message naming the loss and step) or ``skip`` the step.
        log_images_every_n_batches: training image grids (input | generated | target); 0 = off.
        num_log_images: images per grid.
        val_stability_images / val_stability_shifts: a quick crop-protocol stability PSNR on the
            first validation images over a few shifts, so training curves show stability too.
        val_kid: opt-in KID between the generated and the target images of each validation
            (``val/kid``, ``val/kid_std``; :mod:`pix2pix_aa.metrics.distribution`), so training curves
            show distribution quality too and the best checkpoint can be ranked by it (train.py
            then monitors ``val/kid``). Needs the FID Inception weights (``PIX2PIX_AA_FID_WEIGHTS``,
            the torch.hub cache, or a download on first use); without them one line says so and
            validation goes on without it. Costs an Inception pass (299 x 299) per validation
            image and target.
    """

    def __init__(
        self,
        generator: Optional[nn.Module] = None,
        discriminator: Optional[nn.Module] = None,
        gan_mode: str = "vanilla",
        lambda_l1: float = 100.0,
        lambda_shift: float = 0.0,
        shift_images: int = 1,
        shift_every: int = 1,
        max_shift: int = 8,
        lr: float = 2e-4,
        beta1: float = 0.5,
        beta2: float = 0.999,
        fused_adam: bool = True,
        channels_last: bool = False,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        lr_policy: str = "linear",
        lr_decay_iters: int = 50,
        init_type: str = "normal",
        init_gain: float = 0.02,
        generator_weights: Optional[str] = None,
        discriminator_weights: Optional[str] = None,
        grad_clip_norm: Optional[float] = None,
        on_nonfinite: str = "raise",
        log_images_every_n_batches: int = 100,
        num_log_images: int = 4,
        val_stability_images: int = 2,
        val_stability_shifts: int = 4,
        val_kid: bool = False,
    ) -> None:
        super().__init__()
        if gan_mode not in GAN_MODES:
            raise ValueError(f"unknown gan_mode {gan_mode!r}; valid: {', '.join(map(repr, GAN_MODES))}")
        if on_nonfinite not in ("raise", "skip"):
            raise ValueError(f"on_nonfinite must be 'raise' or 'skip', got {on_nonfinite!r}")
        if n_epochs < 0 or n_epochs_decay < 0:
            raise ValueError("n_epochs and n_epochs_decay must be >= 0")
        if not lr > 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 <= beta < 1:
                raise ValueError(f"model.{name} must be in [0, 1) (an Adam moment's decay; pix2pix: beta1 0.5, "
                                 f"beta2 0.999), got {beta}")
        if grad_clip_norm is not None and not grad_clip_norm > 0:
            raise ValueError(f"model.grad_clip_norm must be > 0 (the largest gradient norm per player) or null "
                             f"for no clipping, got {grad_clip_norm}")
        if lambda_l1 < 0:
            raise ValueError(f"lambda_l1 must be >= 0 (the weight of the L1 term; pix2pix: 100), got {lambda_l1}")
        if lambda_shift < 0:
            raise ValueError(f"model.lambda_shift must be >= 0 (the weight of the shift-equivariance term; 0 = off), "
                             f"got {lambda_shift}")
        if not isinstance(shift_images, int) or shift_images < 1:
            raise ValueError(f"model.shift_images must be an int >= 1 (inputs per step the shift term uses), "
                             f"got {shift_images!r}")
        if not isinstance(shift_every, int) or shift_every < 1:
            raise ValueError(f"model.shift_every must be an int >= 1 (the shift term on every k-th iteration), "
                             f"got {shift_every!r}")
        try:
            training_shift(0, max_shift)  # raises on a max_shift without nonzero shifts
        except ValueError as e:
            raise ValueError(f"model.{e}") from None
        if lr_policy not in LR_POLICIES:
            raise ValueError(f"lr_policy must be one of {', '.join(LR_POLICIES)}, got {lr_policy!r}")
        if lr_decay_iters < 1:
            raise ValueError(f"lr_decay_iters must be >= 1, got {lr_decay_iters}")
        # Checked here, not where they are used: a negative count turned into every batch's grid or
        # all but the last images (Python's % and slicing), val_stability_shifts out of range failed
        # at the first validation naming max_shift, and a negative init_gain in torch's init.
        grid = VAL_STABILITY_GRID ** 2  # the shifts of the validation's grid, [0, 8)^2
        for option, value, low, high, meaning in (
                ("log_images_every_n_batches", log_images_every_n_batches, 0, None, "0 = off"),
                ("num_log_images", num_log_images, 1, None, "images per grid"),
                ("val_stability_images", val_stability_images, 0, None, "0 = off"),
                ("val_stability_shifts", val_stability_shifts, 1, grid,
                 f"shifts from the validation's {VAL_STABILITY_GRID} x {VAL_STABILITY_GRID} grid")):
            if not isinstance(value, int) or value < low or (high is not None and value > high):
                span = f"in {low}..{high}" if high is not None else f">= {low}"
                raise ValueError(f"model.{option} must be an int {span} ({meaning}), got {value!r}")
        if not init_gain >= 0:
            raise ValueError(f"model.init_gain must be >= 0 (the initial weights' scale; pix2pix: 0.02), got "
                             f"{init_gain}")
        # From LightningCLI the networks arrive as class_path/init_args dicts, which must be kept
        # (evaluate.py rebuilds the generator from them). Networks passed as objects from Python are
        # ignored: otherwise Lightning deep-copies them into hparams_initial and the logger writes
        # every weight to hparams.yaml at each fit (minutes for unet_256; see docs/PERFORMANCE.md).
        ignore = [] if built_by_cli() else [
            k for k, v in (("generator", generator), ("discriminator", discriminator)) if isinstance(v, nn.Module)]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*is an instance of `nn.Module`")
            self.save_hyperparameters(ignore=ignore)
        self.automatic_optimization = False
        self.generator = generator if generator is not None else UNetGenerator()
        self.discriminator = discriminator if discriminator is not None else PatchGANDiscriminator()
        init_weights(self.generator, init_type, init_gain)
        init_weights(self.discriminator, init_type, init_gain)
        # Per-epoch and per-batch state, None / empty outside the hooks that fill them:
        # BatchNorm buffers before the batch (on_nonfinite=skip puts them back after a NaN),
        self._buffers_before_batch: dict[str, torch.Tensor] = {}
        # outputs' and targets' total variation summed over the epoch's images (collapse check),
        self._tv_sums: Optional[list[float]] = None
        # the epoch's quick stability results (first val_stability_images images),
        self._stability_parts: Optional[list] = None
        # each validation batch's (generated, target) distribution features for val/kid (val_kid on),
        self._kid_features: list = []
        # the learning rates the current training epoch runs with (logged at its end as lr/*),
        self._epoch_lrs: dict[str, float] = {}
        # and predict's (tile, tile_overlap) from the data module (None: whole images).
        self._predict_tiling: Optional[tuple[int, Optional[int]]] = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.generator(x)

    # -- optimisation -------------------------------------------------------------------------
    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, hp.beta2)
        opt_g = self._adam(self.generator, betas)
        opt_d = self._adam(self.discriminator, betas)
        return [opt_g, opt_d], [self._scheduler(opt) for opt in (opt_g, opt_d)]

    def _scheduler(self, opt: torch.optim.Optimizer):
        """The reference pix2pix's ``get_scheduler`` (models/networks.py), per player."""
        hp = self.hparams
        sched = torch.optim.lr_scheduler
        if hp.lr_policy == "linear":
            return sched.LambdaLR(opt, lambda epoch: linear_decay_factor(epoch, hp.n_epochs, hp.n_epochs_decay))
        if hp.lr_policy == "step":
            return sched.StepLR(opt, step_size=hp.lr_decay_iters, gamma=0.1)
        if hp.lr_policy == "plateau":
            return sched.ReduceLROnPlateau(opt, mode="min", factor=0.2, threshold=0.01, patience=5)
        return sched.CosineAnnealingLR(opt, T_max=max(1, hp.n_epochs), eta_min=0)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # The Trainer options a resumed fit must continue with, which Lightning does not record
        # (pix2pix_aa.resume keeps them unless the command line changes them).
        # world_size: said on a resume in another number of processes (not recorded by Lightning).
        checkpoint[TRAINER_OPTIONS_KEY] = {"precision": str(self.trainer.precision),
                                           "world_size": int(self.trainer.world_size)}
        if self.__dict__.get("_kid_weights"):  # which Inception scored val/kid (and ranked best-*.ckpt)
            checkpoint[VAL_KID_WEIGHTS_KEY] = self.__dict__["_kid_weights"]

    def setup(self, stage: str) -> None:
        # Before the optimisers are built and a checkpoint is restored: the parameters keep their
        # identity (``Module.to`` swaps their data), and loading copies into the new layout.
        if stage == "fit" and self.hparams.channels_last:
            self.to(memory_format=torch.channels_last)
        # The model summary's sizes and FLOPs come from one forward pass of this input (eval mode:
        # no batch-norm statistics move, no random number is drawn); without it Lightning printed
        # "0 Total Flops". Only where every image has the crop's size.
        data = self._trainer.datamodule if self._trainer is not None else None
        crop, channels = getattr(data, "crop_size", None), getattr(self.generator, "in_channels", None)
        if stage != "fit" or not crop or not channels:
            return
        summary = any(isinstance(c, ModelSummary) for c in self._trainer.callbacks)
        preprocess = getattr(data, "preprocess", None)
        if preprocess not in (None, *VARIABLE_SIZE):
            self.example_input_array = torch.zeros(1, channels, crop, crop)
            if summary:
                notice(f"model summary: sizes and FLOPs of the generator's forward pass on one {crop}x{crop} image "
                       "(the discriminator is not run there: its FLOPs read 0)")
        elif summary and preprocess in VARIABLE_SIZE:  # its "0 Total Flops" would read as a measurement
            sized = "keeps each image's own size" if preprocess == "none" else "keeps each image's aspect ratio"
            notice(f"model summary: no sizes or FLOPs (they read 0): data.preprocess={preprocess} {sized}, so no "
                   "one input stands for them")

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # The options the checkpoint was trained with, for on_train_start: a resume may change the
        # schedule (train.py lets it), which the restored schedulers do not know.
        self._checkpoint_hparams = dict(checkpoint.get("hyper_parameters") or {})
        if self._checkpoint_hparams.get("lr_policy", self.hparams.lr_policy) != self.hparams.lr_policy:
            # Another policy's scheduler state: loading it into this one fails (LambdaLR wants its
            # lr_lambdas) or carries the old schedule's counters; on_train_start sets the new one.
            checkpoint["lr_schedulers"] = []

    def on_fit_start(self) -> None:
        if self.trainer.ckpt_path is not None:  # resuming: the checkpoint's weights win
            return
        for name, path in (("generator", self.hparams.generator_weights),
                           ("discriminator", self.hparams.discriminator_weights)):
            if path:
                load_weights(getattr(self, name), path, name)
                # notice, not self.print: before the first epoch the progress bar swallows self.print's line
                notice(f"model.{name}_weights: initialised the {name} from {path}")

    def on_train_start(self) -> None:
        # A resumed run restores each optimiser's lr/betas and each scheduler's base LR from the
        # checkpoint, which would silently drop a changed --model.lr / --model.beta1 (train.py
        # lets schedule and optimiser options change on resume). Re-apply them: for an unchanged
        # run this recomputes the very value the checkpoint holds.
        hp = self.hparams
        self._skipped_this_fit: dict[str, int] = {}
        self._first_iteration = batches_that_stepped(self.trainer)
        total = self._planned_iterations()
        if hp.lambda_shift and hp.shift_every > 1 and hp.shift_every >= total:
            notice(f"model.shift_every={hp.shift_every} is not below this run's {int(total)} training iterations: the "
                   "shift-equivariance term is applied on its first iteration only")
        for opt, scheduler in zip(self.optimizers(), self.lr_schedulers()):
            for group in opt.param_groups:
                group["betas"] = (hp.beta1, hp.beta2)
                group["initial_lr"] = hp.lr
            if self._schedule_changed():
                self._restart_schedule(opt, scheduler)
            elif isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                scheduler.base_lrs = [hp.lr] * len(opt.param_groups)
                factor = linear_decay_factor(self.current_epoch, hp.n_epochs, hp.n_epochs_decay)
                for group in opt.param_groups:
                    group["lr"] = hp.lr * factor

    def _schedule_changed(self) -> bool:
        """Whether this fit resumes a checkpoint trained with other schedule options."""
        before = getattr(self, "_checkpoint_hparams", None)
        if self.trainer.ckpt_path is None or before is None:
            return False
        return any(before.get(key, self.hparams[key]) != self.hparams[key] for key in SCHEDULE_OPTIONS)

    def _restart_schedule(self, opt: torch.optim.Optimizer, scheduler: Any) -> None:
        """Put the LR of a resumed fit whose schedule options changed where the new schedule has it at
        this epoch. The step and cosine schedulers scale the optimiser's restored LR each epoch and
        the restored state kept the old step size and length: a resume from a finished linear run went
        on at LR 0, and a changed ``--model.lr`` was never used. ``plateau`` has no closed form: a
        changed LR scales the restored one; from another policy it starts at ``lr``."""
        hp, epoch = self.hparams, self.current_epoch
        sched = torch.optim.lr_scheduler
        if isinstance(scheduler, sched.StepLR):
            scheduler.step_size, scheduler.gamma = hp.lr_decay_iters, 0.1
        elif isinstance(scheduler, sched.CosineAnnealingLR):
            scheduler.T_max, scheduler.eta_min = max(1, hp.n_epochs), 0
        factor = schedule_factor(hp.lr_policy, epoch, hp.n_epochs, hp.n_epochs_decay, hp.lr_decay_iters)
        before = self._checkpoint_hparams
        for group in opt.param_groups:
            if factor is not None:
                group["lr"] = hp.lr * factor
            elif before.get("lr_policy") == "plateau" and before.get("lr"):
                group["lr"] = group["lr"] * hp.lr / before["lr"]
            else:
                group["lr"] = hp.lr
        if not isinstance(scheduler, sched.ReduceLROnPlateau):
            scheduler.base_lrs = [hp.lr] * len(opt.param_groups)
            scheduler.last_epoch = epoch  # the restored one's; 0 when another policy's state was dropped
        scheduler._last_lr = [group["lr"] for group in opt.param_groups]

    def _planned_iterations(self) -> float:
        """Training iterations (batches) this fit runs in all, resumed ones included: max_epochs'
        batches, half of Lightning's max_steps (G and D each take an optimiser step per iteration) or
        train.py's ``--trainer.max_steps`` (counted in iterations by StopAfterIterations), the
        fewest; inf when none bounds it."""
        from pix2pix_aa.callbacks.training import StopAfterIterations

        trainer, bounds = self.trainer, [math.inf]
        if trainer.max_epochs and trainer.max_epochs > 0:
            bounds.append(trainer.num_training_batches * trainer.max_epochs)
        if trainer.max_steps and trainer.max_steps > 0:
            bounds.append(trainer.max_steps // 2)
        bounds += [c.iterations for c in trainer.callbacks if isinstance(c, StopAfterIterations)]
        return min(bounds)

    def _adam(self, net: nn.Module, betas: tuple[float, float]) -> torch.optim.Adam:
        params = list(net.parameters())
        # Lightning's mixed precision refuses to clip the gradients of a fused optimiser (it would
        # unscale them inside its step, after the clipping); clipping wins.
        clip_in_mixed = bool(self.hparams.grad_clip_norm) and isinstance(
            getattr(self._trainer, "precision_plugin", None), MixedPrecision)
        if self.hparams.fused_adam and not clip_in_mixed:
            try:
                return torch.optim.Adam(params, lr=self.hparams.lr, betas=betas, fused=True)
            except RuntimeError as err:  # e.g. a device type without the fused kernel
                warnings.warn(f"fused Adam unavailable ({err}); using the default Adam implementation", stacklevel=2)
        return torch.optim.Adam(params, lr=self.hparams.lr, betas=betas)

    def training_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        opt_g, opt_d = self.optimizers()
        real_a, real_b = batch["input"], batch["target"]
        n, hp = real_a.shape[0], self.hparams
        step = batches_that_stepped(self.trainer) if hp.lambda_shift else 0
        with_term = bool(hp.lambda_shift) and step % hp.shift_every == 0
        if with_term:
            # train.py checks shift_images <= batch_size; an epoch's last batch may hold fewer.
            k, shift = min(hp.shift_images, n), training_shift(step, hp.max_shift)
            # Variable-size data (preprocess none) are not checked at start-up: each batch is.
            problem = max_shift_problem(hp.max_shift, *real_a.shape[-2:], "this batch's images")
            if problem:
                raise ValueError(problem)
            fake_b, fake_shifted = generate_with_shift(self.generator, real_a, k, shift)
        else:
            fake_b = self.generator(real_a)

        # 1. Discriminator: real pairs -> 1, generated pairs -> 0; halved as in pix2pix. G is
        # out of this graph (fake_b is detached), so nothing needs switching off for the D step.
        loss_d_real = self._gan(self.discriminator(torch.cat([real_a, real_b], 1)), True)
        loss_d_fake = self._gan(self.discriminator(torch.cat([real_a, fake_b.detach()], 1)), False)
        loss_d = 0.5 * (loss_d_real + loss_d_fake)
        d_ok = self._check_finite("loss_D", loss_d, batch_idx)
        if d_ok:
            self._step(opt_d, loss_d, self.discriminator)

        # 2. Generator: fool the (just updated) discriminator and stay close to the target in L1.
        # D's weights take no gradient here (the reference's set_requires_grad(netD, False)):
        # switched off on D alone, which is what Lightning's toggled_optimizer did over every
        # parameter of both players at each step.
        with frozen(self.discriminator):
            loss_g_gan = self._gan(self.discriminator(torch.cat([real_a, fake_b], 1)), True, for_d=False)
            loss_g_l1 = F.l1_loss(fake_b, real_b) * self.hparams.lambda_l1
            loss_g = loss_g_gan + loss_g_l1
            if with_term:  # 3. and commute with the shift (crop protocol)
                loss_g_shift = shift_equivariance_l1(fake_b[:k], fake_shifted, shift) * hp.lambda_shift
                loss_g = loss_g + loss_g_shift
                if hp.shift_every == 1:
                    self.log("train/loss_G_shift", loss_g_shift, on_step=True, on_epoch=True, batch_size=k)
                else:  # per step, Lightning would repeat this value at the steps without the term
                    self.log("train/loss_G_shift_epoch", loss_g_shift, on_step=False, on_epoch=True, batch_size=k)
            g_ok = self._check_finite("loss_G", loss_g, batch_idx)
            if g_ok:
                self._step(opt_g, loss_g, self.generator)

        self.log_dict({"train/loss_G_GAN": loss_g_gan, "train/loss_G_L1": loss_g_l1,
                       "train/loss_D_real": loss_d_real, "train/loss_D_fake": loss_d_fake},
                      on_step=True, on_epoch=True, batch_size=n)
        self.log_dict({"train/loss_G": loss_g, "train/loss_D": loss_d}, on_step=True, on_epoch=True,
                      prog_bar=True, batch_size=n)
        every = self.hparams.log_images_every_n_batches
        if every and batch_idx % every == 0:
            self._log_grid("train/images", real_a, fake_b, real_b)

    def _gan(self, logits: torch.Tensor, real: bool, for_d: bool = True) -> torch.Tensor:
        return gan_loss(logits, real, self.hparams.gan_mode, for_discriminator=for_d)

    def _step(self, opt, loss: torch.Tensor, net: nn.Module) -> None:
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        if self.hparams.grad_clip_norm:
            self.clip_gradients(opt, gradient_clip_val=self.hparams.grad_clip_norm, gradient_clip_algorithm="norm")
        opt.step()
        # Free the gradients now rather than at the next step: G's are 218 MB for unet_256, and
        # keeping them through the next forward passes raised the batch-1 peak memory past 2 GB.
        opt.zero_grad(set_to_none=True)

    def _check_finite(self, name: str, loss: torch.Tensor, batch_idx: int) -> bool:
        if torch.isfinite(loss).item():
            return True
        where = f"epoch {self.current_epoch}, batch {batch_idx} (logged step {self.logging_step})"
        if self.hparams.on_nonfinite == "raise":
            raise FloatingPointError(
                f"non-finite {name} = {loss.item()} at {where}. Lower the learning rate, check the data "
                "for NaNs, or set model.on_nonfinite=skip to skip such steps.")
        self.print(f"warning: skipped the optimiser step: non-finite {name} = {loss.item()} at {where}")
        # The epoch's count: a per-step value would be repeated by Lightning at every later step of the
        # epoch (it re-logs a step key's last value), so each looked skipped.
        self.log(f"train/skipped_{name}", 1.0, on_step=False, on_epoch=True, reduce_fx="sum")
        self._skipped_this_fit[name] = self._skipped_this_fit.get(name, 0) + 1
        # The forward passes already updated BatchNorm's running statistics with this batch:
        # put them back, or one NaN batch leaves every later eval output NaN.
        for buf_name, buf in self.named_buffers():
            saved = self._buffers_before_batch.get(buf_name)
            if saved is not None:
                buf.copy_(saved)
        return False

    def on_train_end(self) -> None:
        # on_nonfinite skip: each skipped step had its own line; say at the end what it came to, and
        # loudest when nothing was trained at all (the checkpoint then holds the initial weights).
        done = batches_that_stepped(self.trainer) - self._first_iteration
        skipped = self._skipped_this_fit
        if not skipped:
            return
        counts = ", ".join(f"{n} {name}" for name, n in skipped.items())
        if done and all(skipped.get(loss, 0) >= done for loss in ("loss_D", "loss_G")):
            notice(f"model.on_nonfinite=skip: every one of this fit's {done} iterations skipped its optimiser steps "
                   f"({counts}): the weights were never updated. Lower the learning rate or check the data.")
        else:
            notice(f"model.on_nonfinite=skip: optimiser steps skipped for non-finite losses in this fit's {done} "
                   f"iterations: {counts}")

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        if self.hparams.on_nonfinite == "skip":  # snapshot for _check_finite (BatchNorm buffers: a few KB)
            self._buffers_before_batch = {n: b.detach().clone() for n, b in self.named_buffers()}

    def on_train_epoch_start(self) -> None:
        # The LRs this epoch trains with, logged at its end: plateau steps at the epoch's validation,
        # which runs before on_train_epoch_end, so reading them there logged each reduction one epoch early.
        opt_g, opt_d = self.optimizers()
        self._epoch_lrs = {"lr/G": opt_g.param_groups[0]["lr"], "lr/D": opt_d.param_groups[0]["lr"]}

    def on_train_epoch_end(self) -> None:
        self.log_dict(self._epoch_lrs)
        for scheduler in self.lr_schedulers():
            # ReduceLROnPlateau steps in on_validation_end instead, once per fresh val/l1.
            if not isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                with warnings.catch_warnings():  # on_nonfinite skip can leave an epoch without opt.step()
                    warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
                    scheduler.step()

    def on_validation_end(self) -> None:
        # lr_policy plateau: one step per validation, on the val/l1 it has just computed (here,
        # after Lightning reduced the epoch's metrics). Stepping at each epoch's end instead
        # re-read a stale val/l1 when validation runs every k epochs, so "5 validations without
        # improvement" came after fewer validations. Not in the sanity check, nor outside a fit.
        if self.trainer.sanity_checking or self.trainer.state.fn != "fit":
            return
        metric = self.trainer.callback_metrics.get("val/l1")
        schedulers = self.lr_schedulers() or []
        for scheduler in schedulers if isinstance(schedulers, list) else [schedulers]:
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau) and metric is not None:
                scheduler.step(float(metric))

    # -- evaluation ---------------------------------------------------------------------------
    def validation_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "val")

    def test_step(self, batch: dict[str, Any], batch_idx: int) -> None:
        self._evaluate(batch, batch_idx, "test")

    # The data module mapped the images to [-1, 1]: a batch of bright ones (edge maps with no edge)
    # is not [0, 1] data, which the metrics would otherwise warn about.
    @scale_known()
    def _evaluate(self, batch: dict[str, Any], batch_idx: int, stage: str) -> None:
        real_a, real_b = batch["input"], batch["target"]
        fake_b = self.generator(real_a)
        scores = quality(fake_b, real_b)
        self.log_dict({f"{stage}/{k}": float(v) for k, v in scores.items()}, on_epoch=True,
                      sync_dist=True, batch_size=real_a.shape[0])
        if self._tv_sums is not None:  # for the epoch's TV ratio (collapse check)
            n = real_a.shape[0]
            self._tv_sums[0] += scores["tv"] * n
            self._tv_sums[1] += scores["tv_target"] * n
            self._tv_sums[2] += float(content_lost(fake_b, real_b).sum())
            self._tv_sums[3] += n
        self._stability_on(real_a)
        if stage == "val":
            self._kid_on(fake_b, real_b)
        if batch_idx == 0:
            self._log_grid(f"{stage}/images", real_a, fake_b, real_b)

    # The quick stability figure: crop protocol on the first ``val_stability_images`` images of
    # the epoch, whatever the batch size (batch 1 must not mean one image), pooled over them.
    def on_validation_epoch_start(self) -> None:
        self._stability_parts = []
        # outputs', targets' total variation, summed over images; images whose output lost its
        # target's content (metrics.content_lost), images
        self._tv_sums = [0.0, 0.0, 0.0, 0]
        self._kid_features = []

    on_test_epoch_start = on_validation_epoch_start

    def _stability_on(self, real_a: torch.Tensor) -> None:
        k, n_shifts = self.hparams.val_stability_images, self.hparams.val_stability_shifts
        parts = self._stability_parts
        if not k or not n_shifts or parts is None:
            return
        need = k - sum(p.mse.shape[0] for p in parts)
        if need <= 0:
            return
        x = real_a[:need]
        shifts = shift_grid(VAL_STABILITY_GRID, num_shifts=n_shifts, seed=0)
        parts.append(stability_crop(self.generator, reflect_pad_source(x, VAL_STABILITY_GRID), tuple(x.shape[-2:]),
                                    shifts))

    def _log_tv_ratio(self, stage: str) -> None:
        """``{stage}/tv_ratio`` = TV(outputs) / TV(targets) over the epoch's images; near-constant
        outputs (below COLLAPSE_TV_RATIO, as evaluate.py flags them) get a warning line, since
        their stability figure looks excellent and means nothing. ``{stage}/content_lost``: the
        fraction of images whose output lost its target's content; from
        ``COLLAPSE_IMAGE_FRACTION`` on, the same warning (evaluate.py's second collapse test:
        near-black outputs on dark, sparse data keep a TV ratio above 0.1)."""
        tv, tv_target, lost, images = self._tv_sums or (0.0, 0.0, 0.0, 0)
        self._tv_sums = None
        if tv_target <= 0:
            return
        ratio = tv / tv_target
        self.log(f"{stage}/tv_ratio", ratio, on_epoch=True, sync_dist=True)
        lost = lost / images if images else 0.0
        self.log(f"{stage}/content_lost", lost, on_epoch=True, sync_dist=True)
        if self._trainer is not None and self.trainer.sanity_checking:
            return
        if ratio < COLLAPSE_TV_RATIO:
            self.print(f"warning: {stage}: the outputs are near-constant (TV ratio {ratio:.3f} < "
                       f"{COLLAPSE_TV_RATIO} of the targets'): a collapsed generator is trivially stable, so "
                       f"{stage}/stability_psnr is no result")
        elif lost >= COLLAPSE_IMAGE_FRACTION:
            self.print(f"warning: {stage}: the outputs lost their targets' content on {lost:.0%} of the images "
                       f"(coarse contrast below {COLLAPSE_CONTENT_RATIO:g} of the target's): a collapsed generator is "
                       f"trivially stable, so {stage}/stability_psnr is no result")

    def _log_stability(self, stage: str) -> None:
        self._log_tv_ratio(stage)
        parts = self._stability_parts
        if not parts:
            return
        # Pooled over every compared element of every image and shift (images may differ in size).
        squared = sum(float((p.mse * p.counts[None, :]).sum()) for p in parts)
        count = sum(float(p.counts.sum()) * p.mse.shape[0] for p in parts)
        value = float(pooled_psnr(squared, count, parts[0].data_range, max_db=MAX_PSNR_DB))
        self.log(f"{stage}/stability_psnr", value, on_epoch=True, sync_dist=True,
                 batch_size=sum(p.mse.shape[0] for p in parts))
        self._stability_parts = []

    # Validation KID: feature vectors of every validation output and target, scored once at the
    # epoch's end (KID is no mean over batches). The Inception is held outside the module's children,
    # so it never enters a checkpoint, and built on first use.
    def _val_kid_network(self) -> Optional[nn.Module]:
        """The FID Inception for ``val_kid``, or None (one line printed) when its weights are not
        reachable."""
        from pix2pix_aa.metrics.pretrained import inception_network, resolve_weights

        status = resolve_weights("fid", has_option=False)
        if status.skipped:
            self.print(f"warning: model.val_kid: {status.skipped}; validation goes on without val/kid")
            return None
        self.__dict__["_kid_weights"] = status.describe()
        return inception_network(status.path)

    def _kid_on(self, fake_b: torch.Tensor, real_b: torch.Tensor) -> None:
        if not self.hparams.get("val_kid") or self._trainer is None or self.trainer.sanity_checking:
            return
        if "_kid_net" not in self.__dict__:
            self.__dict__["_kid_net"] = self._val_kid_network()  # a plain attribute, not a child module
        net = self.__dict__["_kid_net"]
        if net is not None:
            net.to(fake_b.device)
            self._kid_features.append((distribution_features(fake_b, net), distribution_features(real_b, net)))

    def _log_kid(self) -> None:
        parts, self._kid_features = self._kid_features, []
        if not parts:
            return
        fake, real = (torch.cat([p[i] for p in parts]).to(self.device) for i in (0, 1))
        if self.trainer.world_size > 1:  # every rank scores all images (the sampler pads to equal counts)
            fake, real = (self.all_gather(t).flatten(0, 1) for t in (fake, real))
        if len(fake) < 2:
            return
        scores = kid_from_features(fake.cpu(), real.cpu())
        self.log_dict({"val/kid": scores["kid_mean"], "val/kid_std": scores["kid_std"]}, on_epoch=True,
                      sync_dist=True)  # the same figure on every rank

    def on_validation_epoch_end(self) -> None:
        self._log_stability("val")
        self._log_kid()

    def on_test_epoch_end(self) -> None:
        self._log_stability("test")

    def on_predict_start(self) -> None:
        """Read the tiling options once: they belong to the data module (``--data.tile``,
        ``--data.tile_overlap``; any data module without them predicts whole images)."""
        datamodule = getattr(self.trainer, "datamodule", None)
        tile = getattr(datamodule, "tile", None)
        self._predict_tiling = (tile, getattr(datamodule, "tile_overlap", None)) if tile else None

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """Each input at its own size: padded to the generator's size multiple (2**num_downs for
        the U-Net) by reflection, generated, and cropped back to the input's H x W. With the data
        module's ``tile`` set (read by :meth:`on_predict_start`), generated tile by tile on that
        grid and blended (:func:`pix2pix_aa.tiling.tiled_generate`)."""
        x = batch["input"]
        h, w = x.shape[-2:]
        multiple = getattr(self.generator, "size_multiple", 1)
        if self._predict_tiling is not None:
            from pix2pix_aa.tiling import tiled_generate

            tile, overlap = self._predict_tiling
            fake = tiled_generate(self.generator, pad_to_multiple(x, multiple), tile, overlap, multiple)[..., :h, :w]
        else:
            fake = self.generator(pad_to_multiple(x, multiple))[..., :h, :w]
        return {"name": batch["name"], "image": to_unit(fake)}

    # -- logging helpers ----------------------------------------------------------------------
    @property
    def logging_step(self) -> int:
        """The x-axis Lightning uses for ``self.log``: batches, not optimiser steps.

        With two optimisers ``global_step`` advances twice per batch, so images logged at
        ``global_step`` would not line up with the scalars in TensorBoard.
        """
        if self._trainer is None:
            return 0
        return batches_that_stepped(self.trainer)

    def _log_grid(self, tag: str, real_a: torch.Tensor, fake_b: torch.Tensor, real_b: torch.Tensor) -> None:
        if self._trainer is None or self.trainer.sanity_checking or not self.trainer.is_global_zero:
            return
        k = min(self.hparams.num_log_images, real_a.shape[0])
        if k == 0:
            return
        # One row per sample: input | generated | target (a grayscale input or target in grey).
        panels = same_channels(to_unit(real_a[:k]), to_unit(fake_b[:k]), to_unit(real_b[:k]))
        rows = torch.stack(panels, 1).flatten(0, 1)
        grid = torchvision.utils.make_grid(rows, nrow=3, padding=2)
        for logger in self.loggers:
            if hasattr(logger.experiment, "add_image"):
                logger.experiment.add_image(tag, grid, global_step=self.logging_step)
