"""Reading images with checks: one decode function, clear errors that name the file.

Every image the project reads (training, validation and test sets, ``predict`` inputs, the
evaluation's data) goes through :func:`decode_image`, which

- decodes with Pillow, truncated-image loading forced off, so truncated or corrupt data raises
  instead of being padded with black;
- applies the EXIF orientation (``PIL.ImageOps.exif_transpose``), so a photo tagged "rotate 180"
  loads upright and one tagged "rotate 90" has its width and height swapped, as every image
  viewer shows it;
- converts the mode explicitly to what was asked: 3-channel RGB or 1-channel grayscale (16-bit
  images are scaled to 8 bits first).

(``torchvision.io`` image decoding is deprecated since torchvision 0.29 in favour of
torchcodec, which this project does not depend on.) Headers are checked cheaply with
:func:`image_header` (``Image.open`` reads only the header; it reports the oriented size too),
so a data set is validated when it is built rather than in the middle of an epoch.

One limit: an EXIF block that a PNG stores *after* its pixel data is seen by the decode but not
by the header check (reading it would mean decoding the file). Pillow and cameras write it
before; datasets re-check the decoded sizes where a mismatch would misalign a pair.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal, get_args

import numpy as np
import torch
from PIL import ExifTags, Image, ImageFile, ImageOps, UnidentifiedImageError

from pix2pix_aa.console import notice

__all__ = [
    "IMAGE_EXTENSIONS",
    "GRAYSCALE_POLICIES",
    "CHANNELS",
    "decode_image",
    "image_header",
    "list_images",
    "natural_key",
    "unexpected_mode",
]

#: File types Pillow decodes that the data sets accept (lower-case; matched case-insensitively).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: What to do with a file whose mode is not the one asked for (grayscale or RGBA when RGB is
#: asked, colour when grayscale is asked): convert it (reported once per data set), or raise.
GrayscalePolicy = Literal["convert", "error"]
GRAYSCALE_POLICIES: tuple[str, ...] = get_args(GrayscalePolicy)
#: Channel counts an image can be read with: 1 (grayscale, Pillow mode ``L``) or 3 (``RGB``).
CHANNELS: tuple[int, ...] = (1, 3)

_COLOUR_MODES = {"RGB", "YCbCr", "CMYK", "P"}
_GRAY_MODES = {"L", "1", "I", "I;16", "I;16B", "I;16L", "I;16N"}
_SIXTEEN_BIT = {"I", "I;16", "I;16B", "I;16L", "I;16N"}
# EXIF orientations 5-8 are a transpose or a 90/270-degree rotation: width and height swap.
_SWAPS_AXES = {5, 6, 7, 8}


def natural_key(path: Path) -> list:
    """Sort key so that ``2.png`` comes before ``10.png`` (the real facades files are 1..N)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def is_image_file(path: Path) -> bool:
    """Whether ``path`` has one of :data:`IMAGE_EXTENSIONS` (case-insensitive)."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def list_images(folder: Path, what: str, report_skipped: bool = False) -> list[Path]:
    """Image files in ``folder`` (not recursive), naturally sorted.

    Args:
        folder: the folder to list.
        what: describes the folder in messages (e.g. "split 'train' of aligned data set").
        report_skipped: print one line naming the subfolders and one naming the other files
            that are not read (they are never read: the listing is not recursive).

    Raises:
        FileNotFoundError: if ``folder`` is missing or holds no image file, or a link named like
            an image points at nothing (it was left out without a word, and in a paired set its
            partner with it).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{what}: folder {folder} does not exist")
    entries = sorted(folder.iterdir(), key=natural_key)
    broken = [p for p in entries if p.is_symlink() and not p.exists() and is_image_file(p)]
    if broken:
        raise FileNotFoundError(f"{what}: {len(broken)} link(s) to images that do not exist: {_names(broken)} "
                                f"({broken[0].name} -> {os.readlink(broken[0])}); fix or remove them")
    # Hidden files are never data: macOS writes ._<name> resource files beside each file it copies to
    # FAT/exFAT/SMB shares or zips, named like images and unreadable as them.
    hidden = [p for p in entries if p.name.startswith(".") and p.is_file() and is_image_file(p)]
    files = [p for p in entries if p.is_file() and is_image_file(p) and p not in hidden]
    if not files:
        raise FileNotFoundError(
            f"{what}: no image files ({', '.join(IMAGE_EXTENSIONS)}) in {folder}"
            + (f" (it holds {len(entries)} other entries)" if entries else " (it is empty)")
        )
    if report_skipped:
        folders = [p for p in entries if p.is_dir()]
        others = [p for p in entries if not p.is_dir() and p not in files and not p.name.startswith(".")]
        if folders:
            notice(f"{what}: skipped {len(folders)} subfolder(s): {_names(folders, '/')} "
                   f"(reads the images of one folder, not recursive)")
        if others:
            notice(f"{what}: skipped {len(others)} file(s) that are not {'/'.join(IMAGE_EXTENSIONS)} images: "
                   f"{_names(others)}")
        if hidden:
            notice(f"{what}: skipped {len(hidden)} hidden file(s) named like images: {_names(hidden)} (macOS "
                   "writes ._<name> resource files beside copied files)")
    return files


