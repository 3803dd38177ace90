"""Consistency under shifts (Zhang 2019's classification consistency; docs/DESIGN.md section 5).

Protocol (as Zhang's ImageNet consistency, which compares random crops): for every image draw
``num_pairs`` pairs of two *different* offsets (dy, dx) in [0, S)^2 with a seeded RNG, take the
``crop_size`` windows at both offsets (default (H - S, W - S), so every window fits), and check
whether the prediction is the same for both windows.

* :func:`consistency`: a classifier's argmax class.
* :func:`patch_consistency`: a PatchGAN's per-patch decision ``logit > threshold``. The two logit
  grids are aligned by the offset difference divided by the patch stride s (2 ** n_layers = 8
  for the default PatchGAN), rounded to the nearest patch; only patches present in both grids are
  compared. When the offset difference is a multiple of s the patches see exactly the same
  pixels; otherwise they differ by up to s/2 pixels, which is the shift being tested.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Optional, Union

import torch

from pix2pix_aa.metrics._batching import check_batch_size, warn_if_training

__all__ = ["ConsistencyResult", "consistency", "patch_consistency", "sample_offset_pairs"]

Offset = tuple[int, int]


@dataclass
class ConsistencyResult:
    """Share of agreeing predictions.

    Attributes:
        consistency: agree / total, in [0, 1].
        agree: number of agreeing predictions (samples, or patches for the PatchGAN).
        total: number compared.
        max_shift: S (offsets in [0, S)^2).
        num_pairs: offset pairs per image.
        seed: RNG seed of the offsets.
    """

    consistency: float
    agree: int
    total: int
    max_shift: int
    num_pairs: int
    seed: int

    def to_dict(self) -> dict:
        return asdict(self)


def sample_offset_pairs(num_images: int, max_shift: int, num_pairs: int,
                        seed: int) -> list[list[tuple[Offset, Offset]]]:
    """For each image, ``num_pairs`` pairs of two distinct offsets in [0, S)^2 (seeded)."""
    if not isinstance(max_shift, int) or max_shift < 2:
        raise ValueError(f"max_shift must be an int >= 2 (two different offsets are needed), got {max_shift!r}")
    if not isinstance(num_pairs, int) or num_pairs < 1:
        raise ValueError(f"num_pairs must be a positive int, got {num_pairs!r}")
    rng = random.Random(seed)
    grid = [(dy, dx) for dy in range(max_shift) for dx in range(max_shift)]
    return [[tuple(rng.sample(grid, 2)) for _ in range(num_pairs)] for _ in range(num_images)]


def _crops(x: torch.Tensor, max_shift: int, crop_size: Optional[Union[int, Sequence[int]]]) -> tuple[int, int]:
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    H, W = x.shape[-2:]
    if crop_size is None:
        h, w = H - max_shift, W - max_shift
    else:
        h, w = (crop_size, crop_size) if isinstance(crop_size, int) else (int(crop_size[0]), int(crop_size[1]))
    if h < 1 or w < 1 or h + max_shift - 1 > H or w + max_shift - 1 > W:
        raise ValueError(f"crop_size {(h, w)} with offsets up to {max_shift - 1} does not fit images of {H}x{W}")
    return h, w


def _predict_all(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                 pairs: list[list[tuple[Offset, Offset]]], h: int, w: int, batch_size: int,
                 name: str) -> list[torch.Tensor]:
    """Run ``model`` on every crop (image-major, pair by pair, first then second), batched."""
    crops = [(i, o) for i, image_pairs in enumerate(pairs) for pair in image_pairs for o in pair]
    outs: list[torch.Tensor] = []
    for start in range(0, len(crops), batch_size):
        chunk = crops[start:start + batch_size]
        batch = torch.stack([x[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in chunk])
        with torch.no_grad():
            out = model(batch)
        if not isinstance(out, torch.Tensor) or out.shape[0] != len(chunk):
            raise ValueError(f"{name} must return a tensor with one row per input ({len(chunk)}), got "
                             f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
        outs.extend(out.detach().cpu())
    return outs


def consistency(classifier: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, max_shift: int = 8,
                num_pairs: int = 5, seed: int = 0, crop_size: Optional[Union[int, Sequence[int]]] = None,
                batch_size: Optional[int] = None) -> ConsistencyResult:
    """Share of (image, offset pair) samples whose argmax class is the same at both offsets.

    Args:
        classifier: (N, C, h, w) -> (N, num_classes) logits (the prediction is the argmax), or
            (N,) / (N, 1) single logits (the prediction is logit > 0); eval mode (not changed here).
        x: (N, C, H, W) images.
        max_shift: S; offsets in [0, S)^2.
        num_pairs: pairs of different offsets per image.
        crop_size: window size; default (H - S, W - S).
    """
    h, w = _crops(x, max_shift, crop_size)
    pairs = sample_offset_pairs(x.shape[0], max_shift, num_pairs, seed)
    warn_if_training(classifier)
    bs = check_batch_size(batch_size, (x.shape[1], h, w), x.dtype)
    outs = _predict_all(classifier, x, pairs, h, w, bs, "classifier")
    # One logit per sample (a binary classifier): the prediction is its sign, not an argmax.
    labels = [o.reshape(-1).argmax() if o.numel() > 1 else o.reshape(-1)[0] > 0 for o in outs]
    agree = sum(int(labels[2 * p] == labels[2 * p + 1]) for p in range(len(labels) // 2))
    total = len(labels) // 2
    return ConsistencyResult(agree / total, agree, total, max_shift, num_pairs, seed)


def _nearest(v: float) -> int:
    return math.floor(v + 0.5)  # round half up: deterministic, unlike round()'s half-to-even


def patch_consistency(discriminator: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                      max_shift: int = 8, num_pairs: int = 5, seed: int = 0, stride: int = 8,
                      threshold: float = 0.0, crop_size: Optional[Union[int, Sequence[int]]] = None,
                      batch_size: Optional[int] = None) -> ConsistencyResult:
    """Share of PatchGAN patch decisions (logit > threshold) that agree between two offsets.

    Args:
        discriminator: (N, C, h, w) -> (N, K, h', w') patch logits; for pix2pix's conditional
            D pass x = concat(A, B) (6 channels). Eval mode (not changed here).
        x: (N, C, H, W).
        max_shift: S; offsets in [0, S)^2.
        stride: the patch-grid stride in pixels (2 ** n_layers; 8 for n_layers=3).
        threshold: decision threshold on the logits (0 for vanilla / hinge; 0.5 for LSGAN).
        crop_size: window size; default (H - S, W - S).

    Returns:
        :class:`ConsistencyResult` counting patches (pooled over all pairs and images).
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int (the patch stride in pixels), got {stride!r}")
    h, w = _crops(x, max_shift, crop_size)
    pairs = sample_offset_pairs(x.shape[0], max_shift, num_pairs, seed)
    warn_if_training(discriminator)
    bs = check_batch_size(batch_size, (x.shape[1], h, w), x.dtype)
    outs = _predict_all(discriminator, x, pairs, h, w, bs, "discriminator")
    if outs[0].dim() != 3:
        raise ValueError(f"discriminator must return (N, K, h', w') patch logits, "
                         f"got per-sample {tuple(outs[0].shape)}")
    flat_pairs = [pair for image_pairs in pairs for pair in image_pairs]
    agree = total = 0
    for p, ((y1, x1), (y2, x2)) in enumerate(flat_pairs):
        a, b = outs[2 * p] > threshold, outs[2 * p + 1] > threshold
        gh, gw = a.shape[-2:]
        # Patch (i, j) of crop 1 starts at source pixel (y1 + s*i, x1 + s*j); patch (i', j') of
        # crop 2 at (y2 + s*i', ...): the same place when i' = i - (y2 - y1) / s (rounded).
        ky, kx = _nearest((y2 - y1) / stride), _nearest((x2 - x1) / stride)
        i0, i1 = max(0, ky), min(gh, gh + ky)
        j0, j1 = max(0, kx), min(gw, gw + kx)
        if i1 <= i0 or j1 <= j0:
            continue
        same = a[:, i0:i1, j0:j1] == b[:, i0 - ky:i1 - ky, j0 - kx:j1 - kx]
        agree += int(same.sum())
        total += same.numel()
    if total == 0:
        raise ValueError("no overlapping patches to compare; use a smaller max_shift or larger images")
    return ConsistencyResult(agree / total, agree, total, max_shift, num_pairs, seed)
