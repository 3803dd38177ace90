"""Weights trained with the reference pix2pix / CycleGAN code, loaded into this project's networks.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix) saves each network as a bare state_dict,
``<epoch>_net_G.pth`` / ``latest_net_G.pth`` (and ``..._net_D.pth``), without its options. The
architecture is read back from the keys and shapes:

* ``unet_256`` / ``unet_128`` (``UnetGenerator``, recursive ``UnetSkipConnectionBlock``\\ s):
  keys ``model.model.0.weight``, ``model.model.1.model.1.weight``, ...; the number of nested
  blocks is ``num_downs``; ngf and input_nc from the first conv (ngf, input_nc, 4, 4), output_nc
  from the outermost transposed conv.
* ``resnet_9blocks`` / ``resnet_6blocks`` (``ResnetGenerator``): keys ``model.1.weight`` (the 7x7
  stem), ``model.<10 + j>.conv_block.<i>.weight`` (residual block j), ...; with dropout the
  second conv of a block is ``conv_block.6`` instead of ``conv_block.5``.
* ``basic`` / ``n_layers`` (``NLayerDiscriminator``, ``model.<i>``) and ``pixel``
  (``PixelDiscriminator``, ``net.<i>``) discriminators, for fine-tuning from a reference pair.

Norm: ``batch`` where the norm layers have ``weight`` and ``running_mean``; ``instance`` where
they have no tensors and the convs have biases (the reference's instance norm has no affine
parameters and no running statistics; files written while it tracked statistics hold
``running_mean`` / ``running_var`` only, which the reference itself drops on load, and so do
we); ``none`` where neither (the reference's convs then have no bias; ours have one, set to 0,
which computes the same function).

Dropout has no parameters. In the ResNet it moves the keys, so it is read from them; in the
U-Net it does not, so it is read from the ``train_opt.txt`` / ``opt.txt`` the reference writes
beside its checkpoints (``no_dropout``) when there is one, else assumed on (``--no_dropout``
unset: the reference pix2pix default). It only matters for training: evaluation and prediction
run in eval mode, where dropout is off.

The mapping pairs each reference layer with the module of ours that computes it (found by type
inside each level, not by index), so the same file loads into an anti-aliased generator
(``antialias``: anti-aliasing adds no parameters), which is how fine-tuning into anti-aliasing
starts.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import torch
from torch import nn

__all__ = [
    "REFERENCE_GENERATORS",
    "ReferenceLayout",
    "detect_reference_layout",
    "is_reference_state_dict",
    "load_reference_generator",
    "map_reference_state_dict",
]

#: ``--netG`` values of the reference this project builds (any unet_<2**n>, resnet_<n>blocks too).
REFERENCE_GENERATORS = ("unet_256", "unet_128", "resnet_9blocks", "resnet_6blocks")
_NORMS = ("batch", "instance", "none")
_NORM_TYPES = (nn.BatchNorm2d, nn.InstanceNorm2d)

_EXPECTED = ("expected a reference pix2pix state_dict: unet_256/unet_128 ('model.model.0.weight', "
             "'model.model.1.model.1.weight', ...) or resnet_9blocks/resnet_6blocks ('model.1.weight', "
             "'model.10.conv_block.1.weight', ...)")


@dataclass(frozen=True)
class ReferenceLayout:
    """A reference network's architecture, as read from its state_dict.

    Attributes:
        kind: ``unet`` | ``resnet`` (generators), ``nlayers`` | ``pixel`` (discriminators).
        depth: unet: num_downs; resnet: residual blocks; nlayers: n_layers; pixel: 1.
        width: ngf (ndf for discriminators).
        input_nc / output_nc: channels (discriminators: output_nc 1).
        norm: ``batch`` | ``instance`` | ``none``.
        dropout: resnet: from the keys; unet: None (not in the keys).
        stale_stats: instance-norm running statistics in the file (dropped, as the reference does).
    """

    kind: str
    depth: int
    width: int
    input_nc: int
    output_nc: int
    norm: str
    dropout: Optional[bool] = None
    stale_stats: bool = False

    @property
    def name(self) -> str:
        """The reference's ``--netG`` / ``--netD`` name: ``unet_256``, ``resnet_9blocks``, ``basic`` ..."""
        if self.kind == "unet":
            return f"unet_{2 ** self.depth}"
        if self.kind == "resnet":
            return f"resnet_{self.depth}blocks"
        if self.kind == "nlayers":
            return "basic" if self.depth == 3 else f"n_layers (n_layers_D={self.depth})"
        return "pixel"

    def describe(self) -> str:
        width = "ndf" if self.kind in ("nlayers", "pixel") else "ngf"
        return (f"{self.name}, {width}={self.width}, input_nc={self.input_nc}, output_nc={self.output_nc}, "
                f"norm={self.norm}")


