"""pix2pix datasets: aligned A|B files, paired A/ B/ folders, plain input folders.

Every sample is a dict ``{"input": (input_nc, H, W) float32 in [-1, 1], "target": (output_nc,
H, W), "name": stem}`` with ``input``/``target`` taken after ``direction``: ``AtoB`` -> input = A,
target = B; ``BtoA`` -> input = B, target = A (for facades, whose labels are B: labels -> photo).
``input_nc`` / ``output_nc`` (1 = grayscale, 3 = RGB; the reference's names) set how each side
is read. Every file is read by :func:`pix2pix_aa.data.image_io.decode_image` (or its building
blocks): EXIF orientation applied, mode converted explicitly.

Files are validated when the dataset is built (header only: fast), so a bad file fails at
start-up with its name rather than in a worker mid-epoch; truncated data, which only a full
decode reveals, fails in ``__getitem__`` with the file's name.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Union, get_args

import torch
from PIL import Image
from torch.utils.data import Dataset

from pix2pix_aa.console import notice
from pix2pix_aa.data.image_io import (
    CHANNELS,
    GRAYSCALE_POLICIES,
    IMAGE_EXTENSIONS,
    check_color_mode,
    check_sixteen_bit,
    decode_image,
    expected_kind,
    image_header,
    is_image_file,
    list_images,
    open_oriented,
    paths_summary,
    pil_to_tensor,
    to_mode,
    unexpected_mode,
)
from pix2pix_aa.data.transforms import (
    INTERPOLATIONS,
    PREPROCESS,
    as_image,
    network_size,
    pair_transform,
    single_transform,
    unit_range_transform,
)

__all__ = [
    "DIRECTIONS",
    "SPLITS",
    "check_options",
    "AlignedDataset",
    "PairedFolderDataset",
    "ImageFolderDataset",
    "InputOnly",
]

#: A type hint, so the CLI (jsonargparse) names the option and its choices on a bad value.
Direction = Literal["AtoB", "BtoA"]
DIRECTIONS: tuple[str, ...] = get_args(Direction)
SPLITS: tuple[str, ...] = ("train", "val", "test")

PathLike = Union[str, os.PathLike]


def check_options(
    direction: str = "AtoB",
    load_size: int = 286,
    crop_size: int = 256,
    grayscale: str = "convert",
    interpolation: str = "bicubic",
    input_nc: int = 3,
    output_nc: int = 3,
    preprocess: str = "resize_and_crop",
) -> None:
    """Validate the shared options; raise ``ValueError`` naming the bad one."""
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS} (the reference pix2pix's --preprocess), "
                         f"got {preprocess!r}")
    for name, v in (("input_nc", input_nc), ("output_nc", output_nc)):
        if v not in CHANNELS or isinstance(v, bool):
            raise ValueError(f"{name} must be 1 (grayscale) or 3 (RGB), got {v!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    for name, v in (("load_size", load_size), ("crop_size", crop_size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    if crop_size > load_size and preprocess in ("resize_and_crop", "scale_width_and_crop"):
        # crop and none never resize (load_size unused), scale_width never crops (crop_size is a
        # floor on the height): there the two sizes need no order.
        raise ValueError(f"crop_size ({crop_size}) must not exceed load_size ({load_size}): the crop is taken "
                         f"from the image resized to load_size (preprocess {preprocess})")
    if grayscale not in GRAYSCALE_POLICIES:
        raise ValueError(f"grayscale must be one of {GRAYSCALE_POLICIES}, got {grayscale!r}")
    if interpolation not in INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {tuple(INTERPOLATIONS)}, got {interpolation!r}")


def _split_dir(root: PathLike, split: str, kind: str, hint: str = "") -> Path:
    root = Path(root)
    if not root.is_dir():
        from pix2pix_aa.download import DATASETS

        where = f" (relative paths are read from the current folder {Path.cwd()})" if not root.is_absolute() else ""
        # One of the reference's sets, named as the downloader names its folder: say how to get it.
        get = (f"download it with: pix2pix-aa-data download {root.name}" + (
            f" --root {root.parent}" if root.parent != Path("data/pix2pix") else "") + "; or ")
        raise FileNotFoundError(
            f"{kind} data set root {root} does not exist{where}; {get if root.name in DATASETS else ''}pass the folder "
            "that holds train/ val/ test/ as --data.data_dir (or --data-dir for evaluate.py); for the procedural "
            "facades use --data.dataset facades, which generates them"
        )
    folder = root / split
    if not folder.is_dir():
        present = sorted(p.name for p in root.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"{kind} data set {root}: split folder {folder} does not exist (found folders: {present or 'none'})"
            + (f"; {hint}" if hint else "")
        )
    return folder


class _PairDataset(Dataset):
    """Shared logic: options, transforms, direction, item dict; the arguments of both layouts
    (documented on :class:`AlignedDataset`). A subclass finds its files (``_index``) and loads
    one (A, B) uint8 pair (``_load``)."""

    kind = "pair"

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
        input_nc: int = 3,
        output_nc: int = 3,
        keep_size: bool = False,
        missing_hint: str = "",
        preprocess: str = "resize_and_crop",
    ) -> None:
        check_options(direction, load_size, crop_size, grayscale, interpolation, input_nc, output_nc, preprocess)
        self.preprocess = preprocess
        self.root = Path(root)
        self.split = split
        self.direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.train = (split == "train") if train is None else bool(train)
        self.grayscale = grayscale
        self.input_nc, self.output_nc = input_nc, output_nc
        # Channels of the A and B sides (the input is A for AtoB, B for BtoA).
        self.a_nc, self.b_nc = (input_nc, output_nc) if direction == "AtoB" else (output_nc, input_nc)
        self.keep_size = bool(keep_size) and not self.train
        if self.keep_size:
            self.transform = unit_range_transform()
        else:
            self.transform = pair_transform(load_size, crop_size, self.train, flip, interpolation, preprocess)
        self.what = f"split {split!r} of {self.kind} data set {self.root}"
        #: Oriented (width, height) of each sample's A (= B) image, from the headers (check_files).
        self.sizes: list[tuple[int, int]] | None = None
        self._index(_split_dir(root, split, self.kind, missing_hint), check_files)

    def _index(self, folder: Path, check_files: bool) -> None:
        """Find the split's files in ``folder``; with ``check_files`` read every header now."""
        raise NotImplementedError

    def network_sizes(self) -> list[tuple[int, int]]:
        """(width, height) of each sample as the network sees it (after the transform), from the
        headers read at construction.

        Raises:
            RuntimeError: the dataset was built with ``check_files=False`` (no sizes read).
        """
        if self.sizes is None:
            raise RuntimeError(f"{self.what}: sizes unknown (built with check_files=False)")
        if self.keep_size:
            return list(self.sizes)
        return [network_size(self.preprocess, w, h, self.load_size, self.crop_size, self.train) for w, h in self.sizes]

    def _scan(self, paths: list[Path], channels: list[int]) -> list[tuple[int, int]]:
        """Read headers: oriented (width, height) per file; refuse (``grayscale="error"``) or report
        in one line (``"convert"``) the files whose mode is not the channel count asked for."""
        sizes, converted, kinds = [], [], {}
        for p, nc in zip(paths, channels):
            w, h, mode = image_header(p)
            check_sixteen_bit(p, mode)
            kind = unexpected_mode(mode, nc)
            if kind is not None:
                check_color_mode(p, mode, self.grayscale, nc)  # raises with "error", naming the file
                converted.append(p)
                key = f"{kind} -> {expected_kind(nc)}"
                kinds[key] = kinds.get(key, 0) + 1
            sizes.append((w, h))
        if converted:
            notice(f"{self.what}: converting {len(converted)} image(s) ("
                   f"{'; '.join(f'{n} {k}' for k, n in kinds.items())}): {paths_summary(converted, 3)}")
        return sizes

    def _check_min_size(self, path: Path, w: int, h: int, part: str) -> None:
        # scale_width* scale every image to at least crop_size; none uses no crop_size at all;
        # resize_and_crop resizes to load_size (training) or crop_size (evaluation) first, so a
        # smaller image is upscaled, as the reference pix2pix does (noted once per data set).
        if self.preprocess not in ("resize_and_crop", "crop"):
            return
        if w < self.crop_size or h < self.crop_size:
            if self.preprocess == "crop":
                raise ValueError(
                    f"{path}: {part} is {w}x{h} (WxH), smaller than crop_size={self.crop_size}, and "
                    f"preprocess=crop crops without resizing; set crop_size (--data.crop_size) to at most "
                    f"{min(w, h)}, or use --data.preprocess resize_and_crop / scale_width_and_crop / none"
                )
            self._upscaled = getattr(self, "_upscaled", []) + [path]

    def _note_upscaled(self) -> None:
        small = getattr(self, "_upscaled", [])
        if small:
            notice(f"{self.what}: {len(small)} image(s) smaller than crop_size={self.crop_size} are upscaled by "
                   f"resize_and_crop: {paths_summary(small)}")

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        raise NotImplementedError

    def source_name(self, index: int) -> str:
        """File name (with extension) of sample ``index``: what ``predict`` names its output after."""
        raise NotImplementedError

    def __getitem__(self, index: int) -> dict:
        a, b, name = self._load(index)
        x, y = (a, b) if self.direction == "AtoB" else (b, a)
        x, y = self.transform(as_image(x), as_image(y))
        return {"input": x.as_subclass(torch.Tensor), "target": y.as_subclass(torch.Tensor), "name": name}


