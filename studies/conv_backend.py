"""Training on CPU: which convolution backend for which layer (oneDNN vs PyTorch's native path).

    .venv/bin/python -m studies.conv_backend --setting 256b1       # unet_256 + PatchGAN, batch 1
    .venv/bin/python -m studies.conv_backend --setting 128b4       # unet_128, ngf = ndf = 32, batch 4
    .venv/bin/python -m studies.conv_backend --setting 256b1 --layers   # + every conv of G and D alone
    .venv/bin/python -m studies.conv_backend --setting 128b4 --thresholds --fpmath bf16   # oneDNN in bf16 inside

PyTorch runs every float32 CPU convolution with a 4x4 kernel through oneDNN, which reorders the
weight into its blocked layout on every call (forward, backward-data, backward-weights, and the
weight gradient back). For the U-Net's inner layers the weight is far larger than the activations
(unet_256's 2x2 -> 4x4 transposed conv: 8.4 M weights for 8 K outputs), and oneDNN's own verbose
log shows those reorders taking several times the convolution. PyTorch's native path (im2col or
col2im plus a GEMM on the plain weight) has no reorder. No library lets one layer choose its
backend, so this study routes a convolution through ``aten.convolution`` and
``aten.convolution_backward`` with oneDNN switched off when its weight has at least ``T`` times
as many elements as its output (``--thresholds``), and leaves every other one on oneDNN.

``--fpmath bf16`` adds a way that keeps oneDNN everywhere but lets it compute each float32
convolution in bfloat16 inside (``torch.backends.mkldnn`` ``fp32_precision``, oneDNN's fpmath
mode: the tensors stay float32, the weights and activations are rounded to bf16 in the reorder
oneDNN makes anyway, and a CPU with AMX multiplies them). It changes the numbers like bf16
autocast (``--trainer.precision bf16-mixed``), which also runs the pointwise layers and stores the
activations in bf16.

It times train.py's iteration: each design's module built by train.py's start-up from its shipped
config (``profile_step.SETTINGS``: 256b1 the facades configs, 128b4 the cpu_quick ones), its
``training_step`` run by a Trainer over fixed in-memory batches (``profile_step.fit``), each way
from the same seed and weights, ways interleaved in rounds with a rotating start; medians of wall
and process CPU time per iteration, and each way's ratio to oneDNN everywhere. The native path sums
in another order, so the trained weights differ at float rounding: after the run each way's G
weights are compared with oneDNN's (same seed, same iterations).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import tempfile
import time

import torch
from torch import nn

from studies.profile_step import DESIGNS, SETTINGS, batches, build_module, fit, quiet


class _NativeConv(torch.autograd.Function):
    """A dense convolution whose forward and backward both run with oneDNN off."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, transposed, output_padding):  # noqa: ANN001
        with torch.backends.mkldnn.flags(enabled=False):
            y = torch.ops.aten.convolution(x, weight, bias, stride, padding, [1, 1], transposed, output_padding, 1)
        ctx.save_for_backward(x, weight)
        ctx.conf = (None if bias is None else list(bias.shape), stride, padding, transposed, output_padding)
        return y

    @staticmethod
    def backward(ctx, grad):  # noqa: ANN001
        x, weight = ctx.saved_tensors
        bias_sizes, stride, padding, transposed, output_padding = ctx.conf
        with torch.backends.mkldnn.flags(enabled=False):
            gx, gw, gb = torch.ops.aten.convolution_backward(
                grad, x, weight, bias_sizes, stride, padding, [1, 1], transposed, output_padding, 1,
                list(ctx.needs_input_grad[:3]))
        return gx, gw, gb, None, None, None, None


def _out_numel(conv: nn.Module, x: torch.Tensor) -> int:
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    h, w = x.shape[-2:]
    if isinstance(conv, nn.ConvTranspose2d):
        h, w = (h - 1) * sh - 2 * ph + kh, (w - 1) * sw - 2 * pw + kw
    else:
        h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    return x.shape[0] * conv.out_channels * h * w


