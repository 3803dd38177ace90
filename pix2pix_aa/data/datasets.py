"""pix2pix datasets: aligned A|B files, paired A/ B/ folders, plain input folders.

Every sample is a dict ``{"input": (3, H, W) float32 in [-1, 1], "target": same, "name": stem}``
with ``input``/``target`` taken after ``direction``: ``AtoB`` -> input = A, target = B;
``BtoA`` -> input = B, target = A (for facades, whose labels are B: labels -> photo).

Files are validated when the dataset is built (header only: fast), so a bad file fails at
start-up with its name rather than in a worker mid-epoch; truncated data, which only a full
decode reveals, fails in ``__getitem__`` with the file's name.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Union

import torch
from torch.utils.data import Dataset

from pix2pix_aa.data.image_io import (
    GRAYSCALE_POLICIES,
    check_color_mode,
    image_header,
    is_rgb_mode,
    list_images,
    paths_summary,
    read_rgb,
)
from pix2pix_aa.data.transforms import INTERPOLATIONS, as_image, pair_transform, single_transform

__all__ = [
    "DIRECTIONS",
    "SPLITS",
    "check_options",
    "AlignedDataset",
    "PairedFolderDataset",
    "ImageFolderDataset",
    "InputOnly",
]

DIRECTIONS: tuple[str, ...] = ("AtoB", "BtoA")
SPLITS: tuple[str, ...] = ("train", "val", "test")

PathLike = Union[str, os.PathLike]


def check_options(
    direction: str = "AtoB",
    load_size: int = 286,
    crop_size: int = 256,
    grayscale: str = "convert",
    interpolation: str = "bicubic",
) -> None:
    """Validate the shared options; raise ``ValueError`` naming the bad one."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    for name, v in (("load_size", load_size), ("crop_size", crop_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if crop_size > load_size:
        raise ValueError(f"crop_size ({crop_size}) must not exceed load_size ({load_size}): the crop is taken from the resized image")
    if grayscale not in GRAYSCALE_POLICIES:
        raise ValueError(f"grayscale must be one of {GRAYSCALE_POLICIES}, got {grayscale!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}, got {interpolation!r}")


def _split_dir(root: PathLike, split: str, kind: str) -> Path:
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(
            f"{kind} data set root {root} does not exist"
            + ("; generate the procedural facades with `python -m pix2pix_aa.data.facades --out " + str(root) + "`"
               if kind == "aligned" else "")
        )
    folder = root / split
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(f"{kind} data set {root}: split folder {folder} does not exist (found folders: {present or 'none'})")
    return folder


class _PairDataset(Dataset):
    """Shared logic: options, transforms, direction, item dict. Subclasses load (A, B) uint8."""

    kind = "pair"

    def __init__(
        self,
        root: PathLike,
        split: str,
        direction: str,
        load_size: int,
        crop_size: int,
        train: bool | None,
        grayscale: str,
        flip: bool,
        interpolation: str,
    ) -> None:
        check_options(direction, load_size, crop_size, grayscale, interpolation)
        self.root = Path(root)
        self.split = split
        self.direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.train = (split == "train") if train is None else bool(train)
        self.grayscale = grayscale
        self.transform = pair_transform(load_size, crop_size, self.train, flip, interpolation)

    def _scan(self, paths: list[Path]) -> list[tuple[int, int]]:
        """Read headers: (width, height) per file; refuse or report (once) grayscale/RGBA files."""
        sizes, converted = [], []
        for p in paths:
            w, h, mode = image_header(p)
            if not is_rgb_mode(mode):
                if self.grayscale == "error":
                    check_color_mode(p, mode, "error")  # raises, naming the file
                converted.append(p)
            sizes.append((w, h))
        if converted:
            warnings.warn(f"{len(converted)} grayscale/RGBA image(s) will be converted to RGB: {paths_summary(converted)}", stacklevel=3)
        return sizes

    def _check_min_size(self, path: Path, w: int, h: int, part: str) -> None:
        if w < self.crop_size or h < self.crop_size:
            raise ValueError(
                f"{path}: {part} is {w}x{h} (WxH), smaller than crop_size={self.crop_size}; "
                f"use larger images or a smaller crop_size"
            )

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        a, b, name = self._load(index)
        x, y = (a, b) if self.direction == "AtoB" else (b, a)
        x, y = self.transform(as_image(x), as_image(y))
        return {"input": x.as_subclass(torch.Tensor), "target": y.as_subclass(torch.Tensor), "name": name}


