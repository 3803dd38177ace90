"""Stability evaluation of trained generators: the numbers of docs/DESIGN.md section 5 for each
checkpoint, over the same images and shifts."""

from __future__ import annotations

import hashlib
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch import nn

from pix2pix_aa.evaluation.speed import PRECISIONS, autocast, prepare_generator, wrap_precision
from pix2pix_aa.metrics import (
    COLLAPSE_CONTENT_RATIO,
    COLLAPSE_IMAGE_FRACTION,
    COLLAPSE_TV_RATIO,
    FeatureDistanceResult,
    StabilityResult,
    feature_distance,
    noise_robustness,
    quality,
    reflect_pad_source,
    sharpness,
    shift_grid,
    stability_circular,
    stability_crop,
)
from pix2pix_aa.metrics.bandwidth import resolve_lowpass
from pix2pix_aa.metrics.distribution import DistributionResult, distribution_features, lpips
from pix2pix_aa.metrics.flicker import FlickerResult, merge_flicker, panning_flicker, same_channels, to_uint8_frames
from pix2pix_aa.metrics.merge import merge_feature_distance, merge_stability
from pix2pix_aa.metrics.psnr import check_image_scale, scale_is_known, scale_known

__all__ = ["COLLAPSE_CONTENT_RATIO", "COLLAPSE_IMAGE_FRACTION", "COLLAPSE_TV_RATIO",
           "EvalOptions", "ModelResult", "chunk_starts", "evaluate_chunks", "inference_generator",
           "evaluate_generator",
           "load_eval_images", "merge_chunks"]

PROTOCOLS = ("crop", "circular", "both")



@dataclass
class EvalOptions:
    """What to measure. ``max_shift`` S: shifts (dy, dx) in [0, S)^2; ``num_shifts``: a seeded
    sample of them (None = all S*S - 1 nonzero shifts). ``lowpass``: the common filter of the
    equal-bandwidth stability (None: not computed); ``spectrum``: the stability spectrum.
    ``flicker_frames``: frames of the panning path (0: no flicker), measured on the first
    ``flicker_images`` images; ``samples``: input | output | target strips kept of the first images.
    How to run the generator (docs/PERFORMANCE.md section 5): ``precision`` ``"32"`` (float32) or
    ``"bf16"`` (autocast: changes the figures within the bound measured there, so opt-in);
    ``channels_last`` memory format and ``compile`` (``torch.compile``): the same figures to
    float32 rounding. Distribution and perceptual quality (docs/DESIGN.md section 5c; None: not
    computed): ``fid_network`` for FID and KID, a path to the FID Inception weights
    (:func:`pix2pix_aa.metrics.pretrained.resolve_weights`) or any module mapping uint8 (N, 3, H, W)
    to (N, D) features; ``lpips_network``, a path to the AlexNet weights or a callable
    (pred, target) -> (N,) LPIPS distances; ``quality_metrics``: their status lines."""

    max_shift: int = 8
    num_shifts: Optional[int] = None
    protocol: str = "both"
    layers: Optional[Sequence[str]] = ("all",)
    noise: Sequence[float] = (0.01, 0.05, 0.1)
    margin: int = 0
    batch_size: Optional[int] = None
    chunk: int = 4
    seed: int = 0
    lowpass: Optional[str] = "bin5"
    spectrum: bool = True
    flicker_frames: int = 32
    flicker_images: int = 4
    samples: int = 3
    precision: str = "32"
    channels_last: bool = False
    compile: bool = False
    fid_network: Any = None
    lpips_network: Any = None
    #: Where each network's weights came from, or the line saying why its metrics were skipped
    #: (``{"fid": ..., "lpips": ...}``, or ``{"off": ...}``; evaluate.py fills it), shown under the table.
    quality_metrics: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Messages name evaluate.py's flag (and the field where it differs): a bad value is refused
        # here, before any checkpoint or data is loaded, not per model after the progress started.
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"unknown --protocol {self.protocol!r}; valid: {', '.join(PROTOCOLS)}")
        if self.max_shift < 2:
            raise ValueError(f"--shifts (max_shift) must be >= 2 (shifts 0..S-1), got {self.max_shift}")
        if self.num_shifts is not None and not 1 <= self.num_shifts <= self.max_shift ** 2:
            raise ValueError(f"--num-shifts must be in 1..{self.max_shift ** 2} for --shifts {self.max_shift}, "
                             f"got {self.num_shifts}")
        if self.num_shifts is not None and all(s == (0, 0) for s in self.shifts):  # the error named shift_grid()
            raise ValueError(f"--num-shifts {self.num_shifts} --seed {self.seed} draws only the shift (0, 0), which "
                             "compares an output with itself: pass another --seed or more --num-shifts")
        if self.chunk < 1:
            raise ValueError(f"--chunk must be >= 1, got {self.chunk}")
        if self.batch_size is not None and self.batch_size < 1:
            raise ValueError(f"--batch-size must be >= 1 (max images per forward pass), got {self.batch_size}")
        if self.margin < 0:
            raise ValueError(f"--margin must be >= 0, got {self.margin}")
        if any(not 0 < s < math.inf for s in self.noise):  # also refuses nan and inf; 0 would score the cap
            raise ValueError(f"--noise: every sigma must be a finite number > 0 ('none' turns it off), got "
                             f"{','.join(f'{s:g}' for s in self.noise)}")
        if isinstance(self.lowpass, str) and self.lowpass.lower() == "none":
            self.lowpass = None
        resolve_lowpass(self.lowpass)  # an unknown name fails here, before any model runs
        if self.precision not in PRECISIONS:
            raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        for name in ("fid_network", "lpips_network"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, (str, Path)) and not callable(value):
                raise ValueError(f"{name} must be None (off), a weights file path or a network (callable), got "
                                 f"{type(value).__name__}")
        if self.flicker_frames == 1 or self.flicker_frames < 0:
            raise ValueError(f"--flicker-frames must be 0 (off) or >= 2, got {self.flicker_frames}")
        for flag, value in (("--flicker-images", self.flicker_images), ("--samples", self.samples)):
            if value < 0:
                raise ValueError(f"{flag} must be >= 0, got {value}")

    @property
    def shifts(self) -> list[tuple[int, int]]:
        return shift_grid(self.max_shift, num_shifts=self.num_shifts, seed=self.seed)