def _holds_image_files(folder: Path) -> bool:
    """Whether ``folder`` (not its subfolders) holds an image file: which layout a split is in."""
    return folder.is_dir() and any(p.is_file() and is_image_file(p) for p in folder.iterdir())


#: (data root, direction) whose colour half on a 1-channel side was said: once per data set, not per split.
_COLOUR_HALF_SAID: set[tuple[Path, str]] = set()

#: The most a gray half of an RGB A|B file may differ between its channels, on average (0..255
#: levels): see :meth:`AlignedDataset._refuse_colour_half`.
GRAY_SPREAD = 2.0


class AlignedDataset(_PairDataset):
    """The pix2pix aligned layout: ``root/<split>/*.{png,jpg,...}``, each image A (left) | B (right).

    Args:
        root: data set folder holding ``train/``, ``val/``, ``test/``.
        split: sub-folder to read.
        direction: ``"AtoB"`` (the pix2pix reference's default) or ``"BtoA"`` (facades labels
            -> photo is ``BtoA``).
        load_size: training resize (square) before the random crop (pix2pix: 286).
        crop_size: output size; evaluation resizes straight to it (pix2pix: 256).
        train: random crop + flip; default ``split == "train"``.
        grayscale: ``"convert"`` (convert files whose mode does not match the channel count,
            reported in one line per data set) or ``"error"``.
        flip: random horizontal flip in training.
        interpolation: ``"bicubic"`` (pix2pix), ``"bilinear"`` or ``"nearest"``.
        check_files: read every header now (size, mode) to fail early with the file's name.
        input_nc / output_nc: channels of the input / target, 1 (grayscale) or 3 (RGB). A file
            is expected to be RGB if either side is RGB (each half is then converted to its
            side's channels without a report; with ``grayscale="error"`` a colour half on a
            1-channel side is refused: the first file's when the data set is built, any other's
            when it is read), grayscale if both are.
        keep_size: evaluation only: no resize, each image at its own size (``predict``).
        preprocess: ``resize_and_crop`` (default), ``crop``, ``scale_width``,
            ``scale_width_and_crop`` or ``none``, the reference pix2pix's ``--preprocess``
            (:mod:`pix2pix_aa.data.transforms` says what each does in training and evaluation).
            With ``scale_width`` / ``none`` samples differ in size: batch them one at a time, or
            use images of one size.

    Raises:
        FileNotFoundError: missing root / split folder, or no images in it.
        ValueError: bad option, odd width, half smaller than ``crop_size`` (``resize_and_crop``,
            ``crop``), unreadable file,
            a file of the wrong mode with ``grayscale="error"``.
    """

    kind = "aligned"

    def _index(self, folder: Path, check_files: bool) -> None:
        self.file_nc = max(self.a_nc, self.b_nc)
        if (folder / "A").is_dir() and (folder / "B").is_dir() and not _holds_image_files(folder):
            raise FileNotFoundError(f"{self.what}: {folder} holds A/ and B/ folders, not A|B image files: that is "
                                    "the paired layout; pass --data.dataset paired")
        self.files = list_images(folder, self.what, report_skipped=True)  # files it never reads are named
        if check_files:
            self.sizes = []
            for p, (w, h) in zip(self.files, self._scan(self.files, [self.file_nc] * len(self.files))):
                if w % 2:
                    raise ValueError(
                        f"{p}: aligned A|B image must have an even width (A = left half, B = right half), got {w}x{h}"
                    )
                self._check_min_size(p, w // 2, h, "each half (A or B)")
                self.sizes.append((w // 2, h))
            self._note_upscaled()
            if self.files and self.file_nc == 3 and 1 in (self.a_nc, self.b_nc):
                # The first file's halves now: a direction the wrong way round shows in every file, and
                # decoding them all would make every start-up read the whole data set. Refused with
                # grayscale="error"; said with "convert" (converted to luma as asked, but most likely a
                # colour photo taken for the gray side).
                im = to_mode(open_oriented(self.files[0])[0], 3)
                w, h = im.size
                self._refuse_colour_half(self.files[0], {"A": im.crop((0, 0, w // 2, h)),
                                                         "B": im.crop((w // 2, 0, w, h))},
                                         refuse=self.grayscale == "error")

    def __len__(self) -> int:
        return len(self.files)

    def source_name(self, index: int) -> str:
        return self.files[index].name

    def source_path(self, index: int) -> Path:
        """The file of sample ``index`` (for messages)."""
        return self.files[index]

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        path = self.files[index]
        im, mode = open_oriented(path)
        check_color_mode(path, mode, self.grayscale, self.file_nc)
        im = to_mode(im, self.file_nc)
        w, h = im.size
        if w % 2:
            raise ValueError(f"{path}: aligned A|B image must have an even width, got {w}x{h}")
        halves = {"A": im.crop((0, 0, w // 2, h)), "B": im.crop((w // 2, 0, w, h))}
        if self.grayscale == "error" and im.mode == "RGB":  # one file, one mode: a gray side's half may be colour
            self._refuse_colour_half(path, halves)
        a = pil_to_tensor(to_mode(halves["A"], self.a_nc))
        b = pil_to_tensor(to_mode(halves["B"], self.b_nc))
        return a, b, path.stem


    def _refuse_colour_half(self, path: Path, halves: dict[str, Image.Image], refuse: bool = True) -> None:
        """``grayscale="error"``: the half of a 1-channel side must be gray. An RGB file with a colour
        half there (the direction the wrong way round) was converted to luma without a word.
        ``refuse=False`` (``grayscale="convert"``, the first file only): one line instead.

        Gray means a mean channel spread (max - min of R, G, B per pixel) of at most
        :data:`GRAY_SPREAD` levels: a JPEG's chroma bleeds across the A|B seam into the gray half's
        first column (spreads of 60 there, about 1 level on average over a 64-px half) and its
        quantisation adds a few levels, while colour photographs average 38-107 (scikit-image's;
        a dark sky of sparse stars 4)."""
        for side, nc in (("A", self.a_nc), ("B", self.b_nc)):
            if nc != 1:
                continue
            rgb = pil_to_tensor(halves[side])
            spread = (rgb.amax(0) - rgb.amin(0)).float().mean().item()
            if spread > GRAY_SPREAD:
                role = "input" if (side == "A") == (self.direction == "AtoB") else "target"
                if not refuse:
                    if (path.parent.parent, self.direction) in _COLOUR_HALF_SAID:  # train/ said it for val/ too
                        return
                    _COLOUR_HALF_SAID.add((path.parent.parent, self.direction))
                    other = "BtoA" if self.direction == "AtoB" else "AtoB"
                    notice(f"{self.what}: {path.name}'s {side} half is colour (R, G and B differ by {spread:.1f} "
                           f"levels on average) on the 1-channel {role} side (direction {self.direction}): "
                           f"converted to grayscale. If the direction is the wrong way round, pass "
                           f"--data.direction {other}; --data.grayscale error refuses such files")
                    return
                raise ValueError(f"{path}: its {side} half is colour (R, G and B differ by {spread:.1f} levels on "
                                 f"average); expected 1-channel grayscale (the {role} side, direction "
                                 f"{self.direction}). Check the direction (--data.direction), or convert such files "
                                 "(--data.grayscale convert)")


class PairedFolderDataset(_PairDataset):
    """Paired folders: ``root/<split>/A/*`` and ``root/<split>/B/*`` matched by file stem.

    Same arguments and item format as :class:`AlignedDataset`; each side is read with its own
    channel count. A and B of a pair must have the same (oriented) size: they are resized and
    cropped together, so a size mismatch would misalign them.

    Raises:
        ValueError: if the stems of ``A/`` and ``B/`` differ (the unmatched ones are listed),
            a side holds two files with one stem (``x.png``, ``x.jpg``), or a pair differs in
            size; plus everything :class:`AlignedDataset` raises.
    """

    kind = "paired"

    def _index(self, folder: Path, check_files: bool) -> None:
        if not (folder / "A").is_dir() and not (folder / "B").is_dir() and _holds_image_files(folder):
            raise FileNotFoundError(f"{self.what}: {folder} holds image files but no A/ and B/ folders: A|B files "
                                    "side by side are the aligned layout; pass --data.dataset aligned")
        a_files = list_images(folder / "A", f"{self.what} (A side)", report_skipped=True)
        b_files = list_images(folder / "B", f"{self.what} (B side)", report_skipped=True)
        for side, files in (("A", a_files), ("B", b_files)):
            by_stem: dict[str, list[str]] = {}
            for p in files:
                by_stem.setdefault(p.stem, []).append(p.name)
            dup = {k: v for k, v in by_stem.items() if len(v) > 1}
            if dup:
                stem, names = next(iter(dup.items()))
                raise ValueError(
                    f"paired data set {folder}: {side}/ holds {len(names)} files with the stem {stem!r} "
                    f"({', '.join(names)}){f' and {len(dup) - 1} more such stems' if len(dup) > 1 else ''}; "
                    "pairs are matched by stem: rename or remove all but one"
                )
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
            sizes = self._scan([p for pair in self.pairs for p in pair], [self.a_nc, self.b_nc] * len(self.pairs))
            for i, (pa, pb) in enumerate(self.pairs):
                sa, sb = sizes[2 * i], sizes[2 * i + 1]
                if sa != sb:
                    raise ValueError(_size_mismatch(pa, sa, pb, sb))
                self._check_min_size(pa, *sa, "image")
            self.sizes = [sizes[2 * i] for i in range(len(self.pairs))]
            self._note_upscaled()

    def __len__(self) -> int:
        return len(self.pairs)

    def source_name(self, index: int) -> str:
        return self.pairs[index][0].name

    def source_path(self, index: int) -> Path:
        """The A file of sample ``index`` (for messages)."""
        return self.pairs[index][0]

    def _load(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        pa, pb = self.pairs[index]
        a, b = decode_image(pa, self.a_nc, self.grayscale), decode_image(pb, self.b_nc, self.grayscale)
        if a.shape[-2:] != b.shape[-2:]:  # the header check could not see it (e.g. late EXIF in a PNG)
            raise ValueError(_size_mismatch(pa, (a.shape[-1], a.shape[-2]), pb, (b.shape[-1], b.shape[-2])))
        return a, b, pa.stem


def _size_mismatch(pa: Path, sa: tuple[int, int], pb: Path, sb: tuple[int, int]) -> str:
    return (f"paired images differ in size: {pa} is {sa[0]}x{sa[1]}, {pb} is {sb[0]}x{sb[1]} (WxH, after EXIF "
            "orientation); A and B of a pair must have the same size")


class ImageFolderDataset(Dataset):
    """Plain input images for prediction: a folder (not recursive) or one image file.

    Items are ``{"input": (channels, H, W) float32 in [-1, 1], "name": file name}``; the name
    keeps the extension (``scene.jpg``), so inputs that share a stem stay apart.

    Args:
        root: a folder of images, or one image file. Subfolders and other files in the folder
            are reported in one line each, not read.
        size: ``None`` (default): each image keeps its own size and aspect ratio (batch such
            items one at a time, or group them by size); an int: resize to ``size`` x ``size``.
        grayscale: ``"convert"`` (files of another mode are converted, reported in one line) or
            ``"error"``.
        interpolation: the resize's interpolation (with ``size``).
        channels: 1 (grayscale) or 3 (RGB), the generator's input channels.

    Raises:
        FileNotFoundError: ``root`` does not exist, or the folder holds no image.
        ValueError: ``root`` is a file that is not an image type listed in IMAGE_EXTENSIONS,
            an unreadable file, a file of the wrong mode with ``grayscale="error"``.
    """

    def __init__(self, root: PathLike, size: int | None = None, grayscale: str = "convert",
                 interpolation: str = "bicubic", channels: int = 3) -> None:
        if size is not None:
            check_options(load_size=size, crop_size=size, grayscale=grayscale, interpolation=interpolation)
        check_options(grayscale=grayscale, interpolation=interpolation, input_nc=channels)
        self.root = Path(root)
        self.grayscale = grayscale
        self.channels = channels
        self.size = size
        what = f"prediction input folder {self.root}"
        if self.root.is_file():
            if not is_image_file(self.root):
                raise ValueError(f"prediction input {self.root} is not an image file of a supported type "
                                 f"({', '.join(IMAGE_EXTENSIONS)})")
            self.files = [self.root]
        elif self.root.is_dir():
            self.files = list_images(self.root, what, report_skipped=True)
        else:
            raise FileNotFoundError(f"prediction input {self.root} does not exist (expected a folder of images "
                                    f"or one image file)")
        converted = []
        for p in self.files:
            _, _, mode = image_header(p, any_size=True)  # fail early on unreadable files
            check_sixteen_bit(p, mode)
            if unexpected_mode(mode, channels) is not None:
                check_color_mode(p, mode, grayscale, channels)
                converted.append(p)
        if converted:
            notice(f"{what}: converting {len(converted)} image(s) to {expected_kind(channels)}: "
                   f"{paths_summary(converted, 3)}")
        self.transform = unit_range_transform() if size is None else single_transform(size, interpolation)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> dict:
        path = self.files[index]
        # Files named for predict are decoded whatever their size (--data.tile exists for very large
        # ones): Pillow's decompression-bomb limit guards against files one did not choose.
        x = self.transform(as_image(decode_image(path, self.channels, self.grayscale, any_size=True)))
        return {"input": x.as_subclass(torch.Tensor), "name": path.name}


class InputOnly(Dataset):
    """A view of a pair dataset that yields only ``{"input", "name"}`` (for prediction).

    ``name`` is the source file's name with its extension (as :class:`ImageFolderDataset`
    gives it) when the dataset knows it (``source_name``), else the item's own name.
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        item = self.dataset[index]
        source = getattr(self.dataset, "source_name", None)
        return {"input": item["input"], "name": source(index) if source is not None else item["name"]}
