"""Stability evaluation of trained generators: the numbers of DESIGN.md section 5 for each
checkpoint, over the same images and shifts."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import torch
from torch import nn

from pix2pix_aa.metrics.merge import merge_feature_distance, merge_stability
from pix2pix_aa.metrics import (
    FeatureDistanceResult,
    StabilityResult,
    feature_distance,
    noise_robustness,
    quality,
    reflect_pad_source,
    shift_grid,
    stability_circular,
    stability_crop,
)

__all__ = ["EvalOptions", "ModelResult", "evaluate_generator", "load_eval_images"]

PROTOCOLS = ("crop", "circular", "both")


@dataclass
class EvalOptions:
    """What to measure. ``max_shift`` S: shifts (dy, dx) in [0, S)^2; ``num_shifts``: a seeded
    sample of them (None = all S*S - 1 nonzero shifts)."""

    max_shift: int = 8
    num_shifts: Optional[int] = None
    protocol: str = "both"
    layers: Optional[Sequence[str]] = ("all",)
    noise: Sequence[float] = (0.01, 0.05, 0.1)
    margin: int = 0
    batch_size: Optional[int] = None
    chunk: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown protocol {self.protocol!r}; valid: {', '.join(PROTOCOLS)}")
        if self.max_shift < 2:
            raise ValueError(f"max_shift must be >= 2 (shifts 0..S-1), got {self.max_shift}")
        if self.chunk < 1:
            raise ValueError("chunk must be >= 1")

    @property
    def shifts(self) -> list[tuple[int, int]]:
        return shift_grid(self.max_shift, num_shifts=self.num_shifts, seed=self.seed)


@dataclass
class ModelResult:
    label: str
    antialias: str
    epoch: Optional[int]
    num_images: int
    seconds: float
    quality: dict
    crop: Optional[StabilityResult] = None
    circular: Optional[StabilityResult] = None
    features: Optional[FeatureDistanceResult] = None
    noise: dict = field(default_factory=dict)

    def row(self) -> dict:
        """One flat table row (dB, SSIM, L1, TV, seconds)."""
        row = {"model": self.label, "filter": self.antialias, "epoch": self.epoch, "images": self.num_images}
        for name, res in (("crop", self.crop), ("circular", self.circular)):
            row[f"stability_{name}_db"] = None if res is None else round(res.mean_psnr, 3)
            row[f"stability_{name}_pooled_db"] = None if res is None else round(res.pooled_psnr, 3)
        for k in ("psnr", "ssim", "l1", "tv", "tv_target"):
            row[f"quality_{k}"] = round(float(self.quality[k]), 4)
        for sigma, db in self.noise.items():
            row[f"noise_{sigma:g}_db"] = round(db, 3)
        row["seconds"] = round(self.seconds, 2)
        return row

    def to_dict(self) -> dict:
        return {"row": self.row(), "quality": self.quality,
                "crop": self.crop.to_dict() if self.crop else None,
                "circular": self.circular.to_dict() if self.circular else None,
                "features": self.features.to_dict() if self.features else None,
                "noise": {f"{k:g}": v for k, v in self.noise.items()}}


def load_eval_images(dataset: torch.utils.data.Dataset, max_images: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (input, target) of the first ``max_images`` samples: (N, C, H, W) each."""
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    if n == 0:
        raise ValueError("the evaluation data set is empty")
    samples = [dataset[i] for i in range(n)]
    return torch.stack([s["input"] for s in samples]), torch.stack([s["target"] for s in samples])


def _feature_fn(generator: nn.Module, layers: Optional[Sequence[str]]) -> Optional[Callable]:
    if not layers or not hasattr(generator, "features"):
        return None
    if "all" in layers:
        return generator.features
    wanted = list(layers)

    def select(x: torch.Tensor):
        feats = generator.features(x)
        missing = [n for n in wanted if n not in feats]
        if missing:
            raise ValueError(f"unknown layers {missing}; this generator has {list(feats)}")
        return {n: feats[n] for n in wanted}

    return select


@torch.inference_mode()
def evaluate_generator(generator: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, opts: EvalOptions,
                       label: str = "model", antialias: str = "none", epoch: Optional[int] = None,
                       device: torch.device | str = "cpu",
                       on_images_done: Optional[Callable[[int], None]] = None) -> ModelResult:
    """Every metric of DESIGN.md section 5 for one generator, in eval mode.

    Images go through in chunks of ``opts.chunk`` (for progress reporting); within a chunk the
    shifted copies are batched by the metric functions. The results merge exactly over chunks,
    except the noise draw, which is seeded per chunk (``seed + first image index``).
    """
    start = time.perf_counter()
    generator = generator.to(device).eval()
    shifts = opts.shifts
    h, w = inputs.shape[-2:]
    features_of = _feature_fn(generator, opts.layers)
    crop, circ, feats, qual, noise = [], [], [], [], []
    for lo in range(0, inputs.shape[0], opts.chunk):
        x = inputs[lo:lo + opts.chunk].to(device)
        y = targets[lo:lo + opts.chunk].to(device)
        if opts.protocol in ("crop", "both"):
            source = reflect_pad_source(x, opts.max_shift)
            crop.append(stability_crop(generator, source, (h, w), shifts, margin=opts.margin,
                                       batch_size=opts.batch_size))
        if opts.protocol in ("circular", "both"):
            circ.append(stability_circular(generator, x, shifts, batch_size=opts.batch_size,
                                           grid_size=opts.max_shift))
        if features_of is not None:
            feats.append(feature_distance(features_of, x, shifts, max_shift=opts.max_shift,
                                          batch_size=opts.batch_size))
        if opts.noise:
            noise.append((x.shape[0], noise_robustness(generator, x, opts.noise, seed=opts.seed + lo,
                                                       batch_size=opts.batch_size)))
        qual.append((x.shape[0], quality(generator(x), y)))
        if on_images_done is not None:
            on_images_done(x.shape[0])
    n = inputs.shape[0]
    return ModelResult(
        label=label, antialias=antialias, epoch=epoch, num_images=n, seconds=time.perf_counter() - start,
        quality={k: sum(m * q[k] for m, q in qual) / n for k in qual[0][1]},
        crop=merge_stability(crop) if crop else None,
        circular=merge_stability(circ) if circ else None,
        features=merge_feature_distance(feats) if feats else None,
        noise={s: sum(m * d[s] for m, d in noise) / n for s in (noise[0][1] if noise else {})},
    )


def options_dict(opts: EvalOptions) -> dict:
    d = asdict(opts)
    d["shifts"] = [list(s) for s in opts.shifts]
    return d


def output_dir_default() -> Path:
    return Path("outputs") / time.strftime("eval-%Y%m%d-%H%M%S")
