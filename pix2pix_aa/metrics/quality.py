"""Quality beside stability (docs/DESIGN.md section 5): a model must not buy stability with blur.

PSNR / SSIM / L1 to the ground truth and the total variation of the outputs. SSIM and TV come
from kornia; PSNR is ours (float64, agrees with scikit-image).
"""

from __future__ import annotations

import kornia
import torch
import torch.nn.functional as F

from pix2pix_aa.metrics.bandwidth import high_frequency_energy
from pix2pix_aa.metrics.psnr import DATA_RANGE, check_image_scale, psnr

__all__ = ["COLLAPSE_CONTENT_RATIO", "COLLAPSE_IMAGE_FRACTION", "COLLAPSE_TV_RATIO", "coarse_contrast", "content_lost",
           "quality", "sharpness", "total_variation"]

#: Outputs whose total variation is below this fraction of the targets' are flagged as collapsed
#: (near-constant): such a model is trivially stable, so its stability figures are no result.
COLLAPSE_TV_RATIO = 0.1
#: An image's output has lost its target's content when its :func:`coarse_contrast` is below
#: this fraction of the target's (:func:`content_lost`).
COLLAPSE_CONTENT_RATIO = 0.25
#: A model is collapsed when at least this fraction of its images lost their target's content.
COLLAPSE_IMAGE_FRACTION = 0.5
#: Targets with less coarse contrast than this ([-1, 1] units) have no content to lose.
_FLAT = 1e-3


def coarse_contrast(x: torch.Tensor, pool: int = 4) -> torch.Tensor:
    """Per image, the standard deviation of ``x`` after ``pool`` x ``pool`` average pooling
    (around each channel's mean, over channels and pooled pixels): how much the image's content
    (objects, regions) varies, with pixel noise averaged away.

    Why not the TV ratio alone: a near-black output with a little noise has a TV comparable to
    that of a dark target with a small object (TV ratio 0.41 measured on such a set), while its
    coarse contrast is a few hundredths of the target's.

    Args:
        x: (N, C, H, W), [-1, 1] units.
        pool: pooling window (clamped to the image size).
    Returns:
        (N,) float tensor, [-1, 1] units.
    """
    k = max(1, min(pool, x.shape[-2], x.shape[-1]))
    p = F.avg_pool2d(x.detach().float(), k, k)
    return (p - p.mean((-2, -1), keepdim=True)).square().mean((1, 2, 3)).sqrt()


def content_lost(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per image, whether the output lost its target's content: its :func:`coarse_contrast` is
    below :data:`COLLAPSE_CONTENT_RATIO` times the target's. Targets without content (coarse
    contrast below 1e-3) count as not lost.

    Args:
        pred, target: (N, C, H, W), same shape, [-1, 1] units.
    Returns:
        (N,) bool tensor.
    """
    t = coarse_contrast(target)
    return (t > _FLAT) & (coarse_contrast(pred) < COLLAPSE_CONTENT_RATIO * t)


def total_variation(x: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between neighbouring pixels, per image.

    Normalisation: ``kornia.losses.total_variation(reduction="mean")`` averages the vertical
    differences over their (H-1)*W count and the horizontal ones over H*(W-1), and adds the
    two, per image and channel; we then average over channels. Units are those of the
    images ([-1, 1]), so a constant image has 0 and the value does not grow with resolution.

    Args:
        x: (N, C, H, W).
    Returns:
        (N,) float tensor.
    """
    return kornia.losses.total_variation(x, reduction="mean").mean(1)


def quality(pred: torch.Tensor, target: torch.Tensor, window_size: int = 11) -> dict[str, float]:
    """Image quality of generator outputs against the ground truth, means over images.

    Args:
        pred, target: (N, C, H, W) in [-1, 1], same shape.
        window_size: SSIM Gaussian window (11, as Wang et al.).

    Raises:
        ValueError: shapes, or targets on another scale than [-1, 1] (beyond [-2, 2]); outputs on
            another scale, and [0, 1]-looking images, are warned about (:func:`check_image_scale`).

    Returns:
        ``{"psnr": dB (data range 2), "ssim": in [-1, 1] (on images mapped to [0, 1]; kornia's,
        with reflect-padded border windows: 0.01-0.02 below scikit-image's valid-window SSIM on
        64-256 px photographs, docs/DESIGN.md section 5),
        "l1": mean |pred - target| in [-1, 1] units, "tv": total variation of pred,
        "tv_target": total variation of target}`` -- compare tv with tv_target: far below it
        means over-smoothed outputs.
    """
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor):
        raise TypeError("quality expects two tensors")
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"quality needs pred and target of the same (N, C, H, W) shape, got "
                         f"{tuple(pred.shape)} and {tuple(target.shape)}")
    if min(pred.shape[-2:]) < window_size:
        raise ValueError(f"SSIM window {window_size} larger than the images {tuple(pred.shape[-2:])}")
    # The targets are data (refused on another scale), the outputs a network's (warned about):
    # [0, 1] images read 6 dB closer than they are.
    check_image_scale(target, "target", stacklevel=3)  # warnings point at quality()'s caller
    check_image_scale(pred, "pred", outputs=True, stacklevel=3)
    with torch.no_grad():
        p, t = pred.detach().float(), target.detach().float()
        ssim_map = kornia.metrics.ssim((p + 1) / 2, (t + 1) / 2, window_size, max_val=1.0)
        return {
            "psnr": float(psnr(p, t, DATA_RANGE, reduction="mean")),
            "ssim": float(ssim_map.mean()),
            "l1": float((p - t).abs().mean()),
            "tv": float(total_variation(p).mean()),
            "tv_target": float(total_variation(t).mean()),
        }


def sharpness(pred: torch.Tensor, target: torch.Tensor) -> dict[str, float]:
    """Sharpness of outputs and targets, means over images (docs/DESIGN.md section 5b).

    The ratios TV ratio = tv / tv_target and high-frequency ratio = hf / hf_target are formed
    from these means (so they merge exactly over chunks of images): well below 1 means
    over-smoothed outputs, near 0 a collapsed, near-constant output.

    Args:
        pred, target: (N, C, H, W), same shape.

    Returns:
        ``{"tv", "tv_target"}``: :func:`total_variation` ([-1, 1] units per pixel);
        ``{"hf", "hf_target"}``: spectral energy above half Nyquist (0.25 cycles/pixel) of the
        Hann-windowed images, per channel, growing with the image's area (compare the ratio)
        (:func:`pix2pix_aa.metrics.bandwidth.high_frequency_energy`);
        ``"lost"``: the fraction of images whose output lost its target's content
        (:func:`content_lost`; a mean over images too, so it merges over chunks).

    Raises:
        ValueError: different or non-4-D shapes.
    """
    if not isinstance(pred, torch.Tensor) or not isinstance(target, torch.Tensor) or pred.shape != target.shape \
            or pred.dim() != 4:
        raise ValueError(f"sharpness needs pred and target of the same (N, C, H, W) shape, got "
                         f"{tuple(getattr(pred, 'shape', ()))} and {tuple(getattr(target, 'shape', ()))}")
    with torch.no_grad():
        p, t = pred.detach(), target.detach()
        return {"tv": float(total_variation(p).mean()), "tv_target": float(total_variation(t).mean()),
                "hf": float(high_frequency_energy(p).mean()), "hf_target": float(high_frequency_energy(t).mean()),
                "lost": float(content_lost(p, t).float().mean())}
