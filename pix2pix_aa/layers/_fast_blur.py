"""Padding-free depthwise blur for non-zero padding modes (the speed path behind BlurPool).

Why: ``pad(x) -> conv`` (what ``antialiased-cnns`` does) copies the whole input once forward and
scatters the whole gradient back once backward; on CPU that copy costs about as much as the blur
itself. Here the blur runs as one depthwise conv with *zero* padding folded into the conv (as
kornia does), and only the thin border of the output, whose windows reach into the padding, is
recomputed exactly from small gathered strips of the input (reflect / replicate / circular index
maps). The backward pass is the zero-padded transposed conv plus the adjoint of the strips'
padding part, so it never materialises a padded copy either, and saves no activations (the op is
linear in ``x``).

The result equals ``conv2d(pad(x, mode), w, stride)`` up to float rounding (< 1e-6 for unit-scale
float32 inputs): the border values are computed exactly that way, the interior identically.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["MIN_NUMEL", "fast_blur_supported", "padded_blur"]

#: Inputs with fewer elements take plain ``pad -> conv``: the border strips cost a fixed number of
#: small ops, which only pays off on large maps. Measured crossover (CPU, 1 thread, bin5 forward +
#: backward): 1x64x128x128 (1.0 M elements) pad+conv 5.2 vs 5.8 ms, 1x512x16x16 1.2 vs 3.0 ms;
#: 2x64x128x128 (2.1 M) this path 14.9 vs 20.3 ms, 1x64x256x256 33.7 vs 44.0 ms.
MIN_NUMEL = 1 << 21


def index_map(n: int, start: int, stop: int, mode: str) -> tuple[list[int], list[bool]]:
    """Map padded coordinates ``start..stop-1`` (``0..n-1`` is the map itself) to source
    indices for ``mode``; the second list flags the coordinates that lie in the padding."""
    idx, outside = [], []
    for p in range(start, stop):
        out = p < 0 or p >= n
        if mode == "reflect":
            q = -p if p < 0 else (2 * (n - 1) - p if p >= n else p)
        elif mode == "replicate":
            q = min(max(p, 0), n - 1)
        elif mode == "circular":
            q = p % n
        else:  # pragma: no cover - guarded by the caller
            raise ValueError(f"no index map for padding mode {mode!r}")
        idx.append(q)
        outside.append(out)
    return idx, outside


@dataclass(frozen=True)
class _Band:
    """A border block of the output recomputed exactly from a gathered input strip (the
    top/bottom bands, which hold the corners, and blocks the zero-padded conv did not cover).

    ``rows``/``cols`` are either a slice into the input (no padding on that axis) or the runs of
    a gather index (padding on that axis, see :func:`_runs`); ``pad_mask`` (R, Cc) is 1 where
    the strip element is padding.
    """

    out_rows: slice
    out_cols: slice
    rows: slice | tuple[tuple[int, int, bool], ...]
    cols: slice | tuple[tuple[int, int, bool], ...]
    pad_mask: torch.Tensor


@dataclass(frozen=True)
class _Side:
    """A left/right band between the top and bottom bands, fixed by adding the padding's
    contribution to the zero-padded conv: only the few source columns that the padding copies
    (reflect: 1..lo, replicate: 0, circular: the far side) are blurred vertically and mixed with
    the horizontal taps, so the skinny strided column access is as small as it gets.

    ``taps`` (U, L, k) is 1 where padded tap b of output column l copies source column u; the
    mixing matrix is ``taps @ row`` for the 1-D filter row.
    """

    out_rows: slice
    out_cols: slice
    src_rows: slice
    src_cols: slice
    taps: torch.Tensor


@dataclass(frozen=True)
class _Plan:
    out_h: int
    out_w: int
    bands: tuple[_Band, ...]
    sides: tuple[_Side, ...]


def _axis_split(n: int, k: int, s: int, lo: int, hi: int, out_n: int) -> tuple[int, int] | None:
    """Output indices ``[0, head)`` touch the leading padding, ``[tail, out_n)`` the trailing
    one. None when the two overlap (map too small: the caller pads instead)."""
    head = -(-lo // s)  # ceil(lo / s)
    # output j touches the trailing pad when its window's last input j*s - lo + k - 1 > n - 1
    tail = max((n - k + lo) // s + 1, 0)
    tail = min(tail, out_n)
    if head > tail:
        return None
    return head, tail


@functools.lru_cache(maxsize=256)
def _plan(h: int, w: int, k: int, s: int, lo: int, hi: int, mode: str, device: str) -> _Plan | None:
    out_h, out_w = (h + lo + hi - k) // s + 1, (w + lo + hi - k) // s + 1
    conv_h, conv_w = (h + 2 * lo - k) // s + 1, (w + 2 * lo - k) // s + 1
    if out_h < 1 or out_w < 1 or (conv_h, conv_w) != (out_h, out_w):
        return None  # tiny map, or an asymmetric pad the caller should have made symmetric
    split_h = _axis_split(h, k, s, lo, hi, out_h)
    split_w = _axis_split(w, k, s, lo, hi, out_w)
    if split_h is None or split_w is None:
        return None
    (top, bottom), (left, right) = split_h, split_w
    dev = torch.device(device)

    def axis(n: int, j0: int, j1: int) -> tuple[slice | tuple, torch.Tensor]:
        start, stop = j0 * s - lo, (j1 - 1) * s - lo + k
        if start >= 0 and stop <= n:
            return slice(start, stop), torch.zeros(stop - start, dtype=torch.bool)
        idx, outside = index_map(n, start, stop, mode)
        return _runs(idx), torch.tensor(outside, dtype=torch.bool)

    def band(j0: int, j1: int, i0: int, i1: int) -> _Band:
        rows, rout = axis(h, j0, j1)
        cols, cout = axis(w, i0, i1)
        mask = (rout[:, None] | cout[None, :]).to(dtype=torch.float32, device=dev)
        return _Band(slice(j0, j1), slice(i0, i1), rows, cols, mask)

    def side(i0: int, i1: int) -> _Side:
        taps: dict[tuple[int, int, int], float] = {}
        for i in range(i0, i1):
            for b in range(k):
                c = i * s - lo + b
                if c < 0 or c >= w:
                    taps[(index_map(w, c, c + 1, mode)[0][0], i - i0, b)] = 1.0
        u0 = min(u for u, _, _ in taps)
        u1 = max(u for u, _, _ in taps) + 1
        t = torch.zeros(u1 - u0, i1 - i0, k)
        for (u, i, b), v in taps.items():
            t[u - u0, i, b] += v
        src_rows = slice(top * s - lo, (bottom - 1) * s - lo + k)
        return _Side(slice(top, bottom), slice(i0, i1), src_rows, slice(u0, u1), t.to(dev))

    bands, sides = [], []
    for j0, j1 in ((0, top), (bottom, out_h)):  # full-width bands, corners included
        if j1 > j0:
            bands.append(band(j0, j1, 0, out_w))
    if bottom > top:  # left/right bands between them
        for i0, i1 in ((0, left), (right, out_w)):
            if i1 > i0:
                sides.append(side(i0, i1))
    return _Plan(out_h, out_w, tuple(bands), tuple(sides))


def _runs(index: list[int]) -> tuple[tuple[int, int, bool], ...]:
    """Split a gather index into runs of consecutive sources: (first source, length, reversed).

    Padding index maps are a few short runs (e.g. reflect [2, 1 | 0, 1, 2, ...]), so gathering
    by ``narrow`` (+ ``flip``) and ``cat`` beats ``index_select``, which is slow along the last
    dim on CPU.
    """
    runs: list[list[int]] = []
    for q in index:
        if runs:
            first, n, step = runs[-1]
            last = first + (n - 1) * step
            if n == 1 and abs(q - last) == 1:
                runs[-1] = [first, 2, q - last]
                continue
            if n > 1 and q - last == step:
                runs[-1][1] += 1
                continue
        runs.append([q, 1, 1])
    out = []
    for first, n, step in runs:
        out.append((first - n + 1, n, True) if step == -1 else (first, n, False))
    return tuple(out)


def _take(x: torch.Tensor, dim: int, index: slice | tuple) -> torch.Tensor:
    if isinstance(index, slice):
        return x.narrow(dim, index.start, index.stop - index.start)
    parts = [x.narrow(dim, a, n).flip(dim) if rev else x.narrow(dim, a, n) for a, n, rev in index]
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim)


def _put(grad: torch.Tensor, dim: int, index: slice | tuple, value: torch.Tensor) -> torch.Tensor:
    """Adjoint of :func:`_take`: accumulate ``value`` into ``grad`` along ``dim`` (in place)."""
    if isinstance(index, slice):
        grad.narrow(dim, index.start, index.stop - index.start).add_(value)
        return grad
    offset = 0
    for a, n, rev in index:
        part = value.narrow(dim, offset, n)
        grad.narrow(dim, a, n).add_(part.flip(dim) if rev else part)
        offset += n
    return grad


def _vertical(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The separable filter's (C, 1, k, 1) column and its 1-D row (k,): ``weight`` is the outer
    product of a row that sums to 1, so its column sums are the row itself."""
    row = weight[0, 0].sum(0)
    return weight.sum(-1, keepdim=True), row


