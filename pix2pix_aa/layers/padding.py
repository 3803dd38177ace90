"""Padding shared by every layer that pads: BlurPool and blurs, the U-Net's convs, APS.

One home for the padding modes and their edge cases, so that the blur, the convs and the
polyphase layers pad the same way:

* :func:`pad_mode` turns a config name (``reflect``, ``zero``, ``circular`` ... and the
  ``antialiased-cnns`` aliases ``refl`` / ``repl``) into the mode ``F.pad`` understands;
* :func:`pad_amounts` is the paper's blur padding, floor/ceil((k - 1) / 2) (Zhang 2019,
  reference code ``antialiased_cnns.BlurPool``);
* :func:`safe_pad` is ``F.pad`` made total: reflect padding as wide as the map (2x2 maps deep in
  a U-Net) falls back to replicate, and circular padding wider than the map wraps around as
  often as needed (``F.pad`` refuses both; APS pads circularly through it);
* :func:`gather_pad` / :func:`index_map`: the same padding as an index gather, for any width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["PAD_TYPES", "pad_mode", "pad_amounts", "index_map", "defined_mode", "safe_pad", "gather_pad",
           "pad_to_multiple", "scripted"]

#: Padding modes; aliases accepted for compatibility with ``antialiased-cnns``.
PAD_TYPES: dict[str, str] = {
    "reflect": "reflect",
    "refl": "reflect",
    "replicate": "replicate",
    "repl": "replicate",
    "zero": "constant",
    "zeros": "constant",
    "constant": "constant",
    "circular": "circular",
}

Pad = tuple[int, int, int, int]


def pad_mode(pad_type: str) -> str:
    """The ``F.pad`` mode of a config padding name (``zero`` -> ``constant``).

    Raises:
        ValueError: for an unknown name, listing the valid ones.
    """
    try:
        return PAD_TYPES[pad_type]
    except (KeyError, TypeError):
        valid = ", ".join(sorted({"reflect", "replicate", "zero", "circular"}))
        raise ValueError(f"unknown pad_type {pad_type!r}; valid: {valid}") from None


def pad_amounts(size: int, pad_off: int = 0) -> Pad:
    """(left, right, top, bottom) padding of a ``size``-tap filter: floor/ceil((k - 1) / 2) +
    ``pad_off``, as ``antialiased_cnns.BlurPool`` (even sizes pad one more at the end)."""
    lo, hi = (size - 1) // 2 + pad_off, size // 2 + pad_off
    return lo, hi, lo, hi


def index_map(n: int, start: int, stop: int, mode: str) -> list[int]:
    """Source indices of the padded coordinates ``start..stop-1`` of an axis of length ``n``
    (``0..n-1`` is the axis itself) under ``mode`` (reflect / replicate / circular), for any
    pad width.

    Raises:
        ValueError: for another mode.
    """
    idx = []
    for p in range(start, stop):
        if mode == "reflect":
            q = -p if p < 0 else (2 * (n - 1) - p if p >= n else p)
        elif mode == "replicate":
            q = min(max(p, 0), n - 1)
        elif mode == "circular":
            q = p % n
        else:
            raise ValueError(f"no index map for padding mode {mode!r}")
        idx.append(q)
    return idx


def gather_pad(x: torch.Tensor, pad: Pad, mode: str) -> torch.Tensor:
    """``F.pad(x, pad, mode)`` as an index gather on the last two axes (any pad width).

    Shape:
        (..., H, W) -> (..., H + top + bottom, W + left + right).
    """
    h, w = x.shape[-2:]
    rows = index_map(h, -pad[2], h + pad[3], mode)
    cols = index_map(w, -pad[0], w + pad[1], mode)
    return x.index_select(-2, torch.tensor(rows, device=x.device)).index_select(
        -1, torch.tensor(cols, device=x.device))


def defined_mode(x: torch.Tensor, pad: Pad, mode: str) -> str:
    """``mode``, except that reflect padding wider than the map falls back to replicate.

    Reflection needs pad < size; 2x2 (or 1x1) maps at the bottom of a U-Net break that rule,
    and replicate is the closest mode that is defined there.
    """
    if mode == "reflect":
        h, w = x.shape[-2:]
        if max(pad[0], pad[1]) >= w or max(pad[2], pad[3]) >= h:
            return "replicate"
    return mode


def safe_pad(x: torch.Tensor, pad: Pad, mode: str) -> torch.Tensor:
    """``F.pad`` that is defined for every map size.

    Args:
        x: (..., H, W).
        pad: (left, right, top, bottom).
        mode: an ``F.pad`` mode (see :func:`pad_mode`).

    Reflect padding wider than the map falls back to replicate (:func:`defined_mode`) and
    circular padding wider than the map wraps around as often as needed.

    Shape:
        (..., H, W) -> (..., H + top + bottom, W + left + right).
    """
    if not any(pad):
        return x
    if mode == "reflect" and torch.compiler.is_exporting():
        return _reflect_or_replicate(x, pad)
    if mode == "reflect" and torch.jit.is_tracing():
        # A trace records one branch of defined_mode, the example's: a TorchScript file traced at 512 px
        # then failed below it, and one traced at 128 px differed at 256. A scripted call keeps the branch.
        return scripted(_reflect_pad_defined)(x, list(pad))
    mode = defined_mode(x, pad, mode)
    if mode == "constant":
        return F.pad(x, pad)
    if mode == "replicate" and torch.compiler.is_compiling():
        # Inductor (torch 2.14, CPU) declares contiguous strides for replication_pad2d_backward
        # while the kernel returns channels-last ones, and the compiled backward fails its
        # stride assertion; the same padding as a gather compiles (docs/PERFORMANCE.md).
        return gather_pad(x, pad, mode)
    if mode == "circular":
        h, w = x.shape[-2:]
        if max(pad[0], pad[1]) > w or max(pad[2], pad[3]) > h:
            # F.pad refuses to wrap more than once; gathering by index wraps any number of times.
            return gather_pad(x, pad, mode)
    return F.pad(x, pad, mode=mode)


def _axis_indices(n, lo: int, hi: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Source indices of the padded positions along one axis of (symbolic) length ``n``:
    (reflection, clamped to the axis; replication)."""
    i = torch.arange(-lo, n + hi, device=device)
    reflected = torch.where(i < 0, -i, torch.where(i >= n, 2 * (n - 1) - i, i)).clamp(0, n - 1)
    return reflected, i.clamp(0, n - 1)