def _names(paths: list[Path], suffix: str = "", n: int = 5) -> str:
    names = ", ".join(p.name + suffix for p in paths[:n])
    return names + (f", ... ({len(paths)} in all)" if len(paths) > n else "")


def _orientation(im: Image.Image) -> int:
    """The EXIF orientation (1-8; 1 = none) still to apply to ``im``, read without decoding the pixels."""
    if im.format == "TIFF":  # Pillow's TIFF reader reports the oriented size and orients on load itself
        return 1
    try:
        # Image.getexif reads what the header holds; PngImageFile.getexif would decode the whole
        # file to look for an EXIF chunk after the pixel data.
        value = Image.Image.getexif(im).get(ExifTags.Base.Orientation, 1)
    except Exception:  # a malformed EXIF block: Pillow ignores it on decode as well
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


@contextmanager
def _pixel_limit(any_size: bool) -> Iterator[None]:
    """Pillow's decompression-bomb limit (``Image.MAX_IMAGE_PIXELS``) lifted while decoding a file
    the user named for ``predict`` (``any_size``); Pillow's own limit otherwise."""
    if not any_size:
        yield
        return
    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def _too_large(path: Path, err: Exception) -> ValueError:
    """One line for a file above Pillow's decompression-bomb limit (its message has the pixel count)."""
    return ValueError(f"{path}: {str(err).rstrip('.')}; images this large are read as predict inputs "
                      "(--data.predict_dir, with --data.tile N to generate them tile by tile), not as training or "
                      "evaluation data: downscale the file")


def image_header(path: Path, any_size: bool = False) -> tuple[int, int, str]:
    """``(width, height, mode)`` of an image as :func:`decode_image` returns it, from the header only.

    The size is the *oriented* one: a 40x20 JPEG tagged "rotate 90" reports ``(20, 40, mode)``.
    ``any_size``: no pixel limit (files the user named for ``predict``); else Pillow's
    decompression-bomb limit (``PIL.Image.MAX_IMAGE_PIXELS`` times 2) applies.

    Raises:
        ValueError: if the file is not a readable image, or above Pillow's limit (the message
            names the file, and for a large one its pixel count and what to do).
    """
    try:
        with _pixel_limit(any_size), Image.open(path) as im:
            w, h = im.size
            if _orientation(im) in _SWAPS_AXES:
                w, h = h, w
            return w, h, im.mode
    except Image.DecompressionBombError as err:
        raise _too_large(path, err) from None
    except (UnidentifiedImageError, OSError) as err:
        if Path(path).is_file():
            _refuse_empty(Path(path))  # as decode_image says it
        raise _undecodable(Path(path), err, f"{path}: not a readable image ({err})") from None


def _refuse_empty(path: Path) -> None:
    """Raises ValueError for a 0-byte file: Pillow only says it cannot identify it."""
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: file is empty (0 bytes); expected a PNG/JPEG image")


def is_rgb_mode(mode: str) -> bool:
    """Whether a Pillow mode is plain colour without alpha."""
    return mode in _COLOUR_MODES


def unexpected_mode(mode: str, channels: int = 3) -> str | None:
    """Why a file of Pillow ``mode`` needs converting to ``channels``, or None if it does not.

    Returns e.g. ``"is grayscale"``, ``"has an alpha channel"``, ``"is colour"``.
    """
    if "A" in mode or mode.endswith("a"):  # RGBA, LA, PA, RGBa, La
        return "has an alpha channel"
    if channels == 3:
        return None if mode in _COLOUR_MODES else ("is grayscale" if mode in _GRAY_MODES else f"has mode {mode}")
    return None if mode in _GRAY_MODES else ("is colour" if mode in _COLOUR_MODES else f"has mode {mode}")


