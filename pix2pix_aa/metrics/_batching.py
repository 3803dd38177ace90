"""Batched evaluation of (reference, shifted) pairs: the engine behind the stability metrics.

Design rule (docs/DESIGN.md section 6): never one forward pass per shift per image when a batch fits.
All inputs of all (image, shift) jobs are laid out image-major and cut into chunks of
``batch_size``; each chunk is one forward pass. The reference output of an image is kept only
until its last shift has been compared, so memory stays at O(batch_size) outputs.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Optional

import torch
from torch import nn

__all__ = ["Generator", "default_batch_size", "check_batch_size", "warn_if_training", "forward", "run_pairs"]

#: Any callable mapping (N, C, H, W) -> (N, C', H, W); an ``nn.Module`` in eval mode typically.
Generator = Callable[[torch.Tensor], torch.Tensor]

#: Default memory budget for one forward pass (bytes). Inference activations of a U-Net are
#: some tens of times the input size (skip connections stay alive), hence the factor.
DEFAULT_BUDGET_BYTES = 1 << 30
ACTIVATION_FACTOR = 64
MAX_DEFAULT_BATCH = 64


def default_batch_size(sample_shape: Sequence[int], dtype: torch.dtype = torch.float32,
                       budget_bytes: int = DEFAULT_BUDGET_BYTES, activation_factor: int = ACTIVATION_FACTOR,
                       cap: int = MAX_DEFAULT_BATCH) -> int:
    """Images per forward pass that fit ``budget_bytes``, assuming activations ~ factor x input.

    Args:
        sample_shape: (C, H, W) of one input image.
    Returns:
        An int in [1, cap].
    """
    numel = 1
    for d in sample_shape:
        numel *= int(d)
    per_image = max(1, numel * torch.finfo(dtype).bits // 8 * activation_factor)
    return int(max(1, min(cap, budget_bytes // per_image)))


def check_batch_size(batch_size: Optional[int], sample_shape: Sequence[int], dtype: torch.dtype) -> int:
    if batch_size is None:
        return default_batch_size(sample_shape, dtype)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (max images per forward pass), got {batch_size!r}")
    return batch_size


def warn_if_training(model: object) -> None:
    """Warn (never change the model): dropout / BatchNorm batch statistics would make the
    stability numbers measure noise and batch composition instead of the architecture."""
    if isinstance(model, nn.Module) and model.training:
        warnings.warn("the model is in training mode; call model.eval() before measuring stability "
                      "(dropout and BatchNorm batch statistics change the result)", stacklevel=3)


def forward(fn: Generator, batch: torch.Tensor, name: str = "generator") -> torch.Tensor:
    """``fn(batch)`` under no_grad, checking the result is an (N, C', H', W') tensor."""
    with torch.no_grad():
        out = fn(batch)
    if not isinstance(out, torch.Tensor) or out.dim() != 4 or out.shape[0] != batch.shape[0]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"{name} must map (N, C, H, W) -> (N, C', H', W'); for input {tuple(batch.shape)} "
                         f"it returned {shape}")
    return out


def run_pairs(G: Generator, num_images: int, num_shifts: int,
              make_input: Callable[[int, Optional[int]], torch.Tensor],
              compare: Callable[[torch.Tensor, torch.Tensor, int], tuple[torch.Tensor, int]],
              batch_size: int, same_size: bool = True,
              on_pair: Optional[Callable[[int, int, torch.Tensor, torch.Tensor], None]] = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
    """Run G on each image's reference input and its shifted inputs, batched, and compare.

    Args:
        make_input: (image index, shift index or None for the reference) -> (C, H, W) input.
        compare: (reference output (C', H, W), shifted output, shift index) ->
            (sum of squared errors as a float64 scalar tensor, number of elements compared).
        batch_size: max images per forward pass.
        same_size: require G to keep the spatial size (needed to align pixels).
        on_pair: optional (image index, shift index, reference output, shifted output) -> None,
            called for every compared pair (further figures from the same forward passes).

    Returns:
        mse: (num_images, num_shifts) float64, and counts: (num_shifts,) int64.
    """
    jobs = [(i, k) for i in range(num_images) for k in [None, *range(num_shifts)]]
    mse = torch.full((num_images, num_shifts), float("nan"), dtype=torch.float64)
    counts = torch.zeros(num_shifts, dtype=torch.int64)
    refs: dict[int, torch.Tensor] = {}
    for start in range(0, len(jobs), batch_size):
        chunk = jobs[start:start + batch_size]
        batch = torch.stack([make_input(i, k) for i, k in chunk])
        out = forward(G, batch)
        if same_size and out.shape[-2:] != batch.shape[-2:]:
            raise ValueError(f"the generator must keep the spatial size to compare pixels: input "
                             f"{tuple(batch.shape)} gave output {tuple(out.shape)}")
        for (i, k), o in zip(chunk, out):
            if k is None:
                refs[i] = o
                continue
            sse, n = compare(refs[i], o, k)
            if on_pair is not None:
                on_pair(i, k, refs[i], o)
            mse[i, k] = sse / n
            counts[k] = n
            if k == num_shifts - 1:
                del refs[i]  # last shift of image i: its reference is no longer needed
    return mse, counts
