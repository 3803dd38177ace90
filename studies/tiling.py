"""Seam visibility of tiled inference, baseline vs anti-aliased: a figure of |tiled - whole|.

    .venv/bin/python -m studies.tiling                       # the cpu_quick design-study runs if present
    .venv/bin/python -m studies.tiling --ckpt base=runs/a/last.ckpt --ckpt bin5=runs/b/last.ckpt
    .venv/bin/python -m studies.tiling --untrained           # and fresh U-Nets (normal(0, 0.02) init)

What it does: one procedural facade label map (``render_pair``, ``--size`` px, seed ``--seed``)
goes through each generator three ways, in eval mode: whole (padded to 2**num_downs and cropped
back, as ``predict`` does), tiled on the grid (``tiled_generate`` with ``--tile`` /
``--tile-overlap``, what ``predict --data.tile`` runs), and tiled *off* the grid (the same tiles,
stride ``tile - overlap`` reduced by half a grid step, so every other tile sits half a step off:
what a tiler that ignores the grid would do). The figure shows, per generator, the whole output
and |tiled - whole| (mean over channels, [0, 1] units, one colour scale for all panels) for both
tilings; the printed table gives the mean and max difference and the PSNR of tiled against whole.

On the grid the two differ only near the seams, by the tiles' own border effects; off the grid
the interiors differ too, by as much as the generator is not shift-invariant, which is what
anti-aliasing reduces. Nothing here is trained; the checkpoints are read only.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from pix2pix_aa.layers.padding import pad_to_multiple
from pix2pix_aa.tiling import ramp_weights, resolve_overlap

DEFAULT_RUNS = {"baseline": "runs/cpu_quick_design_baseline_s0", "bin5": "runs/cpu_quick_design_bin5_s0"}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", action="append", default=[], metavar="LABEL=PATH",
                   help="a checkpoint (or run folder: its last.ckpt) to compare; repeatable")
    p.add_argument("--untrained", action="store_true",
                   help="add fresh generators of the cpu_quick shape (num_downs 7, ngf 32; baseline and bin5, "
                        "normal(0, 0.02) init) to the comparison (alone when no checkpoint is given or found)")
    p.add_argument("--size", type=int, default=512, help="side of the input image (default 512)")
    p.add_argument("--seed", type=int, default=3, help="seed of the procedural facade")
    p.add_argument("--tile", type=int, default=256)
    p.add_argument("--tile-overlap", type=int, default=128)
    p.add_argument("--out", default="docs/images/tiling_seams.png")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args(argv)


def _untrained() -> list[tuple[str, torch.nn.Module]]:
    from pix2pix_aa.networks import UNetGenerator, init_weights

    out = []
    for label, aa in (("baseline (untrained)", "none"), ("bin5 (untrained)", "bin5")):
        torch.manual_seed(0)
        g = UNetGenerator(num_downs=7, ngf=32, antialias=aa)
        init_weights(g, "normal", 0.02)
        out.append((label, g.eval()))
    return out


def _generators(args: argparse.Namespace) -> list[tuple[str, torch.nn.Module]]:
    from pix2pix_aa.evaluation.checkpoints import find_checkpoints, load_generator

    specs = [c.split("=", 1) if "=" in c else (Path(c).stem, c) for c in args.ckpt]
    if not specs:
        specs = [(k, v) for k, v in DEFAULT_RUNS.items() if Path(v).exists()]
        if not specs and not args.untrained:
            raise SystemExit(f"none of {list(DEFAULT_RUNS.values())} exists: pass --ckpt LABEL=PATH or --untrained")
    out = _untrained() if args.untrained else []
    for label, path in specs:
        (found,) = find_checkpoints([path])[:1]
        loaded = load_generator(found)
        out.append((f"{label} (epoch {loaded.epoch})", loaded.generator.eval()))
    return out


def _tiled(generator: torch.nn.Module, x: torch.Tensor, tile: int, starts_y: list[int], starts_x: list[int],
           overlap: int) -> torch.Tensor:
    """The blend of ``tiled_generate`` at given tile starts (to place tiles off the grid)."""
    h, w = x.shape[-2:]
    out, weight = None, torch.zeros(1, 1, h, w)
    for y0 in starts_y:
        for x0 in starts_x:
            wt = ramp_weights(y0, tile, h, overlap)[:, None] * ramp_weights(x0, tile, w, overlap)[None, :]
            piece = generator(x[..., y0:y0 + tile, x0:x0 + tile])
            out = torch.zeros(x.shape[0], piece.shape[1], h, w) if out is None else out
            out[..., y0:y0 + tile, x0:x0 + tile] += piece * wt
            weight[..., y0:y0 + tile, x0:x0 + tile] += wt
    return out / weight


def _starts(length: int, tile: int, stride: int) -> list[int]:
    s = list(range(0, length - tile, stride))
    return s + [length - tile]


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a - b) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1 / mse)


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    torch.set_num_threads(args.threads)
    from pix2pix_aa.data.facades import render_pair

    labels = render_pair(args.seed, "test", 0, size=args.size)[:, args.size:]  # B = the label map
    x = torch.from_numpy(np.ascontiguousarray(labels)).permute(2, 0, 1)[None].float() / 127.5 - 1
    rows = []
    for label, g in _generators(args):
        m = int(getattr(g, "size_multiple", 1))
        overlap = resolve_overlap(args.tile, args.tile_overlap, m)
        xp = pad_to_multiple(x, m)
        h, w = xp.shape[-2:]
        if h <= args.tile or w <= args.tile:
            raise SystemExit(f"--size {args.size} gives one tile of {args.tile}: use a larger --size or smaller --tile")
        stride = args.tile - overlap
        off = max(1, m // 2)
        with torch.no_grad():
            whole = (g(xp) + 1) / 2
            on_grid = (_tiled(g, xp, args.tile, _starts(h, args.tile, stride), _starts(w, args.tile, stride),
                              overlap) + 1) / 2
            off_starts = lambda n, stride=stride, off=off: _starts(n, args.tile, stride - off)  # noqa: E731
            off_grid = (_tiled(g, xp, args.tile, off_starts(h), off_starts(w), overlap) + 1) / 2
        rows.append((label, whole, on_grid, off_grid, m, overlap, off))
        for name, t in (("on grid", on_grid), (f"off grid (stride {stride - off})", off_grid)):
            d = (t - whole).abs()
            print(f"{label:28s} {name:24s} mean |diff| {float(d.mean()):.5f}  max {float(d.max()):.4f}  "
                  f"PSNR vs whole {_psnr(t, whole):6.2f} dB", flush=True)

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vmax = max(float((r[k] - r[1]).abs().mean(1).max()) for r in rows for k in (2, 3)) or 1.0
    fig, axes = plt.subplots(len(rows), 4, figsize=(14, 3.4 * len(rows)), squeeze=False)
    for i, (label, whole, on_grid, off_grid, m, _overlap, off) in enumerate(rows):
        axes[i, 0].imshow((x[0].permute(1, 2, 0).numpy() + 1) / 2)
        axes[i, 0].set_title("input (label map)", fontsize=9)
        axes[i, 1].imshow(whole[0].permute(1, 2, 0).clamp(0, 1).numpy())
        axes[i, 1].set_title(f"{label}: whole", fontsize=9)
        for j, (t, name) in enumerate(((on_grid, f"on the {m}-px grid"),
                                       (off_grid, f"off the grid (+{off} px)")), start=2):
            d = (t - whole).abs().mean(1)[0].numpy()
            im = axes[i, j].imshow(d, cmap="magma", vmin=0, vmax=vmax)
            axes[i, j].set_title(f"|tiled - whole|, {name}\nmean {d.mean():.4f}, max {d.max():.3f}", fontsize=8)
        for ax in axes[i]:
            ax.set_xticks([]), ax.set_yticks([])
    fig.colorbar(im, ax=axes[:, 2:].ravel().tolist(), shrink=0.8, label="|tiled - whole| ([0, 1] units)")
    fig.suptitle(f"Tiled inference: tile {args.tile}, overlap {rows[0][5]}, input {args.size}x{args.size}", fontsize=11)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
