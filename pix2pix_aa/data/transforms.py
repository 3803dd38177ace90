"""Joint pix2pix transforms for an (A, B) pair, built from ``torchvision.transforms.v2``.

Training (pix2pix ``resize_and_crop`` + flip): resize both to ``load_size`` x ``load_size``,
take the *same* random ``crop_size`` crop, flip both horizontally with p = 0.5.
Evaluation: resize straight to ``crop_size`` x ``crop_size``; no crop, no flip (deterministic).

A and B are wrapped as ``tv_tensors.Image`` and passed to one v2 transform call, which samples
the random parameters once and applies them to every image in the call: that is what keeps A
and B aligned. Resizing happens on uint8 (so bicubic overshoot is clamped), then values are
mapped to float32 in [-1, 1] (the Tanh range of the generator).

Randomness comes from torch's global RNG (v2 transforms draw with ``torch.randint`` /
``torch.rand``). In DataLoader workers that RNG is seeded by PyTorch with ``base_seed +
worker_id``, where ``base_seed`` is drawn from the loader's ``generator``; the datamodule passes
a generator seeded from its ``seed``, so crops/flips are reproducible for a fixed seed and
worker count (with ``num_workers=0``, ``pytorch_lightning.seed_everything`` seeds the global RNG).
"""

from __future__ import annotations

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode

__all__ = ["INTERPOLATIONS", "pair_transform", "single_transform", "unit_range_transform"]

INTERPOLATIONS: dict[str, InterpolationMode] = {
    "bicubic": InterpolationMode.BICUBIC,  # the pix2pix reference uses bicubic
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST,
}


def _to_unit_range() -> list[v2.Transform]:
    # One mean/std value broadcasts over any channel count: 1 (grayscale) and 3 (RGB), also
    # within one call (a grayscale input with an RGB target).
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=[0.5], std=[0.5])]


def pair_transform(
    load_size: int, crop_size: int, train: bool, flip: bool = True, interpolation: str = "bicubic"
) -> v2.Transform:
    """Transform called as ``t(a, b)`` on two ``tv_tensors.Image`` uint8 (C, H, W) tensors
    (C = 1 or 3, each its own).

    Returns a pair of float32 (C, crop_size, crop_size) tensors in [-1, 1].
    """
    mode = INTERPOLATIONS[interpolation]
    if train:
        steps: list[v2.Transform] = [
            v2.Resize((load_size, load_size), interpolation=mode, antialias=True),
            v2.RandomCrop(crop_size),
        ]
        if flip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
    else:
        steps = [v2.Resize((crop_size, crop_size), interpolation=mode, antialias=True)]
    return v2.Compose(steps + _to_unit_range())


def single_transform(size: int, interpolation: str = "bicubic") -> v2.Transform:
    """Evaluation transform for one image: resize to ``size`` x ``size``, float32 in [-1, 1]."""
    return v2.Compose(
        [v2.Resize((size, size), interpolation=INTERPOLATIONS[interpolation], antialias=True)] + _to_unit_range()
    )


def unit_range_transform() -> v2.Transform:
    """No resize: uint8 (C, H, W) -> float32 (C, H, W) in [-1, 1] (prediction at the input's size).

    Callable on one image or on a pair, like the others.
    """
    return v2.Compose(_to_unit_range())


def as_image(t: torch.Tensor) -> tv_tensors.Image:
    """Wrap a (C, H, W) tensor so v2 transforms treat it as an image (same params for all)."""
    return tv_tensors.Image(t)
