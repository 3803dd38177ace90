"""Internal feature distance (Zhang 2019, figure of per-layer heatmaps; docs/DESIGN.md section 5).

For a layer with cumulative stride s and an input shift (dy, dx), the cosine distance
``1 - cos(F(roll(x, (dy, dx))), shift(F(x), (dy / s, dx / s)))``, with the cosine taken over the
flattened C*h*w map of each image and averaged over images. Both shifts are circular; the
feature shift is exact ``torch.roll`` when dy/s and dx/s are integers and a Fourier phase ramp
otherwise (the band-limited interpretation of a fractional shift). A perfectly shift-equivariant
layer scores 0 everywhere; an aliasing one lights up at shifts that are not multiples of s.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from pix2pix_aa.metrics._batching import check_batch_size, warn_if_training
from pix2pix_aa.metrics.shifts import Shift, grid_size_for, shift_features, validate_shifts
from pix2pix_aa.metrics.stability import nan_to_none

__all__ = ["FeatureFn", "FeatureDistanceResult", "feature_distance", "cosine_distance"]

#: x (N, C, H, W) -> {layer name: (features (N, C_l, h_l, w_l), cumulative stride s_l)}.
FeatureFn = Callable[[torch.Tensor], Mapping[str, tuple[torch.Tensor, int]]]


@dataclass
class FeatureDistanceResult:
    """Per-layer cosine distance over input shifts.

    Attributes:
        layers: layer names in the order ``feature_fn`` returned them.
        strides: layer -> cumulative stride s.
        distance: layer -> (S, S) array; [dy, dx] = mean over images of 1 - cos. (0, 0) is 0 by
            definition (not computed); NaN where a shift was not evaluated.
        shifts: the evaluated shifts (including (0, 0) if it was asked for).
        num_images: N.
    """

    layers: list[str]
    strides: dict[str, int]
    distance: dict[str, np.ndarray]
    shifts: list[Shift]
    num_images: int

    def mean(self, layer: str) -> float:
        """Mean distance of ``layer`` over the evaluated nonzero shifts."""
        grid = self.distance[layer]
        vals = [grid[s] for s in self.shifts if s != (0, 0)]
        return float(np.mean(vals)) if vals else 0.0

    def to_dict(self) -> dict:
        return {
            "layers": list(self.layers),
            "strides": dict(self.strides),
            "num_images": self.num_images,
            "shifts": [list(s) for s in self.shifts],
            "mean_distance": {name: self.mean(name) for name in self.layers},
            "distance": {name: nan_to_none(self.distance[name]) for name in self.layers},
        }


def cosine_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """1 - cos between a[i] and b[i] flattened, per image, in float64.

    Two all-zero maps count as identical (distance 0); one zero map against a nonzero one
    gives 1 (orthogonal), rather than NaN.

    Args:
        a, b: (N, ...) tensors of the same shape.
    Returns:
        (N,) float64.
    """
    a64, b64 = a.flatten(1).to(torch.float64), b.flatten(1).to(torch.float64)
    na, nb = a64.norm(dim=1), b64.norm(dim=1)
    denom = na * nb
    cos = (a64 * b64).sum(1) / torch.where(denom > 0, denom, torch.ones_like(denom))
    cos = torch.where((na == 0) & (nb == 0), torch.ones_like(cos), cos)
    return (1.0 - cos).clamp(min=0.0)


def _call(feature_fn: FeatureFn, batch: torch.Tensor) -> dict[str, tuple[torch.Tensor, int]]:
    with torch.no_grad():
        feats = feature_fn(batch)
    if not isinstance(feats, Mapping) or not feats:
        raise ValueError(f"feature_fn must return a non-empty dict name -> (features, stride), "
                         f"got {type(feats).__name__}")
    out = {}
    for name, value in feats.items():
        try:
            f, stride = value
        except (TypeError, ValueError):
            raise ValueError(f"feature_fn()[{name!r}] must be a pair (Tensor[N, C, h, w], stride)") from None
        if not isinstance(f, torch.Tensor) or f.dim() != 4 or f.shape[0] != batch.shape[0]:
            shape = tuple(f.shape) if isinstance(f, torch.Tensor) else type(f).__name__
            raise ValueError(f"feature_fn()[{name!r}] must be a (N={batch.shape[0]}, C, h, w) tensor, got {shape}")
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"feature_fn()[{name!r}] stride must be a positive int, got {stride!r}")
        out[name] = (f, stride)
    return out


def feature_distance(feature_fn: FeatureFn, x: torch.Tensor, shifts: Sequence[Sequence[int]],
                     max_shift: Optional[int] = 8, batch_size: Optional[int] = None) -> FeatureDistanceResult:
    """Cosine distance between F(roll(x)) and the shifted F(x) for every layer and shift.

    Args:
        feature_fn: x -> {layer: (features (N, C, h, w), cumulative stride)}, e.g.
            ``generator.features``; eval mode, not changed here.
        x: (N, C, H, W) images in [-1, 1].
        shifts: (dy, dx) input shifts (circular), e.g. ``shift_grid(8)``.
        max_shift: side S of the per-layer (S, S) arrays (None: 1 + largest shift component).
        batch_size: max images per forward pass; None -> from a 1 GiB activation budget.

    Returns:
        :class:`FeatureDistanceResult`.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty (N, C, H, W) tensor, got "
                         f"{tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__}")
    shift_list = validate_shifts(shifts)
    side = grid_size_for(shift_list, max_shift)
    warn_if_training(feature_fn.__self__ if hasattr(feature_fn, "__self__") else feature_fn)
    bs = check_batch_size(batch_size, tuple(x.shape[1:]), x.dtype)
    n = x.shape[0]
    nonzero = [k for k, s in enumerate(shift_list) if s != (0, 0)]
    # Image-major jobs, reference (None) first, as in the stability engine.
    jobs = [(i, k) for i in range(n) for k in [None, *nonzero]]
    sums: dict[str, np.ndarray] = {}
    refs: dict[int, dict[str, tuple[torch.Tensor, int]]] = {}
    layers: list[str] = []
    strides: dict[str, int] = {}
    for start in range(0, len(jobs), bs):
        chunk = jobs[start:start + bs]
        batch = torch.stack([x[i] if k is None else torch.roll(x[i], shift_list[k], dims=(-2, -1))
                             for i, k in chunk])
        feats = _call(feature_fn, batch)
        if not layers:
            layers = list(feats)
            strides = {name: s for name, (_, s) in feats.items()}
            sums = {name: np.zeros(len(shift_list)) for name in layers}
        for j, (i, k) in enumerate(chunk):
            if k is None:
                refs[i] = {name: (f[j], s) for name, (f, s) in feats.items()}
                continue
            dy, dx = shift_list[k]
            for name in layers:
                ref, s = refs[i][name]
                expected = shift_features(ref.to(torch.float64), dy / s, dx / s)
                sums[name][k] += float(cosine_distance(feats[name][0][j:j + 1], expected[None]))
            if k == nonzero[-1]:
                del refs[i]
    distance = {}
    for name in layers:
        grid = np.full((side, side), np.nan)
        for k, s in enumerate(shift_list):
            grid[s] = 0.0 if s == (0, 0) else sums[name][k] / n
        distance[name] = grid
    return FeatureDistanceResult(layers=layers, strides=strides, distance=distance, shifts=shift_list,
                                 num_images=n)
