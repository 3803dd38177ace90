"""Panning flicker: what a viewer of a panning video (or of a re-cropped photo) sees
(docs/DESIGN.md section 5b).

A window of the generator's input size moves over a larger, static source in 1-pixel steps along
the diagonal: frame k is ``source[..., k:k + H, k:k + W]``. From frame k to k + 1 the scene moves
by (-1, -1) pixels in frame coordinates, so after undoing that known motion, consecutive outputs
should agree on their common region ``out_k[1:, 1:]`` vs ``out_{k+1}[:-1, :-1]``. The flicker is
the PSNR of the squared difference pooled over every consecutive pair, image and compared pixel
(dB, data range 2, capped at 200 dB; higher = steadier). A shift-equivariant generator (the
identity, for one) has no flicker and scores the cap.

This is the crop protocol's shift (1, 1), applied between neighbouring frames along a path rather
than against one reference; it measures the frame-to-frame change a video shows, which the
grid of shifts against one reference does not.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

import numpy as np
import torch

from pix2pix_aa.metrics._batching import Generator, check_batch_size, forward, warn_if_training
from pix2pix_aa.metrics.psnr import DATA_RANGE, MAX_PSNR_DB, check_images, psnr_from_mse

__all__ = ["FlickerResult", "merge_flicker", "panning_flicker", "same_channels", "to_uint8_frames"]


@dataclass
class FlickerResult:
    """Frame-to-frame consistency of a panning window.

    Attributes:
        mse: (N, F - 1) float64 MSE between consecutive motion-compensated outputs, per image.
        count: elements compared per pair (C' * (H - 1) * (W - 1)).
        num_frames: F, frames per path (F - 1 consecutive pairs).
        pooled_psnr: PSNR of the MSE pooled over pairs, images and pixels (dB, capped).
        mean_psnr: mean over images and pairs of each pair's PSNR (dB, capped; secondary).
        input_frames, output_frames: (F, H, W, C) uint8 frames of the first image when kept
            (for an animation), else None.
    """

    mse: np.ndarray
    count: int
    num_frames: int
    pooled_psnr: float
    mean_psnr: float
    data_range: float = DATA_RANGE
    max_db: float = MAX_PSNR_DB
    input_frames: Optional[np.ndarray] = None
    output_frames: Optional[np.ndarray] = None

    @property
    def num_images(self) -> int:
        return int(self.mse.shape[0])

    def to_dict(self) -> dict:
        """JSON summary (no frames)."""
        return {"pooled_psnr": self.pooled_psnr, "mean_psnr": self.mean_psnr, "num_frames": self.num_frames,
                "num_images": self.num_images, "path": "diagonal, 1-pixel steps", "data_range": self.data_range,
                "max_db": self.max_db}


def _summarise(mse: torch.Tensor, count: int, num_frames: int, data_range: float, max_db: float,
               input_frames: Optional[np.ndarray] = None, output_frames: Optional[np.ndarray] = None
               ) -> FlickerResult:
    pooled = float(psnr_from_mse(mse.mean(), data_range, max_db))  # every pair compares `count` elements
    mean = float(psnr_from_mse(mse, data_range, max_db).mean())
    return FlickerResult(mse=mse.numpy(), count=count, num_frames=num_frames, pooled_psnr=pooled, mean_psnr=mean,
                         data_range=data_range, max_db=max_db, input_frames=input_frames,
                         output_frames=output_frames)


def same_channels(*images: torch.Tensor) -> list[torch.Tensor]:
    """``images`` with grayscale ones repeated to the others' channels, to be shown side by side.

    A colourisation's input (input_nc 1) beside its output and target (3): the grey image is shown
    as grey, not left out. Images that all have one channel count are returned as they are.

    Shape:
        each (N, 1 or C, H, W) -> (N, C, H, W), C the largest channel count given.
    """
    c = max(x.shape[1] for x in images)
    return [x.expand(-1, c, -1, -1) if x.shape[1] == 1 else x for x in images]


def to_uint8_frames(x: torch.Tensor) -> np.ndarray:
    """(F, C, H, W) in [-1, 1] -> (F, H, W, C) uint8 (C = 1 or 3 kept; other C: first channel)."""
    x = x.detach().float().cpu()
    if x.shape[1] not in (1, 3):
        x = x[:, :1]
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()


def panning_flicker(G: Generator, source: torch.Tensor, crop_size: Union[int, Sequence[int]], num_frames: int = 32,
                    batch_size: Optional[int] = None, keep_frames: bool = False, data_range: float = DATA_RANGE,
                    max_db: float = MAX_PSNR_DB) -> FlickerResult:
    """Panning flicker of ``G`` along the diagonal path (module docstring).

    Args:
        G: callable (B, C, H, W) -> (B, C', H, W) in [-1, 1]; eval mode (not changed here).
        source: the larger static scene, at least (H + F - 1) x (W + F - 1); e.g.
            ``reflect_pad_source(x, F - 1)``.
        crop_size: (H, W) of the frames (or an int).
        num_frames: F >= 2 frames (window offsets (k, k), k = 0..F-1).
        batch_size: max frames per forward pass (default: from a 1 GiB budget).
        keep_frames: keep the first image's input and output frames (uint8) for an animation.

    Shape:
        source (N, C, H + F - 1, W + F - 1) -> mse (N, F - 1).

    Returns:
        :class:`FlickerResult` (dB).

    Raises:
        ValueError: F < 2, a source too small for the path, a G that changes the size, or a source
            that is not float images in [-1, 1] (:func:`pix2pix_aa.metrics.psnr.check_images`).
    """
    # As the stability metrics: [0, 1] images read ~6 dB steadier, 0..255 ones negative, uint8 failed in torch.
    check_images(source, "source", data_range, stacklevel=3)
    if not isinstance(num_frames, int) or num_frames < 2:
        raise ValueError(f"num_frames must be an int >= 2, got {num_frames!r}")
    h, w = (crop_size, crop_size) if isinstance(crop_size, int) else (int(crop_size[0]), int(crop_size[1]))
    if h < 2 or w < 2 or source.shape[-2] < h + num_frames - 1 or source.shape[-1] < w + num_frames - 1:
        raise ValueError(f"a {num_frames}-frame diagonal path of {h}x{w} windows needs a source of at least "
                         f"{h + num_frames - 1}x{w + num_frames - 1}, got {tuple(source.shape[-2:])}")
    warn_if_training(G)
    bs = check_batch_size(batch_size, (source.shape[1], h, w), source.dtype)
    n = source.shape[0]
    jobs = [(i, k) for i in range(n) for k in range(num_frames)]
    mse = torch.zeros(n, num_frames - 1, dtype=torch.float64)
    count = 0
    prev: Optional[torch.Tensor] = None
    kept_in, kept_out = [], []
    for start in range(0, len(jobs), bs):
        chunk = jobs[start:start + bs]
        batch = torch.stack([source[i, :, k:k + h, k:k + w] for i, k in chunk])
        out = forward(G, batch)
        if out.shape[-2:] != (h, w):
            raise ValueError(f"the generator must keep the spatial size: input {(h, w)} gave {tuple(out.shape[-2:])}")
        for (i, k), frame_in, o in zip(chunk, batch, out):
            if keep_frames and i == 0:
                kept_in.append(frame_in)
                kept_out.append(o)
            if k > 0:
                # Undo the known motion: source pixel (r, c) is at (r - k, c - k) in frame k.
                d = prev[:, 1:, 1:].to(torch.float64) - o[:, :-1, :-1].to(torch.float64)
                mse[i, k - 1] = d.square().mean().cpu()
                count = d.numel()
            prev = o
    frames = (to_uint8_frames(torch.stack(kept_in)), to_uint8_frames(torch.stack(kept_out))) if keep_frames \
        else (None, None)
    return _summarise(mse, count, num_frames, data_range, max_db, *frames)


def merge_flicker(results: Sequence[FlickerResult]) -> FlickerResult:
    """One result over the images of ``results`` (in order; same path and frame size); the first
    result's frames are kept. Exact: recomputed from the concatenated per-image MSEs."""
    if not results:
        raise ValueError("nothing to merge")
    first = results[0]
    if any((r.num_frames, r.count, r.data_range) != (first.num_frames, first.count, first.data_range)
           for r in results):
        raise ValueError("cannot merge flicker results of different paths or frame sizes")
    mse = torch.from_numpy(np.concatenate([r.mse for r in results], axis=0))
    return _summarise(mse, first.count, first.num_frames, first.data_range, first.max_db, first.input_frames,
                      first.output_frames)
