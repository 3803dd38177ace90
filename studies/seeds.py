"""Seed variation of the reproduction study: are the differences between filters larger than
what another training seed changes?

    python -m studies.seeds --parallel 2 --threads 1      # seeds 1 and 2 of every variant
    python -m studies.seeds --render-only                 # rewrite the page from outputs/repro/seeds

Seed 0 is the study's own run (studies/reproduce.py, docs/RESULTS.md); this script trains
each variant again with seeds 1, 2 (``--seed_everything k --data.seed k``: initialisation, data
order, crops, flips and dropout all change), otherwise exactly the study's recipe, including the
optimiser implementation each seed-0 run was trained with (``--model.fused_adam`` read from its
config.yaml, so the comparison stays like for like). Every run, seed 0 included, is then
evaluated the same way (facades test split, crop and circular protocols, all 63 shifts, the
equal-bandwidth figure, panning flicker, quality and sharpness beside them) and the page
docs/RESULTS_SEEDS.md reports mean +- standard deviation over seeds, per-seed values, and whether
each gap to the baseline (pooled headline, equal bandwidth, TV ratio, SSIM) exceeds the spread.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from pix2pix_aa.demo import VERSION
from studies.reproduce import DOCS, ROOT, VARIANTS, evaluate, run_dir, run_name, train

OUT = ROOT / "outputs" / "repro" / "seeds"
#: The headline: crop protocol, squared error pooled over pixels, shifts and images, then in dB.
HEADLINE = "stability_crop_pooled_db"
EQUAL_BANDWIDTH = "stability_crop_eb_pooled_db"
KEYS = {  # results row key -> (column title, format); panning flicker only when measured
    HEADLINE: ("crop pooled (dB)", ".2f"),
    "stability_crop_mean_db": ("crop mean (dB)", ".2f"),
    EQUAL_BANDWIDTH: ("crop pooled, equal bandwidth (dB)", ".2f"),
    "stability_circular_pooled_db": ("circular pooled (dB)", ".2f"),
    "flicker_pooled_db": ("panning flicker (dB)", ".2f"),
    "quality_psnr": ("PSNR to target (dB)", ".2f"),
    "quality_ssim": ("SSIM", ".3f"),
    "tv_ratio": ("TV ratio", ".3f"),
    "hf_ratio": ("HF ratio", ".3f"),
}


def label(variant: str, seed: int) -> str:
    return f"cpu_quick_{run_name(variant, seed)}/{VERSION}/last"


def seed0_fused_adam(variant: str) -> str:
    """``model.fused_adam`` of the study's own (seed-0) run, so the other seeds use the same Adam
    implementation: its config.yaml's value, ``false`` for a run that predates the option."""
    import yaml

    config = run_dir(run_name(variant, 0)) / "config.yaml"
    value = (yaml.safe_load(config.read_text()) or {}).get("model", {}).get("fused_adam", False) \
        if config.exists() else False
    return "true" if value else "false"


def train_extra(variant: str, seed: int) -> tuple[str, ...]:
    return ("--data.seed", str(seed), "--model.fused_adam", seed0_fused_adam(variant))


