"""Anti-aliasing layers (no Lightning here): BlurPool and friends (docs/DESIGN.md section 2).

filters.py: the low-pass filters (binomial, Kaiser sinc); padding.py: padding for every layer
that pads; blur_pool.py: BlurPool / Blur; polyphase.py: APS."""

# Adaptive polyphase sampling lives in polyphase.py (another owner): re-export whatever it
# declares, so this list never drifts from it.
from pix2pix_aa.layers import polyphase as _polyphase
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
from pix2pix_aa.layers.filters import (
    LowPass,
    frequency_response,
    kaiser_sinc_row,
    lowpass_filter,
    parse_filter,
)
from pix2pix_aa.layers.padding import pad_amounts, pad_mode, safe_pad
from pix2pix_aa.layers.polyphase import *  # noqa: F401,F403  (names listed in its __all__)
from pix2pix_aa.layers.pooling import (
    MaxBlurPool,
    blur_pool_from_avg_pool,
    max_blur_pool2d,
    max_blur_pool_from_max_pool,
)

__all__ = [
    "FILTER_SIZES",
    "PAD_TYPES",
    "Blur",
    "BlurConv2d",
    "BlurPool",
    "ConvBlurPool",
    "LowPass",
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
    "frequency_response",
    "kaiser_sinc_row",
    "lowpass_filter",
    "max_blur_pool2d",
    "max_blur_pool_from_max_pool",
    "pad_amounts",
    "pad_mode",
    "parse_filter",
    "safe_pad",
    *_polyphase.__all__,
]
