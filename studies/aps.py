"""Benchmark: adaptive polyphase sampling (APS) vs the baseline and BlurPool (bin5) U-Nets.

Two measurements, in one run, on the pix2pix ``unet_256`` (num_downs 8, ngf 64, batch norm):

1. **Speed**: forward + backward time per image, 256x256, batch 1, train mode (dropout and
   batch statistics on, as in training), loss = output.abs().mean(). The variants are timed
   round-robin (one warm-up pass each, then ``--repeats`` rounds) so that load from other
   processes on a shared machine hits them alike; the median is reported, with the ratio to
   the baseline.
2. **Stability** of the *same untrained weights* (one seed, pix2pix normal(0, 0.02) init: all
   variants have identical parameter tensors) in eval mode, on ``skimage.data.astronaut()``
   resized to (256 + S)^2, S = 8:
   * circular protocol: G(roll(x, s)) vs roll(G(x), s) on the 256x256 window at (0, 0);
   * crop protocol: windows at (0, 0) and (dy, dx) of the larger source, compared on the
     common region (no border margin);
   mean PSNR (data range 2) over the 1-pixel shifts (0, 1), (1, 0), (1, 1) by default, or over
   every shift of the 8x8 grid with ``--grid``.

Variants: ``none`` (reference, zero padding), ``bin5`` (paper ConvBlurPool + blur upsampling,
zero conv padding, reflect blur padding: the facades_bin5 config), the same two with circular
padding (to separate padding from sampling), ``aps`` and ``aps_bin5`` (circular by design).

Usage:
    .venv/bin/python -m studies.aps                      # everything (~2-4 min on 2 cores)
    .venv/bin/python -m studies.aps --skip-timing --grid # stability on all 63 shifts
    .venv/bin/python -m studies.aps --size 64 --num-downs 6 --ngf 8 --repeats 1  # smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from pix2pix_aa.metrics import shift_grid, stability_circular, stability_crop
from pix2pix_aa.networks import UNetGenerator, init_weights

#: name -> UNetGenerator keyword arguments
VARIANTS: dict[str, dict] = {
    "none": dict(antialias="none", pad_type="zero"),
    "bin5": dict(antialias="bin5", pad_type="zero"),
    "none_circ": dict(antialias="none", pad_type="circular"),
    "bin5_circ": dict(antialias="bin5", pad_type="circular"),
    "aps": dict(antialias="aps"),
    "aps_bin5": dict(antialias="aps_bin5"),
}
TIMED_DEFAULT = ("none", "bin5", "aps", "aps_bin5")


def build(name: str, args: argparse.Namespace) -> UNetGenerator:
    torch.manual_seed(args.seed)  # same seed -> same parameter tensors in every variant
    g = UNetGenerator(num_downs=args.num_downs, ngf=args.ngf, norm="batch", **VARIANTS[name])
    return init_weights(g, "normal", 0.02)


def astronaut(size: int) -> torch.Tensor:
    """skimage's astronaut (512x512 RGB) resized to size x size, (1, 3, size, size) in [-1, 1]."""
    from skimage import data, transform
    img = transform.resize(data.astronaut(), (size, size), order=3, anti_aliasing=True)
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)[None].float().clamp(0, 1) * 2 - 1


def time_variants(names: list[str], args: argparse.Namespace) -> dict[str, list[tuple[float, float]]]:
    """(wall seconds, process CPU seconds over all threads) per timed round and variant."""
    x = torch.randn(1, 3, args.size, args.size)
    models = {n: build(n, args).train() for n in names}

    def step(g: UNetGenerator) -> tuple[float, float]:
        g.zero_grad(set_to_none=True)
        t0, c0 = time.perf_counter(), time.process_time()
        g(x).abs().mean().backward()
        return time.perf_counter() - t0, time.process_time() - c0

    times: dict[str, list[tuple[float, float]]] = {n: [] for n in names}
    for n in names:  # warm-up (allocator, oneDNN primitive caches)
        step(models[n])
    for r in range(args.repeats):
        for n in names:
            times[n].append(step(models[n]))
        print(f"  round {r + 1}/{args.repeats}: "
              + ", ".join(f"{n} {times[n][-1][0]:.2f}s (cpu {times[n][-1][1]:.2f}s)" for n in names), flush=True)
    return times


