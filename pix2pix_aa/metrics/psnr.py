"""Peak signal-to-noise ratio for images in [-1, 1] (data range 2).

PSNR = 10 * log10(data_range**2 / MSE). Computed in float64 so that it agrees with
``skimage.metrics.peak_signal_noise_ratio`` to well below 1e-4 dB; hand-written because the
stability metrics need the per-image MSE as well (for pooling), which library PSNRs hide.
"""

from __future__ import annotations

import contextvars
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch

__all__ = ["DATA_RANGE", "MAX_PSNR_DB", "check_image_scale", "check_images", "mse_per_image", "psnr", "psnr_from_mse",
           "pooled_psnr", "scale_is_known", "scale_known"]

#: Images live in [-1, 1], so the peak-to-peak range is 2 (== range 1 for images in [0, 1]).
DATA_RANGE: float = 2.0

#: Cap used by the stability metrics: an MSE of exactly 0 (or anything above this) is reported
#: as 200 dB. float32 round-off alone gives roughly 130-160 dB on 256x256 images, so 200 dB
#: means "equal to float precision"; a finite cap keeps means, JSON and tables well defined.
MAX_PSNR_DB: float = 200.0


_SCALE_KNOWN: contextvars.ContextVar[bool] = contextvars.ContextVar("scale_known", default=False)


@contextmanager
def scale_known() -> Iterator[None]:
    """Within it, :func:`check_image_scale` does not guess at [0, 1] images from a batch of data
    without a negative value: for callers whose images this project's data sets mapped to [-1, 1]
    (train.py's validation, evaluate.py), where such a batch is a bright one (an edge map with no
    edge: white), not another scale. Values beyond the range are still refused, and a generator's
    outputs still checked."""
    token = _SCALE_KNOWN.set(True)
    try:
        yield
    finally:
        _SCALE_KNOWN.reset(token)


def scale_is_known() -> bool:
    """Whether this runs within :func:`scale_known` (for worker processes to carry it over)."""
    return _SCALE_KNOWN.get()


