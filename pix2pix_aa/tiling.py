"""Tiled inference: generate an image larger than memory allows, tile by tile, and blend.

A U-Net with ``num_downs`` stride-2 levels samples its features on a grid of step 2**num_downs
(its ``size_multiple``) at the deepest level. A tile whose offset in the image is a multiple of
that step sees exactly the sampling grid the whole image would, so away from the tile's edges
(further than the receptive field reaches) its output equals the whole-image output; at any
other offset the downsampling phases differ and even the interior disagrees for an aliasing
generator. :func:`tile_starts` therefore puts every tile on that grid: ``tile`` and
``tile_overlap`` must be multiples of the step, and the image is first padded to one
(``pix2pix_aa.layers.padding.pad_to_multiple``, as ``predict`` does anyway).

Overlapping tiles are blended with linear ramps (:func:`ramp_weights`): across an overlap of
exactly ``tile_overlap`` pixels one tile's weight falls from 1 to 0 while the next one's rises,
the weights summing to 1; the accumulated weight normalises the rest (the last tile along an axis
is aligned with the image's end, so its overlap with the previous one can be longer). The same
idea as the overlapping-window blending of e.g. pytorch-toolbelt's ``ImageSlicer`` /
MONAI's ``sliding_window_inference`` (``mode="gaussian"`` there; a ramp here, exact partition of
unity on the regular overlaps).

Adaptive polyphase sampling picks its phases from the content of each tile, so APS generators
are not guaranteed to agree with the whole image even in tile interiors. Instance normalisation
(without running statistics) normalises each input by its own mean and variance, so every tile
would be normalised by the tile's statistics and the output would differ from the whole image
everywhere: :func:`tiling_problem` refuses such generators (:func:`tiled_generate`, and
``predict --data.tile`` at start-up).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
from torch import nn

__all__ = ["ramp_weights", "resolve_overlap", "tile_starts", "tiled_generate", "tiling_problem"]


def tiling_problem(generator: nn.Module) -> Optional[str]:
    """Why tiles of ``generator`` cannot reproduce its whole-image output, or None.

    A generator with instance normalisation that uses each input's own statistics (PyTorch's
    default ``track_running_stats=False``, the reference pix2pix's ``--norm instance``) would
    normalise every tile by that tile's mean and variance: its tiled output differs from the
    whole image everywhere, not only at the seams.
    """
    per_input = [name for name, m in generator.named_modules()
                 if isinstance(m, nn.modules.instancenorm._InstanceNorm)
                 and (not m.track_running_stats or m.running_mean is None)]
    if not per_input:
        return None
    return (f"data.tile: the generator normalises with instance norm ({len(per_input)} layers, e.g. {per_input[0]}), "
            "i.e. by the statistics of each input, here of each tile, so the tiled output would differ from the "
            "whole image everywhere; predict whole images (without --data.tile), or tile a generator trained with "
            "--norm batch or none")


def resolve_overlap(tile: int, overlap: Optional[int], multiple: int) -> int:
    """``overlap``, or by default half a tile rounded down to a multiple of ``multiple``.

    Raises:
        ValueError: ``tile`` or ``overlap`` not a multiple of ``multiple`` (naming the options
            ``data.tile`` / ``data.tile_overlap``), a negative overlap, or ``overlap >= tile``.
    """
    if tile % multiple or tile < multiple:
        lo, hi = max(multiple, tile // multiple * multiple), -(-tile // multiple) * multiple
        sizes = [v for v in dict.fromkeys((lo, hi)) if v > 0]
        if sizes[-1] < 2 * multiple:  # the grid's own size leaves no overlap: offer the first that has one
            sizes.append(2 * multiple)
        raise ValueError(f"data.tile={tile} is not a multiple of the generator's size multiple {multiple} "
                         f"(2**num_downs: tile offsets must lie on its grid); use "
                         + " or ".join(f"{v} (no overlap: hard seams)" if v == multiple else str(v) for v in sizes))
    if overlap is None:
        return tile // 2 // multiple * multiple
    if overlap < 0:
        raise ValueError(f"data.tile_overlap={overlap} must be 0 or more (pixels neighbouring tiles share)")
    if overlap % multiple:
        lo = overlap // multiple * multiple
        fits = [str(v) for v in (lo, lo + multiple) if v < tile]  # an overlap must stay below the tile
        raise ValueError(f"data.tile_overlap={overlap} is not a multiple of the generator's size multiple {multiple} "
                         f"(2**num_downs: tile offsets must lie on its grid); use {' or '.join(fits)}")
    if overlap >= tile:
        raise ValueError(f"data.tile_overlap={overlap} must be smaller than data.tile={tile}")
    return overlap


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of the tiles along one axis of ``length`` pixels: ``0, s, 2s, ...`` with
    stride ``s = tile - overlap``, the last one moved back to end at ``length``; a single tile
    ``[0]`` when ``length <= tile`` (that tile is then ``length`` long).

    With ``length``, ``tile`` and ``overlap`` multiples of m, every start is a multiple of m.

    Example: ``tile_starts(640, 256, 128) == [0, 128, 256, 384]``.
    """
    if length <= tile:
        return [0]
    stride = tile - overlap
    starts = list(range(0, length - tile, stride))
    starts.append(length - tile)
    return starts