# -- reading the layout --------------------------------------------------------------------------
def _strip_module_prefix(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys without the ``module.`` of a DataParallel-wrapped save."""
    if state and all(k.startswith("module.") for k in state):
        return {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def _found(state: Mapping[str, Any]) -> str:
    keys = list(state)
    shown = ", ".join(repr(k) for k in keys[:3])
    return f"found {len(keys)} entries ({shown}{', ...' if len(keys) > 3 else ''})"


def is_reference_state_dict(state: Mapping[str, Any]) -> bool:
    """True when ``state`` has the key layout of a reference generator or discriminator."""
    try:
        detect_reference_layout(state)
    except ValueError:
        return False
    return True


def _unet_prefixes(depth: int) -> list[str]:
    """Module prefix of each ``UnetSkipConnectionBlock``'s Sequential, outermost first."""
    out = ["model.model."]
    for level in range(1, depth):
        out.append(out[-1] + ("1" if level == 1 else "3") + ".model.")
    return out


def _norm_of(state: Mapping[str, torch.Tensor], norm_prefix: str, conv_prefix: str) -> tuple[str, bool]:
    """(norm, stale instance stats) from the tensors of one norm layer and its conv."""
    if f"{norm_prefix}weight" in state and f"{norm_prefix}running_mean" in state:
        return "batch", False
    stale = f"{norm_prefix}running_mean" in state
    if f"{conv_prefix}bias" in state:
        return "instance", stale
    return ("instance" if stale else "none"), stale


def detect_reference_layout(state: Mapping[str, Any]) -> ReferenceLayout:
    """The architecture of a reference state_dict, from its keys and shapes.

    Raises:
        ValueError: one line saying what was found and what was expected.
    """
    if not isinstance(state, Mapping) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"not a state_dict of tensors; {_EXPECTED}")
    state = _strip_module_prefix(state)

    def shape(key: str) -> Optional[tuple[int, ...]]:
        v = state.get(key)
        return tuple(v.shape) if v is not None else None

    first = shape("model.model.0.weight")
    if first is not None and len(first) == 4:  # UnetGenerator
        prefixes = _unet_prefixes(64)
        depth = 1
        while depth < len(prefixes) and any(k.startswith(prefixes[depth]) for k in state):
            depth += 1
        up = shape("model.model.3.weight")
        if depth < 2 or up is None or len(up) != 4:
            raise ValueError(f"{_found(state)}: a U-Net whose outermost transposed conv 'model.model.3.weight' is "
                             f"missing; {_EXPECTED}")
        norm, stale = _norm_of(state, prefixes[1] + "2.", prefixes[1] + "1.")
        return ReferenceLayout("unet", depth, first[0], first[1], up[1], norm, None, stale)
    stem = shape("model.1.weight")
    if stem is not None and len(stem) == 4 and stem[-1] == 7:  # ResnetGenerator
        blocks = sorted({int(m.group(1)) for k in state for m in [re.match(r"model\.(\d+)\.conv_block\.", k)] if m})
        n = len(blocks)
        if blocks != list(range(10, 10 + n)):
            raise ValueError(f"{_found(state)}: a ResNet with residual blocks at model.{blocks} (expected model.10 "
                             f"onwards, consecutive); {_EXPECTED}")
        # without dropout the second conv is conv_block.5 (and .6 its norm); with dropout .6 (and .7)
        second = shape("model.10.conv_block.5.weight")
        dropout = n > 0 and (second is None or len(second) != 4)
        head = shape(f"model.{17 + n}.weight")
        if head is None or len(head) != 4:
            raise ValueError(f"{_found(state)}: a ResNet without its output conv 'model.{17 + n}.weight'; {_EXPECTED}")
        norm, stale = _norm_of(state, "model.2.", "model.1.")
        return ReferenceLayout("resnet", n, stem[0], stem[1], head[0], norm, dropout, stale)
    d0 = shape("model.0.weight")
    if d0 is not None and len(d0) == 4 and d0[-1] == 4:  # NLayerDiscriminator
        convs = sorted(int(m.group(1)) for k, v in state.items()
                       for m in [re.fullmatch(r"model\.(\d+)\.weight", k)] if m and v.dim() == 4)
        n_layers = len(convs) - 2
        if n_layers < 1 or convs != [0] + [3 * k - 1 for k in range(1, n_layers + 1)] + [3 * n_layers + 2]:
            raise ValueError(f"{_found(state)}: convs at model.{convs}, not an NLayerDiscriminator's; {_EXPECTED}")
        norm, stale = _norm_of(state, "model.3.", "model.2.") if n_layers > 1 else \
            _norm_of(state, f"model.{3 * n_layers}.", f"model.{3 * n_layers - 1}.")
        return ReferenceLayout("nlayers", n_layers, d0[0], d0[1], 1, norm, None, stale)
    p0 = shape("net.0.weight")
    if p0 is not None and len(p0) == 4 and p0[-1] == 1:  # PixelDiscriminator
        norm, stale = _norm_of(state, "net.3.", "net.2.")
        return ReferenceLayout("pixel", 1, p0[0], p0[1], 1, norm, None, stale)
    hint = ""
    if any(k.startswith(("encoder.", "decoder.", "stem.")) for k in state):
        hint = " (this looks like a pix2pix_aa state_dict: evaluate or load its train.py .ckpt instead)"
    raise ValueError(f"{_found(state)}{hint}; {_EXPECTED}")