def _reflect_or_replicate(x: torch.Tensor, pad: Pad) -> torch.Tensor:
    """:func:`safe_pad`'s reflect mode (with :func:`defined_mode`'s replicate fallback) without a
    Python branch on the map size, for ``torch.export``: a branch on a symbolic size would
    freeze the exported graph to the example's sizes (an ONNX U-Net exported at 128 px then
    failed at 64 px). Same values as the eager path (tests/test_export.py)."""
    h, w = x.shape[-2:]
    rows_ref, rows_rep = _axis_indices(h, pad[2], pad[3], x.device)
    cols_ref, cols_rep = _axis_indices(w, pad[0], pad[1], x.device)
    # defined_mode's rule, as a tensor: reflect only if both axes are wider than their pads.
    fits = ((torch.full_like(rows_ref[:1], max(pad[2], pad[3])) < h)
            & (torch.full_like(cols_ref[:1], max(pad[0], pad[1])) < w))
    rows = torch.where(fits, rows_ref, rows_rep)
    cols = torch.where(fits, cols_ref, cols_rep)
    return x.index_select(-2, rows).index_select(-1, cols)


def _reflect_pad_defined(x: torch.Tensor, pad: list[int]) -> torch.Tensor:
    """:func:`defined_mode`'s rule with its branch, written for ``torch.jit.script``."""
    if max(pad[0], pad[1]) >= x.shape[-1] or max(pad[2], pad[3]) >= x.shape[-2]:
        return F.pad(x, pad, mode="replicate")
    return F.pad(x, pad, mode="reflect")


_SCRIPTED: dict = {}


def scripted(fn):
    """``fn`` compiled by TorchScript, once per process (on first use: scripting costs ~0.1 s). A
    trace calls it as a function of its inputs' sizes, keeping its branches; the Python function
    would be traced with the example's sizes and branch frozen in."""
    if fn not in _SCRIPTED:
        _SCRIPTED[fn] = torch.jit.script(fn)
    return _SCRIPTED[fn]


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad ``x`` on the bottom/right so that H and W are multiples of ``multiple``
    (replicate where the pad is not smaller than the side: reflection needs pad < size).

    Shape: (N, C, H, W) -> (N, C, ceil(H / m) * m, ceil(W / m) * m).
    """
    h, w = x.shape[-2:]
    ph, pw = (-h) % multiple, (-w) % multiple
    if not (ph or pw):
        return x
    return F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