def ramp_weights(start: int, size: int, length: int, overlap: int) -> torch.Tensor:
    """Blending weights (float32, shape (size,)) of a tile covering ``[start, start + size)`` of
    an axis of ``length``: a linear ramp ``(i + 0.5) / overlap`` over the first ``overlap``
    pixels unless the tile starts at 0, the mirrored ramp over the last ``overlap`` pixels unless
    it ends at ``length``, 1 elsewhere (always > 0, so every pixel has weight).
    """
    w = torch.ones(size)
    k = min(overlap, size)
    if k:
        ramp = (torch.arange(k, dtype=torch.float32) + 0.5) / overlap
        if start > 0:
            w[:k] = torch.minimum(w[:k], ramp)
        if start + size < length:
            w[size - k:] = torch.minimum(w[size - k:], ramp.flip(0))
    return w


def tiled_generate(generator: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int,
                   overlap: Optional[int] = None, multiple: Optional[int] = None) -> torch.Tensor:
    """``generator(x)`` computed tile by tile (one tile in memory at a time) and blended.

    Args:
        generator: image -> image network (size-preserving), e.g. ``UNetGenerator`` in eval mode.
        x: the input, H and W multiples of ``multiple`` (pad with
            ``pix2pix_aa.layers.padding.pad_to_multiple`` first and crop the result back).
        tile: tile side in pixels, a multiple of ``multiple``.
        overlap: pixels shared by neighbouring tiles, a multiple of ``multiple``, < ``tile``;
            default: half a tile rounded down to a multiple (:func:`resolve_overlap`).
        multiple: the grid step; default the generator's ``size_multiple`` (1 if it has none).

    Shape:
        (N, C_in, H, W) -> (N, C_out, H, W), float32 on ``x``'s device.

    Raises:
        ValueError: ``tile`` / ``overlap`` off the grid (naming ``data.tile`` /
            ``data.tile_overlap``), ``x``'s size not a multiple of ``multiple``, or a generator
            whose tiles cannot agree with the whole image (:func:`tiling_problem`).
    """
    if isinstance(generator, nn.Module):
        problem = tiling_problem(generator)
        if problem:
            raise ValueError(problem)
    m = int(multiple if multiple is not None else getattr(generator, "size_multiple", 1))
    overlap = resolve_overlap(tile, overlap, m)
    if x.dim() != 4:
        raise ValueError(f"tiled_generate expects (N, C, H, W), got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    if h % m or w % m:
        raise ValueError(f"tiled_generate: input of size {h}x{w} (HxW) is not a multiple of {m}; pad it first "
                         "(pix2pix_aa.layers.padding.pad_to_multiple) and crop the output back")
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    th, tw = min(tile, h), min(tile, w)
    out: Optional[torch.Tensor] = None
    weight = torch.zeros(1, 1, h, w, device=x.device)
    for y0 in ys:
        wy = ramp_weights(y0, th, h, overlap).to(x.device)
        for x0 in xs:
            wx = ramp_weights(x0, tw, w, overlap).to(x.device)
            piece = generator(x[..., y0:y0 + th, x0:x0 + tw]).float()
            if piece.shape[-2:] != (th, tw):
                raise ValueError(f"tiled_generate: the generator returned {tuple(piece.shape)} for a {th}x{tw} tile; "
                                 "it must keep the spatial size")
            if out is None:
                out = torch.zeros(x.shape[0], piece.shape[1], h, w, device=x.device)
            wt = wy[:, None] * wx[None, :]
            out[..., y0:y0 + th, x0:x0 + tw] += piece * wt
            weight[..., y0:y0 + th, x0:x0 + tw] += wt
    assert out is not None
    return out / weight