# -- pairing reference layers with our modules ---------------------------------------------------
def _first(level: nn.Module, types: tuple[type, ...], exclude: tuple[type, ...] = ()) -> Optional[nn.Module]:
    for m in level.modules():
        if isinstance(m, types) and not isinstance(m, exclude):
            return m
    return None


def _child_norm(level: nn.Module) -> Optional[nn.Module]:
    return next((m for m in level.children() if isinstance(m, _NORM_TYPES)), None)


Pair = tuple[str, Optional[nn.Module], str]  # (reference prefix with dot, our module or None, what)


def _unet_pairs(layout: ReferenceLayout, net: nn.Module) -> list[Pair]:
    n = layout.depth
    if getattr(net, "num_downs", None) != n:
        raise ValueError(f"has num_downs={getattr(net, 'num_downs', None)}, the file's U-Net {n}")
    if getattr(net, "fullres", None) is not None:
        raise ValueError("has a full-resolution path (fullres_channels > 0), which the reference U-Net has no "
                         "weights for")
    r = _unet_prefixes(n)
    pairs: list[Pair] = []
    for i in range(n):
        enc, dec = net.encoder[i], net.decoder[i]
        down_conv = f"{r[i]}0." if i == 0 else f"{r[i]}1."
        pairs.append((down_conv, _first(enc, (nn.Conv2d,)), f"encoder level {i + 1} conv"))
        if 0 < i < n - 1:
            pairs.append((f"{r[i]}2.", _first(enc, _NORM_TYPES), f"encoder level {i + 1} norm"))
        up = _first(dec, (nn.ConvTranspose2d,))
        if up is None:
            raise ValueError("upsamples by resize + conv (upsample != 'transpose'); reference weights need "
                             "upsample='transpose'")
        up_conv, up_norm = ((f"{r[i]}3.", None) if i == 0 else
                            (f"{r[i]}3.", f"{r[i]}4.") if i == n - 1 else (f"{r[i]}5.", f"{r[i]}6."))
        pairs.append((up_conv, up, f"decoder level {i + 1} transposed conv"))
        if up_norm is not None:
            pairs.append((up_norm, _child_norm(dec), f"decoder level {i + 1} norm"))
    return pairs


