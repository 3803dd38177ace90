"""``pix2pix-aa-export``: a trained generator as an ONNX or TorchScript file, verified before it
is written.

    pix2pix-aa-export runs/x/version_0/checkpoints/last.ckpt --format onnx --out netG.onnx

Height and width (and the batch) stay dynamic: the file pads its input inside the graph as
``predict`` does (reflect on the bottom/right to a multiple of 2**num_downs, generate, crop back),
so any height and width of at least 2**num_downs are accepted. Every export is run back, by
onnxruntime for ONNX and by TorchScript itself, on inputs of two sizes, on a one-pixel shift of
the first, off the grid and at the smallest size it accepts, and compared with the eager
generator; a file whose outputs differ by more than ``--atol`` is not written and the command
says why. That check is what keeps a data-dependent model honest:
APS picks its polyphase component from the input's values, which a trace freezes to the phases
of the example input (a traced APS U-Net differed from eager by up to 0.99 on a 1-pixel shift).

ONNX goes through ``torch.onnx.export(dynamo=True)`` (torch.export, then onnxscript): the
TorchScript-based exporter cannot export the blur's depthwise convolution after a
reflect pad of symbolic size. Needs the ``export`` extra: ``pip install -e '.[export]'``.
"""

from __future__ import annotations

import argparse
import copy
import math
import re
import sys
import tempfile
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers.padding import scripted

__all__ = ["ExportError", "PadToMultiple", "export_generator", "verify_inputs", "main"]

FORMATS = ("onnx", "torchscript")
#: What marks this command's files (a TorchScript extra file, ONNX metadata): only those are
#: replaced by a later export to the same --out.
MARK_KEY, MARK = "pix2pix_aa", "pix2pix-aa-export"
#: File name endings that say the format (``--out netG.pt`` is TorchScript without ``--format``).
SUFFIXES = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".ts": "torchscript",
            ".torchscript": "torchscript", ".jit": "torchscript"}


class ExportError(Exception):
    """An export that cannot be made or that does not match the eager model (one line)."""


