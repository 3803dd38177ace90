"""Procedural CMP-style facades in the pix2pix ``facades`` layout (the project's default data).

Each sample is one file ``<out>/<split>/<i>.png`` of size (size, 2 * size): **left half = photo
(A), right half = label map (B)** in the CMP palette, exactly like the real pix2pix facades files
(so labels -> photo is ``direction="BtoA"``). Default counts are the real ones: 400/100/106.

Determinism: sample ``i`` of a split is drawn from
``numpy.random.default_rng(sample_seed(seed, split, i))`` (:mod:`pix2pix_aa.data.writer`), so it
depends only on (seed, split, i): not on the generation order, the worker count, or the other
splits' sizes.
PNG output is byte-identical for the same arguments (JPEG by option, as the real files).

CLI::

    python -m pix2pix_aa.data.facades --out data/facades --seed 0 [--size 256]
        [--train 400 --val 100 --test 106] [--format png|jpg] [--workers 2] [--grid PATH]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image

from pix2pix_aa.data.facade_layout import make_layout, rasterize
from pix2pix_aa.data.facade_render import render_photo
from pix2pix_aa.data.palette import CLASS_NAMES, PALETTE, colorize, decode_labels
from pix2pix_aa.data.writer import (  # noqa: F401
    META_FILE,
    SPLIT_OFFSETS,
    GenerationStopped,
    check_request,
    sample_seed,
    staged_dataset,
)

__all__ = [
    "DEFAULT_SPLITS",
    "SPLIT_OFFSETS",
    "CLASS_NAMES",
    "PALETTE",
    "colorize",
    "decode_labels",
    "render_facade",
    "render_pair",
    "generate_facades",
    "sample_grid",
    "main",
]

#: Real pix2pix facades split sizes.
DEFAULT_SPLITS: dict[str, int] = {"train": 400, "val": 100, "test": 106}
FORMATS = ("png", "jpg")

SeedLike = Union[int, np.random.Generator, np.random.SeedSequence]


def _rng(rng_or_seed: SeedLike) -> np.random.Generator:
    if isinstance(rng_or_seed, np.random.Generator):
        return rng_or_seed
    return np.random.default_rng(rng_or_seed)


def render_facade(rng_or_seed: SeedLike, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """One procedural facade.

    Args:
        rng_or_seed: a ``numpy.random.Generator``, a ``SeedSequence`` or an int seed.
        size: side of the square image in pixels (>= 16).

    Returns:
        ``(photo, labels)``: photo (size, size, 3) uint8 RGB; labels (size, size) uint8 class
        ids 1..12 (see :data:`CLASS_NAMES`; use :func:`colorize` for the CMP colours).
    """
    if int(size) != size or size < 16:
        raise ValueError(f"size must be an integer >= 16, got {size!r}")
    rng = _rng(rng_or_seed)
    # Separate streams: the layout draws a size-independent number of values, so the same
    # seed gives the same building at 64 or 256 pixels; only the rendering detail differs.
    layout_rng, photo_rng = rng.spawn(2)
    layout = make_layout(layout_rng, int(size))
    return render_photo(photo_rng, layout), rasterize(layout)


def render_pair(seed: int, split: str, index: int, size: int = 256) -> np.ndarray:
    """The aligned A|B image of one sample: (size, 2*size, 3) uint8, photo left, label map right."""
    photo, labels = render_facade(np.random.default_rng(sample_seed(seed, split, index)), size)
    return np.concatenate([photo, colorize(labels)], axis=1)


def _write_one(job: tuple[int, str, int, int, str, str]) -> None:
    seed, split, index, size, fmt, out = job
    pair = render_pair(seed, split, index, size)
    path = Path(out) / split / f"{index + 1}.{fmt}"
    if fmt == "png":
        # Level 1: the sensor noise makes level 6 only 15% smaller but 50% slower to write.
        Image.fromarray(pair).save(path, format="PNG", compress_level=1)
    else:
        Image.fromarray(pair).save(path, format="JPEG", quality=95)


def generate_facades(
    out_dir: Union[str, os.PathLike],
    seed: int = 0,
    splits: Mapping[str, int] | None = None,
    size: int = 256,
    fmt: str = "png",
    workers: int | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a procedural facades data set in the aligned pix2pix layout; return ``out_dir``.

    Files are ``out_dir/<split>/<i>.<fmt>`` (i from 1), each (size, 2*size) RGB, A = photo
    left, B = label map right; plus ``generation.json`` with the arguments. Generation goes to a
    temporary sibling folder that is renamed at the end, so an interrupted run never leaves a
    half-written data set behind.

    Args:
        out_dir: target folder; must not exist unless ``overwrite``.
        seed: data set seed.
        splits: split -> count (default 400/100/106).
        size: side of each half in pixels.
        fmt: ``"png"`` (lossless, byte-deterministic) or ``"jpg"`` (like the real files).
        workers: processes (default ``min(2, cpu_count)``); the output does not depend on it.
        overwrite: replace an existing ``out_dir``.
    """
    fmt = fmt.lower().lstrip(".")
    fmt = "jpg" if fmt == "jpeg" else fmt
    if fmt not in FORMATS:
        raise ValueError(f"fmt must be one of {FORMATS}, got {fmt!r}")
    splits = check_request(DEFAULT_SPLITS if splits is None else splits, size)
    if workers is None:
        workers = min(2, os.cpu_count() or 1)
    meta = {"generator": "pix2pix_aa.data.facades", "seed": int(seed), "splits": splits, "size": int(size),
            "format": fmt}
    with staged_dataset(out_dir, splits, meta, overwrite) as tmp:
        jobs = [(int(seed), s, i, int(size), fmt, str(tmp)) for s, n in splits.items() for i in range(n)]
        if workers > 1 and len(jobs) > 8:
            # fork: workers inherit the loaded textures; each job seeds itself, so the result
            # does not depend on which worker draws which sample.
            ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
            with ctx.Pool(workers) as pool:
                for _ in pool.imap_unordered(_write_one, jobs, chunksize=8):
                    pass
        else:
            for job in jobs:
                _write_one(job)
    return Path(out_dir)


