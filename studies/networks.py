"""Generator speed per anti-aliasing mode: forward+backward time per image vs the baseline unet_256.

    .venv/bin/python -m studies.networks                      # 256x256, batch 1, 1 thread
    .venv/bin/python -m studies.networks --size 128 --ngf 32  # quicker
    .venv/bin/python -m studies.networks --profile bin5       # + torch.profiler top ops
    .venv/bin/python -m studies.networks --levels             # + per-encoder-level split

How it measures: one (batch, 3, size, size) float32 input, a generator in train mode (BatchNorm
batch statistics, dropout on: what training runs), one timed step = ``G(x).sum().backward()``
after zeroing grads. Variants run interleaved (round-robin with a rotating start), so load drift
on a shared machine hits all of them alike; after ``--warmup`` rounds the median of ``--repeats``
rounds is reported, wall clock and process CPU time (the steadier figure when other processes
compete for the cores). ``--threads`` sets torch.set_num_threads (default 1).

The FLOP columns come from ``torch.utils.flop_counter.FlopCounterMode`` over the same
forward+backward (convolutions and matmuls; 1 MAC = 2 FLOPs): they give the ratio the
architecture *asks for*, so the measured ratio can be read against it. The paper's ConvBlurPool
runs each encoder conv at stride 1, i.e. 4x the MACs of the strided conv it replaces.

Variants (all with zero conv padding and reflect blur padding unless stated):
  baseline       antialias=none: the reference unet_256
  rect2/tri3/bin5  paper ConvBlurPool in the encoder + blur after each upsampling (full AA)
  bin5-enc       bin5 ConvBlurPool in the encoder only (upsample_antialias=False)
  bin5-cheap     blur -> strided conv (antialias_mode=blur_conv, StyleGAN2-like), + decoder blur
  bin5-cheap-enc blur -> strided conv, encoder only
  aps            adaptive polyphase sampling, circular padding (Chaman & Dokmanic 2021)
  shipped        the recommended design's network (configs/cpu_quick_aa.yaml), and its parts:
                 shipped-enc (its encoder blur alone), shipped-nopath (without the full-resolution
                 path), baseline-path (the path alone), shipped-path8 (the path at c = 8)
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from pix2pix_aa.layers import BlurPool
from pix2pix_aa.networks import UNetGenerator

VARIANTS: dict[str, dict] = {
    "baseline": {},
    "rect2": {"antialias": "rect2"},
    "tri3": {"antialias": "tri3"},
    "bin5": {"antialias": "bin5"},
    "bin5-enc": {"antialias": "bin5", "upsample_antialias": False},
    "bin5-cheap": {"antialias": "bin5", "antialias_mode": "blur_conv"},
    "bin5-cheap-enc": {"antialias": "bin5", "antialias_mode": "blur_conv", "upsample_antialias": False},
    "aps": {"antialias": "aps"},
}


def _shipped_generator() -> dict:
    """The anti-aliasing options of the recommended design (configs/cpu_quick_aa.yaml's generator)."""
    from pathlib import Path

    import yaml

    config = Path(__file__).resolve().parents[1] / "configs" / "cpu_quick_aa.yaml"
    args = yaml.safe_load(config.read_text())["model"]["generator"]["init_args"]
    return {k: v for k, v in args.items() if k not in ("num_downs", "ngf", "norm", "dropout")}


#: The recommended design taken apart: its encoder blur alone, with the decoder's blurs, the whole
#: network (+ the full-resolution path), the path alone on the baseline, and the path at c = 8.
SHIPPED = _shipped_generator()
VARIANTS.update({
    "shipped-enc": {k: SHIPPED[k] for k in ("antialias", "antialias_mode")},
    "shipped-nopath": {**SHIPPED, "fullres_channels": 0},
    "shipped": SHIPPED,
    "baseline-path": {"fullres_channels": SHIPPED["fullres_channels"]},
    "shipped-path8": {**SHIPPED, "fullres_channels": 8},
})
#: Project targets (docs/PERFORMANCE.md): paper-faithful AA <= 1.5x the baseline, cheap mode <= 1.1x.
TARGETS = {"rect2": 1.5, "tri3": 1.5, "bin5": 1.5, "bin5-enc": 1.5, "bin5-cheap": 1.1, "bin5-cheap-enc": 1.1}


def build(name: str, size: int, ngf: int, seed: int = 0) -> UNetGenerator:
    torch.manual_seed(seed)
    num_downs = max(2, size.bit_length() - 1)  # 256 -> 8 (unet_256), 128 -> 7 (unet_128)
    return UNetGenerator(num_downs=num_downs, ngf=ngf, **VARIANTS[name]).train()


def step(g: torch.nn.Module, x: torch.Tensor) -> None:
    for p in g.parameters():
        p.grad = None
    g(x).sum().backward()


def timed(g: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    step(g, x)
    return time.perf_counter() - w0, time.process_time() - c0


def flops(g: torch.nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """(total, blur) forward+backward FLOPs; blur = the depthwise BlurPool/Blur convs."""
    with FlopCounterMode(display=False) as counter:
        step(g, x)
    per_module = counter.get_flop_counts()
    prefix = type(g).__name__
    blur = sum(sum(per_module.get(f"{prefix}.{name}", {}).values())
               for name, m in g.named_modules() if isinstance(m, BlurPool))
    return float(counter.get_total_flops()), float(blur)


def check_parity(nets: dict[str, torch.nn.Module], x: torch.Tensor) -> None:
    """All variants share the baseline's parameters (AA adds none; the full-resolution path adds
    its own, so those variants are not compared); a sanity check that each runs."""
    base = sum(p.numel() for p in nets["baseline"].parameters()) if "baseline" in nets else None
    for name, g in nets.items():
        n = sum(p.numel() for p in g.parameters())
        if base is not None and n != base and not VARIANTS[name].get("fullres_channels"):
            raise SystemExit(f"{name}: {n} parameters, baseline has {base}")
        with torch.no_grad():
            y = g.eval()(x)
        g.train()
        if y.shape != x.shape or not torch.isfinite(y).all():
            raise SystemExit(f"{name}: bad output {tuple(y.shape)}")


def levels(size: int, ngf: int, repeats: int) -> None:
    """Per-encoder-level forward+backward time, baseline vs bin5 ConvBlurPool, split into the
    stride-1 conv (with its (1, 2) padding), norm + activation, and the BlurPool."""
    base, aa = build("baseline", size, ngf), build("bin5-enc", size, ngf)
    x = torch.randn(1, 3, size, size)
    inputs = []
    with torch.no_grad():
        h = x
        for level in base.encoder:
            inputs.append(h)
            h = level(h)

    def t(fn, inp: torch.Tensor, grad_in: bool) -> float:
        out = []
        for _ in range(repeats + 1):
            a = inp.clone().requires_grad_(grad_in)
            c0 = time.process_time()
            y = fn(a)
            y.backward(torch.ones_like(y))
            out.append(time.process_time() - c0)
        return statistics.median(out[1:]) * 1e3

    print("\nper encoder level, forward+backward CPU ms (median), batch 1; level 0 without input grad "
          "(as in training)")
    print("| level | input | baseline conv s2 block | bin5 block | of which conv s1 | norm+act | BlurPool |")
    print("|---|---|---|---|---|---|---|")
    tot = [0.0] * 5
    for i, (lb, la) in enumerate(zip(base.encoder, aa.encoder)):
        grad_in = i > 0
        conv, blur = la[0], la[-1]
        with torch.no_grad():
            pre_blur = la[:-1](inputs[i].clone())
        row = [t(lambda a, lb=lb: lb(a.clone()), inputs[i], grad_in),
               t(lambda a, la=la: la(a.clone()), inputs[i], grad_in),
               t(conv, inputs[i], grad_in), 0.0,
               t(blur, pre_blur, True)]
        row[3] = max(row[1] - row[2] - row[4], 0.0)
        tot = [a + b for a, b in zip(tot, row)]
        print(f"| {i} | {tuple(inputs[i].shape[1:])} | " + " | ".join(f"{v:.1f}" for v in row) + " |")
    print("| all | | " + " | ".join(f"{v:.1f}" for v in tot) + " |")


def profile(name: str, size: int, ngf: int, rows: int = 15) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    g, x = build(name, size, ngf), torch.randn(1, 3, size, size)
    step(g, x)
    with prof(activities=[ProfilerActivity.CPU]) as p:
        step(g, x)
    print(f"\ntorch.profiler, {name}, one forward+backward:")
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=rows))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--profile", nargs="*", default=None, metavar="VARIANT",
                    help="print torch.profiler top ops for these variants (default: baseline bin5)")
    ap.add_argument("--levels", action="store_true", help="per-encoder-level split, baseline vs bin5")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    names = list(dict.fromkeys(["baseline"] + args.variants))
    x = torch.randn(args.batch, 3, args.size, args.size)
    nets = {n: build(n, args.size, args.ngf) for n in names}
    check_parity(nets, x[:1])
    fl = {n: flops(g, x) for n, g in nets.items()}

    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"threads={args.threads}, load avg {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}")
    print(f"G forward+backward, input ({args.batch}, 3, {args.size}, {args.size}), ngf={args.ngf}, train mode; "
          f"median of {args.repeats} interleaved rounds after {args.warmup} warm-up\n")
    wall: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    for r in range(args.warmup + args.repeats):
        for n in names[r % len(names):] + names[:r % len(names)]:
            tw, tc = timed(nets[n], x)
            if r >= args.warmup:
                wall[n].append(tw)
                cpu[n].append(tc)
    med = {n: (statistics.median(wall[n]) * 1e3 / args.batch, statistics.median(cpu[n]) * 1e3 / args.batch)
           for n in names}
    bw, bc = med["baseline"]
    bf = fl["baseline"][0]
    print("| variant | wall ms/img | cpu ms/img | wall / base | cpu / base | GFLOP f+b | FLOP / base "
          "| blur share of FLOP | target |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n in names:
        tw, tc = med[n]
        total, blur = fl[n]
        target = f"<= {TARGETS[n]}x" if n in TARGETS else ""
        print(f"| {n} | {tw:.0f} | {tc:.0f} | {tw / bw:.2f} | {tc / bc:.2f} | {total / 1e9 / args.batch:.1f} "
              f"| {total / bf:.2f} | {blur / total:.1%} | {target} |")
    load1 = os.getloadavg()
    print(f"\nload avg at the end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f} (above the core count, wall "
          "times are noisy: read the cpu columns)")
    if args.levels:
        levels(args.size, args.ngf, max(3, args.repeats // 2))
    if args.profile is not None:
        for n in args.profile or ["baseline", "bin5"]:
            profile(n, args.size, args.ngf)


if __name__ == "__main__":
    main()
