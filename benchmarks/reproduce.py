"""Reproduction study: baseline vs Rect-2 / Tri-3 / Bin-5 / APS pix2pix U-Nets on the procedural
facades, trained with identical seed, data and budget, then evaluated for stability and quality.
Writes docs/RESULTS.md (every number on it comes from this run) and its figures.

    python benchmarks/reproduce.py                      # train what is missing, evaluate, write the page
    python benchmarks/reproduce.py --parallel 2 --threads 1

Scale (why): configs/cpu_quick.yaml, 128x128 (num_downs 7), ngf = ndf = 32, batch 4, 12 epochs of
the 400 training facades. A 2-core CPU trains one such model in ~8-15 minutes, so five models and
their evaluation fit in ~1-2 hours; the full 256x256 recipe (configs/facades_*.yaml) would take
days here. APS uses configs/cpu_quick_aps.yaml (the same, with the circular padding APS needs).

Each model is trained by the public command (`train.py fit`) in a subprocess whose log is in
logs/; a finished run is not trained again, an interrupted one resumes from last.ckpt. Training
time is read from the run's TensorBoard events (first to last training scalar).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pix2pix_aa.demo import VERSION, run_dir, train_command  # noqa: E402  (the same runs as `make demo`)

VARIANTS = {  # name -> (config, antialias)
    "baseline": ("configs/cpu_quick.yaml", "none"),
    "rect2": ("configs/cpu_quick.yaml", "rect2"),
    "tri3": ("configs/cpu_quick.yaml", "tri3"),
    "bin5": ("configs/cpu_quick.yaml", "bin5"),
    "aps": ("configs/cpu_quick_aps.yaml", "aps"),
}
DOCS = ROOT / "docs"
FIGS = DOCS / "images" / "results"


def run_name(variant: str, seed: int = 0) -> str:
    """Seed 0 is the study's own run; other seeds (benchmarks/seeds.py) get their own folder."""
    return variant if seed == 0 else f"{variant}_seed{seed}"


def train(variant: str, threads: int, seed: int = 0, extra: tuple[str, ...] = ()) -> None:
    config, antialias = VARIANTS[variant]
    name = run_name(variant, seed)
    seed_args = ["--seed_everything", str(seed)] if seed else []
    cmd = train_command(name, antialias, config, ["--trainer.enable_progress_bar", "false", *seed_args, *extra])
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    log = ROOT / "logs" / f"repro_{name}.log"
    log.parent.mkdir(exist_ok=True)
    print(f"[train] {name}: {' '.join(cmd[1:])}  (log: {log.relative_to(ROOT)})", flush=True)
    with log.open("a") as f:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    print(f"[train] {name}: done", flush=True)


def training_minutes(name: str) -> float:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir(name)), size_guidance={"scalars": 0})
    events.Reload()
    steps = events.Scalars("train/loss_G_step")
    return (steps[-1].wall_time - steps[0].wall_time) / 60