def expected_kind(channels: int) -> str:
    """``"3-channel RGB"`` or ``"1-channel grayscale"``."""
    return "3-channel RGB" if channels == 3 else "1-channel grayscale"


def check_color_mode(path: Path, mode: str, grayscale: str, channels: int = 3) -> None:
    """Raise for a file whose mode is not ``channels`` when ``grayscale="error"``; else nothing.

    A 32-bit float image (mode ``F``) is refused whatever ``grayscale`` is: its values have no
    standard scale (0..1? 0..255?), and Pillow's conversion truncates them (0..1 read as black).

    Raises:
        ValueError: naming the file, its mode, what was expected and the options to change.
    """
    if mode == "F":
        raise ValueError(f"{path}: 32-bit float image (mode F), whose values have no standard scale to 8 bits "
                         "(0..1 would be read as black); save it as an 8- or 16-bit image (PNG)")
    kind = unexpected_mode(mode, channels)
    if kind is None or grayscale != "error":
        return
    other = 1 if channels == 3 else 3
    raise ValueError(
        f"{path}: image {kind} (mode {mode}); expected {expected_kind(channels)}. "
        f"Pass grayscale='convert' to convert such files, or input_nc/output_nc={other} "
        f"if the data set is {expected_kind(other)}"
    )


def _check_args(channels: int, grayscale: str) -> None:
    if grayscale not in GRAYSCALE_POLICIES:
        raise ValueError(f"grayscale must be one of {GRAYSCALE_POLICIES}, got {grayscale!r}")
    if channels not in CHANNELS:
        raise ValueError(f"channels must be one of {CHANNELS}, got {channels!r}")


def _undecodable(path: Path, err: Exception, message: str) -> ValueError:
    """The error for a file Pillow cannot read: ``message``, or for a TIFF that Pillow cannot
    identify, what it most likely is. Pillow reads 8/16-bit and single-channel float TIFFs only;
    float64, float16 or multi-channel float files are whole files it cannot identify."""
    if isinstance(err, UnidentifiedImageError) and path.suffix.lower() in (".tif", ".tiff"):
        return ValueError(f"{path}: cannot decode this TIFF: a sample format Pillow does not read (float64, float16, "
                          "multi-channel float) or a damaged file; save it as an 8- or 16-bit image (PNG)")
    return ValueError(message)


#: 16-bit files whose largest value is below this hold 8- to 12-bit data (or class ids): the
#: 16-to-8-bit scaling would read them as black or nearly (at most 16 of 255).
_SIXTEEN_BIT_FLOOR = 4096


def _sixteen_bit_colour(im: Image.Image) -> bool:
    """Whether an opened (not yet loaded) colour image has 16 bits a sample: Pillow reads such a
    PNG or TIFF as 8-bit RGB, keeping each value's high byte (its raw mode says ``RGB;16...``)."""
    raw = im.tile[0][3] if im.tile else ""
    raw = raw[0] if isinstance(raw, tuple) and raw else raw
    return isinstance(raw, str) and raw.startswith("RGB") and ";16" in raw


def _check_sixteen_bit_values(path: Path, mode: str, top: float) -> None:
    """Refuse a 16-bit file whose largest value ``top`` is below :data:`_SIXTEEN_BIT_FLOOR`."""
    if 0 < top < _SIXTEEN_BIT_FLOOR:
        kind = "32-bit integer" if mode == "I" else "16-bit"
        raise ValueError(f"{path}: {kind} image (mode {mode}) whose values are all in 0..{top:.0f}: 8- to 12-bit "
                         f"data (or class ids) in a {kind} file, which the scaling to 8 bits (1/257) would read as "
                         f"black or nearly (at most {top / 257:.0f} of 255); rescale it to 8 bits and save it so")


def check_sixteen_bit(path: Path, mode: str) -> None:
    """For the data sets' start-up scan: decode a 16-bit file (grayscale, or a colour PNG / TIFF
    with 16 bits a sample) and refuse it as :func:`open_oriented` would; other files cost one
    header read at most.

    Raises:
        ValueError: naming the file.
    """
    if mode in _SIXTEEN_BIT:
        open_oriented(path, any_size=True)
    elif mode in ("RGB", "RGBA") and Path(path).suffix.lower() in (".png", ".tif", ".tiff"):
        with _pixel_limit(True), Image.open(path) as im:  # the header only: the size is checked elsewhere
            deep = _sixteen_bit_colour(im)
        if deep:
            open_oriented(path, any_size=True)


