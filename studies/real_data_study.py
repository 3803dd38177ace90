"""Design study across data sets: does a design's verdict hold on real photographs and a longer recipe?

    nohup nice -n 10 .venv/bin/python -m studies.real_data_study --jobs 2 > logs/real_data_study.log 2>&1 &
    .venv/bin/python -m studies.real_data_study --stage report     # rewrite docs/REAL_DATA_STUDY.md

The candidates are the design study's (studies/design_study.py ``CANDIDATES``). Each is trained
per (data set, recipe, seed) by the public command (``train.py fit``, via
pix2pix_aa.demo.train_command, resuming from last.ckpt when a run was interrupted) and evaluated
by ``evaluate.py`` on the data set's test split (crop protocol, 63 shifts, noise sigma 0.05):

* data sets (:data:`DATASETS`): the procedural ``facades`` (rows taken from the design study's
  committed record: same recipe, same evaluation set, 20 test images, no noise figure there), and
  the two real-photo tasks of pix2pix_aa/data/photos.py, ``photos`` (edges -> photo) and
  ``colorize`` (grayscale -> colour): 94 training cells, all 17 test cells at 128 px;
* recipes (:data:`RECIPES`): ``quick`` (configs/cpu_quick.yaml, 12 epochs) and ``long``
  (configs/cpu_long.yaml, 36 epochs), the recipe verdicts come from where a run exists.

The queue (:func:`queue`) runs the most informative comparisons first (baseline vs the
recommended design, seed 0, both recipes), so an interrupted study has whole comparisons. Every stage
resumes: a finished run (last.ckpt at the final epoch) is not retrained, an evaluated one not
re-evaluated. outputs/ and runs/ are not in git, so the committed record
(docs/images/real_data_study/record.json) is the study's memory: a run found there is reported
from it and not retrained.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import NamedTuple

from pix2pix_aa.demo import run_dir, thread_env, train_command
from studies import design_study as ds

ROOT = ds.ROOT
OUT = ROOT / "outputs" / "real_data_study"
LOGS = ROOT / "logs" / "real_data_study"
DOC = ROOT / "docs" / "REAL_DATA_STUDY.md"
RECORD = ROOT / "docs" / "images" / "real_data_study" / "record.json"

#: Data set -> training flags (on top of the recipe's config) and the test images scored.
DATASETS: dict[str, dict] = {
    "facades": {"flags": [], "images": 20, "from_design_study": True, "own_seeds": [10, 11, 12]},
    "photos": {"flags": ["--data.dataset", "photos", "--data.data_dir", "data/photos", "--data.generate_size", "128",
                         "--data.max_val_images", "17"], "images": 17},
    "colorize": {"flags": ["--data.dataset", "colorize", "--data.data_dir", "data/colorize", "--data.generate_size",
                           "128", "--data.max_val_images", "17"], "images": 17},
}
RECIPES = {"quick": "configs/cpu_quick.yaml", "long": "configs/cpu_long.yaml"}
#: The shipped design, the paper's, the shipped design without its training term, the baseline
#: with the term alone (+9 dB on facades at one seed), and two designs aimed at keeping detail.
SHIPPED = "bc_kaiser9n_lastnone_upk13n_fr16_shift3"
DETAIL = "bc_kaiser9n_upnone_fr16_shift3"
PATH8 = "bc_kaiser9n_lastnone_upk13n_fr8_shift3"
CANDIDATE_NAMES = ["baseline", "bin5", SHIPPED, "bc_kaiser9n_lastnone_upk13n_fr16", "baseline_shift100x4", DETAIL,
                   "baseline_shift10x4", PATH8]
LABELS = {"baseline": "baseline U-Net", "bin5": "Bin-5 (the paper)", SHIPPED: "recommended (shipped)",
          "bc_kaiser9n_lastnone_upk13n_fr16": "recommended without the term",
          "baseline_shift100x4": "baseline + term (weight 100, 4 images)",
          DETAIL: "detail first: encoder blur + path + term 3, no decoder blur",
          "baseline_shift10x4": "baseline + weak term (weight 10, 4 images)",
          PATH8: "recommended with the path at c = 8 (cheaper)"}
#: Designs also trained at the long recipe.
LEADING = ["baseline", SHIPPED]
#: Trained here on the facades at the quick recipe, at the data set's ``own_seeds``: the designs
#: the design study's record lacks or has at one seed, and the references of studies/term_every.py.
#: The design study's rows (seeds 0-4) come from another CPU model, and a seed's model differs
#: between CPU models (docs/DEMO.md), so a gap to its baseline would mix the two; fresh seeds,
#: with their own baseline trained here, keep every gap on one CPU.
OWN_SEED_CANDIDATES = ["baseline", "baseline_shift100x4", DETAIL, SHIPPED,
                       "bc_kaiser9n_lastnone_upk13n_fr16", PATH8, "baseline_shift10x4"]
#: Also trained at the long recipe, after the leading designs: the design closest to the goal at
#: the quick recipe (the recommendation section's ranking).
LONG_EXTRA = ["baseline_shift100x4"]
EVAL_ARGS = ["--layers", "none", "--noise", "0.05", "--protocol", "crop", "--no-tensorboard", "--no-progress",
             "--num-processes", "1"]
#: The goal, per data set, against the baseline's same seeds.
GOAL = {"stability_gain_db": 8.0, "tv_low": 0.9, "tv_high": 1.1, "hf_min": 0.5, "psnr_drop_db": 0.3,
        "noise_drop_db": 0.5, "params_ratio": 1.02, "time_ratio": 1.6}
METRICS = ("pooled_db", "psnr", "ssim", "tv_ratio", "hf_ratio", "noise_db")


def run_name(dataset: str, recipe: str, candidate: str, seed: int) -> str:
    return f"{dataset}_{recipe}_{candidate}_s{seed}"


def epochs(recipe: str) -> int:
    import yaml

    model = yaml.safe_load((ROOT / RECIPES[recipe]).read_text())["model"]
    return int(model["n_epochs"]) + int(model["n_epochs_decay"])


def is_finished(name: str, recipe: str) -> bool:
    done = ds.finished_epochs(name)
    return done is not None and done >= epochs(recipe)


def queue(seeds: list[int], datasets: list[str]) -> list[tuple[str, str, str, int]]:
    """(data set, recipe, candidate, seed) in the order they are trained, most informative first:
    the leading designs at the quick recipe, seed 0, on every real data set; the same at the long
    recipe, facades included (their quick rows come from the design study); the leading designs'
    next quick seed (the seed-to-seed spread); the other candidates at seed 0; then the remaining
    seeds of everything on the real data sets, :data:`LONG_EXTRA` at the long recipe, the facades'
    long runs (3600 steps each, three times a real task's) with, after seed 1's, the facades' quick
    runs at their own seeds (:data:`OWN_SEED_CANDIDATES`, seed by seed: whole comparisons first),
    and last :data:`LONG_EXTRA` on the facades."""
    real = [d for d in datasets if not DATASETS[d].get("from_design_study")]
    facades = [d for d in datasets if DATASETS[d].get("from_design_study")]
    others = sorted((c for c in CANDIDATE_NAMES if c not in LEADING), key=lambda c: c != DETAIL)  # detail first
    first, rest = seeds[:1], seeds[1:]
    own = [(d, "quick", c, s) for d in facades for s in DATASETS[d]["own_seeds"] for c in OWN_SEED_CANDIDATES]
    order = [(d, "quick", c, s) for s in first for d in real for c in LEADING]
    order += [(d, "long", c, s) for s in first for d in facades + real for c in LEADING]
    order += [(d, "quick", c, s) for s in rest[:1] for d in real for c in LEADING]
    order += [(d, "quick", c, s) for s in first for d in real for c in others]
    order += [(d, r, c, s) for s in rest for r in RECIPES for d in real
              for c in (CANDIDATE_NAMES if r == "quick" else LEADING)]
    order += [(d, "long", c, s) for s in seeds[:2] for d in real for c in LONG_EXTRA]
    order += [(d, "long", c, s) for s in rest[:1] for d in facades for c in LEADING]
    order += own
    order += [(d, "long", c, s) for s in rest[1:] for d in facades for c in LEADING]
    order += [(d, "long", c, s) for s in seeds[2:] for d in real for c in LONG_EXTRA]
    order += [(d, "long", c, s) for s in seeds for d in facades for c in LONG_EXTRA]
    return list(dict.fromkeys(order))


def ensure_facades() -> None:
    """The facades' training set as the design study made it (generator seed 0 for every run's
    seed, so the long recipe trains on the data its quick rows were measured on)."""
    if not (ROOT / "data" / "facades" / "test").exists():
        subprocess.run([sys.executable, "-m", "pix2pix_aa.data.facades", "--out", "data/facades"], cwd=ROOT, check=True)


# ---------------------------------------------------------------------------- train / evaluate
def train(dataset: str, recipe: str, candidate: str, seed: int, threads: int) -> bool:
    """Train one run (or resume it) holding ``logs/real_data_study/<run>.lock``: a second study
    process that reaches the same run waits for the first, then finds it finished."""
    import fcntl

    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"{run_name(dataset, recipe, candidate, seed)}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _train(dataset, recipe, candidate, seed, threads)


def _train(dataset: str, recipe: str, candidate: str, seed: int, threads: int) -> bool:
    name = run_name(dataset, recipe, candidate, seed)
    record = OUT / "train" / f"{name}.json"
    if ds.other_run(name, candidate, seed, ds.config_data_dir(RECIPES[recipe], DATASETS[dataset]["flags"])):
        return False
    if is_finished(name, recipe):
        return True
    cand = ds.CANDIDATES[candidate]
    extra = [*cand.train_args(), *DATASETS[dataset]["flags"], "--seed_everything", str(seed), "--data.seed", str(seed),
             "--trainer.enable_progress_bar", "false"]
    cmd = train_command(name, cand.antialias, RECIPES[recipe], extra)
    LOGS.mkdir(parents=True, exist_ok=True)
    logfile = LOGS / f"{name}.log"
    ds.log(f"train {name} (log: {logfile.relative_to(ROOT)})")
    start = time.perf_counter()
    with logfile.open("a") as f:
        rc = subprocess.run(cmd, cwd=ROOT, env=thread_env(threads), stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0 or not is_finished(name, recipe):
        ds.log(f"train {name}: FAILED (exit {rc}); see {logfile.relative_to(ROOT)}")
        return False
    ds.write_json(record, {"run": name, "command": cmd[1:], "process_minutes": (time.perf_counter() - start) / 60,
                           "threads": threads, **ds.provenance(), **ds.seconds_per_step(name)})
    ds.log(f"train {name}: done in {(time.perf_counter() - start) / 60:.1f} min")
    return True


def evaluate(dataset: str, name: str, threads: int) -> bool:
    out = OUT / "eval" / name
    if (out / "results.json").exists() and not ds.stale_evaluation(out / "results.json", name):
        return True
    cmd = [sys.executable, "evaluate.py", str(run_dir(name)), "--max-images", str(DATASETS[dataset]["images"]),
           "--out", str(out), *EVAL_ARGS]
    ds.log(f"evaluate {name}")
    with (LOGS / f"eval_{name}.log").open("a") as f:
        rc = subprocess.run(cmd, cwd=ROOT, env=thread_env(threads), stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0 or not (out / "results.json").exists():
        ds.log(f"evaluate {name}: FAILED (exit {rc}); see logs/real_data_study/eval_{name}.log")
        return False
    return True


def row_of(results: dict) -> dict:
    """The study's figures from an evaluate.py results.json (the design study's, plus noise)."""
    row = ds.extract_row(results)
    model = next(iter((results.get("models") or {}).values()), {})
    row["noise_db"] = model.get("row", {}).get("noise_0.05_db")
    return row


# ---------------------------------------------------------------------------- record
def collect() -> dict:
    """dataset -> recipe -> candidate -> seed -> row: the runs evaluated here, then the committed
    record's for runs not on disk, then the design study's record for the facades."""
    record = ds.read_json(RECORD) or {}
    rows: dict = record.get("rows", {})
    for path in sorted((OUT / "eval").glob("*/results.json")):
        name = path.parent.name
        dataset, recipe, rest = name.split("_", 2)
        candidate, seed = rest.rsplit("_s", 1)
        train_rec = ds.read_json(OUT / "train" / f"{name}.json") or {}
        rows.setdefault(dataset, {}).setdefault(recipe, {}).setdefault(candidate, {})[seed] = {
            **row_of(ds.read_json(path) or {}), "commit": train_rec.get("commit"),
            "seconds_per_step": train_rec.get("seconds_per_step")}
    design = ds.recorded_runs()["eval"]
    for c in CANDIDATE_NAMES:
        for s, row in design.get(c, {}).get("facades", {}).items():
            rows.setdefault("facades", {}).setdefault("quick", {}).setdefault(c, {})[str(s)] = {**row, "noise_db": None}
    return rows


def merge_missing(rows: dict, extra: dict) -> dict:
    """``rows`` (dataset -> recipe -> candidate -> seed -> row) with the runs of ``extra`` (the same
    form: another study's record) that it lacks; a run in both keeps ``rows``' (the one on disk)."""
    for d, recipes in extra.items():
        for r, cands in recipes.items():
            for c, seeds in cands.items():
                for s, row in seeds.items():
                    rows.setdefault(d, {}).setdefault(r, {}).setdefault(c, {}).setdefault(s, row)
    return rows


def mean_sd(values: list) -> tuple[float, float, int]:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    m, s = ds.mean_sd(vals)
    return m, s, len(vals)


def paired_gap(runs: dict, other: dict, seeds, key: str) -> tuple[float, float, int]:
    """:func:`mean_sd` over ``seeds`` of ``runs[s][key] - other[s][key]`` (each: seed -> row), the
    seed-matched difference of two designs; a seed either lacks, or lacks the figure at, is left out."""
    return mean_sd([runs[s][key] - other[s][key] for s in seeds
                    if runs.get(s, {}).get(key) is not None and other.get(s, {}).get(key) is not None])


def summarise(rows: dict, cost: dict) -> dict:
    """dataset -> recipe -> candidate -> {metric: (mean, sd, n), gap_metric: (mean, sd, n) seed-matched
    to the baseline, base_metric: (mean, sd, n) the baseline's own at the candidate's seeds,
    "seeds": [...], "goal": {criterion: (met, figure)}}."""
    out: dict = {}
    for d, recipes in rows.items():
        for r, cands in recipes.items():
            base = cands.get("baseline", {})
            for c, per_seed in cands.items():
                seeds = sorted(per_seed, key=int)
                s: dict = {"seeds": seeds}
                for k in METRICS:
                    s[k] = mean_sd([per_seed[x].get(k) for x in seeds])
                    s[f"gap_{k}"] = paired_gap(per_seed, base, seeds, k)
                    s[f"base_{k}"] = mean_sd([base[x].get(k) for x in seeds if x in base])
                s["goal"] = goal_check(s, cost.get(c), cost.get("baseline"))
                out.setdefault(d, {}).setdefault(r, {})[c] = s
    return out


def goal_check(s: dict, cost: dict | None, base_cost: dict | None) -> dict:
    """Criterion -> (met: bool | None when not measured, the figure it was judged on)."""
    def check(value: float, ok, text: str):
        return (None, "n/a") if value is None or math.isnan(value) else (bool(ok(value)), text.format(value))

    tv, hf = s["tv_ratio"][0], s["hf_ratio"][0]
    checks = {
        f"stability >= baseline + {GOAL['stability_gain_db']:g} dB":
            check(s["gap_pooled_db"][0], lambda v: v >= GOAL["stability_gain_db"], "{:+.2f} dB"),
        f"TV ratio {GOAL['tv_low']:g}-{GOAL['tv_high']:g}":
            check(tv, lambda v: GOAL["tv_low"] <= v <= GOAL["tv_high"], "{:.3f}"),
        f"HF ratio >= {GOAL['hf_min']:g}": check(hf, lambda v: v >= GOAL["hf_min"], "{:.3f}"),
        f"PSNR >= baseline - {GOAL['psnr_drop_db']:g} dB":
            check(s["gap_psnr"][0], lambda v: v >= -GOAL["psnr_drop_db"], "{:+.2f} dB"),
        "SSIM >= baseline": check(s["gap_ssim"][0], lambda v: v >= 0, "{:+.3f}"),
        f"noise 0.05 >= baseline - {GOAL['noise_drop_db']:g} dB":
            check(s["gap_noise_db"][0], lambda v: v >= -GOAL["noise_drop_db"], "{:+.2f} dB"),
    }
    if cost and base_cost:
        pr, sr = cost["params"] / base_cost["params"], cost["step_seconds"] / base_cost["step_seconds"]
        checks[f"params <= {GOAL['params_ratio']:g}x"] = (pr <= GOAL["params_ratio"], f"{pr:.4f}x")
        checks[f"G + D step <= {GOAL['time_ratio']:g}x"] = (sr <= GOAL["time_ratio"], f"{sr:.2f}x")
    return checks


# ---------------------------------------------------------------------------- figure
FIGURE_IMAGES = (0, 3, 8)


def figure(dataset: str, recipe: str, seed: int = 0) -> Path | None:
    """docs/images/real_data_study/samples_<dataset>.png: for a few test images, input | baseline |
    recommended | target, and under each output how far it moves when the input moves one pixel
    diagonally (|G(window at (1, 1)) - G(window at (0, 0)) moved by (1, 1)|, x4, on the common
    region). None when either run is not on disk."""
    import numpy as np
    import torch
    from PIL import Image

    from pix2pix_aa.evaluation.checkpoints import load_generator
    from pix2pix_aa.evaluation.data import data_settings, load_data
    from pix2pix_aa.metrics import reflect_pad_source

    names = [run_name(dataset, recipe, c, seed) for c in LEADING]
    if not all((run_dir(n) / "checkpoints" / "last.ckpt").exists() for n in names):
        return None
    items = [load_generator(run_dir(n) / "checkpoints" / "last.ckpt") for n in names]
    x, target = load_data(data_settings(items[0]), max(FIGURE_IMAGES) + 1)
    x, target = x[list(FIGURE_IMAGES)], target[list(FIGURE_IMAGES)]
    size = x.shape[-1]
    source = reflect_pad_source(x, 2)
    rows = []
    for i in range(len(x)):
        top, bottom = [x[i]], [torch.zeros_like(x[i])]
        for item in items:
            y0 = item.outputs(source[i:i + 1, :, :size, :size])[0]
            y1 = item.outputs(source[i:i + 1, :, 1:size + 1, 1:size + 1])[0]
            top.append(y0)
            moved = torch.zeros_like(y0)
            moved[:, :-1, :-1] = (y1[:, :-1, :-1] - y0[:, 1:, 1:]).abs().mean(0, keepdim=True) * 4 - 1
            bottom.append(moved.clamp(-1, 1))
        top.append(target[i])
        bottom.append(torch.zeros_like(x[i]))
        rows.append(torch.cat([torch.cat(top, -1), torch.cat(bottom, -1)], -2))
    grid = torch.cat(rows, -2)
    img = ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    path = RECORD.parent / f"samples_{dataset}.png"
    Image.fromarray(np.ascontiguousarray(img)).save(path)
    return path


# ---------------------------------------------------------------------------- report
def fmt(ms: tuple, digits: int = 2, signed: bool = False) -> str:
    m, s, n = ms
    if n == 0 or math.isnan(m):
        return "n/a"
    text = f"{m:+.{digits}f}" if signed else f"{m:.{digits}f}"
    return text + (f" ± {s:.{digits}f}" if n > 1 and not math.isnan(s) else "")


def fmt_of(ms: tuple, seeds: int, digits: int = 2, signed: bool = False) -> str:
    """:func:`fmt`, saying how many seeds the figure rests on when some of the row's ``seeds``
    lack it (the design study's facades rows have no noise figure)."""
    part = f" ({ms[2]} seed{'s' * (ms[2] > 1)})" if 0 < ms[2] < seeds else ""
    return fmt(ms, digits, signed) + part


def goal_measured(s: dict) -> list[bool]:
    """Met or not, for each criterion of ``s["goal"]`` that was measured."""
    return [ok for ok, _ in s["goal"].values() if ok is not None]


def sentence_label(candidate: str) -> str:
    """:data:`LABELS` of ``candidate`` with a capital letter, to start a sentence."""
    return LABELS[candidate][0].upper() + LABELS[candidate][1:]


def verdict_recipe(summary: dict, dataset: str) -> str:
    """The recipe verdicts on ``dataset`` come from: long where its leading designs have runs."""
    long = summary.get(dataset, {}).get("long", {})
    return "long" if all(c in long for c in LEADING) else "quick"


#: The criteria :func:`shortfall` sums, in order.
CRITERIA = ("stability", "tv", "hf", "psnr", "ssim", "noise")


def shortfall(s: dict, skip: tuple[str, ...] = ()) -> float:
    """How far one candidate's summary on one data set is from the goal: each missed criterion's
    distance as a fraction of its threshold (stability: missing dB / 8; TV ratio: distance beyond
    the band / 0.1; HF ratio: missing / 0.5; PSNR: missing dB / 0.3; SSIM: missing / 0.01; noise:
    missing dB / 0.5), summed over :data:`CRITERIA` not in ``skip``. 0 = every measured criterion
    met; a count of misses would rank a design that halves the detail (TV ratio 0.3) with one that
    misses the band by 0.01."""
    tv = s["tv_ratio"][0]
    parts = [(GOAL["stability_gain_db"] - s["gap_pooled_db"][0]) / GOAL["stability_gain_db"],
             (max(GOAL["tv_low"] - tv, tv - GOAL["tv_high"])) / (GOAL["tv_high"] - 1),
             (GOAL["hf_min"] - s["hf_ratio"][0]) / GOAL["hf_min"],
             (-GOAL["psnr_drop_db"] - s["gap_psnr"][0]) / GOAL["psnr_drop_db"],
             -s["gap_ssim"][0] / 0.01,
             (-GOAL["noise_drop_db"] - s["gap_noise_db"][0]) / GOAL["noise_drop_db"]]
    return sum(max(0.0, x) for name, x in zip(CRITERIA, parts) if name not in skip and not math.isnan(x))


class Score(NamedTuple):
    """One candidate's standing at a recipe, over the data sets (see :func:`recommendation`)."""
    met: int  #: criteria met, counted over the data sets
    total: int  #: criteria measured
    stable: int  #: data sets where the stability gate holds (:func:`stability_gate`)
    short: float  #: :func:`shortfall` of the other criteria, summed over the data sets
    misses: dict  #: data set -> the criteria missed, with their figures
    missing: list  #: data sets without a run


def stability_gate(s: dict) -> bool:
    """Whether the seed-matched stability gain meets the goal or is within one standard error of
    it (the mean gap's seed noise: sd / sqrt(seeds)); a gain measured at one seed must meet it."""
    mean, sd, n = s["gap_pooled_db"]
    se = sd / math.sqrt(n) if n > 1 and not math.isnan(sd) else 0.0
    return mean + se >= GOAL["stability_gain_db"]


def recommendation(summary: dict, recipe: str = "quick",
                   skip: tuple[str, ...] = ()) -> tuple[str | None, dict[str, Score]]:
    """(the recommended candidate, candidate -> :class:`Score`) at ``recipe``, the one every
    candidate is trained with. Stability gates the ranking: candidates are ordered first by the
    number of data sets where :func:`stability_gate` holds, then by the :func:`shortfall` of the
    other criteria (without those in ``skip``) summed over the data sets. A summed shortfall alone
    counted stability as one criterion of six, so a design that changed little scored close to
    the baseline, which gains nothing; with the gate the baseline ranks after every design that
    passes it on any data set. Only a
    candidate measured on every data set can be recommended; None when none is."""
    scores = {}
    for c in CANDIDATE_NAMES:
        if c == "baseline":
            continue
        met, total, stable, short, misses, missing = 0, 0, 0, 0.0, {}, []
        for d in summary:
            s = summary[d].get(recipe, {}).get(c)
            if s is None:
                missing.append(d)
                continue
            gate = stability_gate(s)
            for crit, (ok, fig) in s["goal"].items():
                if ok is None:
                    continue
                total += 1
                met += ok
                if not ok:
                    gated = "; gate met, within the seed noise" if gate and crit.startswith("stability") else ""
                    misses.setdefault(d, []).append(f"{crit} ({fig}{gated})")
            stable += gate
            short += shortfall(s, skip + ("stability",))
        scores[c] = Score(met, total, stable, short, misses, missing)
    eligible = [c for c, v in scores.items() if not v.missing and v.total]
    best = min(eligible, key=lambda c: rank_key(scores[c]), default=None)
    return best, scores


def rank_key(score: Score) -> tuple:
    return -score.stable, score.short


CONDITIONS = (
    "**Conditions.** 128x128, ngf = ndf = 32, batch 4, 1 thread a training. Recipes: `quick` = "
    "configs/cpu_quick.yaml (12 epochs), `long` = configs/cpu_long.yaml (36 epochs). Data sets: `facades` "
    "(procedural, 400 training images, 20 test images; at the quick recipe seeds 0-4 are the design "
    "study's own rows, docs/DESIGN_STUDY.md, trained on another CPU model and without a noise figure; "
    f"seeds {'/'.join(map(str, DATASETS['facades']['own_seeds']))} are trained here the same way, their "
    "baseline included, because a seed's model differs between CPU models and a gap must not mix two), "
    "`photos` (edges -> photo) and `colorize` (grayscale -> colour): real "
    "photographs shipped in the installed wheels, 94 training / 17 test cells at 128 px, split by disjoint "
    "regions of nine photographs (pix2pix_aa/data/photos.py; docs/DESIGN.md section 4 says how far "
    "they are from a user's data set). Evaluation: `evaluate.py` on the test split, crop protocol (63 "
    "shifts, pooled PSNR), noise sigma 0.05. Gaps are seed-matched to the baseline: mean ± sd over seeds "
    "of (candidate - baseline). A figure holds for these data and this recipe only.")


def page_header() -> list[str]:
    goal = "; ".join([
        f"stability >= baseline + {GOAL['stability_gain_db']:g} dB",
        f"TV ratio to the targets {GOAL['tv_low']:g}-{GOAL['tv_high']:g} and HF ratio >= {GOAL['hf_min']:g}",
        f"PSNR >= baseline - {GOAL['psnr_drop_db']:g} dB", "SSIM >= baseline",
        f"noise robustness at sigma 0.05 >= baseline - {GOAL['noise_drop_db']:g} dB",
        f"<= {GOAL['params_ratio']:g}x parameters",
        f"<= {GOAL['time_ratio']:g}x the G + D step (the design study's controlled measurement)"])
    return ["# Design study across data sets", "",
            "Regenerated from the committed record by `.venv/bin/python -m studies.real_data_study --stage "
            "report`; `--jobs 2` (no `--stage`) trains and evaluates what is missing first (resumable).", "",
            CONDITIONS, "", f"**Goal, per data set:** {goal}.", ""]


def dataset_tables(summary: dict) -> list[str]:
    """One table per (data set, recipe): every candidate with its seeds, absolute stability, the
    seed-matched gaps and the sharpness ratios."""
    lines = []
    for d in DATASETS:
        for r in RECIPES:
            cands = summary.get(d, {}).get(r)
            if not cands:
                continue
            lines += [f"## {d}, {r} recipe", "",
                      "| design | seeds | crop pooled dB | gap | PSNR gap | SSIM gap | TV ratio | HF ratio | "
                      "noise 0.05 gap | goal |", "|---|---|---|---|---|---|---|---|---|---|"]
            for c in CANDIDATE_NAMES:
                s = cands.get(c)
                if s is None:
                    continue
                measured = goal_measured(s)
                goal = "-" if c == "baseline" else f"{sum(measured)}/{len(measured)}"
                n = len(s["seeds"])
                lines.append(f"| {LABELS[c]} | {','.join(s['seeds'])} | {fmt_of(s['pooled_db'], n)} | "
                             f"{fmt_of(s['gap_pooled_db'], n, 2, True)} | {fmt_of(s['gap_psnr'], n, 2, True)} | "
                             f"{fmt_of(s['gap_ssim'], n, 3, True)} | {fmt_of(s['tv_ratio'], n)} | "
                             f"{fmt_of(s['hf_ratio'], n)} | {fmt_of(s['gap_noise_db'], n, 2, True)} | {goal} |")
            lines.append("")
    return lines


def recommendation_section(summary: dict) -> list[str]:
    best, scores = recommendation(summary)
    _, no_noise = recommendation(summary, skip=("noise",))
    lines = ["## Recommendation", "",
             "Every design is judged on each data set it has runs on, at the quick recipe (the one all of them are "
             "trained with; the long recipe's check of the leading designs is in its tables above and in the README's "
             "table); a design not yet measured on every data set cannot be recommended and is listed last. "
             "**Stability gates the ranking**: designs are ordered first by the number of data sets where their "
             f"seed-matched stability gain meets the goal (+{GOAL['stability_gain_db']:g} dB) or falls short of it "
             "by less than one standard error of the mean gap (the seed noise: the allowance is wider for a design "
             "whose gain varies more between seeds, so read a gate met that way with the gap's ± in the tables "
             "above), then by the shortfall of the other "
             "quality criteria summed over the data sets: each missed criterion's distance in units of its "
             "tolerance (TV ratio: distance outside the 0.9-1.1 band / 0.1; HF ratio: missing / 0.5; PSNR: missing "
             "dB / 0.3; SSIM: missing / 0.01; noise: missing dB / 0.5; `shortfall` in studies/real_data_study.py), "
             "so a few dB of lost noise robustness weigh as much as a halved TV ratio. The cost "
             "criteria (parameters, step time) are listed among the misses but not scored. The last column leaves "
             "out the noise criterion, which on colorize measures how much of the input's detail a design passes "
             "on (section \"Where the input noise goes\" below).", "",
             "| design | stability gate met | criteria met | quality shortfall | misses | quality shortfall without "
             "noise |", "|---|---|---|---|---|---|"]
    for c, sc in sorted(scores.items(), key=lambda kv: (bool(kv[1].missing), rank_key(kv[1]))):
        if not sc.total:  # no run of it yet: a 0/0 row would read as the best score
            continue
        measured = len(summary) - len(sc.missing)
        miss = "; ".join(f"**{d}**: " + ", ".join(m) for d, m in sc.misses.items()) or "none"
        if sc.missing:
            miss += f" (not yet measured on {', '.join(sc.missing)})"
        lines.append(f"| {LABELS[c]}{' (closest)' if c == best else ''} | {sc.stable} of {measured} | "
                     f"{sc.met}/{sc.total} | {sc.short:.1f} | {miss} | {no_noise[c].short:.1f} |")
    lines += ["", baseline_scale_note(summary), "", verdict(summary)]
    met = goal_met_note(summary)
    lines += ["", met] if met else []
    note = baseline_detail_note(summary)
    lines += ["", note] if note else []
    lines += ["", "Design definitions (generator init_args; `model` = training options):", ""]
    return lines + [f"- {LABELS[c]}: `{c}` {json.dumps(ds.CANDIDATES[c].options)}" for c in CANDIDATE_NAMES]


def baseline_scale_note(summary: dict, recipe: str = "quick") -> str:
    """The baseline's own quality shortfall, for scale: it passes the stability gate nowhere, so
    it would rank after every design that passes it anywhere; its quality shortfall says how much
    of a design's is the data's (the absolute TV and HF thresholds) rather than the design's."""
    base = [summary[d][recipe]["baseline"] for d in summary if "baseline" in summary[d].get(recipe, {})]
    if not base:
        return ""
    skip = ("stability",)
    total, no_noise = sum(shortfall(b, skip) for b in base), sum(shortfall(b, skip + ("noise",)) for b in base)
    return (f"For scale: the baseline itself passes the stability gate on none of the {len(base)} data sets, so it "
            "would rank after every design that passes it anywhere, among those that pass it nowhere (no better "
            f"than doing nothing at what they are for); its own quality shortfall is {total:.1f} ({no_noise:.1f} "
            "without noise), from the "
            "TV and HF thresholds, which are absolute. A summed shortfall with stability as one criterion among "
            "six, the rule before the gate, scored a design that changes little close to the baseline's, which "
            "gains nothing.")


def goal_met_note(summary: dict) -> str:
    """The (data set, recipe) cells where a design meets every criterion measured, at more than
    one seed, with its figures: the goal met on one data set, which the ranking over all of them
    does not show."""
    parts = []
    for d in DATASETS:
        for r in RECIPES:
            for c, s in summary.get(d, {}).get(r, {}).items():
                measured = goal_measured(s)
                if c == "baseline" or not measured or not all(measured) or len(s.get("seeds", ())) < 2:
                    continue
                parts.append(f"**{LABELS[c]}** on {d} at the {r} recipe (seeds {','.join(s['seeds'])}: "
                             f"{len(measured)}/{len(measured)}, stability {fmt(s['gap_pooled_db'], 2, True)} dB, TV "
                             f"ratio {s['tv_ratio'][0]:.2f}, HF ratio {s['hf_ratio'][0]:.2f}, noise "
                             f"{fmt(s['gap_noise_db'], 2, True)} dB)")
    if not parts:
        return ""
    return ("Where a design meets every criterion measured: " + "; ".join(parts) + ". That is the goal met on one "
            "data set, not on every one; the ranking above weighs all of them.")


def baseline_detail_note(summary: dict) -> str:
    """Where the baseline itself misses the HF criterion (the goal's threshold is absolute), with
    the design that keeps the most: there the HF ratio is read against the baseline's too."""
    parts = []
    for d in DATASETS:
        for r in RECIPES:
            cands = summary.get(d, {}).get(r, {})
            base = cands.get("baseline")
            if not base or base["hf_ratio"][0] >= GOAL["hf_min"]:
                continue
            hf = {c: v["hf_ratio"][0] for c, v in cands.items() if not math.isnan(v["hf_ratio"][0])}
            best = max(hf, key=hf.get)
            most = "the most of any design" if best == "baseline" else f"the most: {LABELS[best]}, {hf[best]:.2f}"
            parts.append(f"{d} {r} {hf['baseline']:.2f} ({most})")
    if not parts:
        return ""
    return (f"The baseline itself misses the HF criterion (>= {GOAL['hf_min']:g}) on {'; '.join(parts)}: there a "
            "design's HF ratio is read against the baseline's as well as against the threshold.")


def verdict(summary: dict, readme: bool = False) -> str:
    """Which design the shipped configurations carry and why, from the figures: the ranking with
    every criterion, the ranking without the noise criterion, and, where they disagree, what the
    noise attribution (studies/noise_path.py) and the detail criteria say. ``readme``: the
    attribution by name, its figures left to the study page."""
    best, scores = recommendation(summary)
    best_nn, scores_nn = recommendation(summary, skip=("noise",))
    if best is None:
        return "No design is measured on every data set yet."
    n = len(summary)

    def standing(sc: Score) -> str:
        return f"stable on {sc.stable} of {n}, quality shortfall {sc.short:.1f}"

    text = (f"No design meets the goal on every data set. Ranked by the stability gate, then the quality shortfall "
            f"at the quick recipe, **{LABELS[best]}** is closest ({standing(scores[best])}")
    if best == SHIPPED or best_nn != SHIPPED:
        text += f"; without the noise criterion: **{LABELS[best_nn]}**, {standing(scores_nn[best_nn])})."
        return text + (" The shipped configurations carry it." if best == SHIPPED else
                       f" The shipped configurations still carry the shipped design ({standing(scores[SHIPPED])}): "
                       "this ranking alone does not change them.")
    text += (f"; the shipped design {standing(scores[SHIPPED])}). Without the noise criterion the shipped design is "
             f"closest ({standing(scores_nn[SHIPPED])}; {LABELS[best]} {standing(scores_nn[best])})")
    record = ds.read_json(NOISE_PATH) or {}
    col = summary.get("colorize", {}).get("quick", {}).get(SHIPPED)
    parts = [r for name, r in record.get("runs", {}).items() if name.startswith(f"colorize_quick_{SHIPPED}_s")]
    if col and parts:
        body, path = (sum(r[k] for r in parts) / len(parts) for k in ("body", "path"))
        where = ("the study page's \"Where the input noise goes\"" if readme else
                 f"{path:.1f} dB with the noise in the path alone, {body:.1f} dB in the U-Net body alone")
        text += (f": on colorize its noise robustness is {col['gap_noise_db'][0]:+.1f} dB against the baseline's, "
                 "and the noise reaches its output through the full-resolution path, the part that carries the "
                 f"input's detail ({where})")
    facades = summary.get("facades", {}).get("long", {}).get(SHIPPED)
    if facades and not math.isnan(facades["gap_noise_db"][0]):
        seeds = f"seed{'s' if len(facades['seeds']) > 1 else ''} {','.join(facades['seeds'])}"
        text += (f". On the facades (long recipe, {seeds}), where the input is a label map and none of its noise "
                 f"belongs in the output, its noise robustness is {facades['gap_noise_db'][0]:+.1f} dB against the "
                 "baseline's, by the same path: there it is a plain loss")
    photos = summary.get("photos", {}).get("quick", {}).get(best)
    if photos:
        text += (f". {sentence_label(best)} keeps a TV ratio of {photos['tv_ratio'][0]:.2f} and an HF ratio of "
                 f"{photos['hf_ratio'][0]:.2f} on photos, the loss of detail this study was set up to find")
        shipped, base = (summary["photos"]["quick"].get(c) for c in (SHIPPED, "baseline"))
        if shipped and base:
            btv = shipped["base_tv_ratio"][0]
            band = (" above the band" if btv > GOAL["tv_high"] else " below the band" if btv < GOAL["tv_low"]
                    else "")
            text += (f"; the shipped design keeps more ({shipped['tv_ratio'][0]:.2f} / {shipped['hf_ratio'][0]:.2f}; "
                     f"the baseline {btv:.2f}{band} / {shipped['base_hf_ratio'][0]:.2f} at the same seeds)")
    return text + (". The shipped configurations keep the shipped design, which puts fine detail before "
                   "robustness to input noise; where that robustness matters more than fine detail, "
                   f"{LABELS[best]} is the closer choice. What each design trades on each data set is in the tables "
                   "above.")


#: Variants of the shipped design, read against it seed by seed (what the change does to it).
VARIANTS = {PATH8: "the full-resolution path at half its channels (c = 8 instead of 16), a seventh less time per "
                   "iteration at 256 px (docs/PERFORMANCE.md section 10)",
            "bc_kaiser9n_lastnone_upk13n_fr16": "without the shift-equivariance term"}
VARIANT_METRICS = (("pooled_db", "stability (dB)", 2), ("tv_ratio", "TV ratio", 2), ("hf_ratio", "HF ratio", 2),
                   ("psnr", "PSNR (dB)", 2), ("noise_db", "noise 0.05 (dB)", 2))


def variants_section(rows: dict, recipe: str = "quick") -> list[str]:
    """Each of :data:`VARIANTS` minus the shipped design at the same seeds (mean ± sd of the
    per-seed differences), per data set: what the change costs or buys, free of the baseline's
    own seed noise."""
    lines = []
    for variant, what in VARIANTS.items():
        table = []
        for d in DATASETS:
            runs = rows.get(d, {}).get(recipe, {})
            mine, shipped = runs.get(variant, {}), runs.get(SHIPPED, {})
            seeds = sorted(set(mine) & set(shipped), key=int)
            if not seeds:
                continue
            # fmt_of: a figure some seeds lack (the design study's facades rows have no noise figure).
            cells = [fmt_of(paired_gap(mine, shipped, seeds, k), len(seeds), digits, True)
                     for k, _, digits in VARIANT_METRICS]
            table.append(f"| {d} | {','.join(seeds)} | " + " | ".join(cells) + " |")
        if table:
            lines += ["", f"**{sentence_label(variant)}**: {what}; minus the shipped design "
                      f"at the same seeds, {recipe} recipe (mean ± sd over seeds; positive = higher than the shipped "
                      "design's):", "",
                      "| data set | seeds | " + " | ".join(h for _, h, _ in VARIANT_METRICS) + " |",
                      "|---|---|" + "---|" * len(VARIANT_METRICS), *table]
    return (["", "## Variants of the shipped design, seed by seed"] + lines) if lines else []


NOISE_PATH = RECORD.parent / "noise_path.json"


def noise_path_table(record: dict) -> list[str]:
    """Markdown rows of studies/noise_path.py's record: per data set, recipe and design, the mean
    over seeds of the noise robustness with the noise fed to each part of G."""
    groups: dict[tuple[str, str, str], list[dict]] = {}
    for name, row in record.get("runs", {}).items():
        dataset, recipe, rest = name.split("_", 2)
        groups.setdefault((dataset, recipe, rest.rsplit("_s", 1)[0]), []).append(row)
    lines = ["| data set | recipe | design | seeds | noise into all of G (dB) | into the U-Net body only | "
             "into the full-resolution path only | the input itself (copy) |", "|---|---|---|---|---|---|---|---|"]
    for (dataset, recipe, cand), rows in sorted(groups.items()):
        mean = {k: f"{sum(r[k] for r in rows) / len(rows):.1f}" for k in ("both", "body", "path", "copy")}
        path = all(r["fullres"] for r in rows)
        lines.append(f"| {dataset} | {recipe} | {LABELS.get(cand, cand)} | {len(rows)} | {mean['both']} | "
                     f"{mean['body'] if path else '-'} | {mean['path'] if path else '-'} | {mean['copy']} |")
    return lines


def noise_path_section() -> list[str]:
    record = ds.read_json(NOISE_PATH)
    if not record:
        return []
    return ["", "## Where the input noise goes", "",
            f"`python -m studies.noise_path` (record `{NOISE_PATH.relative_to(ROOT)}`, commit {record.get('commit')}): "
            f"noise robustness at sigma {record['sigma']:g} (mean PSNR between G(x) and G(x + noise) over the test "
            "split, the same draw as evaluate.py's) with the noisy input fed to all of G, to the U-Net body only "
            "(the full-resolution path reading the clean input) or to the path only; the last column is the noise "
            "itself, what a generator that copied its input would score.", "", *noise_path_table(record)]


def figures_section(summary: dict) -> list[str]:
    lines = []
    for d in DATASETS:
        if DATASETS[d].get("from_design_study"):
            continue
        r = verdict_recipe(summary, d)
        path = figure(d, r) or RECORD.parent / f"samples_{d}.png"
        if path.exists():
            lines += ["", f"**{d}** ({r} recipe, seed 0), columns: input | {LABELS['baseline']} | "
                          f"{LABELS[SHIPPED]} | target; under each output, how much it changes when the input "
                          "moves one pixel diagonally (x4; black = not at all):", "",
                      f"![{d}](images/real_data_study/{path.name})"]
    return lines


README = ROOT / "README.md"
README_MARKERS = ("<!-- recommendation -->", "<!-- /recommendation -->")


def readme_block(summary: dict) -> str:
    """The README's short table: the shipped design against the baseline on every data set, at
    that data set's verdict recipe, with the seeds behind each figure."""
    lines = ["The shipped design (`configs/cpu_quick_aa.yaml`; `configs/facades_aa.yaml` at 256 px) against the "
             "baseline U-Net, same recipe and seeds, on each data set's test split "
             "([docs/REAL_DATA_STUDY.md](docs/REAL_DATA_STUDY.md), regenerated by `python -m studies.real_data_study "
             "--stage report`; 128 px, CPU recipes):", "",
             "| data set | recipe | seeds | stability gain (dB) | TV ratio, baseline -> shipped (1 = as sharp as the "
             "targets) | HF ratio, baseline -> shipped | PSNR gap (dB) | goal criteria met (of those measured) |",
             "|---|---|---|---|---|---|---|---|"]
    for d in DATASETS:
        for r in RECIPES:
            s = summary.get(d, {}).get(r, {}).get(SHIPPED)
            if s is None or "baseline" not in summary[d][r]:
                continue
            measured = goal_measured(s)
            # The baseline at the shipped design's seeds: "same recipe and seeds", as the text says.
            lines.append(f"| {d} | {r} | {','.join(s['seeds'])} | {fmt(s['gap_pooled_db'], 1, True)} | "
                         f"{fmt(s['base_tv_ratio'])} -> {fmt(s['tv_ratio'])} | {fmt(s['base_hf_ratio'])} -> "
                         f"{fmt(s['hf_ratio'])} | {fmt(s['gap_psnr'], 2, True)} | {sum(measured)}/{len(measured)} |")
    lines += ["", verdict(summary, readme=True).replace("in the tables above", "on the study page")]
    met = goal_met_note(summary)
    lines += ["", met] if met else []
    return "\n".join(lines)


def write_readme_block(summary: dict) -> None:
    """Replace the README's text between :data:`README_MARKERS` with :func:`readme_block`."""
    text = README.read_text()
    start, end = (text.index(m) for m in README_MARKERS)
    README.write_text(text[:start + len(README_MARKERS[0])] + "\n" + readme_block(summary) + "\n" + text[end:])


def write_report() -> None:
    """The record (docs/images/real_data_study/record.json), the page (docs/REAL_DATA_STUDY.md)
    with its figures, and the README's recommendation block."""
    rows = {d: {r: {c: v for c, v in cands.items() if c in CANDIDATE_NAMES} for r, cands in recipes.items()}
            for d, recipes in collect().items()}  # not the probes of other studies (studies/term_every.py)
    cost = (ds.read_json(ds.RECORD) or {}).get("cost", {})
    summary = summarise(rows, cost)
    RECORD.parent.mkdir(parents=True, exist_ok=True)
    ds.write_json(RECORD, {"rows": rows, "goal": GOAL, "candidates": {c: ds.CANDIDATES[c].options
                                                                      for c in CANDIDATE_NAMES}})
    lines = (page_header() + dataset_tables(summary) + recommendation_section(summary) + variants_section(rows)
             + noise_path_section() + figures_section(summary))
    DOC.write_text("\n".join(lines) + "\n")
    write_readme_block(summary)
    ds.log(f"wrote {DOC.relative_to(ROOT)} and the README's recommendation")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--stage", choices=["all", "report"], default="all")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="--stage all: the seeds to train (default 0 1 2)")
    p.add_argument("--datasets", nargs="+", default=None, choices=list(DATASETS),
                   help="--stage all: the data sets to train (default: all)")
    p.add_argument("--jobs", type=ds.at_least(1), default=1,
                   help="runs trained (and evaluated) at a time, one thread each")
    args = p.parse_args(argv)
    if args.stage == "report" and (args.seeds or args.datasets):
        # Accepted and ignored before: a report covers every recorded run.
        p.error("--seeds and --datasets choose what --stage all trains; --stage report covers every recorded run")
    args.seeds = args.seeds or list(ds.DEFAULT_SEEDS)
    args.datasets = args.datasets or list(DATASETS)
    if args.stage == "all":
        recorded = (ds.read_json(RECORD) or {}).get("rows", {})
        if "facades" in args.datasets:
            ensure_facades()

        def run_one(task: tuple[str, str, str, int]) -> None:
            d, r, c, s = task
            name = run_name(d, r, c, s)
            if str(s) in recorded.get(d, {}).get(r, {}).get(c, {}) and not run_dir(name).exists():
                return  # reported from the committed record
            if train(d, r, c, s, threads=1):
                evaluate(d, name, threads=1)

        with ThreadPoolExecutor(args.jobs) as pool:  # threads: each run is a subprocess
            list(pool.map(run_one, queue(args.seeds, args.datasets)))
    write_report()
    return 0


if __name__ == "__main__":
    sys.exit(main())