def evaluate(names: list[str], out: Path, max_images: int, processes: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "evaluate.py", *[str(run_dir(n)) for n in names], "--max-images", str(max_images),
           "--out", str(out), "--no-progress", "--num-processes", str(processes), *extra]
    print(f"[evaluate] {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads((out / "results.json").read_text())


def ensure_data() -> None:
    """The cross-distribution sets: facades drawn with another seed, and scikit-image photographs."""
    if not (ROOT / "data" / "facades_seed1").exists():
        subprocess.run([sys.executable, "-m", "pix2pix_aa.data.facades", "--out", "data/facades_seed1", "--seed", "1",
                        "--train", "0", "--val", "0", "--test", "50"], cwd=ROOT, check=True)


# ---------------------------------------------------------------------------- figures
def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def figure_feature_distance(results: dict, labels: dict[str, str], path: Path) -> None:
    """Rows: models (baseline, bin5, aps); columns: layers; per-layer heatmaps over (dy, dx) on one scale."""
    import numpy as np

    plt = _plt()
    rows = [n for n in ("baseline", "bin5", "aps") if n in labels]
    feats = {n: results["models"][labels[n]]["features"] for n in rows}
    layers = [l for l in feats[rows[0]]["layers"]]
    pick = [l for l in ("enc1", "enc2", "enc3", "enc5", "enc7", "dec6", "dec4", "dec2", "out") if l in layers]
    grids = {(n, l): np.array(feats[n]["distance"][l], dtype=float) for n in rows for l in pick}
    vmax = max(np.nanmax(g) for g in grids.values())
    fig, axes = plt.subplots(len(rows), len(pick), figsize=(1.6 * len(pick), 1.75 * len(rows)), squeeze=False)
    for i, n in enumerate(rows):
        for j, l in enumerate(pick):
            ax = axes[i, j]
            im = ax.imshow(np.ma.masked_invalid(grids[(n, l)]), vmin=0, vmax=vmax, cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(f"{l} (s={feats[n]['strides'][l]})", fontsize=8)
            if j == 0:
                ax.set_ylabel(n, fontsize=9)
    fig.colorbar(im, ax=axes, shrink=0.8, label="cosine distance")
    fig.suptitle("Internal feature distance over input shifts (dy, dx) in [0, 8)^2 (darker = more equivariant)",
                 fontsize=9)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def figure_stability_vs_shift(results: dict, labels: dict[str, str], protocol: str, path: Path) -> None:
    """Mean PSNR per shift, shifts ordered by distance from (0, 0), one line per model."""
    import numpy as np

    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 3.4))
    for name, label in labels.items():
        res = results["models"][label][protocol]
        grid = np.array(res["per_shift_psnr"], dtype=float)
        shifts = sorted(((dy, dx) for dy, dx in res["shifts"]), key=lambda s: (s[0] ** 2 + s[1] ** 2, s))
        ax.plot(range(len(shifts)), [grid[s] for s in shifts], marker=".", lw=1, label=name)
    ax.set_xlabel("shift (dy, dx), sorted by length")
    ax.set_xticks(range(0, len(shifts), 6), [f"{s[0]},{s[1]}" for s in shifts[::6]], fontsize=7)
    ax.set_ylabel("stability PSNR (dB)")
    ax.set_title(f"{protocol} protocol: PSNR of G(shift(x)) vs shift(G(x))", fontsize=9)
    ax.legend(fontsize=8, ncol=len(labels))
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def figure_shifted_outputs(names: list[str], path: Path, shift=(3, 5), index: int = 0) -> None:
    """One test input at two shifts, and each model's two outputs on the common region with
    their amplified difference (x8): where the output depends on the input's position."""
    import torch
    import torchvision

    from pix2pix_aa.data import AlignedDataset
    from pix2pix_aa.evaluation.checkpoints import load_generator
    from pix2pix_aa.metrics import reflect_pad_source

    dataset = AlignedDataset(ROOT / "data" / "facades", split="test", direction="BtoA", load_size=128, crop_size=128)
    x = dataset[index]["input"][None]
    dy, dx = shift
    source = reflect_pad_source(x, 8)
    x0, xs = source[..., :128, :128], source[..., dy:dy + 128, dx:dx + 128]
    tiles = []
    with torch.inference_mode():
        for name in names:
            g = load_generator(run_dir(name) / "checkpoints" / "last.ckpt").generator
            y0, ys = g(x0)[..., dy:, dx:], g(xs)[..., :128 - dy, :128 - dx]
            diff = ((y0 - ys).abs() * 8).clamp(0, 2) - 1
            pad = lambda t: torch.nn.functional.pad(t, (0, dx, 0, dy), value=1.0)  # noqa: E731
            tiles += [x0, xs, pad(y0), pad(ys), pad(diff)]
    grid = torchvision.utils.make_grid((torch.cat(tiles) + 1) / 2, nrow=5, padding=3, pad_value=1.0)
    torchvision.utils.save_image(grid, path)


# ---------------------------------------------------------------------------- page
def table(results: dict, labels: dict[str, str], minutes: dict[str, float] | None) -> str:
    head = ("| model | crop mean (dB) | crop pooled (dB) | circular mean (dB) | circular pooled (dB) | "
            "PSNR to target (dB) | SSIM | L1 | TV (target) |" + (" train min |" if minutes else ""))
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, label in labels.items():
        r = results["models"][label]["row"]
        lines.append(
            f"| {name} | {r['stability_crop_db']:.2f} | {r['stability_crop_pooled_db']:.2f} | "
            f"{r['stability_circular_db']:.2f} | {r['stability_circular_pooled_db']:.2f} | {r['quality_psnr']:.2f} | "
            f"{r['quality_ssim']:.3f} | {r['quality_l1']:.3f} | {r['quality_tv']:.4f} ({r['quality_tv_target']:.4f}) |"
            + (f" {minutes[name]:.1f} |" if minutes else ""))
    return "\n".join(lines)


def order_statement(results: dict, labels: dict[str, str], key: str, expected: list[str]) -> str:
    present = [n for n in expected if n in labels]
    vals = {n: results["models"][labels[n]]["row"][key] for n in present}
    observed = sorted(present, key=lambda n: vals[n])
    holds = observed == present
    return (f"expected {' < '.join(present)}; observed {' < '.join(f'{n} ({vals[n]:.2f})' for n in observed)}: "
            f"**{'agrees' if holds else 'does not agree'}**")