class AlignedDataset(_PairDataset):
    """The pix2pix aligned layout: ``root/<split>/*.{png,jpg}``, each image A (left) | B (right).

    Args:
        root: data set folder holding ``train/``, ``val/``, ``test/``.
        split: sub-folder to read.
        direction: ``"AtoB"`` or ``"BtoA"`` (facades labels -> photo is ``BtoA``).
        load_size: training resize (square) before the random crop (pix2pix: 286).
        crop_size: output size; evaluation resizes straight to it (pix2pix: 256).
        train: random crop + flip; default ``split == "train"``.
        grayscale: ``"convert"`` (warn and convert grayscale/RGBA to RGB) or ``"error"``.
        flip: random horizontal flip in training.
        interpolation: ``"bicubic"`` (pix2pix), ``"bilinear"`` or ``"nearest"``.
        check_files: read every header now (size, mode) to fail early with the file's name.

    Raises:
        FileNotFoundError: missing root / split folder, or no images in it.
        ValueError: bad option, odd width, half smaller than ``crop_size``, unreadable file,
            grayscale/RGBA with ``grayscale="error"``.
    """

    kind = "aligned"

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        direction: str = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        train: bool | None = None,
        grayscale: str = "convert",
        flip: bool = True,
        interpolation: str = "bicubic",
        check_files: bool = True,
    ) -> None:
        super().__init__(root, split, direction, load_size, crop_size, train, grayscale, flip, interpolation)
        folder = _split_dir(root, split, self.kind)
        self.files = list_images(folder, f"split {split!r} of aligned data set {self.root}")
        if check_files:
            for p, (w, h) in zip(self.files, self._scan(self.files)):
                if w % 2:
                    raise ValueError(
                        f"{p}: aligned A|B image must have an even width (A = left half, B = right half), got {w}x{h}"
                    )
                self._check_min_size(p, w // 2, h, "each half (A or B)")

    def __len__(self) -> int:
        return len(self.files)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        path = self.files[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already reported once in __init__
            ab = read_rgb(path, self.grayscale)
        w = ab.shape[-1]
        if w % 2:
            raise ValueError(f"{path}: aligned A|B image must have an even width, got {w}")
        return ab[..., : w // 2], ab[..., w // 2 :], path.stem


class PairedFolderDataset(_PairDataset):
    """Paired folders: ``root/<split>/A/*`` and ``root/<split>/B/*`` matched by file stem.

    Same arguments and item format as :class:`AlignedDataset`. A and B of a pair must have the
    same size (they are resized and cropped together, so a size mismatch would misalign them).

    Raises:
        ValueError: if the stems of ``A/`` and ``B/`` differ (the unmatched ones are listed),
            or a pair differs in size; plus everything :class:`AlignedDataset` raises.
    """

    kind = "paired"

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        direction: str = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        train: bool | None = None,
        grayscale: str = "convert",
        flip: bool = True,
        interpolation: str = "bicubic",
        check_files: bool = True,
    ) -> None:
        super().__init__(root, split, direction, load_size, crop_size, train, grayscale, flip, interpolation)
        folder = _split_dir(root, split, self.kind)
        a_files = list_images(folder / "A", f"split {split!r} of paired data set {self.root} (A side)")
        b_files = list_images(folder / "B", f"split {split!r} of paired data set {self.root} (B side)")
        a_by, b_by = {p.stem: p for p in a_files}, {p.stem: p for p in b_files}
        only_a, only_b = sorted(set(a_by) - set(b_by)), sorted(set(b_by) - set(a_by))
        if only_a or only_b:
            raise ValueError(
                f"paired data set {folder}: A/ and B/ file names do not match; "
                f"only in A: {only_a[:5]}{' ...' if len(only_a) > 5 else ''}, "
                f"only in B: {only_b[:5]}{' ...' if len(only_b) > 5 else ''}"
            )
        self.pairs = [(a_by[p.stem], b_by[p.stem]) for p in a_files]
        if check_files:
            sizes = self._scan([p for pair in self.pairs for p in pair])
            for i, (pa, pb) in enumerate(self.pairs):
                sa, sb = sizes[2 * i], sizes[2 * i + 1]
                if sa != sb:
                    raise ValueError(f"paired images differ in size: {pa} is {sa[0]}x{sa[1]}, {pb} is {sb[0]}x{sb[1]} (WxH)")
                self._check_min_size(pa, *sa, "image")

    def __len__(self) -> int:
        return len(self.pairs)

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        pa, pb = self.pairs[index]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already reported once in __init__
            return read_rgb(pa, self.grayscale), read_rgb(pb, self.grayscale), pa.stem


class ImageFolderDataset(Dataset):
    """Plain input images (one per file) for prediction: ``{"input", "name"}``.

    Each image is resized to ``size`` x ``size`` (the evaluation transform) and mapped to [-1, 1].
    """

    def __init__(self, root: PathLike, size: int = 256, grayscale: str = "convert", interpolation: str = "bicubic") -> None:
        check_options(load_size=size, crop_size=size, grayscale=grayscale, interpolation=interpolation)
        self.root = Path(root)
        self.grayscale = grayscale
        self.files = list_images(self.root, "prediction input folder")
        for p in self.files:
            image_header(p)  # fail early on unreadable files
        self.transform = single_transform(size, interpolation)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        x = self.transform(as_image(read_rgb(path, self.grayscale)))
        return {"input": x.as_subclass(torch.Tensor), "name": path.stem}


class InputOnly(Dataset):
    """A view of a pair dataset that yields only ``{"input", "name"}`` (for prediction)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        return {"input": item["input"], "name": item["name"]}
