"""Adaptive polyphase sampling (APS) and adaptive polyphase upsampling (APS-U).

Chaman & Dokmanic, "Truly shift-invariant convolutional neural networks" (CVPR 2021) and
"Truly shift-equivariant convolutional neural networks with adaptive polyphase upsampling"
(2021). Beyond Zhang (2019): a blur reduces aliasing, APS removes its effect on shifts.

Downsampling by ``s`` keeps one of the s*s *polyphase components* ``x[..., i::s, j::s]``.
A fixed choice (i, j) = (0, 0) is what a strided conv does, and a circular shift of the input
by one pixel makes it see a different component. APS keeps, per sample, the component with
the largest norm instead. A circular shift of x permutes the components (and rolls each by
an integer), which leaves their norms unchanged, so APS picks "the same" component and
returns it rolled by an integer:

    aps_down(roll(x, d)) == roll(aps_down(x), floor((p + d) / s)),  p = phase chosen for x

(per axis). APS-U puts values back at the remembered phase, so a down/up pair is exactly
equivariant, and so is a U-Net built from circular convolutions, pointwise layers and these.

Tie-breaking: the phase index is ``i * s + j`` (row-major). Norms are computed without
gradient and accumulated in float64 (squares / absolute values in the input precision, float32
for half inputs); a component counts as tied with the largest when its norm (the sum of
squares for ``l2``, of absolute values for ``l1``) is within a relative ``rtol`` (default
1e-9) of it, and the lowest tied index wins. 1e-9 is far above the float64 summation noise of
maps of up to ~1e8 elements (so components that are equal as multisets of values, e.g. a
constant map, always give the lowest index whatever the summation order or thread count) and
far below the gap between distinct components of float32 maps in practice. Exact ties are not
shift-equivariant (the lowest index is not a shift-invariant notion); they only matter when
two components differ, yet have the same norm, which is a measure-zero event for real data.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.blur_pool import FILTER_SIZES, Blur, FilterSpec, filter_size
from pix2pix_aa.layers.filters import is_filter_name
from pix2pix_aa.layers.padding import safe_pad

__all__ = [
    "APS_VARIANTS",
    "DEFAULT_TIE_RTOL",
    "parse_antialias",
    "valid_antialias_values",
    "polyphase_norms",
    "aps_down",
    "aps_up",
    "select_phase",
    "aps_conv_transpose2d",
    "APSDown",
    "APSConvTranspose2d",
]

#: Default relative tolerance under which two polyphase norms count as tied (see module doc).
DEFAULT_TIE_RTOL = 1e-9

#: Config names of the APS variants -> blur size before the APS downsampling (0: plain APS).
APS_VARIANTS: dict[str, int] = {"aps": 0, **{f"aps_{name}": size for name, size in FILTER_SIZES.items()
                                            if size}}

_APS_NORMS = ("l2", "l1")


def valid_antialias_values() -> list[str]:
    """Every valid ``antialias`` config name: the BlurPool filters, then the APS variants."""
    return list(FILTER_SIZES) + list(APS_VARIANTS)


def parse_antialias(spec: FilterSpec) -> tuple[bool, int]:
    """Read an ``antialias`` config value into ``(is_aps, blur_size)``.

    ``"none"``/``None`` -> (False, 0); ``"bin5"`` or ``5`` -> (False, 5); ``"aps"`` -> (True, 0);
    ``"aps_bin5"`` -> (True, 5) (a stride-1 Bin-5 blur, then APS); likewise ``aps_rect2``,
    ``aps_tri3``, ``aps_bin4`` ... ``aps_bin7``. Any other filter name (``"kaiser7"``) ->
    (False, its number of taps).

    Raises:
        ValueError: for an unknown name, listing every valid value; for an int outside 0..7.
    """
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key in APS_VARIANTS:
            return True, APS_VARIANTS[key]
        if not is_filter_name(key):
            valid = ", ".join(repr(k) for k in FILTER_SIZES)
            aps = ", ".join(repr(k) for k in APS_VARIANTS)
            raise ValueError(f"unknown antialias filter {spec!r}; valid: {valid} or a size 1..7, or "
                             f"'kaiser<N>[_c<cutoff>][_w<width>]'; adaptive polyphase sampling: {aps}")
    return False, filter_size(spec)


def _check_stride(stride: int) -> None:
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f"stride must be a positive int, got {stride!r}")


def _check_map(x: torch.Tensor, stride: int, what: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{what} expects a (N, C, H, W) tensor, got shape {tuple(x.shape)}")
    if x.shape[-2] % stride or x.shape[-1] % stride:
        raise ValueError(f"{what}: spatial size {tuple(x.shape[-2:])} must be divisible by stride {stride} "
                         "(APS needs whole polyphase components for exact circular shift-equivariance)")


def polyphase_norms(x: torch.Tensor, stride: int = 2, norm: str = "l2") -> torch.Tensor:
    """Norm of every polyphase component, accumulated in float64, without gradient.

    Args:
        x: (N, C, H, W), H and W divisible by ``stride``.
        norm: ``l2`` (sum of squares: the squared l2 norm, same ordering) or ``l1``.

    Returns:
        (N, stride * stride) float64; column ``i * stride + j`` is component ``x[..., i::s, j::s]``.
    """
    _check_stride(stride)
    _check_map(x, stride, "polyphase_norms")
    if norm not in _APS_NORMS:
        raise ValueError(f"unknown APS norm {norm!r}; valid: {', '.join(map(repr, _APS_NORMS))}")
    n, c, h, w = x.shape
    x = x.detach()
    if x.dtype in (torch.float16, torch.bfloat16):  # squares of half floats overflow at 256
        x = x.float()
    comps = x.reshape(n, c, h // stride, stride, w // stride, stride)
    vals = comps.square() if norm == "l2" else comps.abs()
    # Elementwise ops round each value the same way wherever it sits, so a component's values
    # are the same multiset under any roll; the float64 accumulator leaves only summation-order
    # noise (~1e-16 relative), far inside the tie tolerance.
    return vals.sum(dim=(1, 2, 4), dtype=torch.float64).reshape(n, stride * stride)


def aps_down(x: torch.Tensor, stride: int = 2, norm: str = "l2",
             rtol: float = DEFAULT_TIE_RTOL) -> tuple[torch.Tensor, torch.Tensor]:
    """Adaptive polyphase downsampling: per sample, keep the polyphase component of largest norm.

    Args:
        x: (N, C, H, W), H and W divisible by ``stride``.
        stride: subsampling factor s.
        norm: ``l2`` (default, as the APS paper) or ``l1``, over (C, h, w) of each component.
        rtol: relative tolerance for ties; the lowest tied index wins (module docstring).

    Returns:
        ``(y, phase)``: y (N, C, H/s, W/s) = ``x[n, :, i::s, j::s]`` for each sample n, and phase
        (N,) int64 = ``i * s + j``. Gradients flow to the kept component only.
    """
    if rtol < 0:
        raise ValueError(f"rtol must be >= 0, got {rtol}")
    norms = polyphase_norms(x, stride, norm)
    top = norms.max(dim=1, keepdim=True).values
    tied = norms >= top * (1.0 - rtol)
    phase = tied.to(torch.uint8).argmax(dim=1)  # argmax returns the first maximum: lowest index
    return select_phase(x, phase, stride), phase


def _split_phase(phase: torch.Tensor, n: int, stride: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    if phase.dim() != 1 or phase.shape[0] != n:
        raise ValueError(f"phase must have shape ({n},) (one index per sample), got {tuple(phase.shape)}")
    if phase.dtype.is_floating_point or phase.dtype == torch.bool:
        raise ValueError(f"phase must be an integer tensor, got {phase.dtype}")
    phase = phase.to(device=device, dtype=torch.long)
    if n and (int(phase.min()) < 0 or int(phase.max()) >= stride * stride):
        raise ValueError(f"phase values must be in [0, {stride * stride}) for stride {stride}")
    return torch.div(phase, stride, rounding_mode="floor"), phase % stride


def select_phase(x: torch.Tensor, phase: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """``x[n, :, i::s, j::s]`` per sample for phase[n] = i * s + j. (N, C, H, W) -> (N, C, H/s, W/s)."""
    _check_stride(stride)
    _check_map(x, stride, "select_phase")
    n, c, h, w = x.shape
    pi, pj = _split_phase(phase, n, stride, x.device)
    view = x.reshape(n, c, h // stride, stride, w // stride, stride)
    # Advanced indices on dims 0, 3, 5 (separated by slices): the sample dim comes first.
    return view[torch.arange(n, device=x.device), :, :, pi, :, pj]


def aps_up(y: torch.Tensor, phase: torch.Tensor, stride: int = 2) -> torch.Tensor:
    """Adaptive polyphase upsampling (zero insertion at the remembered phase).

    Args:
        y: (N, C, h, w).
        phase: (N,) integer phases from :func:`aps_down`.

    Returns:
        x (N, C, h*s, w*s) with ``x[n, :, i::s, j::s] = y[n]`` and zeros elsewhere, so that
        ``select_phase(aps_up(y, p), p) == y``.
    """
    _check_stride(stride)
    if y.dim() != 4:
        raise ValueError(f"aps_up expects a (N, C, H, W) tensor, got shape {tuple(y.shape)}")
    n, c, h, w = y.shape
    pi, pj = _split_phase(phase, n, stride, y.device)
    out = y.new_zeros(n, c, h, stride, w, stride)
    out[torch.arange(n, device=y.device), :, :, pi, :, pj] = y
    return out.reshape(n, c, h * stride, w * stride)


class APSDown(nn.Module):
    """[circular Blur (stride 1)] -> adaptive polyphase downsampling.

    ``filt_size=0`` is plain APS (config ``"aps"``); a blur size or name gives "APS + blur"
    (``"aps_bin5"``: Bin-5 blur, then APS), the blur being the BlurPool filter at stride 1.

    Args:
        channels: C (for the blur and a shape check).
        filt_size: 0 / ``"none"`` or a BlurPool filter size or name.
        stride: s.
        norm: ``l2`` | ``l1``.
        pad_type: the blur's padding; only ``circular`` keeps exact circular equivariance, and
            only ``circular`` is accepted (APS without it gives no guarantee).
        rtol: tie tolerance (see :func:`aps_down`).

    Shape:
        (N, C, H, W) -> ``(y, phase)``: (N, C, H/s, W/s) and (N,) int64.
    """

    def __init__(self, channels: int, filt_size: FilterSpec = 0, stride: int = 2, norm: str = "l2",
                 pad_type: str = "circular", rtol: float = DEFAULT_TIE_RTOL) -> None:
        super().__init__()
        _check_stride(stride)
        if norm not in _APS_NORMS:
            raise ValueError(f"unknown APS norm {norm!r}; valid: {', '.join(map(repr, _APS_NORMS))}")
        if pad_type != "circular":
            raise ValueError(f"APSDown needs pad_type='circular' (exact circular shift-equivariance), got {pad_type!r}")
        size = filter_size(filt_size)
        self.channels, self.filt_size, self.stride, self.norm, self.rtol = channels, size, stride, norm, rtol
        self.blur = Blur(channels, size, pad_type="circular") if size else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"APSDown built for {self.channels} channels got input of shape {tuple(x.shape)}")
        if self.blur is not None:
            x = self.blur(x)
        return aps_down(x, self.stride, self.norm, self.rtol)

    def extra_repr(self) -> str:
        return f"{self.channels}, filt_size={self.filt_size}, stride={self.stride}, norm={self.norm!r}"


def _circular_conv_transpose(y: torch.Tensor, weight: torch.Tensor, stride: int, padding: int,
                             groups: int) -> torch.Tensor:
    """Phase-0 circular transposed conv: ``out[o] = sum w[k] u[(o + P - k) mod s*h]`` with u the
    zero-inserted y. Computed as a strided transposed conv of y padded circularly by (a_lo, a_hi)
    samples, so every output sample gets all its (wrapped) terms inside one convolution: the
    same arithmetic at every position, hence bit-exact under rolls, and no output-sized copies.
    For the pix2pix layer (K=4, s=2, P=1): pad 1 on each side, transposed-conv padding 3."""
    k = weight.shape[-1]
    h, w = y.shape[-2:]

    def amounts(size: int) -> tuple[int, int, int]:
        a_lo = max(0, -((padding - k + 1) // stride))   # ceil((K - 1 - P) / s): lowest input index
        a_hi = max(0, (padding - 1) // stride + 1)      # highest input index beyond the map
        crop = padding + stride * a_lo
        # the transposed conv crops `crop` on both sides; make the right side long enough
        while stride * (size + a_lo + a_hi - 1) + k - 2 * crop < stride * size:
            a_hi += 1
        return a_lo, a_hi, crop

    (tl, tr, ch), (ll, lr, cw) = amounts(h), amounts(w)
    out = F.conv_transpose2d(safe_pad(y, (ll, lr, tl, tr), "circular"), weight, None, stride=stride,
                             padding=(ch, cw), groups=groups)
    return out[..., :stride * h, :stride * w]


def _window(full: torch.Tensor, start: int, length: int, dim: int) -> torch.Tensor:
    """``full[start:start + length]`` along ``dim``, zeros outside ``full`` (zero padding)."""
    n = full.shape[dim]
    before, after = max(0, -start), max(0, start + length - n)
    lo, hi = max(start, 0), min(start + length, n)
    core = full.narrow(dim, lo, max(hi - lo, 0))
    if not (before or after):
        return core
    pad = [0, 0] * (full.dim() - 1 - (dim % full.dim())) + [before, after]
    return F.pad(core, pad)


def _per_sample(fn: Callable[[torch.Tensor, int, int], torch.Tensor], index_y: torch.Tensor,
                index_x: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``fn(x[n:n+1], iy, ix)`` for every sample n: one call for the batch when all samples share
    the phase (always at batch size 1), else one (cheap: a roll or a crop) per sample."""
    pairs = torch.stack([index_y, index_x], 1).tolist()
    if not pairs:  # an empty batch: any phase gives the empty output of the right shape (0 failed here)
        return fn(x, 0, 0)
    if all(p == pairs[0] for p in pairs):  # one phase for the batch (always for batch size 1)
        return fn(x, *pairs[0])
    return torch.cat([fn(x[n:n + 1], *p) for n, p in enumerate(pairs)])