def _resnet_pairs(layout: ReferenceLayout, net: nn.Module) -> list[Pair]:
    n = layout.depth
    if getattr(net, "n_blocks", None) != n:
        raise ValueError(f"has n_blocks={getattr(net, 'n_blocks', None)}, the file's ResNet {n}")
    pairs: list[Pair] = [("model.1.", _first(net.stem, (nn.Conv2d,)), "stem conv"),
                         ("model.2.", _first(net.stem, _NORM_TYPES), "stem norm")]
    for i, (conv, norm) in enumerate([(4, 5), (7, 8)]):
        pairs += [(f"model.{conv}.", _first(net.encoder[i], (nn.Conv2d,)), f"downsampling {i + 1} conv"),
                  (f"model.{norm}.", _first(net.encoder[i], _NORM_TYPES), f"downsampling {i + 1} norm")]
    second = 6 if layout.dropout else 5
    for j, block in enumerate(net.blocks):
        base, ours = f"model.{10 + j}.conv_block.", block.conv_block
        pairs += [(f"{base}1.", ours[0], f"block {j + 1} conv 1"), (f"{base}2.", _first(ours[1], _NORM_TYPES),
                                                                    f"block {j + 1} norm 1"),
                  (f"{base}{second}.", ours[4], f"block {j + 1} conv 2"),
                  (f"{base}{second + 1}.", _first(ours[5], _NORM_TYPES), f"block {j + 1} norm 2")]
    for k, i in enumerate((1, 0)):  # the reference's first upsampling is our decoder[1]
        conv, norm = 10 + n + 3 * k, 11 + n + 3 * k
        up = _first(net.decoder[i], (nn.ConvTranspose2d,))
        if up is None:
            raise ValueError("upsamples by resize + conv (upsample != 'transpose'); reference weights need "
                             "upsample='transpose'")
        pairs += [(f"model.{conv}.", up, f"upsampling {k + 1} transposed conv"),
                  (f"model.{norm}.", _child_norm(net.decoder[i]), f"upsampling {k + 1} norm")]
    pairs.append((f"model.{17 + n}.", _first(net.head, (nn.Conv2d,)), "output conv"))
    return pairs


def _nlayers_pairs(layout: ReferenceLayout, net: nn.Module) -> list[Pair]:
    n = layout.depth
    model = getattr(net, "model", None)
    if not isinstance(model, nn.Sequential) or len(model) != n + 4:
        raise ValueError(f"does not have the file's n_layers={n} (PatchGANDiscriminator(n_layers={n}) does)")
    pairs: list[Pair] = [("model.0.", _first(model[0], (nn.Conv2d,)), "conv 1")]
    for k in range(1, n):
        pairs += [(f"model.{3 * k - 1}.", _first(model[k], (nn.Conv2d,)), f"conv {k + 1}"),
                  (f"model.{3 * k}.", _first(model[k], _NORM_TYPES), f"norm {k + 1}")]
    pairs += [(f"model.{3 * n - 1}.", model[n], f"conv {n + 1}"),
              (f"model.{3 * n}.", model[n + 1] if isinstance(model[n + 1], _NORM_TYPES) else None, f"norm {n + 1}"),
              (f"model.{3 * n + 2}.", model[n + 3], "output conv")]
    return pairs


def _pixel_pairs(layout: ReferenceLayout, net: nn.Module) -> list[Pair]:
    model = net.model
    return [("net.0.", model[0], "conv 1"), ("net.2.", model[2], "conv 2"),
            ("net.3.", model[3] if isinstance(model[3], _NORM_TYPES) else None, "norm"),
            ("net.5.", model[5], "output conv")]


def _expected_class(kind: str) -> type:
    from pix2pix_aa.networks import PatchGANDiscriminator, PixelDiscriminator, ResNetGenerator, UNetGenerator

    return {"unet": UNetGenerator, "resnet": ResNetGenerator, "nlayers": PatchGANDiscriminator,
            "pixel": PixelDiscriminator}[kind]