def verify_inputs(generator: nn.Module, size: Optional[int] = None, seed: int = 0) -> list[torch.Tensor]:
    """Inputs an export must reproduce: (1, C, s, s), (2, C, s, 2s), a one-pixel circular shift
    of the first, and (1, C, s + 1, 2s - 3), off the generator's grid (padded inside the graph),
    with ``s`` a multiple of the generator's ``size_multiple`` m; and (1, C, m, m), the smallest
    size the file accepts, when ``s`` > m (a branch on a map's size, frozen by a trace at ``s``,
    shows there).

    Shape: each (N, in_channels, H, W), values in [-1, 1].
    """
    multiple = int(getattr(generator, "size_multiple", 1))
    s = size or max(multiple, 64 // multiple * multiple)
    channels = int(getattr(generator, "in_channels", 3))
    g = torch.Generator().manual_seed(seed)
    first = torch.rand(1, channels, s, s, generator=g) * 2 - 1
    inputs = [first, torch.rand(2, channels, s, 2 * s, generator=g) * 2 - 1, torch.roll(first, (1, 1), (-2, -1)),
              torch.rand(1, channels, s + 1, max(2 * s - 3, multiple), generator=g) * 2 - 1]
    if s > multiple:
        inputs.append(torch.rand(1, channels, multiple, multiple, generator=g) * 2 - 1)
    return inputs


def _pad_reflect(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Reflect-pad the bottom/right of ``x`` to multiples of ``multiple`` (sides >= ``multiple``)."""
    h, w = x.shape[-2], x.shape[-1]
    return F.pad(x, (0, (multiple - w % multiple) % multiple, 0, (multiple - h % multiple) % multiple),
                 mode="reflect")


def _crop_to(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``y`` cropped to ``x``'s height and width (top-left)."""
    return y[..., :x.shape[-2], :x.shape[-1]]


class PadToMultiple(nn.Module):
    """``generator`` with ``predict``'s padding inside: the input reflect-padded on the
    bottom/right to multiples of the generator's ``size_multiple``, generated, and cropped back,
    so an exported file takes any height and width of at least ``size_multiple`` (a 256x187
    image used to fail inside onnxruntime with a Concat error). Unconditional reflection, not
    predict's replicate fallback for sides below the multiple: an exported graph has no branch
    on the input's size.

    Shape: (N, C_in, H, W) -> (N, C_out, H, W), H, W >= ``size_multiple``.
    """

    def __init__(self, generator: nn.Module) -> None:
        super().__init__()
        self.generator = generator
        self.size_multiple = int(getattr(generator, "size_multiple", 1))
        self.in_channels = int(getattr(generator, "in_channels", 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pad, crop = (scripted(_pad_reflect), scripted(_crop_to)) if torch.jit.is_tracing() else (_pad_reflect,
                                                                                                   _crop_to)
        return crop(self.generator(pad(x, self.size_multiple)), x)


def _max_difference(run, generator: nn.Module, inputs: Sequence[torch.Tensor]) -> float:
    worst = 0.0
    with torch.inference_mode():
        for x in inputs:
            expected = generator(x)
            got = torch.as_tensor(run(x))
            if got.shape != expected.shape:
                raise ExportError(f"exported model returns shape {tuple(got.shape)} for input {tuple(x.shape)}, "
                                  f"eager returns {tuple(expected.shape)}")
            worst = max(worst, float((got - expected).abs().max()))
    return worst


def _export_onnx(generator: nn.Module, out: Path) -> None:
    try:
        import onnxscript  # noqa: F401  (torch.onnx's dynamo exporter needs it)
    except ImportError:
        raise ExportError("ONNX export needs onnx, onnxscript and onnxruntime: pip install -e '.[export]'") from None
    multiple = int(getattr(generator, "size_multiple", 1))
    # torch.export specialises dimensions of size 0 and 1, and the pads of an example on the grid
    # would be 0: trace with a batch of 2 and a size off the grid.
    example = torch.zeros(2, int(getattr(generator, "in_channels", 3)), 2 * multiple + 1, 2 * multiple + 3)
    dim = torch.export.Dim
    # Any H and W from one multiple up (the graph pads them to the grid, PadToMultiple).
    shapes = ({0: dim("batch", min=1, max=1024), 2: dim("height", min=max(multiple, 2), max=256 * multiple),
               3: dim("width", min=max(multiple, 2), max=256 * multiple)},)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.onnx.export(generator, (example,), dynamo=True, dynamic_shapes=shapes,
                                        input_names=["input"], output_names=["output"], verbose=False)
        except Exception as err:  # torch.export's reasons are long; the first line says what
            first = re.sub(r"\x1b\[[0-9;]*m", "", " ".join(str(err).split()))[:200]
            raise ExportError(f"torch.onnx.export failed: {type(err).__name__}: {first}") from err
        program.save(str(out))
    import onnx

    model = onnx.load(str(out))
    entry = model.metadata_props.add()
    entry.key, entry.value = MARK_KEY, MARK
    onnx.save(model, str(out))


def _onnx_runner(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise ExportError("ONNX export needs onnxruntime to verify the file: pip install -e '.[export]'") from None
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x.numpy()})[0]


def export_generator(generator: nn.Module, out: str | Path, fmt: str = "onnx", atol: float = 1e-4,
                     inputs: Optional[Sequence[torch.Tensor]] = None) -> float:
    """Export ``generator`` (eval mode, CPU, float32) to ``out`` and verify it.

    The file takes any height and width of at least the generator's ``size_multiple``: it pads
    inside the graph as ``predict`` does (:class:`PadToMultiple`), and is compared with that
    padded eager generator.

    Args:
        generator: image -> image network, e.g. :class:`~pix2pix_aa.networks.UNetGenerator`.
        out: file to write (written only if the verification passes; atomically replaced).
        fmt: ``onnx`` or ``torchscript``.
        atol: largest allowed |exported - eager| over :func:`verify_inputs` (outputs in [-1, 1]).
        inputs: inputs to verify on instead of :func:`verify_inputs`.

    Returns:
        The largest absolute difference measured.

    Raises:
        ExportError: the format is unknown, the export fails, or the outputs differ by more than
            ``atol`` (one line, naming the difference and, for APS, why).
    """
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    # A copy: the caller's module keeps its device, dtype, mode and gradients. Without gradients:
    # a TorchScript file keeps requires_grad, and its outputs then refuse .numpy().
    generator = copy.deepcopy(generator).cpu().float().eval().requires_grad_(False)
    if getattr(generator, "pad_input", False):
        # The pad-and-crop branches on each input's size, which an exported graph cannot follow
        # (the file "verified" on multiples, then failed on the sizes it claimed to pad). Export
        # the network itself inside PadToMultiple, whose padding has no branch.
        generator.pad_input = False
    checks = list(inputs) if inputs is not None else verify_inputs(generator)
    why = ""
    if getattr(generator, "is_aps", False):
        why = (" APS chooses its sampling phase from the input's values, which this format cannot follow (a trace "
               "freezes the example's phases); evaluate APS models in PyTorch")
    generator = PadToMultiple(generator).eval()  # exported and compared with: predict's padding inside
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        staged = Path(tmp) / out.name
        if fmt == "onnx":
            try:
                _export_onnx(generator, staged)
            except ExportError as err:
                raise ExportError(f"{err}; not written.{why}") from err
            run = _onnx_runner(staged)
        else:
            with warnings.catch_warnings(), torch.inference_mode():
                warnings.simplefilter("ignore")  # the tracer's warnings; the check below decides
                traced = torch.jit.trace(generator, checks[0], check_trace=False)
            traced.save(str(staged), _extra_files={MARK_KEY: MARK})
            with warnings.catch_warnings():  # torch deprecates TorchScript; the file is still what was asked
                warnings.filterwarnings("ignore", message=r".*torch\.jit\.load.*deprecated", category=FutureWarning)
                loaded = torch.jit.load(str(staged))
            run = loaded
        worst = _max_difference(run, generator, checks)
        if worst > atol:
            raise ExportError(f"the {fmt} export differs from the eager generator by up to {worst:.3g} (> atol "
                              f"{atol:g}) on inputs of shapes {[tuple(x.shape) for x in checks]}; not written.{why}")
        staged.replace(out)
    return worst


def _is_export(path: Path, fmt: str) -> bool:
    """Whether the existing file ``path`` is an earlier export of this command in format ``fmt``,
    which a new export may replace: it carries :data:`MARK` (a TorchScript archive's extra file, an
    ONNX model's metadata). A user's own model file of that format does not."""
    if fmt == "torchscript":
        try:
            with zipfile.ZipFile(path) as archive:
                return any(name.endswith(f"/extra/{MARK_KEY}") for name in archive.namelist())
        except (OSError, zipfile.BadZipFile):
            return False
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not an ONNX model (or onnx missing): not ours to replace
        return False
    return any(p.key == MARK_KEY and p.value == MARK for p in model.metadata_props)


def _options_problem(args: argparse.Namespace) -> Optional[str]:
    """One line on options that contradict each other or cannot hold, before anything loads."""
    if args.out.suffix.lower() == ".ckpt":  # a later train.py or evaluate.py would take it for a checkpoint
        return f"--out {args.out}: .ckpt names training checkpoints; name the export .onnx or .pt"
    by_name = SUFFIXES.get(args.out.suffix.lower())
    if args.format is None:
        args.format = by_name or "onnx"
    elif by_name is not None and by_name != args.format:
        return (f"--format {args.format} and --out {args.out}: the name says {by_name}; end the name as the format "
                "(.onnx for onnx, .pt for torchscript) or drop --format")
    if not math.isfinite(args.atol) or args.atol < 0:
        return f"--atol must be a finite number >= 0, got {args.atol:g}"
    if args.size is not None and args.size < 1:
        return f"--size must be >= 1 (pixels), got {args.size}"
    if args.out.is_file() and not _is_export(args.out, args.format):
        return (f"--out {args.out} exists and is not an earlier {'ONNX' if args.format == 'onnx' else 'TorchScript'} "
                "export of this command (an export would replace it); pass another --out, or move it")
    return None


def main(argv: Optional[list[str]] = None) -> int:
    """``pix2pix-aa-export CKPT --format onnx|torchscript --out FILE``; exit 2 on any error."""
    from pix2pix_aa.console import output_path_problem
    from pix2pix_aa.evaluation.checkpoints import CheckpointError, find_checkpoints, load_generator

    p = argparse.ArgumentParser(prog="pix2pix-aa-export", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="a train.py checkpoint (.ckpt) or a run folder (its last.ckpt, as evaluate.py)")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="default: from --out's name (.onnx; .pt, .pth, .ts: torchscript), else onnx")
    p.add_argument("--out", type=Path, required=True, help="file to write (e.g. netG.onnx, netG.pt)")
    p.add_argument("--atol", type=float, default=1e-4, help="largest allowed |export - eager| (default 1e-4)")
    p.add_argument("--size", type=int, default=None, help="side of the square verification input")
    p.add_argument("--trust-checkpoint", action="store_true", help="allow full unpickling of the checkpoint")
    args = p.parse_args(argv)
    problem = output_path_problem(args.out, "--out", file=True) or _options_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        found = find_checkpoints([args.checkpoint])
        if len(found) > 1:
            shown = ", ".join(map(str, found[:3])) + (" ..." if len(found) > 3 else "")
            raise ExportError(f"{args.checkpoint} holds {len(found)} runs' checkpoints ({shown}): name one run "
                              "folder or .ckpt file")
        loaded = load_generator(found[0], trust=args.trust_checkpoint)
        generator = loaded.generator
        multiple = int(getattr(generator, "size_multiple", 1))
        if args.size is not None and args.size % multiple:
            raise ExportError(f"--size {args.size} is not a multiple of the generator's size multiple {multiple}")
        checks = verify_inputs(generator, args.size)
        worst = export_generator(generator, args.out, args.format, args.atol, inputs=checks)
    except (CheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {args.out} from {found[0]} ({args.format}, dynamic batch, height and width: any size from "
          f"{multiple} px, padded inside to multiples of {multiple} and cropped back, as predict does; max |export - "
          f"eager| = {worst:.2g} on {len(checks)} verification inputs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
