"""Distribution and perceptual distances beside stability (docs/DESIGN.md section 5c): FID, KID
and LPIPS, computed by torchmetrics.

* **FID** (Heusel et al. 2017): the Frechet distance between Gaussians fitted to feature vectors
  of the outputs and of the targets (standard network: the FID Inception v3, 2048-d pool features).
  Biased upwards on small sets: the same two distributions score higher with fewer images.
* **KID** (Binkowski et al. 2018): the unbiased squared MMD with the cubic polynomial kernel on the
  same features, averaged over random subsets (mean and std). Unbiased, so it is the figure to
  read below a few thousand images.
* **LPIPS** (Zhang et al. 2018): a learned perceptual distance from each output to its own
  target (AlexNet features with linear weights), mean over images; 0 = identical.

The feature network is a parameter everywhere: any module mapping uint8 images (N, 3, H, W) to
(N, D) features (the FID Inception is one; tests build a small one). Building the standard
networks and finding their weights: :mod:`pix2pix_aa.metrics.pretrained`.

Functional forms (:func:`fid`, :func:`kid`, :func:`lpips`) take images; the ``*_from_features``
forms take feature matrices, so features computed chunk by chunk (or in several processes) are
concatenated and scored once (:class:`DistributionResult`). FID and KID are not means over images
and do not merge over chunks any other way.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

__all__ = ["KID_MAX_SUBSET_SIZE", "KID_SUBSETS", "DistributionResult", "FeatureNetwork", "LpipsFn",
           "distribution_features", "fid", "fid_from_features", "kid", "kid_from_features", "kid_subset_size",
           "lpips", "to_uint8_rgb"]

#: uint8 (N, 3, H, W) -> (N, D) features, e.g. torchmetrics' ``NoTrainInceptionV3``.
FeatureNetwork = Callable[[torch.Tensor], torch.Tensor]
#: (pred, target) in [-1, 1], (N, 3, H, W) each -> (N,) LPIPS distances.
LpipsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

#: KID's subsets and their largest size: torchmetrics' and Binkowski et al.'s defaults.
KID_SUBSETS = 100
KID_MAX_SUBSET_SIZE = 1000


def to_uint8_rgb(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] -> uint8 [0, 255] with 3 channels (grayscale repeated), as the FID
    Inception takes them (it resizes to 299 x 299 itself). (N, C, H, W), C in {1, 3}."""
    if x.dim() != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"expected images (N, 1 or 3, H, W), got {tuple(x.shape)}")
    x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


@torch.no_grad()
def distribution_features(images: torch.Tensor, network: FeatureNetwork, batch_size: int = 32) -> torch.Tensor:
    """Feature vectors of ``images`` ([-1, 1], (N, C, H, W)) under ``network``: (N, D) float64 on
    the CPU, computed ``batch_size`` images at a time."""
    device = next((p.device for p in network.parameters()), images.device) if isinstance(network, nn.Module) \
        else images.device
    out = [network(to_uint8_rgb(images[i:i + batch_size]).to(device)).reshape(min(batch_size, len(images) - i), -1)
           for i in range(0, len(images), batch_size)]
    return torch.cat(out).double().cpu()


