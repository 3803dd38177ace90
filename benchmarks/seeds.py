"""Seed variation of the reproduction study: are the differences between filters larger than
what another training seed changes?

    python benchmarks/seeds.py --parallel 2 --threads 1      # seeds 1 and 2 of every variant
    python benchmarks/seeds.py --render-only                 # rewrite the page from outputs/repro/seeds

Seed 0 is the study's own run (benchmarks/reproduce.py, docs/RESULTS.md); this script trains
each variant again with seeds 1, 2 (``--seed_everything k --data.seed k``: initialisation, data
order, crops, flips and dropout all change), otherwise exactly the study's recipe, including the
optimiser implementation the seed-0 runs were trained with (``--model.fused_adam false``: those
runs predate the fused default, so the comparison stays like for like). Every run, seed 0
included, is then evaluated the same way (facades test split, crop and circular protocols, all
63 shifts, quality beside them) and the page docs/RESULTS_SEEDS.md reports mean +- standard
deviation over seeds, per-seed values, and whether each gap to the baseline exceeds the spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reproduce import DOCS, ROOT, VARIANTS, evaluate, run_dir, run_name, train  # noqa: E402

from pix2pix_aa.demo import VERSION  # noqa: E402

OUT = ROOT / "outputs" / "repro" / "seeds"
KEYS = {  # results row key -> column title
    "stability_crop_db": "crop mean (dB)",
    "stability_crop_pooled_db": "crop pooled (dB)",
    "stability_circular_db": "circular mean (dB)",
    "quality_psnr": "PSNR to target (dB)",
    "quality_ssim": "SSIM",
    "quality_tv": "TV",
}
#: A seed-0 run trained before the fused-Adam default must be compared with runs using the same Adam.
TRAIN_EXTRA = ("--data.seed", "{seed}", "--model.fused_adam", "false")


def label(variant: str, seed: int) -> str:
    return f"cpu_quick_{run_name(variant, seed)}/{VERSION}/last"


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def write_page(results: dict, variants: list[str], seeds: list[int], argv: list[str], seconds: float) -> None:
    rows = {v: {s: results["models"][label(v, s)]["row"] for s in seeds} for v in variants}
    fmt = {k: (".3f" if k in ("quality_ssim",) else ".4f" if k == "quality_tv" else ".2f") for k in KEYS}
    head = "| model | " + " | ".join(KEYS.values()) + " |"
    lines = [head, "|" + "---|" * (len(KEYS) + 1)]
    for v in variants:
        cells = []
        for k in KEYS:
            m, sd = mean_sd([rows[v][s][k] for s in seeds])
            cells.append(f"{m:{fmt[k]}} +- {sd:{fmt[k]}}")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    per_seed = ["| model | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|" + "---|" * (len(seeds) + 1)]
    for v in variants:
        per_seed.append(f"| {v} | " + " | ".join(f"{rows[v][s]['stability_crop_db']:.2f}" for s in seeds) + " |")
    # Gap to the baseline vs seed spread (crop mean): Welch's t statistic, and the paired view
    # (same seed index: same data order, so seed-matched differences are the fairer comparison).
    verdicts = []
    base = [rows["baseline"][s]["stability_crop_db"] for s in seeds]
    for v in variants:
        if v == "baseline":
            continue
        vals = [rows[v][s]["stability_crop_db"] for s in seeds]
        diffs = [a - b for a, b in zip(vals, base)]
        dm, dsd = mean_sd(diffs)
        sign = "all seeds" if all(d > 0 for d in diffs) else "no seed" if all(d < 0 for d in diffs) else "mixed"
        verdicts.append(f"| {v} | {dm:+.2f} | {dsd:.2f} | {', '.join(f'{d:+.2f}' for d in diffs)} | {sign} |")
    orders = []
    expected = [v for v in ("baseline", "rect2", "tri3", "bin5") if v in variants]
    for s in seeds:
        observed = sorted(expected, key=lambda v: rows[v][s]["stability_crop_db"])
        orders.append(f"seed {s}: {' < '.join(observed)} ({'agrees' if observed == expected else 'does not agree'})")
    means = {v: mean_sd([rows[v][s]["stability_crop_db"] for s in seeds])[0] for v in expected}
    holds = [v for v in variants[1:] if all(rows[v][s]["stability_crop_db"] > rows["baseline"][s]["stability_crop_db"]
                                           for s in seeds)]
    mixed = [v for v in variants[1:] if v not in holds]
    tv = {v: mean_sd([rows[v][s]["quality_tv"] for s in seeds])[0] for v in variants}
    tv_target = rows["baseline"][seeds[0]]["quality_tv_target"]
    mean_order = sorted(expected, key=lambda v: means[v])
    opts = results["options"]
    n_images = results["models"][label(variants[0], seeds[0])]["crop"]["num_images"]
    text = f"""# Seed variation of the reproduction study

