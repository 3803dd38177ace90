"""GAN objectives for pix2pix: ``vanilla`` (BCE with logits, the paper), ``lsgan`` (MSE) and
``hinge``. Discriminators output raw logits; the loss applies the link function.

Also a shift-equivariance term for training (:func:`shift_equivariance_l1`): the crop-protocol
stability of docs/DESIGN.md section 5, made a loss."""

from __future__ import annotations

import random
from collections.abc import Callable

import torch
import torch.nn.functional as F

from pix2pix_aa.metrics.shifts import Shift, reflect_pad_source

GAN_MODES = ("vanilla", "lsgan", "hinge")


def gan_loss(logits: torch.Tensor, target_is_real: bool, mode: str = "vanilla",
             for_discriminator: bool = True) -> torch.Tensor:
    """Mean GAN loss of patch ``logits`` (any shape) against the real/fake label.

    ``hinge`` differs between the players: D minimises relu(1 -/+ logits), G minimises -logits.
    """
    if mode == "vanilla":
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)
    if mode == "lsgan":
        target = torch.ones_like(logits) if target_is_real else torch.zeros_like(logits)
        return F.mse_loss(logits, target)
    if mode == "hinge":
        if not for_discriminator:
            return -logits.mean()
        return F.relu(1.0 - logits).mean() if target_is_real else F.relu(1.0 + logits).mean()
    raise ValueError(f"unknown gan_mode {mode!r}; valid: {', '.join(map(repr, GAN_MODES))}")


def training_shift(step: int, max_shift: int) -> Shift:
    """The shift (dy, dx) of training step ``step``: drawn uniformly from the nonzero shifts of
    the [0, max_shift)^2 grid by ``random.Random(step)``, so it depends on the step alone (the
    same on every machine, after a resume too) and draws nothing from torch's generators.

    Raises:
        ValueError: ``max_shift`` < 2 (no nonzero shift).
    """
    if not isinstance(max_shift, int) or max_shift < 2:
        raise ValueError(f"max_shift must be an int >= 2 (shifts 0..max_shift-1 per axis), got {max_shift!r}")
    k = random.Random(step).randrange(1, max_shift * max_shift)  # 0 would be (0, 0)
    return divmod(k, max_shift)


def max_shift_problem(max_shift: int, h: int, w: int, images: str) -> str | None:
    """Why ``max_shift`` cannot shift ``h`` x ``w`` ``images`` (reflect padding needs a pad
    smaller than the image), in one line naming the option; None when it can."""
    if max_shift <= min(h, w):
        return None
    return (f"model.max_shift={max_shift} draws shifts up to {max_shift - 1} px, but {images} are {h}x{w}: "
            f"use a max_shift of at most {min(h, w)}")


def shifted_window(x: torch.Tensor, shift: Shift) -> torch.Tensor:
    """The crop protocol's shifted input: the window at ``shift`` = (dy, dx) of x reflect-padded
    at the bottom/right (``reflect_pad_source``), whose window at (0, 0) is x itself.

    Shape:
        x (N, C, H, W) -> (N, C, H, W); pixel (r, c) of the result is x's (r + dy, c + dx).
    """
    dy, dx = shift
    h, w = x.shape[-2:]
    return reflect_pad_source(x, max(dy, dx))[..., dy:dy + h, dx:dx + w]


def generate_with_shift(G: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, k: int,
                        shift: Shift) -> tuple[torch.Tensor, torch.Tensor]:
    """(G(x), G(shifted_window(x[:k], shift))) from one forward pass of the concatenated batch:
    with batch norm in training mode, two passes would normalise the copies by different batch
    statistics, a difference the shift did not make.

    Shape:
        x (N, C, H, W) -> (N, C', H, W) and (k, C', H, W).
    """
    out = G(torch.cat([x, shifted_window(x[:k], shift)]))
    return out[:len(x)], out[len(x):]


def shift_equivariance_l1(y: torch.Tensor, y_shifted: torch.Tensor, shift: Shift) -> torch.Tensor:
    """Mean absolute difference of G(x) and G(shifted_window(x, shift)) on the region both show:
    ``y[..., dy:, dx:]`` against ``y_shifted[..., :H - dy, :W - dx]`` -- the error whose pooled
    MSE the crop-protocol stability PSNR reads (``metrics.stability.stability_crop``), as L1.
    0 for a generator that commutes with the shift away from the borders it cannot see.

    Shape:
        y, y_shifted (N, C, H, W) -> scalar.

    Raises:
        ValueError: different shapes, or a shift that leaves no common region.
    """
    if y.shape != y_shifted.shape:
        raise ValueError(f"y and y_shifted must have one shape, got {tuple(y.shape)} and {tuple(y_shifted.shape)}")
    dy, dx = shift
    h, w = y.shape[-2:]
    if not (0 <= dy < h and 0 <= dx < w):
        raise ValueError(f"shift {(dy, dx)} leaves no common region on {h}x{w} outputs")
    return F.l1_loss(y_shifted[..., :h - dy, :w - dx], y[..., dy:, dx:])
