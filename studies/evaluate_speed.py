"""Benchmark: time crop-protocol stability evaluation of the unet_256 baseline.

The project's evaluation target: N = 100 images x 64 shifts (the 8x8 grid) at 256x256 in eval mode, < 5 min
on 2 CPU cores. This script times

* **batched**: ``stability_crop`` with shifted copies stacked along the batch (the metric's
  normal path; ``--batch-size`` images per forward pass, default from its memory budget);
* **one shift at a time**: the same API with ``batch_size=1`` (one forward pass per shift per
  image, the reference output still computed once per image);
* **naive loop**: what one would write by hand, G(x_0) and G(x_s) recomputed for every shift
  (two forward passes per shift).

The two slow modes run on a subset (``--subset-images`` x ``--subset-shifts``) and are
extrapolated to the full N x shifts (printed as such). Nothing here trains; weights are the
pix2pix normal(0, 0.02) init, which costs the same as trained ones.

Example (small, to check it works; the full run is ``--num-images 100``):
    .venv/bin/python -m studies.evaluate_speed --num-images 2 --subset-shifts 4

**Comparing generators and speed options** (several ``--antialias`` or ``--variants``, or
``--what full``): every generator x variant is timed in interleaved rounds (rotating start, one
warm-up round, medians of wall and process CPU time), so that load drift on a shared machine
hits all of them alike; the table gives seconds, the projection to 100 images, the time and FLOP
ratios to the first generator, achieved GFLOP/s and its fraction of the float32 peak measured by
``studies/peak.py --json`` (``--peak``), and the pooled dB of each (the figure an option
must not move):

    .venv/bin/python -m studies.peak --json /tmp/peak.json
    .venv/bin/python -m studies.evaluate_speed --antialias none,bin5 --num-images 4 --threads 1 \
        --variants fp32,bf16 --peak /tmp/peak.json
    .venv/bin/python -m studies.evaluate_speed --antialias none,bin5 --what full --num-downs 7 --ngf 32 \
        --size 128 --num-images 8           # evaluate.py's default metrics on the demo's models

``--allocator system`` gives glibc's default allocator (each large block returned to the system
when freed), the behaviour before evaluate.py's ``--allocator keep`` default.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from pix2pix_aa.metrics import reflect_pad_source, shift_grid, stability_crop
from pix2pix_aa.metrics._batching import default_batch_size


def build_generator(args: argparse.Namespace) -> torch.nn.Module:
    try:
        from pix2pix_aa.networks import UNetGenerator
    except ImportError as err:  # the networks package is built in parallel with the metrics
        raise SystemExit(f"pix2pix_aa.networks.UNetGenerator is not available yet ({err}); "
                         "this benchmark needs it to build the unet_256 baseline.") from None
    torch.manual_seed(args.seed)  # same weights every run, so the dB figures are comparable
    G = UNetGenerator(in_channels=3, out_channels=3, num_downs=args.num_downs, ngf=args.ngf, norm="batch",
                      antialias=args.antialias)
    try:
        from pix2pix_aa.networks import init_weights
        init_weights(G, "normal", 0.02)
    except ImportError:
        pass
    G.eval()  # dropout off, BatchNorm running statistics: the metric measures the architecture
    if args.channels_last:
        G = G.to(memory_format=torch.channels_last)
    return G


def test_images(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """n random size x size crops of scikit-image's bundled photographs, in [-1, 1]."""
    from skimage import data

    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        img = torch.from_numpy(photos[i % len(photos)]).permute(2, 0, 1).float() / 127.5 - 1
        scale = size / min(img.shape[-2:]) * 1.25
        img = F.interpolate(img[None], scale_factor=scale, mode="area")[0]
        top = int(torch.randint(0, img.shape[-2] - size + 1, (1,), generator=g))
        left = int(torch.randint(0, img.shape[-1] - size + 1, (1,), generator=g))
        out.append(img[:, top:top + size, left:left + size])
    return torch.stack(out)


def naive_loop(G, source: torch.Tensor, size: int, shifts) -> float:
    """Hand-written reference: two forward passes per (image, shift). Returns the mean PSNR."""
    total, count = 0.0, 0
    for i in range(source.shape[0]):
        for dy, dx in shifts:
            ref = G(source[i:i + 1, :, :size, :size])
            out = G(source[i:i + 1, :, dy:dy + size, dx:dx + size])
            mse = (ref[..., dy:, dx:] - out[..., :size - dy, :size - dx]).double().square().mean()
            total += float(10 * torch.log10(4.0 / mse))
            count += 1
    return total / count


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def _cpu_timed(fn):
    """(result, wall s, process CPU s): CPU time is the steadier figure on a shared machine."""
    w, c = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w, time.process_time() - c


