"""Reading images with checks: clear errors that name the file, never a silent black image.

Decoding uses Pillow with truncated-image loading forced off, so truncated or corrupt data
raises instead of being padded with black. (``torchvision.io`` image decoding is deprecated
since torchvision 0.29 in favour of torchcodec, which this project does not depend on.)
Headers are checked cheaply (``Image.open`` reads only the header) so a data set can be
validated when it is built rather than in the middle of an epoch.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
from PIL import Image, ImageFile, UnidentifiedImageError

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
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes); expected a PNG/JPEG image")
    # Another library may have switched Pillow to pad truncated files (with black); not here.
    previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode in ("I", "I;16", "I;16B", "I;16L"):  # 16-bit grayscale -> 8 bits
                arr = (np.asarray(im, dtype=np.float64) / 257.0).round().clip(0, 255).astype(np.uint8)
                im8 = Image.fromarray(arr)
            else:
                im8 = im
            rgb = np.asarray(im8.convert("RGB"))
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ValueError(f"{path}: cannot decode image, the file is truncated or corrupt ({err})") from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    if not is_rgb_mode(mode):
        check_color_mode(path, mode, grayscale)
    return torch.from_numpy(rgb.copy()).permute(2, 0, 1).contiguous()


def paths_summary(paths: Iterable[Path], n: int = 5) -> str:
    """Up to ``n`` names, for error messages."""
    paths = list(paths)
    names = ", ".join(str(p) for p in paths[:n])
    return names + (f", ... ({len(paths)} in all)" if len(paths) > n else "")