def open_oriented(path: Path, any_size: bool = False) -> tuple[Image.Image, str]:
    """Decode ``path`` fully and apply its EXIF orientation: ``(image, mode of the file)``.

    16-bit grayscale is scaled to 8 bits (mode ``L``); other modes are returned as they are.
    The building block of :func:`decode_image` (use that unless you need the Pillow image).
    ``any_size``: as for :func:`image_header`.

    Raises:
        FileNotFoundError: missing file.
        ValueError: empty, truncated, corrupt or otherwise undecodable file; above Pillow's
            pixel limit without ``any_size``.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist")
    _refuse_empty(path)
    # Another library may have switched Pillow to pad truncated files (with black); not here.
    previous, ImageFile.LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES, False
    try:
        with _pixel_limit(any_size), Image.open(path) as im:
            deep_colour = _sixteen_bit_colour(im)  # known before loading only
            im.load()
            mode = im.mode
            out = ImageOps.exif_transpose(im)  # an oriented copy, detached from the file
            if mode in _SIXTEEN_BIT:  # 16-bit grayscale -> 8 bits, rounded
                values = np.asarray(out, dtype=np.float64)
                _check_sixteen_bit_values(path, mode, float(values.max()) if values.size else 0.0)
                out = Image.fromarray((values / 257.0).round().clip(0, 255).astype(np.uint8))
            elif deep_colour:  # Pillow kept the high bytes: a high byte of h means a value of 256 h to 256 h + 255
                high = np.asarray(out)
                top = float(high[..., :3].max()) * 256 + 255 if high.size else 0.0
                _check_sixteen_bit_values(path, f"{mode}, 16 bits a sample", top)
    except Image.DecompressionBombError as err:
        raise _too_large(path, err) from None
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        message = f"{path}: cannot decode image, the file is truncated or corrupt ({err})"
        raise _undecodable(path, err, message) from None
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = previous
    return out, mode


def to_mode(im: Image.Image, channels: int) -> Image.Image:
    """Convert a Pillow image to ``RGB`` (``channels=3``) or ``L`` (``channels=1``; ITU-R 601 luma).

    Alpha is dropped (not composited): the colour values are kept as they are.
    """
    target = "RGB" if channels == 3 else "L"
    if im.mode == target:
        return im
    if channels == 1 and im.mode in ("RGBA", "RGBa", "P", "PA", "CMYK", "YCbCr"):
        im = im.convert("RGB")  # through RGB, so that alpha is dropped, not blended
    return im.convert(target)


def pil_to_tensor(im: Image.Image) -> torch.Tensor:
    """An ``L`` / ``RGB`` Pillow image as a (C, H, W) uint8 tensor (C = 1 / 3)."""
    arr = np.asarray(im)
    if arr.ndim == 2:
        arr = arr[..., None]
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).contiguous()


def decode_image(path: Path, channels: int = 3, grayscale: str = "convert", any_size: bool = False) -> torch.Tensor:
    """Decode an image file, upright, to a ``(channels, H, W)`` uint8 tensor.

    H and W are the oriented size (EXIF orientation applied; the same as :func:`image_header`
    reports). ``channels=3``: RGB (grayscale replicated, alpha dropped); ``channels=1``:
    grayscale (colour converted with ITU-R 601 luma, alpha dropped). A file that needs such a
    conversion is converted silently with ``grayscale="convert"`` (the data sets report them
    once per data set) and refused with ``grayscale="error"``. ``any_size``: no pixel limit
    (files the user named for ``predict``; :func:`image_header`).

    Raises:
        FileNotFoundError: missing file.
        ValueError: bad ``channels`` / ``grayscale``; empty, truncated, corrupt or otherwise
            undecodable file; a mode that needs converting with ``grayscale="error"``; above
            Pillow's pixel limit without ``any_size``. Every message names the file.
    """
    _check_args(channels, grayscale)
    im, mode = open_oriented(path, any_size)
    check_color_mode(Path(path), mode, grayscale, channels)
    return pil_to_tensor(to_mode(im, channels))


def paths_summary(paths: Iterable[Path], n: int = 5) -> str:
    """Up to ``n`` names, for messages."""
    paths = list(paths)
    names = ", ".join(str(p) for p in paths[:n])
    return names + (f", ... ({len(paths)} in all)" if len(paths) > n else "")