def forward_flops(G, size: int) -> float:
    """FLOPs of one forward pass of one size x size image (FlopCounterMode: convs and matmuls)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        G(torch.zeros(1, 3, size, size))
    return float(counter.get_total_flops())


def load_peak(path: Path | None) -> float | None:
    """The 1-thread float32 peak, GFLOP per CPU-second, from studies/peak.py's --json file
    (None: unknown): a core's arithmetic limit."""
    if path is None or not path.exists():
        return None
    rows = json.loads(path.read_text())["threads"]
    row = rows.get("1")
    return None if row is None else float(row["float32"]["peak"]["gflops_per_cpu_s"])


def variant_options(variant: str) -> dict:
    """``EvalOptions`` keywords of a ``--variants`` entry; SystemExit naming an unknown one."""
    from pix2pix_aa.evaluation.speed import speed_variant

    try:
        return speed_variant(variant)
    except ValueError as err:
        raise SystemExit(str(err)) from None


def run_variant(G, source, x, args, shifts, bs, variant: str):
    """One timed evaluation of ``G`` under ``variant`` (fp32 | bf16 | channels_last | compile, or
    options joined by ``+`` such as ``bf16+compile``): the crop protocol alone (``--what crop``) or
    every default metric of evaluate.py without the feature layers (``--what full``,
    :func:`evaluate_chunks`)."""
    from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_chunks, merge_chunks

    opts = EvalOptions(max_shift=args.max_shift, layers=None, batch_size=bs, chunk=args.chunk,
                       **variant_options(variant),
                       protocol=args.protocol, noise=() if args.what == "crop" else (0.01, 0.05, 0.1),
                       lowpass=None if args.what == "crop" else "bin5", spectrum=args.what != "crop",
                       flicker_frames=0 if args.what == "crop" else 32, samples=0)
    if args.what == "crop":  # the metric alone, G prepared as evaluate.py prepares it
        from pix2pix_aa.evaluation.runner import inference_generator

        with torch.inference_mode():
            res = stability_crop(inference_generator(G, opts, "cpu"), source, args.size, shifts, batch_size=bs)
        return res.pooled_psnr, res.mean_psnr
    parts = evaluate_chunks(G, x, x, opts)
    merged = merge_chunks(parts)
    res = merged.crop or merged.circular
    return res.pooled_psnr, res.mean_psnr


