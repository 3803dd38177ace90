"""A small paired task on real photographs: edges -> photo, from scikit-image's bundled images.

scikit-image ships a few photographs inside its wheel (no download): ``astronaut``, ``coffee``,
``chelsea``, ``rocket``, ``immunohistochemistry``, ``hubble_deep_field``. From each photo we
compute a Canny edge map (``skimage.feature.canny``, drawn black on white like pix2pix's
``edges2*`` sets) and write the aligned layout: **A = photo (left), B = edges (right)**, so
``direction="BtoA"`` is edges -> photo, as for facades.

Splits hold different photos (no leakage): train = random crops of astronaut, rocket,
immunohistochemistry, hubble_deep_field; val = coffee; test = chelsea. Crop ``i`` of a split
is seeded like a facade (:func:`pix2pix_aa.data.writer.sample_seed`); files are written as the
facades are (:func:`pix2pix_aa.data.writer.staged_dataset`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from pix2pix_aa.data.writer import META_FILE, check_request, sample_seed, staged_dataset  # noqa: F401

__all__ = ["PHOTO_NAMES", "PHOTO_SPLITS", "load_photo", "edge_map", "photo_pair", "generate_photos"]

PHOTO_NAMES: tuple[str, ...] = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
#: Which photos each split draws its crops from.
PHOTO_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("astronaut", "rocket", "immunohistochemistry", "hubble_deep_field"),
    "val": ("coffee",),
    "test": ("chelsea",),
}
#: Default number of crops per split.
DEFAULT_COUNTS: dict[str, int] = {"train": 32, "val": 4, "test": 4}


@cache
def load_photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as (H, W, 3) uint8 RGB (read-only, cached)."""
    if name not in PHOTO_NAMES:
        raise ValueError(f"unknown photo {name!r}; expected one of {PHOTO_NAMES}")
    import skimage.data

    img = np.ascontiguousarray(getattr(skimage.data, name)()[..., :3])
    img.setflags(write=False)
    return img


def edge_map(photo: np.ndarray, sigma: float = 2.0) -> np.ndarray:
    """Canny edges of an RGB photo (H, W, 3) uint8 -> (H, W, 3) uint8: black edges on white."""
    from skimage.color import rgb2gray
    from skimage.feature import canny

    if photo.ndim != 3 or photo.shape[-1] != 3:
        raise ValueError(f"edge_map expects an (H, W, 3) RGB image, got shape {photo.shape}")
    edges = canny(rgb2gray(photo), sigma=sigma)
    out = np.where(edges, 0, 255).astype(np.uint8)
    return np.repeat(out[..., None], 3, axis=-1)


def photo_pair(name: str, size: int | None = None, sigma: float = 2.0) -> np.ndarray:
    """The aligned A|B image of a whole photo: (H, 2W, 3) uint8, photo left, edges right.

    With ``size``, the photo is first resized (anti-aliased) so its short side is ``size``.
    """
    photo = load_photo(name)
    if size is not None:
        photo = _resize_short(photo, size)
    return np.concatenate([photo, edge_map(photo, sigma)], axis=1)


def _resize_short(photo: np.ndarray, short: int) -> np.ndarray:
    h, w = photo.shape[:2]
    s = short / min(h, w)
    size = (max(short, int(round(w * s))), max(short, int(round(h * s))))
    return np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))


def _crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    """A random square crop covering 45-100% of the short side, resized to ``size``."""
    h, w = photo.shape[:2]
    side = int(min(h, w) * rng.uniform(0.45, 1.0))
    y = int(rng.integers(0, h - side + 1))
    x = int(rng.integers(0, w - side + 1))
    return np.asarray(Image.fromarray(photo[y : y + side, x : x + side]).resize((size, size), Image.LANCZOS))


def generate_photos(
    out_dir: Union[str, os.PathLike],
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
    size: int = 256,
    sigma: float = 2.0,
    overwrite: bool = False,
) -> Path:
    """Write the edges -> photo task in the aligned layout (``<out>/<split>/<i>.png``); return ``out``.

    Args:
        splits: split -> number of crops (default 32/4/4).
        size: side of each half; edges are computed at this size, after the crop.
    """
    counts = check_request(DEFAULT_COUNTS if splits is None else splits, size, allowed=PHOTO_SPLITS)
    meta = {"generator": "pix2pix_aa.data.photos", "seed": int(seed), "splits": counts, "size": int(size),
            "sigma": sigma}
    with staged_dataset(out_dir, counts, meta, overwrite) as tmp:
        for split, n in counts.items():
            names = PHOTO_SPLITS[split]
            for i in range(n):
                photo = _crop(np.random.default_rng(sample_seed(seed, split, i)), load_photo(names[i % len(names)]),
                              int(size))
                pair = np.concatenate([photo, edge_map(photo, sigma)], axis=1)
                Image.fromarray(pair).save(tmp / split / f"{i + 1}.png", compress_level=6)
    return Path(out_dir)