@dataclass
class ModelResult:
    """Every metric of one generator on images ``[start, start + num_images)``: one chunk (the
    unit of work spread over processes) or, after :func:`merge_chunks`, the whole set."""

    num_images: int
    quality: dict
    label: str = "model"
    antialias: str = "none"
    epoch: Optional[int] = None
    seconds: float = 0.0
    start: int = 0
    crop: Optional[StabilityResult] = None
    circular: Optional[StabilityResult] = None
    features: Optional[FeatureDistanceResult] = None
    noise: dict = field(default_factory=dict)
    step: Optional[int] = None
    data: dict = field(default_factory=dict)
    flicker: Optional[FlickerResult] = None
    samples: Optional[np.ndarray] = None
    #: FID / KID of the whole set (after :func:`merge_chunks`); a chunk holds its feature vectors
    #: instead (``distribution_features``: (outputs (n, D), targets (n, D))), scored once merged.
    distribution: Optional[DistributionResult] = None
    distribution_features: Optional[tuple] = None
    #: The file the generator was loaded from (``path``, ``path_resolved``, ``sha256``, ``bytes``,
    #: ``modified``: :func:`pix2pix_aa.evaluation.checkpoints.file_record`); None for a generator
    #: evaluated in Python. A run's last.ckpt changes as training goes on: the hash names the weights.
    checkpoint: Optional[dict] = None

    @property
    def tv_ratio(self) -> float:
        """TV(outputs) / TV(targets), from the means over images (nan if the targets are flat)."""
        return _ratio(self.quality.get("tv"), self.quality.get("tv_target"))

    @property
    def targets_flat(self) -> bool:
        """Whether the targets are constant images (total variation at most 1e-6 in [-1, 1] units):
        black targets, a broken data set. Their sharpness ratios are then no figure."""
        tv = self.quality.get("tv_target")
        return tv is not None and not tv > _FLAT_TV

    @property
    def hf_ratio(self) -> float:
        """Energy above half Nyquist of the outputs / that of the targets (means over images; nan
        if the targets are flat: their energy is float round-off, and the ratio was 5e5)."""
        if self.targets_flat:
            return float("nan")
        return _ratio(self.quality.get("hf"), self.quality.get("hf_target"))

    @property
    def content_lost(self) -> float:
        """Fraction of the images whose output lost its target's content
        (:func:`pix2pix_aa.metrics.content_lost`; nan when not measured)."""
        lost = self.quality.get("lost")
        return float("nan") if lost is None else float(lost)

    @property
    def collapsed(self) -> bool:
        """Near-constant outputs (TV ratio below :data:`COLLAPSE_TV_RATIO`), or outputs that lost
        their targets' content on at least :data:`COLLAPSE_IMAGE_FRACTION` of the images (a
        near-black output on dark, sparse data keeps a TV ratio well above 0.1)."""
        by_tv = math.isfinite(self.tv_ratio) and self.tv_ratio < COLLAPSE_TV_RATIO
        return by_tv or (math.isfinite(self.content_lost) and self.content_lost >= COLLAPSE_IMAGE_FRACTION)

    def row(self) -> dict:
        """One flat table row with the data it was measured on. Stability in dB: ``*_pooled_db``
        (the headline: PSNR of the MSE pooled over images, shifts and pixels), ``*_mean_db`` (mean
        of per-image, per-shift PSNRs), ``*_eb_pooled_db`` (pooled, equal bandwidth); quality
        (PSNR dB, SSIM, L1, TV, high-frequency energy) and sharpness ratios to the targets."""
        row = {"model": self.label, "filter": self.antialias, "epoch": self.epoch, "step": self.step,
               "images": self.num_images}
        for key in ("data_dir", "dataset", "split", "direction"):
            row[key] = self.data.get(key)
        size = self.data.get("image_size")
        row["image_size"] = None if size is None else f"{size[0]}x{size[1]}"
        row["checkpoint"] = None if self.checkpoint is None else self.checkpoint.get("path")
        row["checkpoint_sha256"] = None if self.checkpoint is None else self.checkpoint.get("sha256")
        for name, res in (("crop", self.crop), ("circular", self.circular)):
            eb = None if res is None else res.equal_bandwidth
            row[f"stability_{name}_pooled_db"] = None if res is None else round(res.pooled_psnr, 3)
            row[f"stability_{name}_eb_pooled_db"] = None if eb is None else round(eb.pooled_psnr, 3)
            row[f"stability_{name}_mean_db"] = None if res is None else round(res.mean_psnr, 3)
        for k in ("psnr", "ssim", "l1", "tv", "tv_target", "hf", "hf_target", "lpips"):
            if k in self.quality:
                row[f"quality_{k}"] = _round(float(self.quality[k]), 6 if k.startswith("hf") else 4, significant=3)
        row["tv_ratio"] = _round(self.tv_ratio, 4, significant=3)
        row["hf_ratio"] = _round(self.hf_ratio, 4, significant=3)
        row["content_lost"] = _round(self.content_lost, 4)
        row["flicker_pooled_db"] = None if self.flicker is None else round(self.flicker.pooled_psnr, 3)
        dist = self.distribution
        row["fid"] = None if dist is None or dist.fid is None else round(dist.fid, 3)
        row["kid_mean"] = None if dist is None or dist.kid_mean is None else round(dist.kid_mean, 6)
        row["kid_std"] = None if dist is None or dist.kid_std is None else round(dist.kid_std, 6)
        row["kid_subset_size"] = None if dist is None else dist.kid_subset_size
        row["collapsed"] = self.collapsed
        for sigma, db in self.noise.items():
            row[f"noise_{sigma:g}_db"] = round(db, 3)
        row["seconds"] = round(self.seconds, 2)
        return row

    def to_dict(self) -> dict:
        return {"row": self.row(), "checkpoint": self.checkpoint, "data": self.data, "quality": self.quality,
                "sharpness": {"tv_ratio": _round(self.tv_ratio, 6, significant=3),
                              "hf_ratio": _round(self.hf_ratio, 6, significant=3),
                              "content_lost": _round(self.content_lost, 6),
                              "collapsed": self.collapsed, "collapse_tv_ratio": COLLAPSE_TV_RATIO,
                              "collapse_content_ratio": COLLAPSE_CONTENT_RATIO,
                              "collapse_image_fraction": COLLAPSE_IMAGE_FRACTION},
                "crop": self.crop.to_dict() if self.crop else None,
                "circular": self.circular.to_dict() if self.circular else None,
                "features": self.features.to_dict() if self.features else None,
                "flicker": self.flicker.to_dict() if self.flicker else None,
                "distribution": self.distribution.to_dict() if self.distribution else None,
                "noise": {f"{k:g}": v for k, v in self.noise.items()}}


