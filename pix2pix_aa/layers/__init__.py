"""Anti-aliasing layers (no Lightning here): BlurPool and friends."""

from pix2pix_aa.layers.blur_pool import (
    FILTER_SIZES,
    Blur,
    BlurPool,
    binomial_filter,
    blur2d,
    blur_pool2d,
    create_blur_pool,
    filter_size,
)

__all__ = [
    "FILTER_SIZES",
    "Blur",
    "BlurPool",
    "binomial_filter",
    "blur2d",
    "blur_pool2d",
    "create_blur_pool",
    "filter_size",
]