def _native(conv: nn.Module, x: torch.Tensor, threshold: float) -> bool:
    return conv.weight.numel() >= threshold * _out_numel(conv, x)


def route(net: nn.Module, threshold: float | None) -> nn.Module:
    """Send each dense 2D convolution of ``net`` whose weight has >= ``threshold`` x its output's
    elements through the native path (``None``: oneDNN everywhere, PyTorch's own choice).

    Conv2d and its subclasses (their own padding or blur first) all end in ``_conv_forward``, which
    is where the switch sits; a transposed conv is switched in its ``forward``."""
    for conv in net.modules() if threshold is not None else ():
        dense = getattr(conv, "groups", 0) == 1 and getattr(conv, "dilation", None) == (1, 1)
        if isinstance(conv, nn.Conv2d) and dense and conv.padding_mode == "zeros":
            def conv_forward(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                             conv: nn.Module = conv) -> torch.Tensor:
                if not _native(conv, x, threshold):
                    return nn.Conv2d._conv_forward(conv, x, weight, bias)
                return _NativeConv.apply(x, weight, bias, list(conv.stride), list(conv.padding), False, [0, 0])

            conv._conv_forward = conv_forward
        elif type(conv) is nn.ConvTranspose2d and dense:
            def forward(x: torch.Tensor, conv: nn.Module = conv) -> torch.Tensor:
                if not _native(conv, x, threshold):
                    return nn.ConvTranspose2d.forward(conv, x)
                return _NativeConv.apply(x, conv.weight, conv.bias, list(conv.stride), list(conv.padding), True,
                                         list(conv.output_padding))

            conv.forward = forward
    return net


@contextlib.contextmanager
def fpmath(mode: str | None):
    """oneDNN's float32 convolutions computed in ``mode`` (``bf16``) inside; ``None``: unchanged."""
    before = torch.backends.mkldnn.conv.fp32_precision
    if mode is not None:
        torch.backends.mkldnn.conv.fp32_precision = mode
    try:
        yield
    finally:
        torch.backends.mkldnn.conv.fp32_precision = before