def sample_grid(seed: int = 0, n: int = 8, size: int = 256, cols: int = 2, split: str = "train") -> np.ndarray:
    """A preview grid of the first ``n`` samples of ``split``: each cell is photo | label map."""
    pairs = [render_pair(seed, split, i, size) for i in range(n)]
    rows = []
    gap = 4
    white_v = np.full((size, gap, 3), 255, np.uint8)
    for r in range(0, n, cols):
        cells = pairs[r : r + cols] + [np.full_like(pairs[0], 255)] * (cols - len(pairs[r : r + cols]))
        row = np.concatenate([x for c in cells for x in (c, white_v)][:-1], axis=1)
        rows += [row, np.full((gap, row.shape[1], 3), 255, np.uint8)]
    return np.concatenate(rows[:-1], axis=0)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pix2pix_aa.data.facades",
        description="Generate procedural CMP-style facades in the aligned pix2pix layout "
                    "(A = photo left, B = labels right).",
    )
    p.add_argument("--out", default="data/facades", help="output folder (default: data/facades)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=256, help="side of each half in pixels")
    p.add_argument("--train", type=int, default=DEFAULT_SPLITS["train"])
    p.add_argument("--val", type=int, default=DEFAULT_SPLITS["val"])
    p.add_argument("--test", type=int, default=DEFAULT_SPLITS["test"])
    p.add_argument("--format", choices=FORMATS, default="png")
    p.add_argument("--workers", type=int, default=None, help="processes (default min(2, cores)); output is the same")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--grid", default=None, help="also write a preview grid PNG of 8 training samples here")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    splits = {"train": args.train, "val": args.val, "test": args.test}
    t0 = time.perf_counter()
    try:
        out = generate_facades(args.out, args.seed, splits, args.size, args.format, args.workers, args.overwrite)
    except (FileExistsError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except GenerationStopped as err:
        print(f"error: {err}", file=sys.stderr)
        return 128 + 15
    dt = time.perf_counter() - t0
    print(f"wrote {sum(splits.values())} images ({splits}) at {args.size}x{2 * args.size} to {out} in {dt:.1f} s")
    if args.grid:
        grid = Path(args.grid)
        grid.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(sample_grid(args.seed, 8, args.size)).save(grid)
        print(f"wrote preview grid {grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