def aps_conv_transpose2d(y: torch.Tensor, phase: torch.Tensor, weight: torch.Tensor,
                         bias: Optional[torch.Tensor] = None, stride: int = 2, padding: int = 1,
                         pad_type: str = "circular", groups: int = 1) -> torch.Tensor:
    """APS-U transposed convolution: what ``conv_transpose2d(aps_up(y, phase), weight, stride=1)``
    with ``pad_type`` boundary handling computes, at the cost of the strided transposed conv.

    Definition (per axis; L = s*h output samples, K kernel taps, P = ``padding``)::

        u = aps_up(y, phase)                         # zero insertion at the remembered phase
        out[o] = sum_k weight[k] * u[o + P - k]      # u indexed mod L (circular) or 0 outside

    With phase 0 and ``pad_type="zero"`` this is exactly ``nn.ConvTranspose2d(K, s, P)``.

    How: zero insertion at phase p is zero insertion at phase 0 moved by p samples. Circular:
    the phase-0 result is the strided transposed conv of y padded circularly (so wrapped terms
    are summed inside the convolution), then rolled by p. Zero: the unpadded strided transposed
    conv gives the 'full' output F (length (h-1)*s + K) on the infinite line, and
    ``out = F[P - p : P - p + L]``. Either way this costs s*s times fewer multiplies than
    convolving the zero-inserted map (3/4 of whose samples are zeros for s = 2).

    Args:
        y: (N, C_in, h, w); phase: (N,) ints in [0, s*s); weight: (C_in, C_out/groups, K, K)
        (the ``nn.ConvTranspose2d`` layout).

    Returns:
        (N, C_out, s*h, s*w).
    """
    _check_stride(stride)
    if pad_type not in ("circular", "zero"):
        raise ValueError(f"APS-U pad_type must be 'circular' or 'zero', got {pad_type!r}")
    if y.dim() != 4:
        raise ValueError(f"aps_conv_transpose2d expects a (N, C, H, W) tensor, got shape {tuple(y.shape)}")
    n, _, h, w = y.shape
    pi, pj = _split_phase(phase, n, stride, y.device)
    if pad_type == "circular":  # phase 0, then move each sample to its phase (an exact roll)
        base = _circular_conv_transpose(y, weight, stride, padding, groups)
        out = _per_sample(lambda f, r, c: torch.roll(f, (r, c), (-2, -1)) if r or c else f, pi, pj, base)
    else:
        full = F.conv_transpose2d(y, weight, None, stride=stride, groups=groups)
        out = _per_sample(lambda f, r, c: _window(_window(f, padding - r, stride * h, -2),
                                                  padding - c, stride * w, -1), pi, pj, full)
    if bias is not None:
        out = out + bias.view(1, -1, 1, 1)
    return out