def map_reference_state_dict(state: Mapping[str, torch.Tensor], net: nn.Module, what: str = "the network",
                             layout: Optional[ReferenceLayout] = None) -> dict[str, torch.Tensor]:
    """``net``'s state_dict holding the weights of a reference state_dict, every tensor checked.

    Each reference layer is paired with the module of ``net`` that computes it (by type within
    each level, so anti-aliased variants with extra blur layers pair the same way). Missing
    conv biases of a norm-``none`` reference become zeros (the same function); instance-norm
    running statistics of old reference files are dropped (as the reference's own loader does);
    ``num_batches_tracked`` is optional. Buffers of ours that hold no learned state (blur
    filters) keep their values.

    Args:
        state: the reference state_dict (``module.`` prefixes are stripped).
        net: a UNetGenerator / ResNetGenerator / PatchGANDiscriminator / PixelDiscriminator of the
            file's architecture (any anti-aliasing).
        what: how errors name ``net`` (``model.generator``).
        layout: the file's layout when already read (default: read from ``state``).

    Returns:
        A dict for ``net.load_state_dict(..., strict=True)``.

    Raises:
        ValueError: one line naming the first thing that does not fit.
    """
    state = _strip_module_prefix(state)
    layout = layout or detect_reference_layout(state)
    cls = _expected_class(layout.kind)
    if not isinstance(net, cls):
        raise ValueError(f"the file is a reference {layout.name} ({layout.describe()}); {what} is a "
                         f"{type(net).__name__}, not a {cls.__name__}")
    builder = {"unet": _unet_pairs, "resnet": _resnet_pairs, "nlayers": _nlayers_pairs, "pixel": _pixel_pairs}
    try:
        pairs = builder[layout.kind](layout, net)
    except ValueError as e:
        raise ValueError(f"{what} {e} ({layout.describe()})") from None
    names = {id(m): name for name, m in net.named_modules()}
    own = net.state_dict()
    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for prefix, module, label in pairs:
        if module is None:  # our norm is Identity (norm none) or absent
            extra = [k for k in state if k.startswith(prefix)]
            if extra:
                raise ValueError(f"the file has a {label} ({extra[0]!r}) that {what} has no layer for: its norm "
                                 f"must be the file's ({layout.describe()})")
            continue
        name = names[id(module)]
        for key, mine in module.state_dict().items():
            ref_key, our_key = prefix + key, f"{name}.{key}"
            if ref_key in state:
                value = state[ref_key]
                if tuple(value.shape) != tuple(mine.shape):
                    raise ValueError(f"{ref_key!r} ({label}) has shape {tuple(value.shape)}, {what}'s {our_key!r} "
                                     f"{tuple(mine.shape)}: the file is {layout.describe()}")
                out[our_key] = value
                used.add(ref_key)
            elif key == "bias" and layout.norm == "none":
                out[our_key] = torch.zeros_like(mine)  # the reference's norm-none convs have no bias
            elif key == "num_batches_tracked":
                out[our_key] = mine.clone()
            else:
                raise ValueError(f"the file has no {ref_key!r} ({label}) for {what}'s {our_key!r}: the file is "
                                 f"{layout.describe()}; {what} must be built with the same norm")
        if isinstance(module, nn.InstanceNorm2d):  # no state of ours: old files' statistics are dropped
            used.update(k for k in state if k.startswith(prefix) and
                        k[len(prefix):] in ("running_mean", "running_var", "num_batches_tracked"))
    left = [k for k in state if k not in used]
    if left:
        raise ValueError(f"{len(left)} tensors of the file have no place in {what} (e.g. {left[0]!r}): the file is "
                         f"{layout.describe()}; {what} must be built with the same options")
    params = {name for name, _ in net.named_parameters()}
    unmapped = [k for k in own if k not in out and k in params]
    if unmapped:
        raise ValueError(f"{what}'s {unmapped[0]!r} has no counterpart in the file ({layout.describe()})")
    for k, v in own.items():  # non-learned buffers (blur filters, if persistent) keep their values
        out.setdefault(k, v)
    return out


