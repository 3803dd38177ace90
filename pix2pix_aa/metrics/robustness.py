"""Noise robustness: stability PSNR between G(x) and G(x + noise) (docs/DESIGN.md section 5)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import torch

from pix2pix_aa.metrics._batching import Generator, check_batch_size, forward, warn_if_training
from pix2pix_aa.metrics.psnr import DATA_RANGE, MAX_PSNR_DB, check_images, mse_per_image, psnr_from_mse

__all__ = ["noise_draw", "noise_robustness"]


def noise_draw(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """The standard-normal noise :func:`noise_robustness` adds to ``x`` (scaled by each sigma):
    drawn on the CPU from ``seed`` (the same numbers on every device), then moved to ``x``'s
    device and dtype.

    Shape:
        x: (N, C, H, W); returns the same shape.
    """
    gen = torch.Generator(device="cpu").manual_seed(seed)
    return torch.randn(x.shape, generator=gen, dtype=torch.float32).to(device=x.device, dtype=x.dtype)


def noise_robustness(G: Generator, x: torch.Tensor, sigmas: Sequence[float] = (0.01, 0.02, 0.05, 0.1),
                     seed: int = 0, batch_size: Optional[int] = None, data_range: float = DATA_RANGE,
                     max_db: float = MAX_PSNR_DB) -> dict[float, float]:
    """Mean per-image PSNR between G(x) and G(x + sigma * z), z ~ N(0, 1), for each sigma.

    One standard-normal draw z (seeded, drawn on the CPU so the numbers do not depend on the
    device) is scaled by every sigma (common random numbers: the curve over sigma is smooth and,
    for a smooth G, decreasing). The noisy input is not clipped to [-1, 1]. Sigma is in the
    [-1, 1] image units (sigma 0.1 = 5 % of the data range). PSNR capped at ``max_db``.

    Args:
        G: callable (N, C, H, W) -> (N, C', H, W); eval mode (not changed here).
        x: (N, C, H, W) images in [-1, 1].
        sigmas: noise standard deviations, each >= 0.

    Raises:
        ValueError: ``x`` not float, or on another scale (:func:`~pix2pix_aa.metrics.psnr.check_images`).

    Returns:
        {sigma: mean PSNR in dB} in the order given.
    """
    check_images(x, "x", data_range, stacklevel=3)  # sigma is in [-1, 1] units: other scales mean other noise
    sigmas = [float(s) for s in sigmas]
    if not sigmas or any(s < 0 for s in sigmas):
        raise ValueError(f"sigmas must be a non-empty list of values >= 0, got {sigmas}")
    warn_if_training(G)
    bs = check_batch_size(batch_size, tuple(x.shape[1:]), x.dtype)
    z = noise_draw(x, seed)
    # Inputs: for each image its clean copy, then one copy per sigma; batched in chunks.
    jobs = [(i, k) for i in range(x.shape[0]) for k in [None, *range(len(sigmas))]]
    sums = torch.zeros(len(sigmas), dtype=torch.float64)
    ref: Optional[torch.Tensor] = None
    for start in range(0, len(jobs), bs):
        chunk = jobs[start:start + bs]
        batch = torch.stack([x[i] if k is None else x[i] + sigmas[k] * z[i] for i, k in chunk])
        out = forward(G, batch)
        for (_i, k), o in zip(chunk, out):
            if k is None:
                ref = o
            else:
                mse = mse_per_image(ref[None], o[None])
                sums[k] += psnr_from_mse(mse, data_range, max_db)[0]
    means = sums / x.shape[0]
    return {s: float(v) for s, v in zip(sigmas, means)}
