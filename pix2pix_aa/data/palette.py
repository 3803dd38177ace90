"""The CMP Facades label palette (Tylecek & Sara 2013) as used by the pix2pix ``facades`` files.

Index 0 is "unknown" (black); indices 1-12 are MATLAB ``jet(12) * 255``. The real label maps
are stored as JPEG, so their colours are blurred: classes are decoded by the *nearest* palette
colour, never by exact match.
"""

from __future__ import annotations

import numpy as np

__all__ = ["CLASS_NAMES", "CLASS_IDS", "PALETTE", "colorize", "decode_labels", "palette_distance"]

#: Class names by index (0 = unknown).
CLASS_NAMES: tuple[str, ...] = (
    "unknown",
    "background",
    "facade",
    "window",
    "door",
    "cornice",
    "sill",
    "balcony",
    "blind",
    "deco",
    "molding",
    "pillar",
    "shop",
)

#: Class name -> index.
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}

#: (13, 3) uint8 RGB colour of each class index.
PALETTE: np.ndarray = np.array(
    [
        (0, 0, 0),  # 0 unknown
        (0, 0, 170),  # 1 background
        (0, 0, 255),  # 2 facade
        (0, 85, 255),  # 3 window
        (0, 170, 255),  # 4 door
        (0, 255, 255),  # 5 cornice
        (85, 255, 170),  # 6 sill
        (170, 255, 85),  # 7 balcony
        (255, 255, 0),  # 8 blind
        (255, 170, 0),  # 9 deco
        (255, 85, 0),  # 10 molding
        (255, 0, 0),  # 11 pillar
        (170, 0, 0),  # 12 shop
    ],
    dtype=np.uint8,
)
PALETTE.setflags(write=False)


def colorize(labels: np.ndarray) -> np.ndarray:
    """Class ids (H, W) uint8 in 0..12 -> RGB label map (H, W, 3) uint8 in the CMP palette."""
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"colorize expects an (H, W) array of class ids, got shape {labels.shape}")
    if labels.size and labels.max() >= len(PALETTE):
        raise ValueError(f"class ids must be in 0..{len(PALETTE) - 1}, got max {labels.max()}")
    return PALETTE[labels]


def _squared_distances(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) colours -> (..., 13) squared distance to each palette colour."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected RGB values with a last axis of size 3, got shape {rgb.shape}")
    diff = rgb[..., None, :].astype(np.float32) - PALETTE.astype(np.float32)
    return np.einsum("...kc,...kc->...k", diff, diff)


def decode_labels(rgb: np.ndarray) -> np.ndarray:
    """RGB label map (H, W, 3), uint8 0..255 -> class ids (H, W) uint8, by nearest palette colour.

    Robust to JPEG blur and resampling; a pixel exactly between two colours goes to the lower id.
    """
    return np.argmin(_squared_distances(rgb), axis=-1).astype(np.uint8)


def palette_distance(rgb: np.ndarray) -> np.ndarray:
    """Euclidean distance (0..255 units) of each RGB pixel (..., 3) to its nearest palette colour.

    Small (a few units) for label maps, large for photographs: used to tell which side of an
    aligned pair is the label map.
    """
    return np.sqrt(_squared_distances(rgb).min(axis=-1))