# -- building a generator from a file ------------------------------------------------------------
def _read_opt_file(folder: Path) -> dict[str, str]:
    """``key: value`` lines of the ``train_opt.txt`` / ``opt.txt`` the reference writes beside its
    checkpoints (``\\t[default: ...]`` comments dropped); {} when there is none."""
    for name in ("train_opt.txt", "opt.txt"):
        path = folder / name
        if path.is_file():
            out = {}
            for line in path.read_text(errors="replace").splitlines():
                key, sep, value = line.partition(":")
                if sep and key.strip() and " " not in key.strip():
                    out[key.strip()] = value.split("\t[")[0].strip()
            return out
    return {}


def _parse_netg(netG: str) -> tuple[str, int]:
    m = re.fullmatch(r"unet_(\d+)", netG)
    if m and int(m.group(1)) >= 32 and int(m.group(1)) & (int(m.group(1)) - 1) == 0:
        return "unet", int(m.group(1)).bit_length() - 1
    m = re.fullmatch(r"resnet_(\d+)blocks", netG)
    if m:
        return "resnet", int(m.group(1))
    raise ValueError(f"unknown --netG {netG!r}; valid: {', '.join(REFERENCE_GENERATORS)} (or unet_<2**n>, "
                     "resnet_<n>blocks)")


def _read_reference_generator(path: Path) -> tuple[Any, ReferenceLayout]:
    """(the state_dict, its layout) of a reference generator file.

    Raises:
        ValueError: one line naming the file: unreadable, not a state_dict, a train.py checkpoint,
            an unknown layout or a discriminator.
    """
    from pix2pix_aa.checkpoints import CheckpointError, read_checkpoint

    try:
        state = read_checkpoint(path, lightning=False)
    except CheckpointError as e:
        if "no 'state_dict'" in str(e):  # read, but not a dict
            raise ValueError(f"{path}: not a state_dict of tensors; {_EXPECTED}") from None
        raise ValueError(str(e)) from None
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        raise ValueError(f"{path}: a train.py checkpoint, not a reference state_dict; evaluate it as a .ckpt")
    try:
        found = detect_reference_layout(state)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    if found.kind not in ("unet", "resnet"):
        raise ValueError(f"{path}: a reference {found.name} discriminator, not a generator (latest_net_G.pth); "
                         "discriminators load with --model.discriminator_weights")
    return state, found


def _check_given_options(path: Path, found: ReferenceLayout, options: dict[str, Any]) -> dict[str, Any]:
    """The reference options given (not None), each checked against what the file holds.

    Raises:
        ValueError: an unknown ``netG`` or ``norm``, or a given value the file does not hold.
    """
    given = {name: v for name, v in options.items() if v is not None}
    if options["netG"] is not None:
        _parse_netg(options["netG"])
    norm = options["norm"]
    if norm is not None and norm not in _NORMS:
        raise ValueError(f"unknown --norm {norm!r}; valid: {', '.join(_NORMS)}")
    actual = {"netG": found.name, "norm": found.norm, "ngf": found.width, "input_nc": found.input_nc,
              "output_nc": found.output_nc}
    wrong = [f"--{k.replace('_', '-')} {v}" for k, v in given.items() if v != actual[k]]
    if wrong:
        raise ValueError(f"{path}: {', '.join(wrong)} given, but the file holds a reference {found.describe()}")
    return given


def _reference_dropout(path: Path, layout: ReferenceLayout, dropout: Optional[bool]) -> tuple[bool, str]:
    """(dropout on, where that came from: ``keys``, ``given``, ``train_opt.txt`` or ``assumed``).
    A ResNet's blocks show it in their keys; a U-Net's do not (dropout has no weights).

    Raises:
        ValueError: a ResNet whose keys contradict the ``dropout`` given.
    """
    if layout.kind == "resnet":
        use_dropout = bool(layout.dropout)
        if dropout is not None and dropout != use_dropout:
            raise ValueError(f"{path}: dropout={dropout} given, but the file's residual blocks are "
                             f"{'with' if use_dropout else 'without'} dropout (conv_block indices)")
        return use_dropout, "keys"
    if dropout is not None:
        return bool(dropout), "given"
    opt = _read_opt_file(path.parent)
    if "no_dropout" in opt:
        return opt["no_dropout"].lower() not in ("true", "1"), "train_opt.txt"
    return True, "assumed"