def stability(names: list[str], args: argparse.Namespace) -> dict[str, tuple[str, str]]:
    s = 8
    source = astronaut(args.size + s)
    x = source[..., :args.size, :args.size]
    shifts = [sh for sh in shift_grid(s) if sh != (0, 0)] if args.grid else [(0, 1), (1, 0), (1, 1)]
    ref_state = None
    out = {}
    for n in names:
        g = build(n, args).eval()
        state = {k: v for k, v in g.state_dict().items()}
        if ref_state is None:
            ref_state = state
        assert all(torch.equal(state[k], ref_state[k]) for k in ref_state), "variants must share weights"
        with torch.no_grad():
            circ = stability_circular(g, x, shifts, max_db=1000.0)
            crop = stability_crop(g, source, args.size, shifts, max_db=1000.0)
        # An exactly equivariant network has MSE 0 (infinite PSNR; the metric caps it at 1000).
        c = "inf (MSE 0)" if float(np.max(circ.mse)) == 0.0 else f"{circ.mean_psnr:.1f}"
        out[n] = (c, f"{crop.mean_psnr:.1f}")
        print(f"  {n}: circular {c} dB, crop {crop.mean_psnr:.1f} dB (worst shift {crop.worst_shift})", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--num-downs", type=int, default=8)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3, help="timed rounds per variant (median reported)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--timed", nargs="+", default=list(TIMED_DEFAULT), choices=list(VARIANTS))
    p.add_argument("--stable", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--grid", action="store_true", help="stability over all 63 shifts of the 8x8 grid")
    p.add_argument("--skip-timing", action="store_true")
    p.add_argument("--skip-stability", action="store_true")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; unet num_downs={args.num_downs} "
          f"ngf={args.ngf}, {args.size}x{args.size}, batch norm, seed {args.seed}")

    times = {}
    if not args.skip_timing:
        print(f"\nforward+backward, batch 1, train mode, {args.repeats} rounds (round-robin), wall and CPU time:")
        times = time_variants(args.timed, args)
    stab = {}
    if not args.skip_stability:
        which = "every shift of the 8x8 grid" if args.grid else "1-pixel shifts (0,1), (1,0), (1,1)"
        print(f"\nstability, eval mode, untrained seed {args.seed}, astronaut, mean PSNR over {which}:")
        stab = stability(args.stable, args)

    print("\n| variant | padding | fwd+bwd wall s/img (median) | CPU s/img (median) | CPU vs none "
          "| circular PSNR dB | crop PSNR dB |")
    print("|---|---|---|---|---|---|---|")

    def med(n: str, i: int) -> float:
        return statistics.median(t[i] for t in times[n])

    for n in VARIANTS:
        if n not in times and n not in stab:
            continue
        pad = "circular" if "circ" in n or n.startswith("aps") else "zero (+reflect blur)" if "bin5" in n else "zero"
        wall, cpu = (f"{med(n, 0):.2f}", f"{med(n, 1):.2f}") if n in times else ("-", "-")
        ratio = f"{med(n, 1) / med('none', 1):.2f}x" if n in times and "none" in times else "-"
        c, k = stab[n] if n in stab else ("-", "-")
        print(f"| {n} | {pad} | {wall} | {cpu} | {ratio} | {c} | {k} |")
    print("\nWall time suffers from other processes on a shared machine; process CPU time (summed over "
          "torch's threads) much less so, hence the ratio is taken on CPU time.")


if __name__ == "__main__":
    main()
