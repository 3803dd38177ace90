"""Data: pix2pix datasets (aligned A|B files, paired folders), procedural CMP facades, real
photographs from scikit-image, and the Lightning datamodule. Knows nothing of the networks.

Every image file is read by ``decode_image`` (EXIF orientation applied, mode converted to 1 or 3
channels explicitly); anything else that reads images (evaluation, scripts) should use it too.

``Pix2PixDataModule`` is imported lazily so that generating data (``python -m
pix2pix_aa.data.facades``) does not pay for importing Lightning.
"""

from __future__ import annotations

from typing import Any

from pix2pix_aa.data.datasets import (
    DIRECTIONS,
    SPLITS,
    AlignedDataset,
    ImageFolderDataset,
    InputOnly,
    PairedFolderDataset,
)
from pix2pix_aa.data.image_io import IMAGE_EXTENSIONS, decode_image, image_header
from pix2pix_aa.data.palette import CLASS_NAMES, PALETTE, colorize, decode_labels

__all__ = [
    "DIRECTIONS",
    "SPLITS",
    "AlignedDataset",
    "PairedFolderDataset",
    "ImageFolderDataset",
    "InputOnly",
    "Pix2PixDataModule",
    "IMAGE_EXTENSIONS",
    "decode_image",
    "image_header",
    "CLASS_NAMES",
    "PALETTE",
    "colorize",
    "decode_labels",
]


def __getattr__(name: str) -> Any:
    if name == "Pix2PixDataModule":
        from pix2pix_aa.data.datamodule import Pix2PixDataModule

        return Pix2PixDataModule
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
