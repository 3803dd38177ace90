"""Joint pix2pix transforms for an (A, B) pair, built from ``torchvision.transforms.v2``.

``preprocess`` names the reference pix2pix's options (junyanz/pytorch-CycleGAN-and-pix2pix,
``data/base_dataset.py``: ``get_params`` / ``get_transform`` / ``__scale_width``):

================== ================================================ =========================================
preprocess         training                                         evaluation (val / test)
================== ================================================ =========================================
resize_and_crop    resize to load_size x load_size, random crop     resize to crop_size x crop_size
(default)          crop_size x crop_size
crop               random crop crop_size x crop_size (no resize)    centre crop crop_size x crop_size
scale_width        width -> load_size, height -> max(load_size *    width -> crop_size, height -> max(crop_size
                   h / w, crop_size) (aspect kept)                  * h / w, crop_size)
scale_width_and_   scale_width, then random crop crop_size x        scale_width (to crop_size), centre crop
crop               crop_size                                        crop_size x crop_size
none               each image at its own size                       each image at its own size
================== ================================================ =========================================

plus, in training only, a horizontal flip with p = 0.5 unless ``flip=False`` (the reference's
``--no_flip``). Evaluation mirrors the reference's ``test.py`` / ``options/test_options.py``:
the same preprocess with ``load_size`` set to ``crop_size`` (its default there, "to avoid
cropping") and no flip; where the reference still draws a random crop position at test time we
take the centre crop, so evaluation is deterministic. ``none`` differs from the reference on
purpose: the reference resizes each side to the nearest multiple of 4 (``__make_power_2``); here
the image keeps its size, and the generator pads it to a multiple of 2**num_downs and crops back
(``pad_input``), so nothing is ever squashed.

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

from typing import Any, Literal, get_args

import torch
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import InterpolationMode
from torchvision.transforms.v2 import functional as TF

__all__ = [
    "INTERPOLATIONS",
    "PREPROCESS",
    "VARIABLE_SIZE",
    "ScaleWidth",
    "network_size",
    "pair_transform",
    "single_transform",
    "unit_range_transform",
]

INTERPOLATIONS: dict[str, InterpolationMode] = {
    "bicubic": InterpolationMode.BICUBIC,  # the pix2pix reference uses bicubic
    "bilinear": InterpolationMode.BILINEAR,
    "nearest": InterpolationMode.NEAREST,
}

#: The reference pix2pix's ``--preprocess`` choices.
Preprocess = Literal["resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"]
PREPROCESS: tuple[str, ...] = get_args(Preprocess)

#: Preprocess options whose output size depends on the image (batches then need equal sizes).
VARIABLE_SIZE: tuple[str, ...] = ("scale_width", "none")


def _to_unit_range() -> list[v2.Transform]:
    # One mean/std value broadcasts over any channel count: 1 (grayscale) and 3 (RGB), also
    # within one call (a grayscale input with an RGB target).
    return [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=[0.5], std=[0.5])]


def _scaled_height(width: int, height: int, target: int, min_height: int) -> int:
    # The reference's __scale_width: h = int(max(target * oh / ow, crop_size)).
    return int(max(target * height / width, min_height))


class ScaleWidth(v2.Transform):
    """Scale so that the width is ``width``, keeping the aspect ratio, the height at least
    ``min_height``; images already ``width`` wide and at least ``min_height`` high pass unchanged.

    Source: ``__scale_width`` in the reference's ``data/base_dataset.py`` (height
    ``int(max(width * h / w, min_height))``). All images of one call must share a size (A and B).

    Shape:
        (C, H, W) -> (C, max(int(width * H / W), min_height), width).
    """

    def __init__(self, width: int, min_height: int,
                 interpolation: InterpolationMode = InterpolationMode.BICUBIC) -> None:
        super().__init__()
        self.width, self.min_height, self.interpolation = width, min_height, interpolation

    def make_params(self, flat_inputs: list[Any]) -> dict[str, Any]:
        sizes = {tuple(TF.get_size(x)) for x in flat_inputs if isinstance(x, (tv_tensors.Image, torch.Tensor))}
        if len(sizes) != 1:
            raise ValueError(f"ScaleWidth: the images of one call must share a size, got {sorted(sizes)} (HxW)")
        h, w = sizes.pop()
        if w == self.width and h >= self.min_height:
            return {"size": None}
        return {"size": [_scaled_height(w, h, self.width, self.min_height), self.width]}

    def transform(self, inpt: Any, params: dict[str, Any]) -> Any:
        if params["size"] is None:
            return inpt
        return TF.resize(inpt, params["size"], interpolation=self.interpolation, antialias=True)


def network_size(preprocess: str, width: int, height: int, load_size: int, crop_size: int,
                 train: bool) -> tuple[int, int]:
    """The (width, height) an image of ``width`` x ``height`` has after :func:`pair_transform`.

    Used to check batching (equal sizes) and the generator's size multiple before any image is
    decoded. Source: the sizes ``get_transform`` produces in the reference's
    ``data/base_dataset.py`` (evaluation with ``load_size = crop_size`` as in its test options).
    """
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    if preprocess == "none":
        return width, height
    if preprocess in ("resize_and_crop", "crop", "scale_width_and_crop"):
        return crop_size, crop_size
    target = load_size if train else crop_size  # scale_width
    if width == target and height >= crop_size:
        return width, height
    return target, _scaled_height(width, height, target, crop_size)


def pair_transform(
    load_size: int, crop_size: int, train: bool, flip: bool = True, interpolation: str = "bicubic",
    preprocess: str = "resize_and_crop",
) -> v2.Transform:
    """Transform called as ``t(a, b)`` on two ``tv_tensors.Image`` uint8 (C, H, W) tensors of one
    size (C = 1 or 3, each its own); see the module docstring for what each ``preprocess`` does.

    Source: ``get_params`` / ``get_transform`` of the reference's ``data/base_dataset.py`` (one
    set of random parameters for A and B; here one v2 call on both).

    Shape:
        (C, H, W) uint8 -> (C, H', W') float32 in [-1, 1], (W', H') = :func:`network_size`.
    """
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS}, got {preprocess!r}")
    mode = INTERPOLATIONS[interpolation]
    steps: list[v2.Transform] = []
    if train:
        if preprocess == "resize_and_crop":
            steps.append(v2.Resize((load_size, load_size), interpolation=mode, antialias=True))
        elif preprocess.startswith("scale_width"):
            steps.append(ScaleWidth(load_size, crop_size, mode))
        if preprocess.endswith("crop"):
            steps.append(v2.RandomCrop(crop_size))
        if flip:
            steps.append(v2.RandomHorizontalFlip(p=0.5))
    else:
        if preprocess == "resize_and_crop":
            steps.append(v2.Resize((crop_size, crop_size), interpolation=mode, antialias=True))
        elif preprocess.startswith("scale_width"):
            steps.append(ScaleWidth(crop_size, crop_size, mode))
        if preprocess in ("crop", "scale_width_and_crop"):
            steps.append(v2.CenterCrop(crop_size))
    return v2.Compose(steps + _to_unit_range())


def single_transform(size: int, interpolation: str = "bicubic") -> v2.Transform:
    """Evaluation transform for one image: resize to ``size`` x ``size``, float32 in [-1, 1].

    Shape:
        (C, H, W) uint8 -> (C, size, size) float32.
    """
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
