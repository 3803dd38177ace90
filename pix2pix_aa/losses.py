"""GAN objectives for pix2pix: ``vanilla`` (BCE with logits, the paper), ``lsgan`` (MSE) and
``hinge``. Discriminators output raw logits; the loss applies the link function."""

from __future__ import annotations

import torch
import torch.nn.functional as F

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