def compare_generators(args) -> dict:
    """Every generator of ``--antialias`` x every ``--variants`` entry, interleaved in rounds with
    a rotating start; medians of wall and CPU time; per-image cost, projection, FLOP ratio and
    the fraction of the measured float32 peak."""
    import statistics

    names = args.antialias.split(",")
    variants = args.variants.split(",")
    for v in variants:  # a bad entry fails before the first timed round
        variant_options(v)
    gens = {}
    for name in names:
        args_one = argparse.Namespace(**{**vars(args), "antialias": name, "channels_last": False})
        gens[name] = build_generator(args_one)
    # One copy per variant: preparing a module for channels_last converts it in place, which would
    # carry over to the variants timed after it (and each compiled variant keeps its own graphs).
    copies = {(n, v): copy.deepcopy(gens[n]) for v in variants for n in names}
    x = test_images(args.num_images, args.size, args.seed)
    source = reflect_pad_source(x, args.max_shift)
    shifts = shift_grid(args.max_shift)
    bs = args.batch_size or default_batch_size((3, args.size, args.size))
    flops = {n: forward_flops(G, args.size) for n, G in gens.items()}
    keys = [(n, v) for v in variants for n in names]
    print(f"interleaved: {', '.join(f'{n}/{v}' for n, v in keys)}; {args.rounds} rounds (+1 warm-up), "
          f"what={args.what}, protocol={args.protocol if args.what == 'full' else 'crop'}, {args.num_images} images "
          f"x {len(shifts)} shifts at {args.size}px, batch_size={bs}, {torch.get_num_threads()} thread(s), "
          f"allocator {'keeps freed memory' if args.allocator == 'keep' else 'system default'}")
    samples = {k: [] for k in keys}
    figures = {}
    for r in range(args.rounds + 1):
        order = keys[r % len(keys):] + keys[:r % len(keys)]
        for n, v in order:
            fig, wall, cpu = _cpu_timed(lambda n=n, v=v: run_variant(copies[(n, v)], source, x, args, shifts, bs, v))
            figures[(n, v)] = fig
            if r > 0:  # round 0 warms up (oneDNN primitives, compile, allocator)
                samples[(n, v)].append((wall, cpu))
        if r > 0:
            print(f"  round {r}: " + ", ".join(f"{n}/{v} {samples[(n, v)][-1][0]:.1f}s" for n, v in keys), flush=True)
    peak = load_peak(args.peak)
    fwd_per_image = 1 + len(shifts) - 1 if args.what == "crop" else None
    rows = {}
    base = names[0]
    for n, v in keys:
        wall = statistics.median(s[0] for s in samples[(n, v)])
        cpu = statistics.median(s[1] for s in samples[(n, v)])
        row = {"wall_s": wall, "cpu_s": cpu, "per_image_s": wall / args.num_images,
               "projected_100_images_min": wall / args.num_images * 100 / 60,
               "projected_100_images_cpu_min": cpu / args.num_images * 100 / 60,
               "gflop_per_forward": flops[n] / 1e9, "pooled_db": figures[(n, v)][0], "mean_db": figures[(n, v)][1]}
        if fwd_per_image:
            row["achieved_gflops"] = flops[n] * fwd_per_image * args.num_images / wall / 1e9
            achieved = flops[n] * fwd_per_image * args.num_images / cpu / 1e9
            row["achieved_gflops_per_cpu_s"] = achieved
            row["fraction_of_fp32_peak"] = None if peak is None else achieved / peak
        rows[f"{n}/{v}"] = row
    print(f"\n{'generator/variant':24s} {'wall s':>8s} {'cpu s':>8s} {'s/img':>7s} {'100 img min':>11s} "
          f"{'cpu min':>8s} {'/ ' + base + ' wall':>12s} {'cpu':>5s} {'FLOP ratio':>10s} {'GF/cpu-s':>8s} "
          f"{'of peak':>8s} {'pooled dB':>9s}")
    for n, v in keys:
        row = rows[f"{n}/{v}"]
        ref = rows[f"{base}/{v}"]
        row["ratio_to_first_wall"] = row["wall_s"] / ref["wall_s"]
        row["ratio_to_first_cpu"] = row["cpu_s"] / ref["cpu_s"]
        row["flop_ratio"] = flops[n] / flops[base]
        ach = row.get("achieved_gflops_per_cpu_s")
        frac = row.get("fraction_of_fp32_peak")
        print(f"{n + '/' + v:24s} {row['wall_s']:8.1f} {row['cpu_s']:8.1f} {row['per_image_s']:7.2f} "
              f"{row['projected_100_images_min']:11.2f} {row['projected_100_images_cpu_min']:8.2f} "
              f"{row['ratio_to_first_wall']:12.2f} {row['ratio_to_first_cpu']:5.2f} {row['flop_ratio']:10.2f} "
              f"{'' if ach is None else f'{ach:8.1f}'} {'' if frac is None else f'{frac:8.0%}'} "
              f"{row['pooled_db']:9.3f}")
    print("100 img min: wall-clock projection to 100 images (this run's load); cpu min: the same from process "
          "CPU time, i.e. on one dedicated core per thread; GF/cpu-s: achieved GFLOP per CPU-second; of peak: "
          "that over the 1-thread float32 peak of studies/peak.py")
    if peak is None and args.what == "crop":
        print("(no --peak file: run studies/peak.py --json FILE for the fraction of the machine's peak)")
    return {"rows": rows, "what": args.what, "num_images": args.num_images, "size": args.size,
            "threads": torch.get_num_threads(), "batch_size": bs, "rounds": args.rounds, "fp32_peak_gflops": peak,
            "allocator": args.allocator, "load_average": os.getloadavg()}


