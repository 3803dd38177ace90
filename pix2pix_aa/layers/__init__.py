"""Anti-aliasing layers (no Lightning here): BlurPool and friends (docs/DESIGN.md section 2)."""

from pix2pix_aa.layers.blur_pool import (
    FILTER_SIZES,
    PAD_TYPES,
    Blur,
    BlurPool,
    binomial_filter,
    blur2d,
    blur_pool2d,
    create_blur_pool,
    filter_size,
)
from pix2pix_aa.layers.conv_blur_pool import BlurConv2d, ConvBlurPool, conv_blur_pool2d
from pix2pix_aa.layers.convert import antialias, count_parameters
from pix2pix_aa.layers.pooling import (
    MaxBlurPool,
    blur_pool_from_avg_pool,
    max_blur_pool2d,
    max_blur_pool_from_max_pool,
)

# Adaptive polyphase sampling lives in polyphase.py (another owner): re-export whatever it
# declares, so this list never drifts from it.
from pix2pix_aa.layers import polyphase as _polyphase
from pix2pix_aa.layers.polyphase import *  # noqa: F401,F403  (names listed in its __all__)

__all__ = [
    "FILTER_SIZES",
    "PAD_TYPES",
    "Blur",
    "BlurConv2d",
    "BlurPool",
    "ConvBlurPool",
    "MaxBlurPool",
    "antialias",
    "binomial_filter",
    "blur2d",
    "blur_pool2d",
    "blur_pool_from_avg_pool",
    "conv_blur_pool2d",
    "count_parameters",
    "create_blur_pool",
    "filter_size",
    "max_blur_pool2d",
    "max_blur_pool_from_max_pool",
    *_polyphase.__all__,
]
