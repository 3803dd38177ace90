"""BlurPool speed: ours vs kornia.filters.BlurPool2D vs antialiased_cnns.BlurPool (forward+backward).

    .venv/bin/python -m studies.blurpool --threads 1 --repeats 15

How it measures: one input of shape (N, C, H, W) (default 8, 64, 128, 128), float32, NCHW. A
timed step is ``y = layer(x); y.backward(g)`` with a fresh leaf ``x`` and a fixed upstream
gradient ``g``. Implementations run interleaved (round-robin, rotating start) so load drift on
a shared machine hits all of them alike; after ``--warmup`` untimed rounds, the median over
``--repeats`` rounds is reported, both wall clock and process CPU time (CPU time is the steadier
figure when other processes compete for the cores; with N threads it sums over them).
Ratios are ours / reference (< 1: ours is faster).

Rows:
  ours[reflect]        pix2pix_aa BlurPool, the paper's reflect padding (F.pad, then a strided depthwise conv)
  ours[zero]           same op as kornia's (zero padding folded into the conv)
  kornia[zero]         kornia.filters.BlurPool2D (zero padding only)
  aa-cnns[reflect]     antialiased_cnns.BlurPool (ReflectionPad2d + conv)
  aa-cnns[zero]        antialiased_cnns.BlurPool(pad_type='zero')
antialiased-cnns and kornia are measured only here (benchmark/test references).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections.abc import Callable

import torch

from pix2pix_aa.layers import BlurPool

Layer = Callable[[torch.Tensor], torch.Tensor]


def implementations(channels: int, k: int) -> dict[str, Layer]:
    impls: dict[str, Layer] = {
        "ours[reflect]": BlurPool(channels, k, pad_type="reflect"),
        "ours[zero]": BlurPool(channels, k, pad_type="zero"),
    }
    try:
        import kornia

        impls["kornia[zero]"] = kornia.filters.BlurPool2D(k, stride=2)
    except ImportError:
        print("kornia not installed: skipped")
    try:
        import antialiased_cnns

        impls["aa-cnns[reflect]"] = antialiased_cnns.BlurPool(channels, filt_size=k, pad_type="reflect")
        impls["aa-cnns[zero]"] = antialiased_cnns.BlurPool(channels, filt_size=k, pad_type="zero")
    except ImportError:
        print("antialiased-cnns not installed: skipped")
    return impls


def check_agreement(impls: dict[str, Layer], x: torch.Tensor) -> None:
    """The rows must compute the same thing (per padding) before their speed is compared."""
    groups: dict[str, list[torch.Tensor]] = {}
    with torch.no_grad():
        for name, fn in impls.items():
            groups.setdefault(name.split("[")[1], []).append(fn(x))
    for pad, outs in groups.items():
        for out in outs[1:]:
            diff = (out - outs[0]).abs().max().item()
            if diff > 1e-5:
                raise SystemExit(f"implementations disagree for {pad} padding: max abs diff {diff:.3g}")


def time_round(fn: Layer, x: torch.Tensor, g: torch.Tensor) -> tuple[float, float]:
    leaf = x.detach().requires_grad_(True)
    w0, c0 = time.perf_counter(), time.process_time()
    fn(leaf).backward(g)
    return time.perf_counter() - w0, time.process_time() - c0


def run(shape: tuple[int, int, int, int], k: int, repeats: int, warmup: int) -> dict[str, tuple[float, float]]:
    n, c, h, w = shape
    torch.manual_seed(0)
    x = torch.randn(n, c, h, w)
    impls = implementations(c, k)
    check_agreement(impls, x)
    g = torch.randn(n, c, (h + 1) // 2, (w + 1) // 2)
    names = list(impls)
    wall: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    for r in range(warmup + repeats):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate the start
        for name in order:
            tw, tc = time_round(impls[name], x, g)
            if r >= warmup:
                wall[name].append(tw)
                cpu[name].append(tc)
    return {name: (statistics.median(wall[name]) * 1e3, statistics.median(cpu[name]) * 1e3) for name in names}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--shape", type=int, nargs=4, default=(8, 64, 128, 128), metavar=("N", "C", "H", "W"))
    ap.add_argument("--sizes", type=int, nargs="+", default=(3, 5), help="filter sizes")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, threads={args.threads}, load avg {load0[0]:.2f}")
    print(f"input {tuple(args.shape)} float32 NCHW, stride 2, forward+backward, median of {args.repeats} "
          f"interleaved rounds after {args.warmup} warm-up rounds\n")
    header = ("| k | implementation    | wall ms | cpu ms | wall / kornia | wall / aa-cnns[same pad] "
              "| wall / fastest ref |")
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    for k in args.sizes:
        res = run(tuple(args.shape), k, args.repeats, args.warmup)
        refs = {n: v for n, v in res.items() if not n.startswith("ours")}
        fastest = min(v[0] for v in refs.values()) if refs else float("nan")
        for name, (tw, tc) in res.items():
            pad = name.split("[")[1].rstrip("]")
            kor = res.get("kornia[zero]", (float("nan"),))[0]
            aa = res.get(f"aa-cnns[{pad}]", (float("nan"),))[0]
            print(f"| {k} | {name:17s} | {tw:7.1f} | {tc:6.1f} | {tw / kor:13.2f} | {tw / aa:24.2f} "
                  f"| {tw / fastest:18.2f} |")
    load1 = os.getloadavg()
    print(f"\nload avg at the end {load1[0]:.2f} (a load above the core count makes wall times noisy;"
          " compare the cpu column then)")


if __name__ == "__main__":
    main()
