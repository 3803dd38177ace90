"""Reading images with checks: clear errors that name the file, never a silent black image.

Decoding uses ``torchvision.io.decode_image`` (libpng / libjpeg), which raises on truncated or
corrupt data; headers are checked cheaply with Pillow (``Image.open`` reads only the header)
so a data set can be validated when it is built rather than in the middle of an epoch.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Iterable

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

__all__ = ["IMAGE_EXTENSIONS", "GRAYSCALE_POLICIES", "list_images", "natural_key", "image_header", "read_rgb"]

#: File types torchvision can decode.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp")
#: What to do with grayscale / RGBA files: convert to RGB with a warning, or raise.
GRAYSCALE_POLICIES: tuple[str, ...] = ("convert", "error")

_COLOUR_MODES = {"RGB", "YCbCr", "CMYK", "P"}


def natural_key(path: Path) -> list:
    """Sort key so that ``2.png`` comes before ``10.png`` (the real facades files are 1..N)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def list_images(folder: Path, what: str) -> list[Path]:
    """Image files in ``folder`` (not recursive), naturally sorted.

    Raises:
        FileNotFoundError: if ``folder`` is missing or holds no image file. ``what`` describes
            the folder in the message (e.g. "split 'train' of aligned data set").
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: folder {folder} does not exist")
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    if not files:
        others = sum(1 for p in folder.iterdir())
        raise FileNotFoundError(
            f"{what}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}"
            + (f" (it holds {others} other entries)" if others else " (it is empty)")
        )
    return sorted(files, key=natural_key)


def image_header(path: Path) -> tuple[int, int, str]:
    """``(width, height, mode)`` of an image from its header only (fast).

    Raises:
        ValueError: if the file is not a readable image.
    """
    try:
        with Image.open(path) as im:
            return im.width, im.height, im.mode
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"{path}: not a readable image ({err})") from None


def is_rgb_mode(mode: str) -> bool:
    """Whether a Pillow mode is plain colour without alpha."""
    return mode in _COLOUR_MODES


def check_color_mode(path: Path, mode: str, grayscale: str) -> None:
    """Warn (``grayscale="convert"``) or raise (``"error"``) for grayscale / alpha images."""
    if is_rgb_mode(mode):
        return
    kind = "has an alpha channel" if "A" in mode else "is grayscale"
    if grayscale == "error":
        raise ValueError(f"{path}: image {kind} (mode {mode}); expected 3-channel RGB (or pass grayscale='convert')")
    warnings.warn(f"{path}: image {kind} (mode {mode}); converting to RGB", stacklevel=3)


def read_rgb(path: Path, grayscale: str = "convert") -> torch.Tensor:
    """Decode an image file to a (3, H, W) uint8 RGB tensor.

    Grayscale is replicated to 3 channels and alpha is dropped (with a warning), or refused
    with ``grayscale="error"``. 16-bit images are scaled to 8 bits.

    Raises:
        FileNotFoundError: missing file.
        ValueError: truncated, corrupt or otherwise undecodable file; or grayscale/RGBA with
            ``grayscale="error"``.
    """
    path = Path(path)
    if grayscale not in GRAYSCALE_POLICIES:
        raise ValueError(f"grayscale must be one of {GRAYSCALE_POLICIES}, got {grayscale!r}")
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    data = path.read_bytes()
    if not data:
        raise ValueError(f"{path}: file is empty (0 bytes); expected a PNG/JPEG image")
    try:
        img = decode_image(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.UNCHANGED)
    except RuntimeError as err:
        first = str(err).strip().splitlines()[-1][:200]
        raise ValueError(f"{path}: cannot decode image, the file is truncated or corrupt ({first})") from None
    c = img.shape[0]
    if c != 3:
        mode = {1: "L", 2: "LA", 4: "RGBA"}.get(c, f"{c} channels")
        check_color_mode(path, mode, grayscale)
        img = img[:1].expand(3, -1, -1) if c in (1, 2) else img[:3]
    if img.dtype != torch.uint8:
        img = TF.to_dtype(img, torch.uint8, scale=True)
    return img.contiguous()


def paths_summary(paths: Iterable[Path], n: int = 5) -> str:
    """Up to ``n`` names, for error messages."""
    paths = list(paths)
    names = ", ".join(str(p) for p in paths[:n])
    return names + (f", ... ({len(paths)} in all)" if len(paths) > n else "")