def write_page(main: dict, seed1: dict, photos: dict, labels: dict[str, str], minutes: dict[str, float],
               args: argparse.Namespace, seconds: float) -> None:
    opts = main["options"]
    rows_main = table(main, labels, minutes)
    base_q = main["models"][labels["baseline"]]["row"]["quality_psnr"]
    q_spread = {n: main["models"][l]["row"]["quality_psnr"] - base_q for n, l in labels.items()}
    base_row = main["models"][labels["baseline"]]["row"]
    tv_change = {n: main["models"][l]["row"]["quality_tv"] / base_row["quality_tv"] - 1 for n, l in labels.items()}
    tv_target_change = base_row["quality_tv_target"] / base_row["quality_tv"] - 1
    aps = main["models"].get(labels.get("aps", ""), {}).get("circular")
    aps_min = None
    if aps:
        import numpy as np

        aps_min = float(np.nanmin(np.array(aps["per_shift_psnr"], dtype=float)))
    text = f"""# Reproduction study: anti-aliased pix2pix on procedural facades

Regenerate everything on this page (numbers and figures) with:

```bash
python benchmarks/reproduce.py {' '.join(args.passthrough)}
```

Setup: {len(labels)} generators ({', '.join(labels)}) trained with `configs/cpu_quick.yaml` (APS:
`configs/cpu_quick_aps.yaml`, the same with circular padding): procedural facades, labels -> photo,
128x128 (num_downs 7), ngf = ndf = 32, batch 4, 12 epochs (6 constant + 6 decay), seed 0, same data
and order for every model. Stability: every shift of the {opts['max_shift']}x{opts['max_shift']} grid
({sum(1 for s in opts['shifts'] if tuple(s) != (0, 0))} nonzero shifts), generators in eval mode, PSNR with data range 2; crop protocol
= shifted windows of the reflect-padded test image compared on their common region; circular =
torch.roll. Quality: PSNR / SSIM / L1 to the ground-truth photo, total variation of the outputs (TV of
the targets in brackets). Study wall time: {seconds / 60:.0f} min on this machine (2 CPU cores, trainings
{args.parallel} at a time with {args.threads} thread(s) each). Training minutes are wall time from the
run's TensorBoard events; with `--parallel` > 1 a model that ran alone (here the last one started)
had a core to itself and looks faster than its FLOPs say: see docs/PERFORMANCE.md for the
interleaved per-mode costs.

## Main table: facades test split ({main['models'][labels['baseline']]['crop']['num_images']} images, same generator seed as training)

{rows_main}

## Other inputs (same trained models)

Facades drawn with another seed (seed 1: layouts and textures never seen in training):

{table(seed1, labels, None)}

Real photographs bundled with scikit-image ({photos['models'][labels['baseline']]['crop']['num_images']} test images), as edge maps -> photo (a different
distribution: the models never saw edge maps, so quality is meaningless here; stability still
measures how the output moves with the input):

{table(photos, labels, None)}

## Claims checked

- Stability order, crop protocol (mean): {order_statement(main, labels, 'stability_crop_db',
                                                        ['baseline', 'rect2', 'tri3', 'bin5'])}.
- Stability order, crop protocol (pooled): {order_statement(main, labels, 'stability_crop_pooled_db',
                                                          ['baseline', 'rect2', 'tri3', 'bin5'])}.
- Stability order, circular protocol (mean): {order_statement(main, labels, 'stability_circular_db',
                                                            ['baseline', 'rect2', 'tri3', 'bin5'])}.
- Same order on seed-1 facades (crop, mean): {order_statement(seed1, labels, 'stability_crop_db',
                                                            ['baseline', 'rect2', 'tri3', 'bin5'])}.
- APS circular stability, worst shift: {f'{aps_min:.1f} dB' if aps_min is not None else 'n/a'}
  (expected >= 80 dB: **{'agrees' if aps_min is not None and aps_min >= 80 else 'does not agree'}**).
- Quality beside stability, PSNR to target relative to the baseline:
  {', '.join(f'{n} {d:+.2f} dB' for n, d in q_spread.items())}
  (within 0.5 dB of the baseline for every model: **{'yes' if all(abs(d) <= 0.5 for d in q_spread.values()) else 'no'}**).
- Smoothness beside stability (a blurrier output is more stable for free): total variation of the
  outputs relative to the baseline: {', '.join(f'{n} {t:+.0%}' for n, t in tv_change.items())}; the
  targets' TV is {tv_target_change:+.0%} from the baseline's outputs. Where a model's outputs are much
  smoother than the targets, part of its stability gain is smoothing, not equivariance.

How to read these: the crop protocol is what a user sees when an image is re-cropped; its
differences between filters are the paper's claim. The circular protocol isolates the network's
own equivariance (no new content enters at the border) and is where APS is exact. These
briefly trained 128 px networks are far from the paper's 200-epoch 256 px models, so absolute dB
values are not comparable with the paper's table; the order between filters is what is tested.
One seed per model here; [RESULTS_SEEDS.md](RESULTS_SEEDS.md) trains every model again with two
more seeds (`benchmarks/seeds.py`) and says which gaps survive the seed-to-seed spread.

## Figures

Internal feature distance per layer (baseline vs Bin-5 vs APS), like the paper's figure:

![feature distance](images/results/feature_distance.png)

Stability per shift:

![crop](images/results/stability_vs_shift_crop.png)
![circular](images/results/stability_vs_shift_circular.png)

One test input at shift (0, 0) and (3, 5); per model: the two inputs, the two outputs on their
common region, and their difference x8 (rows: {', '.join(args.figure_models)}):

![shifted outputs](images/results/shifted_outputs.png)

Per-model heatmaps and the raw results (JSON/CSV) are in `outputs/repro/` after a run, and in
TensorBoard under each run's `evaluation/` (`tensorboard --logdir runs`).
"""
    (DOCS / "RESULTS.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--parallel", type=int, default=1, help="trainings at a time")
    p.add_argument("--threads", type=int, default=2, help="torch threads per training")
    p.add_argument("--max-images", type=int, default=50, help="test images to evaluate")
    p.add_argument("--eval-processes", type=int, default=2, help="evaluate.py --num-processes")
    p.add_argument("--skip-train", action="store_true", help="evaluate existing runs only")
    p.add_argument("--render-only", action="store_true",
                   help="redraw figures and the page from the results already in outputs/repro (no training or evaluation)")
    args = p.parse_args(argv)
    args.passthrough = [a for a in (argv if argv is not None else sys.argv[1:])]
    args.figure_models = [n for n in ("baseline", "bin5", "aps") if n in args.variants]
    if "baseline" not in args.variants:
        p.error("the study needs the baseline")
    start = time.perf_counter()
    if args.render_only:
        args.skip_train = True
    if not args.skip_train:
        # Longest first (anti-aliased models are slower), so parallel slots finish together.
        order = sorted(args.variants, key=lambda n: n == "baseline")
        with ThreadPoolExecutor(max_workers=args.parallel) as pool:
            list(pool.map(lambda n: train(n, args.threads), order))
    ensure_data()
    names = [n for n in VARIANTS if n in args.variants]  # tables in the canonical order
    out = ROOT / "outputs" / "repro"
    if args.render_only:
        main_res, seed1, photos = (json.loads((out / d / "results.json").read_text())
                                   for d in ("facades", "facades_seed1", "photos"))
    else:
        main_res, seed1, photos = run_evaluations(names, out, args)
    labels = {n: f"cpu_quick_{n}/{VERSION}/last" for n in names}
    FIGS.mkdir(parents=True, exist_ok=True)
    figure_feature_distance(main_res, labels, FIGS / "feature_distance.png")
    for protocol in ("crop", "circular"):
        figure_stability_vs_shift(main_res, labels, protocol, FIGS / f"stability_vs_shift_{protocol}.png")
    figure_shifted_outputs(args.figure_models, FIGS / "shifted_outputs.png")
    minutes = {n: training_minutes(n) for n in names}
    if args.render_only:  # keep the wall time and command of the run that produced the numbers
        study = json.loads((out / "study.json").read_text())
        seconds, args.passthrough = study["seconds"], study["argv"]
        stored = p.parse_args(study["argv"])
        args.parallel, args.threads = stored.parallel, stored.threads
    else:
        seconds = time.perf_counter() - start
        (out / "study.json").write_text(json.dumps({"seconds": seconds, "argv": args.passthrough}))
    write_page(main_res, seed1, photos, labels, minutes, args, seconds)
    shutil.copy(out / "facades" / "results.json", FIGS / "results_facades.json")
    print(f"wrote {DOCS / 'RESULTS.md'} and {FIGS}", flush=True)
    return 0


def run_evaluations(names: list[str], out: Path, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    main_res = evaluate(names, out / "facades", args.max_images, args.eval_processes, [])
    seed1 = evaluate(names, out / "facades_seed1", args.max_images, args.eval_processes,
                     ["--dataset", "aligned", "--data-dir", "data/facades_seed1", "--layers", "none", "--no-tensorboard"])
    photos = evaluate(names, out / "photos", args.max_images, args.eval_processes,
                      ["--dataset", "photos", "--data-dir", "data/photos", "--layers", "none", "--no-tensorboard"])
    return main_res, seed1, photos


if __name__ == "__main__":
    sys.exit(main())