#: Targets whose mean total variation is at most this are flat (:attr:`ModelResult.targets_flat`).
_FLAT_TV = 1e-6


def _ratio(a: Optional[float], b: Optional[float]) -> float:
    if a is None or b is None or not b > 0:
        return float("nan")
    return float(a) / float(b)


def _round(v: float, digits: int, significant: int = 0) -> Optional[float]:
    """``v`` to ``digits`` decimals, and to at least ``significant`` significant digits when it is
    smaller (a detail-less model's HF ratio of 1.75e-5 read 0.0 at 4 decimals); None if not finite."""
    if not math.isfinite(v):
        return None
    if significant and v != 0:
        digits = max(digits, significant - 1 - math.floor(math.log10(abs(v))))
    return round(v, digits)


def load_eval_images(dataset: torch.utils.data.Dataset, max_images: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (input, target) of the first ``max_images`` samples: (N, C, H, W) each."""
    n = len(dataset) if max_images is None else min(max_images, len(dataset))
    if n == 0:
        raise ValueError("the evaluation data set is empty" + (" (--max-images 0)" if max_images == 0 else ""))
    samples = [dataset[i] for i in range(n)]
    sizes = sorted({tuple(s["input"].shape[-2:]) for s in samples})
    if len(sizes) > 1:
        # Every metric here batches one image's shifted copies and merges images as a stack; images
        # of several sizes (preprocess none / scale_width) are refused rather than half-handled.
        shown = ", ".join(f"{h}x{w}" for h, w in sizes[:4]) + (" ..." if len(sizes) > 4 else "")
        raise ValueError(f"the evaluation images have {len(sizes)} sizes (HxW: {shown}); evaluate.py compares "
                         "images of one size: pass --size N to resize them to N x N, or evaluate a split whose "
                         "images share one size")
    return torch.stack([s["input"] for s in samples]), torch.stack([s["target"] for s in samples])


def _feature_fn(generator: nn.Module, layers: Optional[Sequence[str]], device: torch.device | str = "cpu",
                precision: str = "32") -> Optional[Callable]:
    if not layers or not hasattr(generator, "features"):
        return None
    if "all" in layers and precision == "32":
        return generator.features
    wanted = None if "all" in layers else list(layers)

    def features(x: torch.Tensor):
        with autocast(device, precision):
            feats = generator.features(x)
        return {n: (f.float(), s) for n, (f, s) in feats.items()} if precision != "32" else feats

    if wanted is None:
        return features

    def select(x: torch.Tensor):
        feats = features(x)
        missing = [n for n in wanted if n not in feats]
        if missing:
            raise ValueError(f"unknown --layers {missing}; this generator has {list(feats)}")
        return {n: feats[n] for n in wanted}

    return select


def chunk_starts(num_images: int, chunk: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """First image index of each chunk this process evaluates: chunks ``rank, rank + world, ...``.

    Chunk boundaries do not depend on ``world_size`` (and the noise draw is seeded by the chunk's
    first index), so any number of processes produces the same chunks as one process.
    """
    if not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
    return list(range(0, num_images, chunk))[rank::world_size]


_PREPARED: weakref.WeakKeyDictionary[nn.Module, dict] = weakref.WeakKeyDictionary()


def inference_generator(module: nn.Module, opts: EvalOptions, device: torch.device | str) -> Callable:
    """``module`` as the metrics call it under ``opts``' precision, memory format and compile
    settings (the eager module itself by default). Prepared once per module and settings, so a
    compiled generator is not recompiled for every chunk."""
    if opts.precision == "32" and not opts.channels_last and not opts.compile:
        return module
    cache = _PREPARED.setdefault(module, {})
    key = (opts.precision, opts.channels_last, opts.compile, str(device))
    if key not in cache:
        prepared = prepare_generator(module, channels_last=opts.channels_last, compile=opts.compile)
        cache[key] = wrap_precision(prepared, device, opts.precision, opts.channels_last)
    return cache[key]


def quality_networks(opts: EvalOptions, device: torch.device | str = "cpu") -> tuple[Optional[Callable],
                                                                                  Optional[Callable]]:
    """(FID / KID feature network, LPIPS function) of ``opts`` on ``device``, each None when off: a
    weights path is checked (:func:`pix2pix_aa.metrics.pretrained.check_weights`: another network's,
    untrained or not the published file is refused; once per file per process) and built into the
    standard network (once per process), a module or callable is used as it is.

    Raises:
        ValueError: a weights path that is not that network's trained weights (one line)."""
    from pix2pix_aa.metrics.pretrained import check_weights, inception_network, lpips_network

    out = []
    for name, value, build in (("fid", opts.fid_network, inception_network),
                               ("lpips", opts.lpips_network, lpips_network)):
        if isinstance(value, (str, Path)):  # an untrained Inception scored FID 0 and KID 0 without a word
            check_weights(name, str(value), f"EvalOptions.{name}_network")
        net = build(value) if isinstance(value, (str, Path)) else value
        out.append(net.to(device) if isinstance(net, nn.Module) else net)
    return out[0], out[1]


#: FID / KID feature vectors of target chunks, kept in this process: every model of an evaluation is
#: scored against the same targets, so their Inception pass (the costliest part on a CPU) is done
#: once. Keyed by a hash of the chunk's values; the network itself is kept and compared, so a
#: recycled object id never matches another network.
_TARGET_FEATURES: dict[tuple, tuple[Callable, torch.Tensor]] = {}


def _target_features(y: torch.Tensor, net: Callable) -> torch.Tensor:
    key = (hashlib.sha1(y.detach().float().cpu().contiguous().numpy().tobytes()).hexdigest(), tuple(y.shape), id(net))
    hit = _TARGET_FEATURES.get(key)
    if hit is not None and hit[0] is net:
        return hit[1]
    if len(_TARGET_FEATURES) >= 4096:  # bounded: a long-lived process evaluating many data sets
        _TARGET_FEATURES.clear()
    features = distribution_features(y, net)
    _TARGET_FEATURES[key] = (net, features)
    return features


@torch.inference_mode()
def evaluate_chunks(generator: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, opts: EvalOptions,
                    starts: Optional[Sequence[int]] = None, device: torch.device | str = "cpu",
                    on_images_done: Optional[Callable[[int], None]] = None) -> list[ModelResult]:
    """The metrics of the chunks of ``opts.chunk`` images that begin at ``starts`` (default: all).

    ``inputs`` / ``targets``: (N, C, H, W) in [-1, 1], the *whole* evaluation set (chunks are
    indexed into it). The generator is evaluated in eval mode; within a chunk the shifted copies
    are batched by the metric functions.
    """
    module = generator.to(device).eval()
    generator = inference_generator(module, opts, device)
    shifts = opts.shifts
    h, w = inputs.shape[-2:]
    features_of = _feature_fn(module, opts.layers, device, opts.precision)
    fid_net, lpips_fn = quality_networks(opts, device)
    if starts is None:
        starts = chunk_starts(inputs.shape[0], opts.chunk)
    # The [0, 1] look-alike check once over the whole set: a chunk of bright images (an edge map
    # with no edge is white) has no negative value either, and is on the right scale. Skipped
    # where the caller knows the scale (evaluate.py): it copies the whole set, in a pool per chunk.
    if not scale_is_known():
        check_image_scale(inputs, "inputs", stacklevel=2)
        check_image_scale(targets, "targets", stacklevel=2)
    out = []
    with scale_known():
        for lo in starts:
            x = inputs[lo:lo + opts.chunk].to(device)
            y = targets[lo:lo + opts.chunk].to(device)
            fake = generator(x)
            part = ModelResult(start=lo, num_images=x.shape[0], quality={**quality(fake, y), **sharpness(fake, y)})
            if lpips_fn is not None:
                part.quality["lpips"] = float(lpips(fake, y, lpips_fn))
            if fid_net is not None:  # scored over all images once merged (FID / KID are no means)
                part.distribution_features = (distribution_features(fake, fid_net), _target_features(y, fid_net))
            if opts.protocol in ("crop", "both"):
                source = reflect_pad_source(x, opts.max_shift)
                part.crop = stability_crop(generator, source, (h, w), shifts, margin=opts.margin,
                                           batch_size=opts.batch_size, lowpass=opts.lowpass, spectrum=opts.spectrum)
            if opts.protocol in ("circular", "both"):
                part.circular = stability_circular(generator, x, shifts, batch_size=opts.batch_size,
                                                   grid_size=opts.max_shift, lowpass=opts.lowpass,
                                                   spectrum=opts.spectrum)
            if features_of is not None:
                part.features = feature_distance(features_of, x, shifts, max_shift=opts.max_shift,
                                                 batch_size=opts.batch_size)
            n_flicker = min(x.shape[0], opts.flicker_images - lo) if opts.flicker_frames else 0
            if n_flicker > 0:
                if opts.flicker_frames - 1 >= min(h, w):
                    raise ValueError(f"a panning path of {opts.flicker_frames} frames needs images larger than "
                                     f"{opts.flicker_frames - 1} px (reflect padding); got {h}x{w}: lower "
                                     "--flicker-frames")
                part.flicker = panning_flicker(generator, reflect_pad_source(x[:n_flicker], opts.flicker_frames - 1),
                                               (h, w), opts.flicker_frames, batch_size=opts.batch_size,
                                               keep_frames=lo == 0)
            n_samples = min(x.shape[0], opts.samples - lo)
            if n_samples > 0:  # input | output | target side by side, (k, H, 3W, C) uint8
                part.samples = to_uint8_frames(torch.cat(same_channels(x[:n_samples], fake[:n_samples], y[:n_samples]),
                                                         dim=-1))
            if opts.noise:
                part.noise = noise_robustness(generator, x, opts.noise, seed=opts.seed + lo, batch_size=opts.batch_size)
            out.append(part)
            if on_images_done is not None:
                on_images_done(x.shape[0])
    return out


def merge_chunks(parts: Sequence[ModelResult], label: str = "model", antialias: str = "none",
                 epoch: Optional[int] = None, seconds: float = 0.0, step: Optional[int] = None,
                 data: Optional[dict] = None, checkpoint: Optional[dict] = None) -> ModelResult:
    """One :class:`ModelResult` from the chunks of all images, in any order and from any process.

    Chunks are put back in image order and must cover ``0..N-1`` exactly once; the merge is then
    the same arithmetic in the same order as a single-process run (bit-identical given identical
    per-chunk numbers).
    """
    if not parts:
        raise ValueError("nothing to merge: no evaluated chunks")
    parts = sorted(parts, key=lambda p: p.start)
    expected = 0
    for p in parts:
        if p.start != expected:
            raise ValueError(f"chunks do not tile the images: expected one starting at {expected}, got {p.start}")
        expected += p.num_images
    n = expected
    first = parts[0]
    flickers = [p.flicker for p in parts if p.flicker is not None]
    samples = [p.samples for p in parts if p.samples is not None]
    features = [p.distribution_features for p in parts if p.distribution_features is not None]
    if features and len(features) != len(parts):
        raise ValueError("chunks disagree on FID / KID: some carry feature vectors and some do not")
    return ModelResult(
        label=label, antialias=antialias, epoch=epoch, num_images=n, seconds=seconds, step=step,
        data=dict(data or {}), checkpoint=None if checkpoint is None else dict(checkpoint),
        quality={k: sum(p.num_images * p.quality[k] for p in parts) / n for k in first.quality},
        crop=merge_stability([p.crop for p in parts]) if first.crop is not None else None,
        circular=merge_stability([p.circular for p in parts]) if first.circular is not None else None,
        features=merge_feature_distance([p.features for p in parts]) if first.features is not None else None,
        noise={s: sum(p.num_images * p.noise[s] for p in parts) / n for s in first.noise},
        flicker=merge_flicker(flickers) if flickers else None,
        samples=np.concatenate(samples, axis=0) if samples else None,
        distribution=DistributionResult.from_features([f for f, _ in features], [r for _, r in features])
        if features else None,
    )


def evaluate_generator(generator: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, opts: EvalOptions,
                       label: str = "model", antialias: str = "none", epoch: Optional[int] = None,
                       device: torch.device | str = "cpu",
                       on_images_done: Optional[Callable[[int], None]] = None) -> ModelResult:
    """Every metric of docs/DESIGN.md section 5 for one generator, in eval mode, in this process.

    Images go through in chunks of ``opts.chunk`` (for progress reporting and for sharding over
    processes, see :mod:`pix2pix_aa.evaluation.parallel`); the results merge exactly over
    chunks. The noise draw is seeded per chunk (``seed + first image index``).
    """
    start = time.perf_counter()
    parts = evaluate_chunks(generator, inputs, targets, opts, device=device, on_images_done=on_images_done)
    return merge_chunks(parts, label=label, antialias=antialias, epoch=epoch, seconds=time.perf_counter() - start)


def options_dict(opts: EvalOptions) -> dict:
    d = asdict(replace(opts, fid_network=None, lpips_network=None))  # networks are no JSON (nor copied)
    d["shifts"] = [list(s) for s in opts.shifts]
    for key in ("fid_network", "lpips_network"):
        value = getattr(opts, key)
        d[key] = value if value is None or isinstance(value, (str, Path)) else type(value).__name__
    return d


def output_dir_default() -> Path:
    return Path("outputs") / time.strftime("eval-%Y%m%d-%H%M%S")