class _Given(nn.Module):
    """Identity 'feature extractor' for torchmetrics: the features are computed already."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def _check_features(fake: torch.Tensor, real: torch.Tensor, what: str) -> None:
    if fake.dim() != 2 or real.dim() != 2 or fake.shape[1] != real.shape[1]:
        raise ValueError(f"{what} needs feature matrices (N, D) and (M, D), got {tuple(fake.shape)} and "
                         f"{tuple(real.shape)}")
    if len(fake) < 2 or len(real) < 2:
        raise ValueError(f"{what} needs at least 2 images in each set, got {len(fake)} and {len(real)}")


def fid_from_features(fake: torch.Tensor, real: torch.Tensor) -> float:
    """FID between two sets of feature vectors ((N, D), (M, D); N, M >= 2), in float64 with
    torchmetrics' ``FrechetInceptionDistance``. 0 for identical sets (to rounding)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    _check_features(fake, real, "FID")
    metric = FrechetInceptionDistance(feature=_Given(fake.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    return float(metric.compute())


def kid_subset_size(num_fake: int, num_real: int, max_size: int = KID_MAX_SUBSET_SIZE) -> int:
    """KID's subset size for these set sizes: half the smaller set, at most ``max_size`` (1000), at
    least 2. KID is unbiased at any subset size; half the set keeps the subsets different from each
    other, so their std shows how much the figure depends on which images were drawn (subsets of
    the whole set would all be the same set, std 0)."""
    return max(2, min(max_size, min(num_fake, num_real) // 2))


def kid_from_features(fake: torch.Tensor, real: torch.Tensor, subsets: int = KID_SUBSETS,
                      subset_size: Optional[int] = None, seed: int = 0) -> dict:
    """KID between two sets of feature vectors with torchmetrics' ``KernelInceptionDistance``
    (cubic polynomial kernel, gamma 1/D): mean and std over ``subsets`` random subsets of
    ``subset_size`` (default :func:`kid_subset_size`) drawn with ``seed`` (the global RNG is left as
    it was).

    Returns:
        ``{"kid_mean", "kid_std", "kid_subset_size", "kid_subsets"}``; ``kid_mean`` is ~0 (it can
        be slightly negative: the estimator is unbiased) for sets from one distribution.
    """
    from torchmetrics.image.kid import KernelInceptionDistance

    _check_features(fake, real, "KID")
    size = subset_size or kid_subset_size(len(fake), len(real))
    with warnings.catch_warnings():  # its note that it keeps every feature vector: so does this function
        warnings.filterwarnings("ignore", message=".*will save all extracted features")
        metric = KernelInceptionDistance(feature=_Given(fake.shape[1]), subsets=subsets, subset_size=size)
    metric.update(real.double(), real=True)
    metric.update(fake.double(), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return {"kid_mean": float(mean), "kid_std": float(std), "kid_subset_size": size, "kid_subsets": subsets}


def fid(pred: torch.Tensor, target: torch.Tensor, network: FeatureNetwork) -> float:
    """FID between generator outputs and targets ((N, C, H, W) in [-1, 1]) under ``network``."""
    return fid_from_features(distribution_features(pred, network), distribution_features(target, network))


def kid(pred: torch.Tensor, target: torch.Tensor, network: FeatureNetwork, subsets: int = KID_SUBSETS,
        subset_size: Optional[int] = None, seed: int = 0) -> dict:
    """KID (:func:`kid_from_features`) between outputs and targets under ``network``."""
    return kid_from_features(distribution_features(pred, network), distribution_features(target, network),
                             subsets, subset_size, seed)


@torch.no_grad()
def lpips(pred: torch.Tensor, target: torch.Tensor, network: LpipsFn, reduction: str = "mean") -> torch.Tensor:
    """LPIPS from each output to its target ((N, C, H, W) in [-1, 1], same shape; grayscale is
    repeated to 3 channels). ``network``: e.g. :func:`pix2pix_aa.metrics.pretrained.lpips_network`.

    Returns:
        The mean over images (``reduction="mean"``, a 0-d tensor) or the (N,) distances (``"none"``).
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ValueError(f"LPIPS needs pred and target of the same (N, C, H, W) shape, got {tuple(pred.shape)} "
                         f"and {tuple(target.shape)}")
    d = network(_rgb(pred.detach().float().clamp(-1, 1)), _rgb(target.detach().float().clamp(-1, 1))).reshape(-1)
    return d.mean() if reduction == "mean" else d


@dataclass
class DistributionResult:
    """FID / KID of one model's outputs against the targets, from all their feature vectors.

    Attributes:
        fid: FID (None when fewer than 2 images).
        kid_mean, kid_std: KID over random subsets (None likewise; kid_std None also when every
            subset is the whole set, 2 images: no spread).
        kid_subset_size, kid_subsets: how KID was drawn.
        num_images: images in each set.
        feature_dim: D.
    """

    fid: Optional[float]
    kid_mean: Optional[float]
    kid_std: Optional[float]
    kid_subset_size: Optional[int]
    kid_subsets: int
    num_images: int
    feature_dim: int

    @classmethod
    def from_features(cls, fake: Sequence[torch.Tensor], real: Sequence[torch.Tensor], seed: int = 0,
                      subsets: int = KID_SUBSETS) -> DistributionResult:
        """Score the concatenation of per-chunk feature matrices (in image order)."""
        f, r = torch.cat(list(fake)), torch.cat(list(real))
        if len(f) < 2:  # FID needs covariances and KID pairs: nothing to report for one image
            return cls(None, None, None, None, subsets, len(f), f.shape[1])
        k = kid_from_features(f, r, subsets=subsets, seed=seed)
        # Subsets as large as the set are all the whole set: their std of 0 is no spread (and read
        # beside "a difference smaller than the std is no difference" it invited the opposite).
        std = None if k["kid_subset_size"] >= min(len(f), len(r)) else k["kid_std"]
        return cls(fid_from_features(f, r), k["kid_mean"], std, k["kid_subset_size"], subsets, len(f), f.shape[1])

    def to_dict(self) -> dict:
        return dict(self.__dict__)