Regenerate with `python benchmarks/seeds.py {' '.join(argv)}` ({seconds / 60:.0f} min on this
2-core machine). Same recipe as [RESULTS.md](RESULTS.md) (`configs/cpu_quick.yaml`, 128x128,
ngf = ndf = 32, batch 4, 12 epochs; APS with `configs/cpu_quick_aps.yaml`); seed 0 is the study's
own run, seeds {', '.join(map(str, seeds[1:]))} change the initialisation, data order, crops, flips and
dropout (`--seed_everything k --data.seed k`) and nothing else (same Adam implementation as the
seed-0 runs: `--model.fused_adam false`). Evaluation: facades test split, {n_images} images, every
shift of the {opts['max_shift']}x{opts['max_shift']} grid, generators in eval mode, PSNR with data range 2.

## Mean +- standard deviation over seeds {', '.join(map(str, seeds))}

{chr(10).join(lines)}

## Stability (crop mean, dB) per seed

{chr(10).join(per_seed)}

## Gap to the baseline, seed-matched (crop mean, dB)

| model | mean gap | sd of the gap | per seed | better than the baseline on |
|---|---|---|---|---|
{chr(10).join(verdicts)}

Expected order baseline < rect2 < tri3 < bin5 (the paper's: stronger low-pass, more stable):

- {(chr(10) + '- ').join(orders)}
- means over seeds: {' < '.join(f'{v} ({means[v]:.2f})' for v in mean_order)}
  (**{'agrees' if mean_order == expected else 'does not agree'}**)

## Reading

- More stable than the baseline on every seed (crop mean): {', '.join(holds) or 'none'}; not on every
  seed (the gap is within what another seed changes): {', '.join(mixed) or 'none'}. With {len(seeds)} seeds a gap
  is only called real when every seed shows it; the standard deviations above are what one more
  training run can move a number by at this scale.
- Output smoothness beside it (a smoother output is more stable for free): TV of the outputs, mean
  over seeds, relative to the baseline's: {', '.join(f'{v} {tv[v] / tv["baseline"] - 1:+.0%}' for v in variants[1:])};
  the targets' TV is {tv_target:.4f} ({tv_target / tv["baseline"] - 1:+.0%} from the baseline's outputs).
"""
    (DOCS / "RESULTS_SEEDS.md").write_text(text)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="seeds to train besides the study's seed 0")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--parallel", type=int, default=1, help="trainings at a time")
    p.add_argument("--threads", type=int, default=2, help="torch threads per training")
    p.add_argument("--max-images", type=int, default=50)
    p.add_argument("--eval-processes", type=int, default=2)
    p.add_argument("--render-only", action="store_true", help="rewrite the page from outputs/repro/seeds")
    args = p.parse_args(argv)
    passthrough = list(argv if argv is not None else sys.argv[1:])
    if "baseline" not in args.variants:
        p.error("the seed study needs the baseline")
    if 0 in args.seeds:
        p.error("seed 0 is the study's own run (benchmarks/reproduce.py); pass other seeds")
    seeds = [0, *args.seeds]
    variants = [v for v in VARIANTS if v in args.variants]
    start = time.perf_counter()
    if args.render_only:
        results = json.loads((OUT / "results.json").read_text())
        study = json.loads((OUT / "study.json").read_text())
        write_page(results, variants, seeds, study["argv"], study["seconds"])
        print(f"wrote {DOCS / 'RESULTS_SEEDS.md'}")
        return 0
    missing = [v for v in variants if not (run_dir(v) / "checkpoints" / "last.ckpt").exists()]
    if missing:
        p.error(f"no seed-0 run for {missing}: run benchmarks/reproduce.py first")
    jobs = [(v, s) for s in args.seeds for v in variants]
    jobs.sort(key=lambda j: j[0] == "baseline")  # the slower anti-aliased models first
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        list(pool.map(lambda j: train(j[0], args.threads, j[1],
                                      tuple(a.format(seed=j[1]) for a in TRAIN_EXTRA)), jobs))
    names = [run_name(v, s) for s in seeds for v in variants]
    results = evaluate(names, OUT, args.max_images, args.eval_processes,
                       ["--layers", "none", "--noise", "none", "--no-tensorboard"])
    seconds = time.perf_counter() - start
    (OUT / "study.json").write_text(json.dumps({"seconds": seconds, "argv": passthrough}))
    write_page(results, variants, seeds, passthrough, seconds)
    print(f"wrote {DOCS / 'RESULTS_SEEDS.md'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