def check_images(x: torch.Tensor, name: str, data_range: float = DATA_RANGE, stacklevel: int = 2) -> None:
    """A non-empty float (N, C, H, W) batch of images on the PSNR's scale (:func:`check_image_scale`;
    ``stacklevel`` of its warnings as ``warnings.warn`` counts it from here).

    Raises:
        ValueError: naming ``name``: another shape, an integer dtype, or another scale.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] == 0:
        shape = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
        raise ValueError(f"{name} must be a non-empty (N, C, H, W) tensor, got {shape}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a float tensor of images in [-1, 1], got {x.dtype} (for uint8 images: "
                         "x.float() / 127.5 - 1)")
    check_image_scale(x, name, data_range, stacklevel=stacklevel + 1)


def check_image_scale(x: torch.Tensor, name: str, data_range: float = DATA_RANGE, outputs: bool = False,
                      stacklevel: int = 4) -> None:
    """Images whose scale is not the data range's give a PSNR off by 20 log10 of the ratio: with
    the default range, values beyond [-2, 2] (0..255) are refused (a resize's overshoot or added
    noise is not), and [0, 1] images, which fit in [-1, 1] and read 6 dB too stable, warned
    about; with another ``data_range``, values spanning more than twice it are refused and less
    than an eighth of it warned about. ``outputs`` (G's): warnings only, and only beyond [-10, 10]
    for the first (a network without a tanh head, such as a plain conv, is a fair thing to test).

    Raises:
        ValueError: naming ``name``, its range and the fix.
    """
    finite = x[torch.isfinite(x)]
    if finite.numel() == 0:
        return
    lo, hi = float(finite.min()), float(finite.max())
    if data_range == DATA_RANGE:
        bound = 10 if outputs else 2
        if lo < -bound or hi > bound:
            message = (f"{name} holds values in [{lo:.3g}, {hi:.3g}], not images in [-1, 1], which the PSNR's data "
                       f"range {DATA_RANGE:g} assumes: map them to [-1, 1] (x / 127.5 - 1 for 0..255), or pass "
                       "data_range")
            if not outputs:
                raise ValueError(message)
            warnings.warn(message, stacklevel=stacklevel)
        # No dark pixel, but bright ones: the look of [0, 1]. Data mapped by this project are
        # exempt within scale_known(); a generator's outputs never (a [0, 1] head reads 6 dB high).
        if lo >= 0 and hi > 0.5 and (outputs or not _SCALE_KNOWN.get()):
            warnings.warn(f"{name} has no negative value: images in [0, 1]? The PSNR assumes [-1, 1] (data range "
                          f"{DATA_RANGE:g}), which reads [0, 1] images 6 dB too stable; map them with x * 2 - 1",
                          stacklevel=stacklevel)
        return
    if hi - lo > 2 * data_range:
        message = f"{name} holds values in [{lo:.3g}, {hi:.3g}], more than twice data_range {data_range:g}"
        if not outputs:
            raise ValueError(message)
        warnings.warn(message, stacklevel=stacklevel)
    if hi - lo < data_range / 8:
        warnings.warn(f"{name} spans [{lo:.3g}, {hi:.3g}], under an eighth of data_range {data_range:g}: the PSNR "
                      "reads it as far more stable than on its own scale; is data_range right?", stacklevel=stacklevel)


def _check_pair(a: torch.Tensor, b: torch.Tensor) -> None:
    if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor):
        raise TypeError(f"psnr expects two tensors, got {type(a).__name__} and {type(b).__name__}")
    if a.shape != b.shape:
        raise ValueError(f"psnr needs tensors of the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if a.dim() < 1 or a.numel() == 0:
        raise ValueError(f"psnr needs non-empty (N, ...) tensors, got shape {tuple(a.shape)}")
    if not (a.is_floating_point() and b.is_floating_point()):  # uint8 images against data_range 2: negative dB
        raise ValueError(f"psnr needs float images in [-1, 1] (or a data_range of theirs), got {a.dtype} and "
                         f"{b.dtype} (for uint8 images: x.float() / 127.5 - 1)")


def mse_per_image(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean squared error per image, in float64.

    Args:
        a, b: (N, ...) tensors of the same shape; dimension 0 indexes images.

    Returns:
        (N,) float64 tensor.
    """
    _check_pair(a, b)
    diff = a.detach().to(torch.float64) - b.detach().to(torch.float64)
    return diff.square().flatten(1).mean(1) if diff.dim() > 1 else diff.square()


def psnr_from_mse(mse: torch.Tensor | float, data_range: float = DATA_RANGE,
                  max_db: float | None = None) -> torch.Tensor:
    """PSNR in dB from an MSE (tensor or float).

    Args:
        mse: any shape, >= 0.
        data_range: peak-to-peak range of the images (2 for [-1, 1]).
        max_db: if given, PSNR is clamped to at most this (so MSE == 0 gives ``max_db``
            instead of ``inf``).

    Returns:
        float64 tensor of the same shape; ``inf`` where MSE == 0 and ``max_db`` is None.
    """
    if data_range <= 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    mse_t = torch.as_tensor(mse, dtype=torch.float64)
    if (mse_t < 0).any():
        raise ValueError("MSE must be >= 0")
    with torch.no_grad():
        out = 10.0 * torch.log10(data_range ** 2 / mse_t)  # 1/0 -> inf, as skimage
    if max_db is not None:
        out = out.clamp(max=max_db)
    return out


def psnr(a: torch.Tensor, b: torch.Tensor, data_range: float = DATA_RANGE,
         reduction: Literal["mean", "none"] = "mean") -> torch.Tensor:
    """PSNR per image between ``a`` and ``b`` (as ``skimage.metrics.peak_signal_noise_ratio``
    on each image).

    Args:
        a, b: (N, C, H, W) (or any (N, ...)) tensors, same shape.
        data_range: 2.0 for images in [-1, 1].
        reduction: ``"none"`` -> (N,) per-image PSNR; ``"mean"`` -> the mean of those (a
            scalar; ``inf`` if any pair is identical). For the PSNR of the pooled MSE use
            :func:`pooled_psnr`.

    Returns:
        float64 tensor.
    """
    if reduction not in ("mean", "none"):
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    per_image = psnr_from_mse(mse_per_image(a, b), data_range)
    return per_image.mean() if reduction == "mean" else per_image


def pooled_psnr(sse: torch.Tensor | float, count: torch.Tensor | int, data_range: float = DATA_RANGE,
                max_db: float | None = None) -> float:
    """PSNR of the pooled MSE = sum of squared errors / number of elements (StyleGAN3 EQ-T).

    Args:
        sse: summed squared errors (any shape; summed).
        count: number of elements they were summed over (any shape; summed).
    """
    total = float(torch.as_tensor(count, dtype=torch.float64).sum())
    if total <= 0:
        raise ValueError("pooled_psnr needs a positive element count")
    mse = float(torch.as_tensor(sse, dtype=torch.float64).sum()) / total
    value = float(psnr_from_mse(mse, data_range, max_db))
    return value if math.isfinite(value) or max_db is None else max_db