def conv_time(conv: nn.Module, x: torch.Tensor, native: bool, reps: int) -> float:
    """Median ms of one forward + backward (input and weight gradients)."""
    times = []
    for i in range(reps + 2):
        xx = x.detach().requires_grad_(True)
        conv.zero_grad(set_to_none=True)
        t = time.perf_counter()
        with torch.backends.mkldnn.flags(enabled=not native):
            y = conv(xx)
            y.backward(torch.ones_like(y))
        if i >= 2:
            times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def layers(module: nn.Module, size: int, batch: int, reps: int) -> None:
    """Every dense conv of the module's G and D, alone: oneDNN vs native, forward + backward."""
    g, d = module.generator, module.discriminator
    inputs: list[tuple[str, nn.Module, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda m, a, n=n: inputs.append((n, m, a[0].detach())))
             for net, tag in ((g, "G"), (d, "D")) for n, m in ((f"{tag}.{k}", v) for k, v in net.named_modules())
             if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)) and m.groups == 1]
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        fake = g(x)
        d(torch.cat([x, fake], 1))
    for h in hooks:
        h.remove()
    print("| conv | input | weight | weight / output elements | oneDNN ms | native ms | native / oneDNN |")
    print("|---|---|---|---|---|---|---|")
    for name, conv, inp in inputs:
        r = conv.weight.numel() / _out_numel(conv, inp)
        a, b = conv_time(conv, inp, False, reps), conv_time(conv, inp, True, reps)
        shapes = f"{tuple(inp.shape)} | {tuple(conv.weight.shape)}"
        print(f"| {name} | {shapes} | {r:.3g} | {a:.2f} | {b:.2f} | {b / a:.2f} |", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--setting", choices=list(SETTINGS), default="256b1")
    ap.add_argument("--designs", nargs="+", default=DESIGNS, choices=DESIGNS)
    ap.add_argument("--thresholds", type=float, nargs="*", default=[16.0],
                    help="native path for convs whose weight has >= T x their output's elements")
    ap.add_argument("--fpmath", choices=["bf16"], help="also oneDNN everywhere, computing in this type inside")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations per way per round")
    ap.add_argument("--iters", type=int, default=3, help="timed iterations per way per round")
    ap.add_argument("--layers", action="store_true", help="also time every conv of the baseline's G and D alone")
    args = ap.parse_args()
    if any(t <= 0 for t in args.thresholds):
        ap.error("--thresholds: each T must be > 0")
    torch.set_num_threads(args.threads)
    quiet()
    print(f"# python -m studies.conv_backend --setting {args.setting} --designs {' '.join(args.designs)} "
          f"--thresholds {' '.join(f'{t:g}' for t in args.thresholds)}"
          f"{f' --fpmath {args.fpmath}' if args.fpmath else ''} --threads {args.threads} --rounds {args.rounds} "
          f"--warmup {args.warmup} --iters {args.iters}{' --layers' if args.layers else ''}")
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f} at the start")
    workdir = tempfile.mkdtemp(prefix="conv_backend_")
    ways: list[tuple[str, float | None]] = [("oneDNN", None)] + [(f"native>={t:g}", t) for t in args.thresholds]
    if args.fpmath:
        ways.append((f"oneDNN fpmath {args.fpmath}", None))
    modules, configs = {}, {}
    for design in args.designs:
        config, extra = SETTINGS[args.setting][design]
        for way, t in ways:
            module, configs[design] = build_module(config, extra, workdir)  # the same seed: the same weights
            route(module.generator, t)
            route(module.discriminator, t)
            modules[(design, way)] = module
    size, batch = configs[args.designs[0]].data.crop_size, configs[args.designs[0]].data.batch_size
    if args.layers:
        layers(modules[(args.designs[0], "oneDNN")], size, batch, reps=5)
    data = batches(size, batch, args.warmup + args.iters)
    times: dict[tuple[str, str], list[tuple[float, float]]] = {k: [] for k in modules}
    keys = list(modules)
    clock: dict[int, tuple[float, float]] = {}  # batch -> its start (wall, CPU)
    for r in range(args.rounds):
        for k in keys[r % len(keys):] + keys[:r % len(keys)]:
            def start(i: int, clock: dict = clock) -> None:
                clock[i] = (time.perf_counter(), time.process_time())

            def end(i: int, k: tuple[str, str] = k, clock: dict = clock) -> None:
                if i >= args.warmup:
                    times[k].append((time.perf_counter() - clock[i][0], time.process_time() - clock[i][1]))

            torch.manual_seed(r)  # the same dropout masks and shifts for every way
            with fpmath(args.fpmath if k[1].startswith("oneDNN fpmath") else None):
                fit(modules[k], configs[k[0]], data, workdir, start, end, progress_bar=False)
        print(f"# round {r + 1}/{args.rounds} done", flush=True)
    print(f"\n{args.setting} (train.py's training_step in a Trainer, the shipped configs), {args.threads} thread(s): "
          f"ms per iteration, median of {args.rounds} x {args.iters}, wall (CPU); ratio to oneDNN by wall (CPU); "
          "G's largest weight difference to oneDNN's after the same iterations")
    print("| design | way | ms / iteration | / oneDNN | G weights vs oneDNN |")
    print("|---|---|---|---|---|")
    for design in args.designs:
        base = [statistics.median(x[j] for x in times[(design, "oneDNN")]) for j in (0, 1)]
        ref = dict(modules[(design, "oneDNN")].generator.named_parameters())
        for way, _ in ways:
            wall, cpu = (statistics.median(x[j] for x in times[(design, way)]) for j in (0, 1))
            diff = max((p - ref[n]).abs().max().item() for n, p in modules[(design, way)].generator.named_parameters())
            ratio = f"{wall / base[0]:.2f} ({cpu / base[1]:.2f})"
            print(f"| {design} | {way} | {wall * 1e3:.0f} ({cpu * 1e3:.0f}) | {ratio} | {diff:.1e} |")


if __name__ == "__main__":
    main()
