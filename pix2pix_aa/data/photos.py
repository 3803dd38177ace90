"""Paired tasks on real photographs, made offline from the photographs shipped inside installed wheels.

Two pix2pix tasks, written in the aligned layout with **A = photo (left), B = the input (right)**,
so ``direction="BtoA"`` is input -> photo, as for the facades:

* ``edges`` (data set kind ``photos``): Canny edges (``skimage.feature.canny``, black on white like
  pix2pix's ``edges2*`` sets) -> photo;
* ``colorize`` (data set kind ``colorize``): grayscale (ITU-R 601 luma, ``skimage.color.rgb2gray``,
  as three equal channels) -> colour. The detail is in the input here, so any detail the generator
  loses is its own.

**Sources** (:data:`PHOTO_SOURCES`): the colour photographs scikit-image ships in its wheel
(astronaut, chelsea, coffee, rocket, hubble_deep_field, retina, immunohistochemistry, the left view
of stereo_motorcycle) and matplotlib's sample ``grace_hopper.jpg``: nine scenes, no download.

**Splits by disjoint regions.** Each photograph is downscaled (never upscaled) so its short side is
at most ``4 * size``, then cut into a grid of non-overlapping ``size x size`` cells (the remainder
at the right and bottom edges is unused). The cells of each photograph are shuffled by the seed
and dealt out: 15% to val, 15% to test (at least one each for a photograph with 3 or more cells),
the rest to train. Every sample is one whole cell, so **no pixel of a photograph is in two
splits** (:func:`photo_cells` returns the cells' boxes; the tests check them). At 128 px this gives
128 cells: 94 train / 17 val / 17 test at seed 0; at 256 px, 44 cells (32 / 6 / 6), several
photographs too small for more than one cell (or for a held-out one).

How far this is from a user's data set: nine scenes, so the test cells are new regions of
photographs whose other regions were seen in training: it measures fitting and in-distribution
generalisation, not generalisation to new scenes; textures repeat within a scene; two sources
(hubble, retina) are dark or smooth over large areas.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Literal, Union

import numpy as np
from PIL import Image

from pix2pix_aa.data.writer import GenerationStopped, check_request, staged_dataset

__all__ = ["PHOTO_NAMES", "PHOTO_TASKS", "load_photo", "edge_map", "gray_map", "photo_cells", "photo_pair",
           "generate_photos"]

PhotoTask = Literal["edges", "colorize"]
#: Task -> the data set kind it is given as (``--data.dataset``).
PHOTO_TASKS: dict[str, str] = {"edges": "photos", "colorize": "colorize"}
#: Scene name -> (module, what to read): a scikit-image loader, or a file in matplotlib's sample data.
PHOTO_SOURCES: dict[str, tuple[str, str]] = {
    "astronaut": ("skimage", "astronaut"),
    "chelsea": ("skimage", "chelsea"),
    "coffee": ("skimage", "coffee"),
    "rocket": ("skimage", "rocket"),
    "hubble_deep_field": ("skimage", "hubble_deep_field"),
    "retina": ("skimage", "retina"),
    "immunohistochemistry": ("skimage", "immunohistochemistry"),
    "motorcycle": ("skimage", "stereo_motorcycle"),
    "grace_hopper": ("matplotlib", "grace_hopper.jpg"),
}
PHOTO_NAMES: tuple[str, ...] = tuple(PHOTO_SOURCES)
#: Share of each photograph's cells that go to val and to test.
HELD_OUT_SHARE = 0.15
#: Photographs are downscaled to a short side of at most this many cells.
MAX_CELLS_SHORT_SIDE = 4


@cache
def load_photo(name: str) -> np.ndarray:
    """A bundled photograph as (H, W, 3) uint8 RGB (read-only, cached).

    Raises:
        ValueError: ``name`` not in :data:`PHOTO_NAMES`.
    """
    if name not in PHOTO_SOURCES:
        raise ValueError(f"unknown photo {name!r}; expected one of {PHOTO_NAMES}")
    module, what = PHOTO_SOURCES[name]
    if module == "skimage":
        import skimage.data

        img = getattr(skimage.data, what)()
        img = img[0] if isinstance(img, tuple) else img  # stereo_motorcycle: (left, right, disparity)
    else:
        import matplotlib.cbook

        with matplotlib.cbook.get_sample_data(what) as f:
            img = np.asarray(Image.open(f).convert("RGB"))
    img = np.ascontiguousarray(img[..., :3])
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


def gray_map(photo: np.ndarray) -> np.ndarray:
    """Luma of an RGB photo (H, W, 3) uint8 -> (H, W, 3) uint8, three equal channels (so the
    generator's input has the photo's channel count, as in the reference's colourisation mode
    with ``--input_nc 3``)."""
    from skimage.color import rgb2gray

    if photo.ndim != 3 or photo.shape[-1] != 3:
        raise ValueError(f"gray_map expects an (H, W, 3) RGB image, got shape {photo.shape}")
    gray = np.round(rgb2gray(photo) * 255).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=-1)


def _task_input(photo: np.ndarray, task: str, sigma: float) -> np.ndarray:
    if task == "edges":
        return edge_map(photo, sigma)
    if task == "colorize":
        return gray_map(photo)
    raise ValueError(f"unknown photo task {task!r}; expected one of {tuple(PHOTO_TASKS)}")


def photo_pair(name: str, size: int | None = None, sigma: float = 2.0, task: PhotoTask = "edges") -> np.ndarray:
    """The aligned A|B image of a whole photo: (H, 2W, 3) uint8, photo left, the task's input right.

    With ``size``, the photo is first resized (anti-aliased) so its short side is ``size``.
    """
    photo = load_photo(name)
    if size is not None:
        photo = _resize_short(photo, size)
    return np.concatenate([photo, _task_input(photo, task, sigma)], axis=1)


def _resize_short(photo: np.ndarray, short: int) -> np.ndarray:
    h, w = photo.shape[:2]
    s = short / min(h, w)
    size = (max(short, int(round(w * s))), max(short, int(round(h * s))))
    return np.asarray(Image.fromarray(photo).resize(size, Image.LANCZOS))


@cache
def _scaled(name: str, size: int) -> np.ndarray:
    """The photo downscaled (never upscaled) to a short side of at most ``MAX_CELLS_SHORT_SIDE * size``."""
    photo = load_photo(name)
    short = MAX_CELLS_SHORT_SIDE * size
    return _resize_short(photo, short) if min(photo.shape[:2]) > short else photo


def photo_cells(seed: int, size: int) -> dict[str, list[tuple[str, int, int]]]:
    """The cells of every photograph, dealt to the splits: split -> [(photo, top, left), ...] in the
    coordinates of the downscaled photo (each cell is ``size x size`` pixels there).

    The cells of one photograph never overlap, so no pixel is in two splits. Which cell goes
    where depends only on (seed, photo, size).
    """
    out: dict[str, list[tuple[str, int, int]]] = {"train": [], "val": [], "test": []}
    for k, name in enumerate(PHOTO_NAMES):
        h, w = _scaled(name, size).shape[:2]
        cells = [(name, y * size, x * size) for y in range(h // size) for x in range(w // size)]
        order = np.random.default_rng([int(seed), k, int(size)]).permutation(len(cells))
        held = max(1, round(HELD_OUT_SHARE * len(cells))) if len(cells) >= 3 else 0
        out["val"] += [cells[i] for i in order[:held]]
        out["test"] += [cells[i] for i in order[held:2 * held]]
        out["train"] += [cells[i] for i in order[2 * held:]]
    return out


def largest_size(seed: int = 0) -> int:
    """The largest cell size (a multiple of 16) whose cells give every split at least one image."""
    size = 16
    while all(photo_cells(seed, size + 16).values()):
        size += 16
    return size


def _check_every_split_has_a_cell(available: Mapping[str, int], size: int, seed: int) -> None:
    """Raise ValueError (naming the largest size that works) when a split has no cell at ``size``."""
    if not all(available.values()):
        raise ValueError(f"size {size}: the photographs give {dict(available)} cells of {size}px, a split without "
                         f"an image; the largest size with one in every split is {largest_size(seed)}")


def generate_photos(
    out_dir: Union[str, os.PathLike],
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
    size: int = 128,
    sigma: float = 2.0,
    task: PhotoTask = "edges",
    overwrite: bool = False,
) -> Path:
    """Write a real-photo task in the aligned layout (``<out>/<split>/<i>.png``); return ``out``.

    Args:
        seed: which cells go to which split, and in which order they are written.
        splits: split -> number of cells (default: every cell of the split; fewer takes the first
            ones in the seed's order).
        size: side of each half (the cell size); edges are computed on the cell.
        sigma: Canny's Gaussian width for ``task="edges"``.
        task: ``"edges"`` (edges -> photo) or ``"colorize"`` (grayscale -> colour).

    Raises:
        ValueError: an unknown task, a size below 16, a split asking for more cells than it has (the
            message says how many there are), or, with ``splits`` None, a size that leaves a split
            without a cell (the message gives the largest size that does not).
    """
    if task not in PHOTO_TASKS:
        raise ValueError(f"unknown photo task {task!r}; expected one of {tuple(PHOTO_TASKS)}")
    check_request({}, size)  # the size first: the cells are cut at it
    cells = photo_cells(seed, int(size))
    available = {split: len(c) for split, c in cells.items()}
    counts = check_request(available if splits is None else splits, size, allowed=cells)
    if splits is None:
        _check_every_split_has_a_cell(available, size, seed)
    for split, n in counts.items():
        if n > available[split]:
            raise ValueError(f"split {split!r}: {n} images asked, but the {size}px photo cells give {available[split]} "
                             f"(counts: {available}); ask for fewer or a smaller size")
    order = {split: np.random.default_rng([int(seed), 7, i]).permutation(len(c)) for i, (split, c) in
             enumerate(cells.items())}
    meta = {"generator": "pix2pix_aa.data.photos", "task": task, "seed": int(seed), "splits": counts,
            "size": int(size), "sigma": sigma, "sources": list(PHOTO_NAMES),
            "split_rule": "disjoint cells of each photograph"}
    with staged_dataset(out_dir, counts, meta, overwrite) as tmp:
        for split, n in counts.items():
            for i in range(n):
                name, top, left = cells[split][order[split][i]]
                photo = _scaled(name, int(size))[top:top + size, left:left + size]
                pair = np.concatenate([photo, _task_input(photo, task, sigma)], axis=1)
                Image.fromarray(pair).save(tmp / split / f"{i + 1}.png", compress_level=6)
    return Path(out_dir)


def main(argv: list[str] | None = None) -> int:
    """``python -m pix2pix_aa.data.photos --task colorize --out data/colorize`` (as the facades generator)."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="output folder (refused if it exists, unless --overwrite)")
    p.add_argument("--task", choices=list(PHOTO_TASKS), default="edges")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=128, help="side of each half in pixels (cell size; default 128, "
                   "the CPU recipes' crop; train.py generates 256 unless --data.generate_size says otherwise)")
    p.add_argument("--train", type=int, default=None, help="training images (default: every training cell)")
    p.add_argument("--val", type=int, default=None)
    p.add_argument("--test", type=int, default=None)
    p.add_argument("--overwrite", action="store_true")
    args = p.parse_args(argv)
    try:
        check_request({}, args.size)
        available = {s: len(c) for s, c in photo_cells(args.seed, args.size).items()}
        _check_every_split_has_a_cell(available, args.size, args.seed)
        splits = {s: available[s] if getattr(args, s) is None else getattr(args, s) for s in available}
        if not splits["train"]:
            raise ValueError("--train 0: a data set without training images")
        out = generate_photos(args.out, seed=args.seed, splits=splits, size=args.size, task=args.task,
                              overwrite=args.overwrite)
    except (ValueError, OSError) as e:
        p.error(str(e))
    except GenerationStopped as e:
        print(f"error: {e}", file=sys.stderr)
        return 128 + 15
    print(f"wrote {out} ({args.task}, {args.size}px, {splits})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
