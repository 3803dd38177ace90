"""Benchmark: this machine's sustained compute limit, the yardstick of docs/PERFORMANCE.md.

    .venv/bin/python -m studies.peak                       # ~1 min; --json FILE keeps the figures
    .venv/bin/python -m studies.peak --threads 1 --seconds 2

How it measures: for each dtype (float32, bfloat16; bfloat16 runs on AMX / AVX512-BF16 where the
CPU has them) and each thread count (1 and all cores, or ``--threads``), the kernels below are
run back to back for ``--seconds`` per repeat, ``--repeats`` times, interleaved (every kernel in
every round). The figure of a kernel is its *best* repeat in GFLOP per CPU-second (2 x MACs /
process CPU time, summed over threads), with GFLOP per wall second beside it: on a machine
shared with other jobs a process gets only part of the cores, so wall-clock rates measure the
load, while the rate per CPU-second is what a core sustains while it runs this process (cache
and memory-bandwidth contention still lower it; the best repeat is the closest estimate of the
limit). Per-core limit x cores = the machine's limit when nothing else runs.

Kernels:
  gemm        torch.mm of two 2048 x 2048 matrices (MKL)
  conv1x1     conv2d (16, 512, 32, 32) -> 512, 1x1: a GEMM through oneDNN (the ceiling of dense
              arithmetic where MKL's GEMM does not reach it, as on AMD CPUs)
  conv3x3     conv2d (8, 256, 32, 32) -> 256, 3x3, stride 1 (a U-Net middle level)
  conv4x4s1   conv2d (8, 64, 64, 64) -> 128, 4x4, stride 1 (ConvBlurPool's stride-1 encoder conv)
  conv4x4s2   conv2d (4, 128, 64, 64) -> 256, 4x4, stride 2 (the pix2pix encoder conv)
  convT4x4s2  conv_transpose2d (4, 256, 32, 32) -> 128, 4x4, stride 2 (the pix2pix decoder conv)

``peak`` of a dtype and thread count = the best kernel by GFLOP per CPU-second. Evaluation and
training figures elsewhere are reported as achieved GFLOP per CPU-second (FlopCounterMode's count
/ process CPU time) over the 1-thread float32 peak: the fraction of a core's arithmetic limit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def _kernels(dtype: torch.dtype) -> dict:
    g = torch.Generator().manual_seed(0)

    def r(*shape):
        return torch.randn(*shape, generator=g).to(dtype)

    a, b = r(2048, 2048), r(2048, 2048)
    x1, w1 = r(16, 512, 32, 32), r(512, 512, 1, 1)
    x3, w3 = r(8, 256, 32, 32), r(256, 256, 3, 3)
    xs, ws = r(8, 64, 64, 64), r(128, 64, 4, 4)
    x4, w4 = r(4, 128, 64, 64), r(256, 128, 4, 4)
    xt, wt = r(4, 256, 32, 32), r(256, 128, 4, 4)
    return {
        "gemm": (lambda: torch.mm(a, b), 2 * 2048 ** 3),
        "conv1x1": (lambda: F.conv2d(x1, w1), 2 * 16 * 512 * 32 * 32 * 512),
        "conv3x3": (lambda: F.conv2d(x3, w3, padding=1), 2 * 8 * 256 * 32 * 32 * 256 * 9),
        "conv4x4s1": (lambda: F.conv2d(xs, ws, padding=2), 2 * 8 * 128 * 65 * 65 * 64 * 16),
        "conv4x4s2": (lambda: F.conv2d(x4, w4, stride=2, padding=1), 2 * 4 * 256 * 32 * 32 * 128 * 16),
        "convT4x4s2": (lambda: F.conv_transpose2d(xt, wt, stride=2, padding=1), 2 * 4 * 256 * 32 * 32 * 128 * 16),
    }


def _sustained(fn, flops: int, seconds: float) -> tuple[float, float]:
    """(GFLOP per wall second, GFLOP per CPU second) of ``fn`` run back to back for at least
    ``seconds`` of wall time."""
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n * flops / elapsed / 1e9, n * flops / max(time.process_time() - cpu, 1e-9) / 1e9


def measure(threads: int, dtypes: list[torch.dtype], seconds: float, repeats: int) -> dict:
    torch.set_num_threads(threads)
    out = {}
    with torch.inference_mode():
        kernels = {(str(dt).replace("torch.", ""), name): k for dt in dtypes for name, k in _kernels(dt).items()}
        for fn, _ in kernels.values():  # warm-up: oneDNN primitive creation, first-touch pages
            fn()
        samples = {key: [] for key in kernels}
        keys = list(kernels)
        for rep in range(repeats):
            for key in keys[rep % len(keys):] + keys[:rep % len(keys)]:  # rotating start
                fn, flops = kernels[key]
                samples[key].append(_sustained(fn, flops, seconds))
    for (dtype_name, name), vals in samples.items():
        wall, cpu = [v[0] for v in vals], [v[1] for v in vals]
        out.setdefault(dtype_name, {})[name] = {
            "best_gflops": max(wall), "median_gflops": statistics.median(wall),
            "best_gflops_per_cpu_s": max(cpu), "median_gflops_per_cpu_s": statistics.median(cpu)}
    for rows in out.values():
        best = max(rows, key=lambda n: rows[n]["best_gflops_per_cpu_s"])
        rows["peak"] = {"kernel": best, "gflops": rows[best]["best_gflops"],
                        "gflops_per_cpu_s": rows[best]["best_gflops_per_cpu_s"],
                        "gflops_per_core": rows[best]["best_gflops_per_cpu_s"]}
    return out


def machine() -> dict:
    info = {"platform": platform.platform(), "processor": platform.processor(), "torch": torch.__version__,
            "cores": os.cpu_count()}
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    try:
        flags = Path("/proc/cpuinfo").read_text().split("flags", 2)[1].split("\n", 1)[0]
        info["isa"] = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f" {f}" in flags]
        model = [ln for ln in Path("/proc/cpuinfo").read_text().splitlines() if ln.startswith("model name")]
        info["cpu"] = model[0].split(":", 1)[1].strip() if model else None
    except (OSError, IndexError):
        pass
    return info


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=str, default=None,
                   help="comma-separated thread counts (default: 1 and all cores)")
    p.add_argument("--seconds", type=float, default=1.0, help="seconds per repeat of a kernel")
    p.add_argument("--repeats", type=int, default=4)
    p.add_argument("--no-bf16", action="store_true")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)
    cores = os.cpu_count() or 1
    threads = [int(t) for t in args.threads.split(",")] if args.threads else sorted({1, cores})
    dtypes = [torch.float32] + ([] if args.no_bf16 else [torch.bfloat16])
    info = machine()
    print(f"machine: {info.get('cpu')}, {cores} cores, ISA {' '.join(info.get('isa', []))}, torch {torch.__version__}")
    print(f"load average at start: {info.get('load_average')} (a shared machine lowers every repeat; "
          f"the best of {args.repeats} interleaved repeats of {args.seconds:g} s is the estimate of the limit)")
    report = {"machine": info, "seconds": args.seconds, "repeats": args.repeats, "threads": {}}
    for t in threads:
        res = measure(t, dtypes, args.seconds, args.repeats)
        report["threads"][str(t)] = res
        for dt, rows in res.items():
            cells = ", ".join(f"{n} {v['best_gflops_per_cpu_s']:.0f} ({v['best_gflops']:.0f})"
                              for n, v in rows.items() if n != "peak")
            print(f"{t} thread{'s' if t > 1 else ''} {dt:9s} best GFLOP per CPU-second (per wall second): {cells}; "
                  f"peak {rows['peak']['gflops_per_cpu_s']:.0f} per CPU-second ({rows['peak']['kernel']})")
    try:
        report["machine"]["load_average_end"] = os.getloadavg()
    except OSError:
        pass
    print(f"load average at end: {report['machine'].get('load_average_end')}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
