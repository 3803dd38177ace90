"""The anti-aliasing of a network, resolved once from its options (timm's ``create_aa`` pattern).

A generator's anti-aliasing options (``antialias``, ``antialias_mode``, ``upsample_antialias``,
``upsample``, ``pad_type``, ``blur_pad_type``, ``aps_norm``) are read here, in one place, into
an :class:`AntiAlias` spec: one :class:`Downsample` per encoder level and one :class:`Upsample`
per decoder level, whose filters are parsed :class:`~pix2pix_aa.layers.filters.LowPass` values.
The networks and blocks only assemble the layers those return and never branch on an option
string; a layer resolved to ``nn.Identity`` is left out of its block, so module indices (hence
state_dict keys) are the reference's for every option (docs/DESIGN.md section 3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Optional, Union

from torch import nn

from pix2pix_aa.layers.blur_pool import Blur, BlurPool
from pix2pix_aa.layers.filters import FilterSpec, LowPass, parse_filter
from pix2pix_aa.layers.padding import pad_mode
from pix2pix_aa.layers.polyphase import APSConvTranspose2d, APSDown, parse_antialias
from pix2pix_aa.networks.convs import check_choice, conv3

__all__ = [
    "ANTIALIAS_MODES",
    "UPSAMPLE_MODES",
    "AntiAlias",
    "Downsample",
    "Upsample",
    "default_blur_pad",
    "per_level",
    "resolve_antialias",
    "resolve_downsample",
    "upsample_filters",
]

#: How a strided conv is anti-aliased. ``conv_blur`` is the paper's ConvBlurPool (conv at
#: stride 1 -> norm -> activation -> BlurPool); ``blur_conv`` is the cheaper StyleGAN2-style
#: blur -> strided conv, which is *not* the paper's method (it low-passes the input, but the
#: nonlinearity after the conv can alias again).
ANTIALIAS_MODES = ("conv_blur", "blur_conv")
#: Upsampling layers of a decoder level: the reference's transposed conv, or resize + 3x3 conv.
UPSAMPLE_MODES = ("transpose", "nearest", "bilinear")

NO_FILTER = LowPass("binomial", 0)

#: A value for every level, or a list with one per level (outermost first).
PerLevel = Union[FilterSpec, Sequence[FilterSpec]]
UpsampleAntialias = Union[bool, FilterSpec, Sequence[Union[bool, FilterSpec]]]


def default_blur_pad(pad_type: str) -> str:
    """Blur padding that goes with a conv padding: circular stays circular (exact circular
    equivariance), anything else blurs with reflect padding (the paper's default)."""
    return "circular" if pad_type == "circular" else "reflect"


def per_level(value: object, num_levels: int, name: str) -> list:
    """``value`` repeated for every level, or the list itself after a length check.

    Raises:
        ValueError: when a list does not have one entry per level.
    """
    if isinstance(value, (list, tuple)):
        if len(value) != num_levels:
            raise ValueError(f"{name} lists one value per level, outermost first: {num_levels} values (one per "
                             f"downsampling: the U-Net's num_downs), got {len(value)}: {list(value)!r}")
        return list(value)
    return [value] * num_levels


@dataclass(frozen=True)
class Downsample:
    """How a strided conv level halves the resolution, resolved once from the config.

    Attributes:
        filt: the low-pass filter (size 0: the reference strided conv).
        mode: ``conv_blur`` (paper: conv s1 -> norm -> act -> BlurPool), ``blur_conv`` (Blur ->
            conv s2) or ``aps`` (conv s1 -> norm -> act -> [circular blur] -> APS).
        pad_type: the conv's padding; blur_pad_type: the blur's.
        aps_norm: APS only: the norm that picks the polyphase component.
    """

    filt: LowPass = NO_FILTER
    mode: str = "conv_blur"
    pad_type: str = "zero"
    blur_pad_type: str = "reflect"
    aps_norm: str = "l2"

    @property
    def conv_stride(self) -> int:
        """2 for the reference and ``blur_conv``; 1 when the subsampling comes after the act."""
        dense = self.mode == "aps" or (self.mode == "conv_blur" and self.filt.size > 0)
        return 1 if dense else 2

    def pre(self, channels: int) -> nn.Module:
        """The layer before the conv: a stride-1 Blur for ``blur_conv``, else Identity."""
        if self.mode == "blur_conv" and self.filt.size:
            return Blur(channels, self.filt, pad_type=self.blur_pad_type)
        return nn.Identity()

    def post(self, channels: int) -> nn.Module:
        """The layer after the activation: BlurPool (``conv_blur``), APSDown (``aps``) or Identity."""
        if self.mode == "aps":
            return APSDown(channels, self.filt.size, stride=2, norm=self.aps_norm)
        if self.mode == "conv_blur" and self.filt.size:
            return BlurPool(channels, self.filt, stride=2, pad_type=self.blur_pad_type)
        return nn.Identity()


@dataclass(frozen=True)
class Upsample:
    """How a decoder level doubles the resolution, resolved once from the config.

    Attributes:
        kind: ``transpose`` (transposed conv, stride 2, padding 1: the reference), ``nearest`` /
            ``bilinear`` (resize x2, then a 3x3 conv) or ``aps`` (APS-U).
        filt: the anti-imaging low-pass after the upsampling (size 0: no blur).
        pad_type: the 3x3 conv's padding; blur_pad_type: the blur's.
    """

    kind: str = "transpose"
    filt: LowPass = NO_FILTER
    pad_type: str = "zero"
    blur_pad_type: str = "reflect"

    def layers(self, in_channels: int, out_channels: int, bias: bool, kernel_size: int = 4) -> list[nn.Module]:
        """The upsampling layers, then the blur (or Identity). ``kernel_size`` is the transposed
        conv's: 4 (the U-Net's, padding 1) or 3 (the ResNet's, padding 1, output_padding 1); both
        give (N, out, 2H, 2W)."""
        if self.kind == "aps":
            return [APSConvTranspose2d(in_channels, out_channels, kernel_size, 2, 1, bias=bias, pad_type="circular",
                                       filt_size=self.filt.size)]
        if self.kind == "transpose":
            up: list[nn.Module] = [nn.ConvTranspose2d(in_channels, out_channels, kernel_size, 2, 1,
                                                      output_padding=4 - kernel_size, bias=bias)]
        else:
            up = [nn.Upsample(scale_factor=2, mode=self.kind), conv3(in_channels, out_channels, self.pad_type, bias)]
        blur = Blur(out_channels, self.filt, pad_type=self.blur_pad_type) if self.filt.size else nn.Identity()
        return [*up, blur]


@dataclass(frozen=True)
class AntiAlias:
    """A generator's anti-aliasing, resolved: what every level builds.

    Attributes:
        down: one :class:`Downsample` per encoder level, outermost first.
        up: one :class:`Upsample` per decoder level, outermost (the last upsampling) first.
        aps: adaptive polyphase sampling (every conv then pads circularly).
        conv_pad_type: the padding of the network's other (stride-1) convs.
    """

    down: tuple[Downsample, ...]
    up: tuple[Upsample, ...]
    aps: bool
    conv_pad_type: str


def upsample_filters(upsample_antialias: Optional[UpsampleAntialias], down: Sequence[LowPass],
                     num_levels: int) -> list[LowPass]:
    """The anti-imaging filter of every decoder level. None / True: the level's encoder filter
    (True requires one); False: none; a filter: that filter; a list: per level.

    Raises:
        ValueError: for True where the encoder level has no filter, or an unknown filter.
    """
    values = per_level(upsample_antialias, num_levels, "upsample_antialias")
    if upsample_antialias is True and not any(f.size for f in down):
        raise ValueError("upsample_antialias=True needs an antialias filter (got 'none')")
    out = []
    for i, v in enumerate(values):
        if v is None or v is True:
            if v is True and not down[i].size:
                raise ValueError(f"upsample_antialias=True at level {i + 1} needs an antialias filter there "
                                 f"(got {down[i].name!r})")
            out.append(down[i])
        elif v is False:
            out.append(NO_FILTER)
        else:
            out.append(parse_filter(v))
    return out


def _check_aps_options(antialias: str, size: int, pad_type: Optional[str], blur_pad_type: Optional[str],
                       ups: list[str], modes: list[str], aps_norm: str, upsample_antialias: object) -> None:
    """The options an APS generator (``antialias``, blur ``size``, 0: none) accepts: circular
    padding, transposed-conv upsampling, the paper's conv -> blur order.

    Raises:
        ValueError: naming the option that APS cannot take and what it needs.
    """
    if pad_type not in (None, "circular"):
        raise ValueError(f"antialias={antialias!r} needs pad_type='circular' (APS is exactly shift-equivariant "
                         f"only with circular padding), got pad_type={pad_type!r}; leave it unset or set 'circular'")
    if blur_pad_type not in (None, "circular"):
        raise ValueError(f"antialias={antialias!r} blurs with circular padding; got blur_pad_type={blur_pad_type!r}")
    if any(u != "transpose" for u in ups):
        shown = ups[0] if len(set(ups)) == 1 else ups
        raise ValueError(f"antialias={antialias!r} upsamples with APS-U transposed convs; got upsample={shown!r} "
                         "(use 'transpose')")
    if any(m != "conv_blur" for m in modes):
        raise ValueError(f"antialias_mode={modes[0]!r} applies to BlurPool filters, not to APS "
                         "(which is always conv stride 1 -> norm -> act -> [blur] -> APS)")
    if aps_norm not in ("l2", "l1"):
        raise ValueError(f"unknown aps_norm {aps_norm!r}; valid: 'l2', 'l1'")
    if upsample_antialias not in (None, True, False):
        raise ValueError("APS generators take upsample_antialias None, True or False (the blur is the "
                         f"APS filter), got {upsample_antialias!r}")
    if upsample_antialias is True and not size:
        raise ValueError(f"upsample_antialias=True needs an antialias filter (got {antialias!r} without one)")


def resolve_antialias(num_levels: int, antialias: PerLevel = "none",
                      antialias_mode: Union[str, Sequence[str]] = "conv_blur",
                      upsample_antialias: Optional[UpsampleAntialias] = None,
                      upsample: Union[str, Sequence[str]] = "transpose", pad_type: Optional[str] = None,
                      blur_pad_type: Optional[str] = None, aps_norm: str = "l2", *,
                      conv_pad_default: str = "zero", upsample_pad_type: Optional[str] = None,
                      levels: str = "every level") -> AntiAlias:
    """Read a generator's anti-aliasing options, once, into an :class:`AntiAlias`.

    Args:
        num_levels: downsamplings (= upsamplings); list options need one value per level.
        antialias / antialias_mode / upsample_antialias / upsample / pad_type / blur_pad_type /
            aps_norm: the generator's options, as documented on ``UNetGenerator``.
        conv_pad_default: the padding of the stride-1 convs when ``pad_type`` is None (the
            strided convs then pad with zeros, as the reference; APS: everything circular).
        upsample_pad_type: the resize convs' padding (None: that of the stride-1 convs).
        levels: how the error for APS inside a list names the levels.

    Raises:
        ValueError: naming the option, the value and the valid ones.
    """
    n = num_levels
    modes = per_level(antialias_mode, n, "antialias_mode")
    for mode in modes:
        check_choice("antialias_mode", mode, ANTIALIAS_MODES)
    ups = per_level(upsample, n, "upsample")
    for up in ups:
        if up not in UPSAMPLE_MODES:
            raise ValueError(f"unknown upsample {up!r}; valid: 'transpose', 'nearest', 'bilinear'")

    aps, size = (False, 0) if isinstance(antialias, (list, tuple)) else parse_antialias(antialias)
    if aps:
        _check_aps_options(antialias, size, pad_type, blur_pad_type, ups, modes, aps_norm, upsample_antialias)
        down = Downsample(parse_filter(size), "aps", "circular", "circular", aps_norm)
        up_filter = NO_FILTER if upsample_antialias is False else down.filt
        return AntiAlias((down,) * n, (Upsample("aps", up_filter, "circular", "circular"),) * n, True, "circular")

    down_pad = "zero" if pad_type is None else pad_type
    conv_pad = conv_pad_default if pad_type is None else pad_type
    pad_mode(down_pad)
    pad_mode(conv_pad)
    blur_pad = blur_pad_type or default_blur_pad(down_pad)
    pad_mode(blur_pad)
    filters = []
    for f in per_level(antialias, n, "antialias"):
        if parse_antialias(f)[0]:
            raise ValueError(f"adaptive polyphase sampling ({f!r}) applies to {levels}: pass it as a single "
                             "antialias value, not in a list")
        filters.append(parse_filter(f))
    up_pad = conv_pad if upsample_pad_type is None else upsample_pad_type
    up_filters = upsample_filters(upsample_antialias, filters, n)
    # Options that nothing here reads were accepted and silently ignored.
    if aps_norm != "l2":
        raise ValueError(f"aps_norm={aps_norm!r} applies to APS only (antialias='aps...'), and antialias is "
                         f"{antialias!r}; drop it")
    if blur_pad_type is not None and not any(f.size for f in (*filters, *up_filters)):
        raise ValueError(f"blur_pad_type={blur_pad_type!r} pads the blurs, and this network has none (antialias "
                         f"{antialias!r}, no upsampling blur); drop it")
    return AntiAlias(
        tuple(Downsample(f, m, down_pad, blur_pad) for f, m in zip(filters, modes)),
        tuple(Upsample(u, f, up_pad, blur_pad) for u, f in zip(ups, up_filters)),
        False, conv_pad)


def resolve_downsample(antialias: FilterSpec = "none", mode: str = "conv_blur", pad_type: str = "zero",
                       blur_pad_type: Optional[str] = None) -> Downsample:
    """A :class:`Downsample` from one set of config values (the discriminator's), validated.

    Raises:
        ValueError: for an unknown filter, mode or padding.
    """
    if isinstance(antialias, (list, tuple)):
        raise ValueError(f"the discriminator takes one antialias filter for all its strided convs, not a list "
                         f"({list(antialias)!r})")
    if isinstance(antialias, str) and parse_antialias(antialias)[0]:
        raise ValueError(f"antialias={antialias!r}: adaptive polyphase sampling is for the generators; give the "
                         "discriminator a blur filter (e.g. 'bin5') or 'none'")
    filt = parse_filter(antialias)
    check_choice("antialias_mode", mode, ANTIALIAS_MODES)
    blur_pad = blur_pad_type or default_blur_pad(pad_type)
    pad_mode(pad_type)
    pad_mode(blur_pad)
    if blur_pad_type is not None and not filt.size:  # nothing to pad: it was accepted and ignored
        raise ValueError(f"blur_pad_type={blur_pad_type!r} pads the blurs, and this discriminator has none "
                         f"(antialias {antialias!r}); drop it")
    return Downsample(filt, mode, pad_type, blur_pad)