def allocator_ab(argv: list[str], args) -> dict:
    """``--allocator both``: the comparison run once per round in a child process per allocator
    setting (the setting is process-wide and cannot be undone), rounds interleaved with a
    rotating start; medians over rounds of each child's timed round."""
    import statistics
    import subprocess
    import tempfile

    base = [a for a in argv if not a.startswith("--allocator") and a not in ("keep", "system", "both")]
    if "--json" in base:
        i = base.index("--json")
        del base[i:i + 2]
    if "--rounds" in base:
        i = base.index("--rounds")
        del base[i:i + 2]
    settings = ["keep", "system"]
    runs = {a: [] for a in settings}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for a in settings[r % 2:] + settings[:r % 2]:
                out = Path(tmp) / f"{a}{r}.json"
                cmd = [sys.executable, __file__, *base, "--allocator", a, "--rounds", "1", "--json", str(out)]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                if proc.returncode:
                    raise SystemExit(proc.stderr[-3000:])
                runs[a].append(json.loads(out.read_text()))
                print(f"  round {r + 1} allocator {a}: " + ", ".join(
                    f"{k} {v['wall_s']:.1f}s wall {v['cpu_s']:.1f}s cpu" for k, v in runs[a][-1]["rows"].items()),
                    flush=True)
    keys = list(runs["keep"][0]["rows"])
    print(f"\nallocator A/B, medians of {args.rounds} rounds (child processes):")
    print(f"{'generator/variant':24s} {'keep wall':>10s} {'system wall':>12s} {'keep cpu':>9s} {'system cpu':>11s} "
          f"{'keep/system cpu':>16s}")
    report = {"allocator_ab": {}}
    for k in keys:
        med = {a: (statistics.median(x["rows"][k]["wall_s"] for x in runs[a]),
                   statistics.median(x["rows"][k]["cpu_s"] for x in runs[a])) for a in settings}
        report["allocator_ab"][k] = {a: {"wall_s": med[a][0], "cpu_s": med[a][1]} for a in settings}
        print(f"{k:24s} {med['keep'][0]:10.1f} {med['system'][0]:12.1f} {med['keep'][1]:9.1f} {med['system'][1]:11.1f} "
              f"{med['keep'][1] / med['system'][1]:16.2f}")
    for a in settings:
        first, *rest = keys
        for k in rest:
            ratio = statistics.median(x["rows"][k]["cpu_s"] / x["rows"][first]["cpu_s"] for x in runs[a])
            print(f"  {a}: {k} / {first} cpu time {ratio:.2f} (FLOP ratio {runs[a][0]['rows'][k]['flop_ratio']:.2f})")
    if args.json:
        args.json.write_text(json.dumps({**report, "runs": runs}, indent=2))
    return report