def load_reference_generator(path: Union[str, Path], netG: Optional[str] = None, norm: Optional[str] = None,
                             ngf: Optional[int] = None, input_nc: Optional[int] = None,
                             output_nc: Optional[int] = None, antialias: Any = "none",
                             dropout: Optional[bool] = None,
                             options: Optional[Mapping[str, Any]] = None) -> tuple[nn.Module, dict]:
    """Build the generator a reference pix2pix / CycleGAN file (``latest_net_G.pth``) holds and
    load its weights exactly.

    Source of the layout: junyanz/pytorch-CycleGAN-and-pix2pix ``models/networks.py``
    (``define_G``, ``UnetGenerator``, ``ResnetGenerator``); read from the keys and shapes (see
    the module docstring). The option arguments are named as the reference's; a given value is
    checked against the file (weights cannot load into another architecture), so a file that does
    not match it raises.

    Args:
        path: a state_dict file written by the reference (``torch.save(net.state_dict())``).
        netG: ``unet_256`` | ``unet_128`` | ``resnet_9blocks`` | ``resnet_6blocks`` (default: read).
        norm: ``batch`` | ``instance`` | ``none`` (default: read).
        ngf, input_nc, output_nc: default: read from the shapes.
        antialias: the generator's ``antialias`` (default ``none``: the reference network; a
            filter or APS variant loads the same weights into an anti-aliased generator).
        dropout: U-Net: True / False (default: ``no_dropout`` of the ``train_opt.txt`` beside the
            file, else True as the reference's pix2pix default); ResNet: read from the keys.
            Dropout is off in eval mode, so it only matters for training.
        options: further keyword arguments of the generator (``upsample_antialias``, ``pad_type``,
            ``antialias_mode``, ``pad_input`` ...).

    Returns:
        ``(generator, description)``: the generator in eval mode, and a dict with ``netG``,
        ``norm``, ``ngf``, ``input_nc``, ``output_nc``, ``dropout``, ``dropout_from`` (``keys``,
        ``train_opt.txt``, ``assumed`` or ``given``), ``given`` (the overridden names),
        ``class_path`` and ``init_args`` (what rebuilds the generator), ``notes`` (what was
        dropped or filled) and ``path``.

    Raises:
        ValueError: one line, naming the file, for a file that is not a reference generator or
            does not fit the options.
    """
    from pix2pix_aa.networks import ResNetGenerator, UNetGenerator

    path = Path(path)
    state, layout = _read_reference_generator(path)
    given = _check_given_options(path, layout, {"netG": netG, "norm": norm, "ngf": ngf, "input_nc": input_nc,
                                                "output_nc": output_nc})
    kind, depth = layout.kind, layout.depth
    use_dropout, dropout_from = _reference_dropout(path, layout, dropout)
    init_args: dict[str, Any] = {"in_channels": layout.input_nc, "out_channels": layout.output_nc,
                                 "ngf": layout.width, "norm": layout.norm, "dropout": 0.5 if use_dropout else 0.0,
                                 "antialias": antialias, **dict(options or {})}
    if kind == "unet":
        cls, init_args = UNetGenerator, {"num_downs": depth, **init_args}
    else:
        cls, init_args = ResNetGenerator, {"n_blocks": depth, **init_args}
    try:
        generator = cls(**init_args)
        mapped = map_reference_state_dict(state, generator, "the generator", layout)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{path}: {e}") from None
    generator.load_state_dict(mapped)
    notes = []
    if layout.stale_stats:
        notes.append("instance-norm running statistics in the file dropped (the reference ignores them too)")
    if layout.norm == "none":
        notes.append("norm none: the reference's bias-free convs get zero biases")
    description = {"netG": layout.name, "norm": layout.norm, "ngf": layout.width, "input_nc": layout.input_nc,
                   "output_nc": layout.output_nc, "dropout": use_dropout, "dropout_from": dropout_from,
                   "given": sorted(given), "class_path": f"{cls.__module__.rsplit('.', 1)[0]}.{cls.__name__}",
                   "init_args": init_args, "notes": notes, "path": str(path)}
    return generator.eval(), description