class _PaddedBlur(torch.autograd.Function):
    """y = depthwise_conv(pad(x, mode), weight, stride) without a padded copy of x."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: int, lo: int,  # type: ignore[override]
                plan: _Plan) -> torch.Tensor:
        channels = x.shape[1]
        y = F.conv2d(x, weight, stride=stride, padding=lo, groups=channels)
        if plan.sides:
            column, row = _vertical(weight)
            for sd in plan.sides:
                src = x[:, :, sd.src_rows, sd.src_cols]
                v = F.conv2d(src, column, stride=(stride, 1), groups=channels)
                y[:, :, sd.out_rows, sd.out_cols] += v @ (sd.taps.to(row.dtype) @ row)
        for bd in plan.bands:
            strip = _take(_take(x, 2, bd.rows), 3, bd.cols)
            y[:, :, bd.out_rows, bd.out_cols] = F.conv2d(strip, weight, stride=stride, groups=channels)
        ctx.stride, ctx.lo, ctx.plan = stride, lo, plan
        ctx.in_hw = x.shape[-2:]
        ctx.save_for_backward(weight)
        return y

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (weight,) = ctx.saved_tensors
        stride, lo, plan = ctx.stride, ctx.lo, ctx.plan
        h, w = ctx.in_hw
        channels = grad.shape[1]
        k = weight.shape[-1]
        # Adjoint of the zero-padded conv: the transposed conv (exact for any filter).
        op_h = h - ((plan.out_h - 1) * stride - 2 * lo + k)
        op_w = w - ((plan.out_w - 1) * stride - 2 * lo + k)
        gx = F.conv_transpose2d(grad, weight, stride=stride, padding=lo, output_padding=(op_h, op_w),
                                groups=channels)
        if plan.sides:
            column, row = _vertical(weight)
            for sd in plan.sides:
                gv = grad[:, :, sd.out_rows, sd.out_cols] @ (sd.taps.to(row.dtype) @ row).t()
                n_src = sd.src_rows.stop - sd.src_rows.start
                op = n_src - ((gv.shape[2] - 1) * stride + k)
                gx[:, :, sd.src_rows, sd.src_cols] += F.conv_transpose2d(
                    gv, column, stride=(stride, 1), output_padding=(op, 0), groups=channels)
        # Bands: out = Z(x) + conv(strip * pad_mask); add the adjoint of the second term.
        for bd in plan.bands:
            gb = grad[:, :, bd.out_rows, bd.out_cols]
            rs, cs = bd.pad_mask.shape
            op = (rs - ((gb.shape[2] - 1) * stride + k), cs - ((gb.shape[3] - 1) * stride + k))
            gs = F.conv_transpose2d(gb, weight, stride=stride, output_padding=op, groups=channels)
            gs = gs * bd.pad_mask.to(gs.dtype)
            if isinstance(bd.rows, slice):  # no padded rows: scatter columns only
                _put(gx.narrow(2, bd.rows.start, bd.rows.stop - bd.rows.start), 3, bd.cols, gs)
            else:  # fold the padded columns, then the padded rows
                tmp = gs.new_zeros(gs.shape[:3] + (w,))
                _put(tmp, 3, bd.cols, gs)
                _put(gx, 2, bd.rows, tmp)
        return gx, None, None, None, None


def fast_blur_supported(x: torch.Tensor) -> bool:
    """Whether the padding-free path should run: on 4-D inputs of at least ``MIN_NUMEL``
    elements, and not while tracing/exporting/compiling, where plain ops (pad + conv) are
    easier for the tools to handle."""
    if torch.jit.is_scripting() or torch.jit.is_tracing():
        return False
    compiler = getattr(torch, "compiler", None)
    if compiler is not None and compiler.is_compiling():
        return False
    return x.dim() == 4 and x.numel() >= MIN_NUMEL


def symmetric_filter(weight: torch.Tensor, lo: int, hi: int) -> tuple[torch.Tensor, int]:
    """An even filter padded (lo, hi = lo + 1) as the same filter with a leading zero row and
    column padded (hi, hi): symmetric padding, which ``conv2d(padding=...)`` can fold in, so no
    padded or cropped copy is needed. Returns (weight of size k + 1, pad)."""
    if lo == hi:
        return weight, lo
    if hi != lo + 1:
        raise ValueError(f"expected pads differing by at most one, got ({lo}, {hi})")
    return F.pad(weight, (1, 0, 1, 0)), hi


def padded_blur(x: torch.Tensor, weight: torch.Tensor, stride: int, pad: tuple[int, int, int, int],
                mode: str) -> torch.Tensor | None:
    """``conv2d(F.pad(x, pad, mode), weight, stride, groups=C)`` for pads ``(lo, hi, lo, hi)``
    (hi - lo in {0, 1}) and ``mode`` in reflect/replicate/circular, or None when the map is too
    small for the border split (the caller then pads explicitly).

    Args:
        x: (N, C, H, W); weight: (C, 1, k, k), the outer product of a row summing to 1, same
            dtype/device as ``x``.
    """
    weight, p = symmetric_filter(weight, pad[0], pad[1])
    h, w = x.shape[-2:]
    plan = _plan(h, w, weight.shape[-1], stride, p, p, mode, str(x.device))
    if plan is None:
        return None
    return _PaddedBlur.apply(x, weight.contiguous(), stride, p, plan)
