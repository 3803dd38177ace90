"""Merging results computed on disjoint chunks of images into the result for all of them.

Exact: stability keeps the per-image MSEs (and, when computed, the per-image equal-bandwidth
MSEs and per-image band energies of the spectrum), so means, per-shift grids, the pooled PSNR
and the spectrum are recomputed from the concatenation; feature distances are image means, merged by weight.
Used by the evaluation to show progress per chunk of images without changing any number.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from pix2pix_aa.metrics.features import FeatureDistanceResult
from pix2pix_aa.metrics.stability import StabilityResult, _summarise

__all__ = ["merge_stability", "merge_feature_distance"]


def merge_stability(results: Sequence[StabilityResult]) -> StabilityResult:
    """One :class:`StabilityResult` over all images of ``results`` (same protocol and shifts)."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    for r in results[1:]:
        if (r.protocol, r.shifts, r.margin, r.data_range) != (first.protocol, first.shifts, first.margin,
                                                                first.data_range) \
                or not np.array_equal(r.counts, first.counts):
            raise ValueError("cannot merge stability results of different protocols, shifts, margins or sizes")
    if any((r.equal_bandwidth is None) != (first.equal_bandwidth is None) or r.lowpass != first.lowpass
           or (r.band_output is None) != (first.band_output is None) for r in results):
        raise ValueError("cannot merge stability results with and without the equal-bandwidth figure or spectrum")
    mse = torch.from_numpy(np.concatenate([r.mse for r in results], axis=0))
    eb = merge_stability([r.equal_bandwidth for r in results]) if first.equal_bandwidth is not None else None
    bands = [np.concatenate([getattr(r, a) for r in results], axis=0) if first.band_output is not None else None
             for a in ("band_output", "band_error")]
    return _summarise(first.protocol, list(first.shifts), mse, torch.from_numpy(first.counts), first.grid_size,
                      first.margin, first.data_range, first.max_db, dict(first.extra), lowpass=first.lowpass,
                      equal_bandwidth=eb, band_output=bands[0], band_error=bands[1])


def merge_feature_distance(results: Sequence[FeatureDistanceResult]) -> FeatureDistanceResult:
    """Image-weighted mean of per-layer distance maps (same layers and shifts)."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    for r in results[1:]:
        if r.layers != first.layers or r.shifts != first.shifts:
            raise ValueError("cannot merge feature distances of different layers or shifts")
    n = sum(r.num_images for r in results)
    distance = {name: sum(r.distance[name] * r.num_images for r in results) / n for name in first.layers}
    return FeatureDistanceResult(layers=list(first.layers), strides=dict(first.strides), distance=distance,
                                 shifts=list(first.shifts), num_images=n)