def mean_sd(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def _gap_rows(rows: dict, variants: list[str], seeds: list[int], key: str, fmt: str) -> list[str]:
    """Seed-matched gap to the baseline (same seed index: same data order), its sd and sign."""
    out = []
    for v in variants:
        if v == "baseline":
            continue
        diffs = [rows[v][s][key] - rows["baseline"][s][key] for s in seeds]
        dm, dsd = mean_sd(diffs)
        sign = "all seeds" if all(d > 0 for d in diffs) else "no seed" if all(d < 0 for d in diffs) else "mixed"
        out.append(f"| {v} | {dm:+{fmt}} | {dsd:{fmt}} | {', '.join(f'{d:+{fmt}}' for d in diffs)} | {sign} |")
    return out


def write_page(results: dict, variants: list[str], seeds: list[int], argv: list[str], seconds: float) -> None:
    """docs/RESULTS_SEEDS.md from the evaluation's results.json of every (variant, seed) run.

    Raises:
        SystemExit: a column the page needs is missing for some run (an older evaluate.py).
    """
    rows = {v: {s: results["models"][label(v, s)]["row"] for s in seeds} for v in variants}
    keys = _page_columns(rows, variants, seeds)
    text = (_page_head(results, rows, variants, seeds, argv, seconds, keys)
            + _page_gaps(rows, variants, seeds, results["options"])
            + _page_reading(rows, variants, seeds))
    (DOCS / "RESULTS_SEEDS.md").write_text(text)


def _page_columns(rows: dict, variants: list[str], seeds: list[int]) -> dict:
    """The KEYS every run has (the mean table's columns).

    Raises:
        SystemExit: the headline, equal-bandwidth, TV-ratio or SSIM column missing for some run.
    """
    keys = {k: c for k, c in KEYS.items() if all(rows[v][s].get(k) is not None for v in variants for s in seeds)}
    missing = [k for k in (HEADLINE, EQUAL_BANDWIDTH, "tv_ratio", "quality_ssim") if k not in keys]
    if missing:
        raise SystemExit(f"results.json has no {', '.join(missing)} for every run (written by an older evaluate.py "
                         "or with --lowpass none): evaluate again")
    return keys


def _page_head(results: dict, rows: dict, variants: list[str], seeds: list[int], argv: list[str], seconds: float,
               keys: dict) -> str:
    """Title, conditions, the mean +- sd table and the per-seed stability table."""
    head = "| model | " + " | ".join(t for t, _ in keys.values()) + " |"
    lines = [head, "|" + "---|" * (len(keys) + 1)]
    for v in variants:
        cells = []
        for k, (_, f) in keys.items():
            m, sd = mean_sd([rows[v][s][k] for s in seeds])
            cells.append(f"{m:{f}} +- {sd:{f}}")
        lines.append(f"| {v} | " + " | ".join(cells) + " |")
    per_seed = ["| model | " + " | ".join(f"seed {s}" for s in seeds) + " | " + " | ".join(
        f"seed {s}, equal bandwidth" for s in seeds) + " |", "|" + "---|" * (2 * len(seeds) + 1)]
    for v in variants:
        per_seed.append(f"| {v} | " + " | ".join(f"{rows[v][s][HEADLINE]:.2f}" for s in seeds) + " | "
                        + " | ".join(f"{rows[v][s][EQUAL_BANDWIDTH]:.2f}" for s in seeds) + " |")
    opts = results["options"]
    code = opts.get("code") or {}
    n_images = results["models"][label(variants[0], seeds[0])]["crop"]["num_images"]
    data = rows[variants[0]][seeds[0]]
    return f"""# Seed variation of the reproduction study

Regenerate with `python -m studies.seeds {' '.join(argv)}` ({seconds / 60:.0f} min on this
2-core machine). Same recipe as [RESULTS.md](RESULTS.md) (`configs/cpu_quick.yaml`, 128x128,
ngf = ndf = 32, batch 4, 12 epochs; APS with `configs/cpu_quick_aps.yaml`); seed 0 is the study's
own run, seeds {', '.join(map(str, seeds[1:]))} change the initialisation, data order, crops, flips and
dropout (`--seed_everything k --data.seed k`) and nothing else (same Adam implementation as each
seed-0 run, read from its config.yaml). Evaluation: {n_images} images of `{data['data_dir']}` (split
{data['split']}, {data['direction']}, {data['image_size']} px), every shift of the
{opts['max_shift']}x{opts['max_shift']} grid, generators in eval mode, PSNR with data range 2,
equal-bandwidth filter {opts.get('lowpass')}; pix2pix-aa {code.get('version', '?')}, commit
{code.get('git_commit', '?')}. Headline: crop pooled (squared error pooled over pixels, shifts and
images, then in dB); definitions of every column: docs/DESIGN.md section 5b.

## Mean +- standard deviation over seeds {', '.join(map(str, seeds))}

{chr(10).join(lines)}

## Stability (crop pooled, dB) per seed, raw and at equal bandwidth

{chr(10).join(per_seed)}

"""


def _page_gaps(rows: dict, variants: list[str], seeds: list[int], opts: dict) -> str:
    """The seed-matched gaps to the baseline (raw, equal bandwidth, TV ratio, SSIM) and the
    expected order of the filters, per seed and on the means."""
    gap_head = ["| model | mean gap | sd of the gap | per seed | better than the baseline on |",
                "|---|---|---|---|---|"]
    orders = []
    expected = [v for v in ("baseline", "rect2", "tri3", "bin5") if v in variants]
    for s in seeds:
        observed = sorted(expected, key=lambda v: rows[v][s][HEADLINE])
        orders.append(f"seed {s}: {' < '.join(observed)} ({'agrees' if observed == expected else 'does not agree'})")
    means = {v: mean_sd([rows[v][s][HEADLINE] for s in seeds])[0] for v in expected}
    mean_order = sorted(expected, key=lambda v: means[v])
    return f"""## Gap to the baseline, seed-matched (crop pooled, dB)

{chr(10).join(gap_head + _gap_rows(rows, variants, seeds, HEADLINE, '.2f'))}

At equal bandwidth (both compared outputs low-passed by {opts.get('lowpass')} first):

{chr(10).join(gap_head + _gap_rows(rows, variants, seeds, EQUAL_BANDWIDTH, '.2f'))}

Sharpness beside it, seed-matched gaps. TV ratio (output TV / target TV):

{chr(10).join([gap_head[0].replace('better than the baseline on', 'higher than the baseline on'), gap_head[1]]
              + _gap_rows(rows, variants, seeds, 'tv_ratio', '.3f'))}

SSIM to the target:

{chr(10).join([gap_head[0].replace('better than the baseline on', 'higher than the baseline on'), gap_head[1]]
              + _gap_rows(rows, variants, seeds, 'quality_ssim', '.3f'))}

Expected order baseline < rect2 < tri3 < bin5 (the paper's: stronger low-pass, more stable), crop pooled:

- {(chr(10) + '- ').join(orders)}
- means over seeds: {' < '.join(f'{v} ({means[v]:.2f})' for v in mean_order)}
  (**{'agrees' if mean_order == expected else 'does not agree'}**)

"""


def _page_reading(rows: dict, variants: list[str], seeds: list[int]) -> str:
    """The "Reading" section: which gaps hold on every seed, and the sharpness beside them."""

    def every_seed(key: str) -> list[str]:
        return [v for v in variants[1:] if all(rows[v][s][key] > rows["baseline"][s][key] for s in seeds)]

    holds, holds_eb = every_seed(HEADLINE), every_seed(EQUAL_BANDWIDTH)
    mixed = [v for v in variants[1:] if v not in holds]
    tv = {v: mean_sd([rows[v][s]["tv_ratio"] for s in seeds]) for v in variants}
    ssim = {v: mean_sd([rows[v][s]["quality_ssim"] for s in seeds]) for v in variants}
    return f"""## Reading

- More stable than the baseline on every seed (crop pooled): {', '.join(holds) or 'none'}; not on every
  seed (the gap is within what another seed changes): {', '.join(mixed) or 'none'}. At equal
  bandwidth, on every seed: {', '.join(holds_eb) or 'none'}. With {len(seeds)} seeds a gap is only called
  real when every seed shows it; the standard deviations above are what one more training run can
  move a number by at this scale.
- Sharpness beside it (a smoother output is more stable for free): TV ratio, mean +- sd over seeds:
  {', '.join(f'{v} {tv[v][0]:.3f} +- {tv[v][1]:.3f}' for v in variants)}; SSIM:
  {', '.join(f'{v} {ssim[v][0]:.3f} +- {ssim[v][1]:.3f}' for v in variants)}. A stability gain is at
  equal quality only where these gaps are within their seed-to-seed spread (tables above).
"""


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
        p.error("seed 0 is the study's own run (studies/reproduce.py); pass other seeds")
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
        p.error(f"no seed-0 run for {missing}: run studies/reproduce.py first")
    jobs = [(v, s) for s in args.seeds for v in variants]
    jobs.sort(key=lambda j: j[0] == "baseline")  # the slower anti-aliased models first
    with ThreadPoolExecutor(max_workers=args.parallel) as pool:
        list(pool.map(lambda j: train(j[0], args.threads, j[1], train_extra(j[0], j[1])), jobs))
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