class APSConvTranspose2d(nn.ConvTranspose2d):
    """APS-U upsampling with the parameters of an ``nn.ConvTranspose2d`` (same names, same count).

    ``forward(x, phase)``: zero insertion at ``phase`` (from the matching :class:`APSDown`), the
    stride-1 transposed conv with circular padding (see :func:`aps_conv_transpose2d`), then an
    optional circular blur (``filt_size``, anti-imaging as the blur upsampling of the paper).

    Args:
        in_channels, out_channels, kernel_size, stride, padding, bias, groups: as
            ``nn.ConvTranspose2d`` (square kernels; no output_padding/dilation).
        pad_type: ``circular`` (exactly equivariant) or ``zero`` (with phase 0 this is the
            plain transposed conv; kept for that equivalence).
        filt_size: 0 or a BlurPool filter size/name for the circular blur after the conv.

    Shape:
        (N, C_in, h, w), (N,) -> (N, C_out, s*h, s*w).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 4, stride: int = 2,
                 padding: int = 1, bias: bool = True, groups: int = 1, pad_type: str = "circular",
                 filt_size: FilterSpec = 0) -> None:
        if not isinstance(kernel_size, int):
            raise ValueError(f"APSConvTranspose2d takes a square kernel (int), got {kernel_size!r}")
        if pad_type not in ("circular", "zero"):
            raise ValueError(f"APS-U pad_type must be 'circular' or 'zero', got {pad_type!r}")
        super().__init__(in_channels, out_channels, kernel_size, stride=stride, padding=padding,
                         bias=bias, groups=groups)
        size = filter_size(filt_size)
        self.pad_type, self.filt_size = pad_type, size
        self.blur = Blur(out_channels, size, pad_type="circular") if size else None

    @classmethod
    def from_conv_transpose(cls, conv: nn.ConvTranspose2d, pad_type: str = "circular",
                            filt_size: FilterSpec = 0) -> APSConvTranspose2d:
        """An APS-U layer sharing ``conv``'s weight and bias tensors (no copy)."""
        if conv.output_padding != (0, 0) or conv.dilation != (1, 1) or len(set(conv.kernel_size)) != 1 \
                or len(set(conv.stride)) != 1 or len(set(conv.padding)) != 1:
            raise ValueError(f"APS-U needs a square kernel, equal strides/paddings, no output_padding or "
                             f"dilation; got {conv}")
        new = cls(conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.padding[0],
                  bias=conv.bias is not None, groups=conv.groups, pad_type=pad_type, filt_size=filt_size)
        new.weight = conv.weight
        if conv.bias is not None:
            new.bias = conv.bias
        return new

    def forward(self, x: torch.Tensor, phase: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        if phase is None:
            raise ValueError("APSConvTranspose2d needs the phase of the matching APS downsampling: "
                             "call it as layer(x, phase)")
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"APSConvTranspose2d built for {self.in_channels} input channels got shape "
                             f"{tuple(x.shape)}")
        out = aps_conv_transpose2d(x, phase, self.weight, self.bias, self.stride[0], self.padding[0],
                                   self.pad_type, self.groups)
        return self.blur(out) if self.blur is not None else out

    def extra_repr(self) -> str:
        return super().extra_repr() + f", pad_type={self.pad_type!r}, filt_size={self.filt_size}"
