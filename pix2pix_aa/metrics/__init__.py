"""Shift-stability metrics (pure torch; no Lightning, no networks). Definitions: docs/DESIGN.md section 5.
FID / KID / LPIPS (:mod:`pix2pix_aa.metrics.distribution`, torchmetrics) take their feature networks as
arguments; :mod:`pix2pix_aa.metrics.pretrained` builds the standard ones.

Generators are any callable ``G(x: (N, C, H, W)) -> (N, C', H, W)`` on images in [-1, 1]; the
caller puts a model in eval mode (and under no_grad / inference_mode); nothing here changes it.
Plots live in :mod:`pix2pix_aa.metrics.plots` (imports matplotlib).
"""

from pix2pix_aa.metrics._batching import default_batch_size
from pix2pix_aa.metrics.bandwidth import LOWPASS_CHOICES, band_energy, high_frequency_energy, lowpass
from pix2pix_aa.metrics.consistency import ConsistencyResult, consistency, patch_consistency
from pix2pix_aa.metrics.distribution import DistributionResult, fid, kid, lpips
from pix2pix_aa.metrics.features import FeatureDistanceResult, cosine_distance, feature_distance
from pix2pix_aa.metrics.psnr import DATA_RANGE, MAX_PSNR_DB, mse_per_image, pooled_psnr, psnr, psnr_from_mse
from pix2pix_aa.metrics.quality import (
    COLLAPSE_CONTENT_RATIO,
    COLLAPSE_IMAGE_FRACTION,
    COLLAPSE_TV_RATIO,
    coarse_contrast,
    content_lost,
    quality,
    sharpness,
    total_variation,
)
from pix2pix_aa.metrics.robustness import noise_robustness
from pix2pix_aa.metrics.shifts import fourier_shift, reflect_pad_source, shift_features, shift_grid
from pix2pix_aa.metrics.stability import StabilityResult, stability_circular, stability_crop

__all__ = [
    "COLLAPSE_CONTENT_RATIO",
    "COLLAPSE_IMAGE_FRACTION",
    "COLLAPSE_TV_RATIO",
    "DATA_RANGE",
    "LOWPASS_CHOICES",
    "MAX_PSNR_DB",
    "ConsistencyResult",
    "DistributionResult",
    "FeatureDistanceResult",
    "StabilityResult",
    "band_energy",
    "coarse_contrast",
    "consistency",
    "content_lost",
    "cosine_distance",
    "default_batch_size",
    "feature_distance",
    "fid",
    "fourier_shift",
    "high_frequency_energy",
    "kid",
    "lowpass",
    "lpips",
    "mse_per_image",
    "noise_robustness",
    "patch_consistency",
    "pooled_psnr",
    "psnr",
    "psnr_from_mse",
    "quality",
    "reflect_pad_source",
    "sharpness",
    "shift_features",
    "shift_grid",
    "stability_circular",
    "stability_crop",
    "total_variation",
]