def build_parser() -> argparse.ArgumentParser:
    """The options of ``python -m studies.evaluate_speed``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-images", type=int, default=100, help="N images (target: 100)")
    p.add_argument("--max-shift", type=int, default=8, help="S: shifts on the [0, S)^2 grid (64 for S=8)")
    p.add_argument("--size", type=int, default=256, help="crop size H = W")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: metric's budget)")
    p.add_argument("--subset-images", type=int, default=1, help="images for the slow modes")
    p.add_argument("--subset-shifts", type=int, default=8, help="nonzero shifts for the slow modes")
    p.add_argument("--skip-slow", action="store_true", help="time only the batched path")
    p.add_argument("--num-downs", type=int, default=8)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--antialias", default="none",
                   help="generator, or comma-separated generators to compare interleaved (e.g. none,bin5: "
                        "the first is the baseline of the ratios)")
    p.add_argument("--variants", default="fp32",
                   help="with several generators: comma-separated fp32 | bf16 | channels_last | compile, "
                   "or options joined by '+' (bf16+compile)")
    p.add_argument("--what", choices=["crop", "full"], default="crop",
                   help="with several generators: crop = the crop-protocol metric alone; full = evaluate.py's "
                        "default metrics without feature layers (equal-bandwidth, spectrum, flicker, noise)")
    p.add_argument("--protocol", choices=["crop", "circular", "both"], default="both", help="for --what full")
    p.add_argument("--chunk", type=int, default=4, help="for --what full: images per chunk (evaluate.py's --chunk)")
    p.add_argument("--rounds", type=int, default=3, help="timed interleaved rounds (with several generators)")
    p.add_argument("--peak", type=Path, default=None, help="studies/peak.py --json output (fraction of peak)")
    p.add_argument("--allocator", choices=["keep", "system", "both"], default="keep",
                   help="keep: glibc malloc keeps freed memory (evaluate.py's default); system: glibc defaults; "
                        "both: an A/B of the two, each round one child process per setting (rotating order)")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (oneDNN)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads; on a CPU shared with other jobs 1 thread can beat 2 "
                        "(OpenMP threads wait for each other when a core is taken)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the test crops")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    return p


def main(argv=None) -> dict:
    """Time the batched stability metric (and, unless --skip-slow, one shift at a time and the
    naive loop on a subset), or compare generators interleaved; returns the figures."""
    args = build_parser().parse_args(argv)
    if args.allocator == "both":
        return allocator_ab(argv if argv is not None else sys.argv[1:], args)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.allocator == "keep":
        from pix2pix_aa.evaluation.speed import keep_freed_memory
        keep_freed_memory()
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, load average {os.getloadavg()} "
          f"(shared machine: compare only ratios measured in one run)")
    if "," in args.antialias or args.variants != "fp32" or args.what != "crop":
        report = compare_generators(args)
        if args.json:
            args.json.write_text(json.dumps(report, indent=2))
        return report

    G = build_generator(args)
    x = test_images(args.num_images, args.size, args.seed)
    source = reflect_pad_source(x, args.max_shift)
    if args.channels_last:
        source = source.contiguous(memory_format=torch.channels_last)
    report, t_batched = _time_batched(args, G, source)
    if not args.skip_slow:
        report.update(_time_slow_modes(args, G, source, t_batched))
    per_image = t_batched / args.num_images
    print(f"projected for 100 images x {report['num_shifts']} shifts at this size, batched: "
          f"{per_image * 100 / 60:.1f} min (target for 256x256 unet_256: < 5 min)")
    report["projected_100_images_minutes"] = per_image * 100 / 60
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


def _time_batched(args: argparse.Namespace, G: torch.nn.Module, source: torch.Tensor) -> tuple[dict, float]:
    """(figures, seconds) of the batched crop-protocol metric over every shift, after a warm-up."""
    shifts = shift_grid(args.max_shift)
    nonzero = [s for s in shifts if s != (0, 0)]
    bs = args.batch_size or default_batch_size((3, args.size, args.size))
    forwards = args.num_images * (1 + len(nonzero))
    print(f"unet ngf={args.ngf} num_downs={args.num_downs} antialias={args.antialias}, {args.num_images} images "
          f"x {len(shifts)} shifts ({len(nonzero)} nonzero + 1 reference) at {args.size}x{args.size}, "
          f"{torch.get_num_threads()} threads, batch_size={bs}")

    with torch.inference_mode():
        # Warm-up of both batch shapes used below (allocator, oneDNN primitive creation), so that
        # neither mode pays the one-time costs inside its timing.
        for n in sorted({1, min(bs, forwards)}):
            G(source[:1, :, :args.size, :args.size].expand(n, -1, -1, -1).contiguous())
        res, t_batched = timed(lambda: stability_crop(G, source, args.size, shifts, batch_size=bs))
    report = {
        "num_images": args.num_images, "num_shifts": len(shifts), "size": args.size, "batch_size": bs,
        "threads": torch.get_num_threads(), "forward_passes": forwards,
        "batched_seconds": t_batched, "batched_images_per_s": forwards / t_batched,
        "test_images_per_s": args.num_images / t_batched,
        "mean_psnr": res.mean_psnr, "pooled_psnr": res.pooled_psnr,
    }
    print(f"batched:             {t_batched:8.1f} s total, {forwards / t_batched:6.2f} images/s through G "
          f"({args.num_images / t_batched:.3f} test images/s with all {len(shifts)} shifts); "
          f"stability mean {res.mean_psnr:.2f} dB, pooled {res.pooled_psnr:.2f} dB")
    return report, t_batched


def _time_slow_modes(args: argparse.Namespace, G: torch.nn.Module, source: torch.Tensor, t_batched: float) -> dict:
    """One shift at a time and the naive loop, timed on a subset and extrapolated to the full job."""
    shifts = shift_grid(args.max_shift)
    nonzero = [s for s in shifts if s != (0, 0)]
    forwards = args.num_images * (1 + len(nonzero))
    ni = min(args.subset_images, args.num_images)
    sub_shifts = nonzero[:args.subset_shifts]
    sub_source = source[:ni]
    with torch.inference_mode():
        _, t_one = timed(lambda: stability_crop(G, sub_source, args.size, sub_shifts, batch_size=1))
        _, t_naive = timed(lambda: naive_loop(G, sub_source, args.size, sub_shifts))
    # Per-forward cost from the subset, scaled to the full job count of each mode.
    one_full = t_one / (ni * (1 + len(sub_shifts))) * forwards
    naive_full = t_naive / (ni * 2 * len(sub_shifts)) * (args.num_images * 2 * len(nonzero))
    figures = dict(one_at_a_time_seconds_extrapolated=one_full, naive_seconds_extrapolated=naive_full,
                   subset=[ni, len(sub_shifts)], speedup_vs_one_at_a_time=one_full / t_batched,
                   speedup_vs_naive=naive_full / t_batched)
    print(f"one shift at a time: {one_full:8.1f} s (extrapolated from {ni} image(s) x {len(sub_shifts)} "
          f"shifts, {t_one:.1f} s), {forwards / one_full:6.2f} images/s")
    print(f"naive loop:          {naive_full:8.1f} s (extrapolated from {ni} image(s) x {len(sub_shifts)} "
          f"shifts, {t_naive:.1f} s; 2 forward passes per shift)")
    print(f"speed-up of batched: {one_full / t_batched:.2f}x vs one shift at a time, "
          f"{naive_full / t_batched:.2f}x vs the naive loop")
    return figures


if __name__ == "__main__":
    main()
