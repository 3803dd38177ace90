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
    .venv/bin/python benchmarks/evaluate.py --num-images 2 --subset-shifts 4
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pix2pix_aa.metrics import reflect_pad_source, shift_grid, stability_crop  # noqa: E402
from pix2pix_aa.metrics._batching import default_batch_size  # noqa: E402


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


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num-images", type=int, default=100, help="N images (issue target: 100)")
    p.add_argument("--max-shift", type=int, default=8, help="S: shifts on the [0, S)^2 grid (64 for S=8)")
    p.add_argument("--size", type=int, default=256, help="crop size H = W")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward pass (default: metric's budget)")
    p.add_argument("--subset-images", type=int, default=1, help="images for the slow modes")
    p.add_argument("--subset-shifts", type=int, default=8, help="nonzero shifts for the slow modes")
    p.add_argument("--skip-slow", action="store_true", help="time only the batched path")
    p.add_argument("--num-downs", type=int, default=8)
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--antialias", default="none")
    p.add_argument("--channels-last", action="store_true", help="channels_last memory format (oneDNN)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch.set_num_threads; on a CPU shared with other jobs 1 thread can beat 2 "
                        "(OpenMP threads wait for each other when a core is taken)")
    p.add_argument("--seed", type=int, default=0, help="seed of the weights and the test crops")
    p.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = p.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    G = build_generator(args)
    x = test_images(args.num_images, args.size, args.seed)
    source = reflect_pad_source(x, args.max_shift)
    if args.channels_last:
        source = source.contiguous(memory_format=torch.channels_last)
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

    if not args.skip_slow:
        ni = min(args.subset_images, args.num_images)
        sub_shifts = nonzero[:args.subset_shifts]
        sub_source = source[:ni]
        with torch.inference_mode():
            _, t_one = timed(lambda: stability_crop(G, sub_source, args.size, sub_shifts, batch_size=1))
            _, t_naive = timed(lambda: naive_loop(G, sub_source, args.size, sub_shifts))
        # Per-forward cost from the subset, scaled to the full job count of each mode.
        one_full = t_one / (ni * (1 + len(sub_shifts))) * forwards
        naive_full = t_naive / (ni * 2 * len(sub_shifts)) * (args.num_images * 2 * len(nonzero))
        report.update(one_at_a_time_seconds_extrapolated=one_full, naive_seconds_extrapolated=naive_full,
                      subset=[ni, len(sub_shifts)], speedup_vs_one_at_a_time=one_full / t_batched,
                      speedup_vs_naive=naive_full / t_batched)
        print(f"one shift at a time: {one_full:8.1f} s (extrapolated from {ni} image(s) x {len(sub_shifts)} "
              f"shifts, {t_one:.1f} s), {forwards / one_full:6.2f} images/s")
        print(f"naive loop:          {naive_full:8.1f} s (extrapolated from {ni} image(s) x {len(sub_shifts)} "
              f"shifts, {t_naive:.1f} s; 2 forward passes per shift)")
        print(f"speed-up of batched: {one_full / t_batched:.2f}x vs one shift at a time, "
              f"{naive_full / t_batched:.2f}x vs the naive loop")
    per_image = t_batched / args.num_images
    print(f"projected for 100 images x {len(shifts)} shifts at this size, batched: "
          f"{per_image * 100 / 60:.1f} min (target for 256x256 unet_256: < 5 min)")
    report["projected_100_images_minutes"] = per_image * 100 / 60
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
