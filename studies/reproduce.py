"""Reproduction study: baseline vs Rect-2 / Tri-3 / Bin-5 / APS pix2pix U-Nets on the procedural
facades, trained with identical seed, data and budget, then evaluated for stability and quality.
Writes docs/RESULTS.md (every number on it comes from this run) and its figures.

    python -m studies.reproduce                      # train what is missing, evaluate, write the page
    python -m studies.reproduce --parallel 2 --threads 1
    python -m studies.reproduce --render-only        # redraw page + figures from outputs/repro

The page states stability with sharpness beside it: the headline is the crop protocol's pooled
PSNR, with the per-shift mean, the equal-bandwidth figure (both outputs low-passed by one common
filter), the circular protocol, panning flicker, PSNR / SSIM to the target and the TV / HF ratios
to the targets; every sentence on it is computed from those numbers, and a difference is only
called real when it exceeds the seed-to-seed noise (:data:`NOISE`).

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
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pix2pix_aa.demo import VERSION, run_dir, thread_env, train_command  # the same runs as `make demo`

ROOT = Path(__file__).resolve().parent.parent


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
    """Seed 0 is the study's own run; other seeds (studies/seeds.py) get their own folder."""
    return variant if seed == 0 else f"{variant}_seed{seed}"


def train(variant: str, threads: int, seed: int = 0, extra: tuple[str, ...] = ()) -> None:
    config, antialias = VARIANTS[variant]
    name = run_name(variant, seed)
    seed_args = ["--seed_everything", str(seed)] if seed else []
    cmd = train_command(name, antialias, config, ["--trainer.enable_progress_bar", "false", *seed_args, *extra])
    env = thread_env(threads)
    log = ROOT / "logs" / f"repro_{name}.log"
    log.parent.mkdir(exist_ok=True)
    print(f"[train] {name}: {' '.join(cmd[1:])}  (log: {log.relative_to(ROOT)})", flush=True)
    with log.open("a") as f:
        subprocess.run(cmd, cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, check=True)
    print(f"[train] {name}: done", flush=True)


def training_minutes(name: str) -> float | None:
    """Wall minutes from the run's first to last training scalar (None without its events)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    if not run_dir(name).is_dir():
        return None
    events = EventAccumulator(str(run_dir(name)), size_guidance={"scalars": 0})
    events.Reload()
    if "train/loss_G_step" not in events.Tags().get("scalars", []):
        return None
    steps = events.Scalars("train/loss_G_step")
    return (steps[-1].wall_time - steps[0].wall_time) / 60


def evaluate(names: list[str], out: Path, max_images: int, processes: int, extra: list[str]) -> dict:
    cmd = [sys.executable, "evaluate.py", *[str(run_dir(n)) for n in names], "--max-images", str(max_images),
           "--out", str(out), "--no-progress", "--num-processes", str(processes), *extra]
    print(f"[evaluate] {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True)
    return json.loads((out / "results.json").read_text())


def ensure_data() -> None:
    """The facades drawn with another generator seed (layouts and textures never seen in training)."""
    if not (ROOT / "data" / "facades_seed1").exists():
        subprocess.run([sys.executable, "-m", "pix2pix_aa.data.facades", "--out", "data/facades_seed1", "--seed", "1",
                        "--train", "0", "--val", "0", "--test", "50"], cwd=ROOT, check=True)


def ensure_photos() -> None:
    """The photographs set. evaluate.py generates data only at a checkpoint's own data_dir, so it
    is made here, with the generation settings the facades runs record (seed 0, 256 px, default
    split sizes), so the photo figures of docs/RESULTS.md are measured on the same images."""
    if not (ROOT / "data" / "photos").exists():
        from pix2pix_aa.data.photos import generate_photos

        generate_photos(ROOT / "data" / "photos", seed=0)


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
    """Per-shift PSNR (mean over images), shifts ordered by distance from (0, 0), one line per model."""
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
    ax.set_ylabel("stability PSNR (dB), mean over images")
    ax.set_title(f"{protocol} protocol: PSNR of G(shift(x)) vs shift(G(x)) per shift", fontsize=9)
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
#: Differences smaller than these are within what another training seed changes, so no sentence
#: on the page calls them real. Stability: the ~1 dB seed-to-seed spread of docs/RESULTS_SEEDS.md
#: (3 seeds per model). PSNR / SSIM / TV ratio: the largest seed-to-seed standard deviation over
#: the models there (0.28 dB, 0.019, 0.016 TV on a target TV of 0.23, i.e. 0.07 TV ratio), rounded up.
NOISE = {"stability": 1.0, "psnr": 0.5, "ssim": 0.02, "tv_ratio": 0.07}
#: The filters' expected stability order (the paper's: the stronger the low-pass, the more stable).
EXPECTED_ORDER = ["baseline", "rect2", "tri3", "bin5"]
#: (results.json row key, header, format) of the page's tables; the headline is the first.
COLUMNS = [
    ("stability_crop_pooled_db", "crop pooled (dB)", ".2f"),
    ("stability_crop_mean_db", "crop mean (dB)", ".2f"),
    ("stability_crop_eb_pooled_db", "crop pooled, equal bandwidth (dB)", ".2f"),
    ("stability_circular_pooled_db", "circular pooled (dB)", ".2f"),
    ("flicker_pooled_db", "panning flicker (dB)", ".2f"),
    ("quality_psnr", "PSNR to target (dB)", ".2f"),
    ("quality_ssim", "SSIM", ".3f"),
    ("tv_ratio", "TV ratio", ".3f"),
    ("hf_ratio", "HF ratio", ".3f"),
]
#: Row keys every results.json read here must have (written by evaluate.py since the pooled
#: headline and the sharpness ratios; an older results.json lacks them).
REQUIRED_KEYS = ("stability_crop_pooled_db", "stability_crop_mean_db", "stability_crop_eb_pooled_db", "tv_ratio",
                 "hf_ratio", "quality_ssim")


def rows_of(results: dict, labels: dict[str, str]) -> dict[str, dict]:
    """{variant: results row}; refuses a results.json written before the current result keys."""
    rows = {}
    for name, label in labels.items():
        row = results["models"][label]["row"]
        missing = [k for k in REQUIRED_KEYS if k not in row]
        if missing:
            raise SystemExit(f"{label}: results.json has no {', '.join(missing)} (written by an older evaluate.py); "
                             "re-run the evaluations (without --render-only)")
        rows[name] = row
    return rows


def _cell(value, fmt: str) -> str:
    return "-" if value is None else f"{value:{fmt}}"


def table(results: dict, labels: dict[str, str], minutes: dict[str, float | None] | None = None) -> str:
    """One row per model, :data:`COLUMNS` (panning flicker only when measured), collapsed models marked."""
    rows = rows_of(results, labels)
    cols = [c for c in COLUMNS if c[0] != "flicker_pooled_db" or any(r.get(c[0]) is not None for r in rows.values())]
    head = "| model | " + " | ".join(h for _, h, _ in cols) + " |" + (" train min |" if minutes else "")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for name, r in rows.items():
        cells = [_cell(r.get(k), f) for k, _, f in cols]
        if minutes:
            cells.append(_cell(minutes.get(name), ".1f"))
        lines.append(f"| {name}{' (collapsed)' if r.get('collapsed') else ''} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def order_statement(results: dict, labels: dict[str, str], key: str, expected: list[str]) -> str:
    present = [n for n in expected if n in labels]
    rows = rows_of(results, labels)
    vals = {n: rows[n][key] for n in present}
    if any(v is None for v in vals.values()):
        return "not measured"
    observed = sorted(present, key=lambda n: vals[n])
    holds = observed == present
    return (f"expected {' < '.join(present)}; observed {' < '.join(f'{n} ({vals[n]:.2f})' for n in observed)}: "
            f"**{'agrees' if holds else 'does not agree'}**")


def quality_differences(row: dict, base: dict) -> list[str]:
    """The quality figures (PSNR, SSIM, TV ratio) on which ``row`` differs from ``base`` by more
    than :data:`NOISE`, as text; empty when all are within it."""
    out = []
    for key, name, noise, fmt in (("quality_psnr", "PSNR", NOISE["psnr"], ".2f"),
                                  ("quality_ssim", "SSIM", NOISE["ssim"], ".3f"),
                                  ("tv_ratio", "TV ratio", NOISE["tv_ratio"], ".3f")):
        a, b = row.get(key), base.get(key)
        if a is not None and b is not None and abs(a - b) > noise:
            out.append(f"{name} {a:{fmt}} vs {b:{fmt}}")
    return out


def gains(results: dict, labels: dict[str, str]) -> dict[str, dict]:
    """Per non-baseline variant: its differences to the baseline (dB for stability)."""
    rows = rows_of(results, labels)
    base = rows["baseline"]

    def diff(r, key):
        return None if r.get(key) is None or base.get(key) is None else r[key] - base[key]

    out = {}
    for name, r in rows.items():
        if name == "baseline":
            continue
        g = {k: diff(r, k) for k in ("stability_crop_pooled_db", "stability_crop_eb_pooled_db",
                                     "stability_circular_pooled_db", "flicker_pooled_db", "quality_psnr",
                                     "quality_ssim", "tv_ratio")}
        raw, eb = g["stability_crop_pooled_db"], g["stability_crop_eb_pooled_db"]
        g["share"] = eb / raw if raw is not None and eb is not None and raw > NOISE["stability"] else None
        g["quality_differs"] = quality_differences(r, base)
        out[name] = g
    return out


def gains_table(results: dict, labels: dict[str, str]) -> str:
    rows = rows_of(results, labels)
    lines = ["| model | crop pooled | crop pooled, equal bandwidth | share at equal bandwidth | circular pooled | "
             "panning flicker | PSNR | SSIM | TV ratio (baseline's) | quality vs the baseline |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, g in gains(results, labels).items():
        share = "-" if g["share"] is None else f"{g['share']:.0%}"
        verdict = ("differs: " + "; ".join(g["quality_differs"])) if g["quality_differs"] else "within noise"
        lines.append(f"| {name} | " + " | ".join(_cell(g[k], "+.2f") for k in (
            "stability_crop_pooled_db", "stability_crop_eb_pooled_db")) + f" | {share} | "
            + " | ".join(_cell(g[k], "+.2f") for k in ("stability_circular_pooled_db", "flicker_pooled_db",
                                                       "quality_psnr"))
            + f" | {_cell(g['quality_ssim'], '+.3f')} | {_cell(rows[name]['tv_ratio'], '.3f')} "
              f"({_cell(rows['baseline']['tv_ratio'], '.3f')}) | {verdict} |")
    return "\n".join(lines)


def gain_sentence(results: dict, labels: dict[str, str], name: str, lowpass: str) -> str:
    """How much of ``name``'s stability gain over the baseline survives at equal bandwidth, with
    its sharpness beside it; every figure read from ``results``."""
    if name not in labels or "baseline" not in labels:
        return ""
    rows, g = rows_of(results, labels), gains(results, labels)[name]
    raw, eb = g["stability_crop_pooled_db"], g["stability_crop_eb_pooled_db"]
    r, b = rows[name], rows["baseline"]
    smoother = (r["tv_ratio"] is not None and b["tv_ratio"] is not None
                and r["tv_ratio"] < b["tv_ratio"] - NOISE["tv_ratio"])
    text = f"{name}'s gain over the baseline (crop pooled): {raw:+.2f} dB raw"
    if eb is None:
        text += " (equal bandwidth not measured)"
    else:
        text += f", {eb:+.2f} dB at equal bandwidth (both outputs low-passed by {lowpass})"
        if raw <= NOISE["stability"]:
            text += f"; the raw gain is within the {NOISE['stability']:.0f} dB seed-to-seed noise"
        elif eb >= raw:
            text += (f": all of it survives (the equal-bandwidth gain is {g['share']:.0%} of the raw one), so the "
                     "gain is shift-equivariance, not smoothing")
        elif eb >= raw - NOISE["stability"]:
            text += (f": {g['share']:.0%} of it survives (the loss is within noise), so the gain is "
                     "shift-equivariance, not smoothing")
        elif eb > NOISE["stability"]:
            text += (f": {g['share']:.0%} of it survives; the rest lies in the frequencies the common filter "
                     "removes" + (" (where its smoother output gains for free)" if smoother else ""))
        else:
            text += (": at equal bandwidth the gain is within noise, so it lies in the frequencies the common "
                     "filter removes" + (" (what its smoother output gains for free)" if smoother else ""))
    if r.get("collapsed") or b.get("collapsed"):
        text += " (a collapsed model is in the comparison: no result)"
    text += (f". Its TV ratio is {r['tv_ratio']:.3f} vs the baseline's {b['tv_ratio']:.3f}, HF ratio "
             f"{r['hf_ratio']:.3f} vs {b['hf_ratio']:.3f}, SSIM {r['quality_ssim']:.3f} vs {b['quality_ssim']:.3f}, "
             f"PSNR to target {r['quality_psnr']:.2f} vs {b['quality_psnr']:.2f} dB")
    if g["quality_differs"]:
        text += (f"; the output quality is not the same ({'; '.join(g['quality_differs'])} differ by more than "
                 "the noise thresholds below)")
    else:
        text += "; PSNR, SSIM and TV ratio are within the noise thresholds below"
    return text + "."


def mean_inflation_statement(results: dict, labels: dict[str, str]) -> str:
    rows = rows_of(results, labels)
    d = {n: r["stability_crop_mean_db"] - r["stability_crop_pooled_db"] for n, r in rows.items()}
    worst = max(d, key=d.get)
    return (f"crop mean minus crop pooled: {', '.join(f'{n} {v:+.2f} dB' for n, v in d.items())}; largest for "
            f"{worst}. The mean of per-shift PSNRs exceeds the pooled figure the more the error varies between "
            "shifts and images, most when some shifts are reproduced (almost) exactly; the pooled headline does "
            "not reward those")


def band_label(lo: float, hi: float, last: bool) -> str:
    from fractions import Fraction

    def f(x: float) -> str:
        return "0" if x == 0 else str(Fraction(x).limit_denominator(1024))

    return f"> {f(lo)} (to the corners)" if last else f"{f(lo)}-{f(hi)}"


def spectrum_table(results: dict, labels: dict[str, str], protocol: str = "crop") -> str:
    """Stability spectrum (dB per radial octave band, cycles/pixel) of every model, with each
    model's difference to the baseline per band."""
    spectra = {n: (results["models"][l].get(protocol) or {}).get("spectrum") for n, l in labels.items()}
    spectra = {n: s for n, s in spectra.items() if s}
    if not spectra:
        return "(not measured)"
    edges = next(iter(spectra.values()))["band_edges_cycles_per_pixel"]
    bands = [band_label(edges[i], edges[i + 1], i == len(edges) - 2) for i in range(len(edges) - 1)]
    lines = ["| model | " + " | ".join(bands) + " |", "|---|" + "---|" * len(bands)]
    base = spectra.get("baseline")
    for n, s in spectra.items():
        cells = []
        for i, db in enumerate(s["stability_db"]):
            cell = _cell(db, ".1f")
            if base is not None and n != "baseline" and db is not None and base["stability_db"][i] is not None:
                cell += f" ({db - base['stability_db'][i]:+.1f})"
            cells.append(cell)
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conditions(results: dict, labels: dict[str, str]) -> str:
    """What a results.json was measured on and with: data, shifts, filters, code version."""
    opts = results["options"]
    r = rows_of(results, labels)["baseline"]
    model = results["models"][labels["baseline"]]
    n_shifts = sum(1 for s in opts["shifts"] if tuple(s) != (0, 0))
    flicker = model.get("flicker")
    code = opts.get("code") or {}
    text = (f"{r['images']} images of `{r['data_dir']}` ({r['dataset']}, split {r['split']}, {r['direction']}, "
            f"{r['image_size']} px); {n_shifts} shifts of the {opts['max_shift']}x{opts['max_shift']} grid; "
            f"equal-bandwidth filter {opts.get('lowpass') or 'none'}; ")
    text += (f"panning flicker over {flicker['num_frames']} frames on the first {flicker['num_images']} images; "
             if flicker else "no panning flicker; ")
    return text + f"pix2pix-aa {code.get('version', '?')}, commit {code.get('git_commit', '?')}"


def render_page(main: dict, seed1: dict, photos: dict, labels: dict[str, str], minutes: dict[str, float | None],
                argv: list[str], seconds: float, parallel: int, threads: int, figure_models: list[str]) -> str:
    """docs/RESULTS.md from the three evaluations' results.json: every figure on it is read from them."""
    lowpass = main["options"].get("lowpass") or "none"
    claims = _claims(main, seed1, labels)
    sentences = [s for s in (gain_sentence(main, labels, n, lowpass) for n in ("bin5", "aps")) if s]
    return (_page_setup(main, labels, argv, lowpass, seconds, parallel, threads)
            + _page_tables(main, seed1, photos, labels, minutes, sentences)
            + _page_claims_and_figures(claims, labels, figure_models))


def _claims(main: dict, seed1: dict, labels: dict[str, str]) -> list[str]:
    """The "Claims checked" list: the stability orders, APS's exactness, pooled vs mean, quality
    beside stability and collapsed models."""
    rows = rows_of(main, labels)
    g = gains(main, labels)
    same = [n for n, x in g.items() if not x["quality_differs"]]
    differs = {n: x["quality_differs"] for n, x in g.items() if x["quality_differs"]}
    collapsed = [n for n, r in rows.items() if r.get("collapsed")]
    aps = main["models"].get(labels.get("aps", ""), {}).get("circular")
    aps_min = None
    if aps:
        import numpy as np

        aps_min = float(np.nanmin(np.array(aps["per_shift_psnr"], dtype=float)))
    order = [n for n in EXPECTED_ORDER if n in labels]
    claims = [
        f"Stability order, crop pooled (the headline): "
        f"{order_statement(main, labels, 'stability_crop_pooled_db', order)}.",
        f"Stability order, crop pooled at equal bandwidth: "
        f"{order_statement(main, labels, 'stability_crop_eb_pooled_db', order)}.",
        f"Stability order, circular pooled: {order_statement(main, labels, 'stability_circular_pooled_db', order)}.",
        f"Same order on seed-1 facades (crop pooled): "
        f"{order_statement(seed1, labels, 'stability_crop_pooled_db', order)}.",
    ]
    if "aps" in labels:
        exact = aps_min is not None and aps_min >= 80
        claims.append(f"APS circular stability, worst shift: {f'{aps_min:.1f} dB' if aps_min is not None else 'n/a'} "
                      f"(expected >= 80 dB: **{'agrees' if exact else 'does not agree'}**).")
    claims.append(f"Pooled vs mean: {mean_inflation_statement(main, labels)}.")
    claims.append(
        "Quality beside stability (differences to the baseline larger than the noise thresholds): "
        + ("; ".join(f"{n}: {', '.join(d)}" for n, d in differs.items()) if differs else "none")
        + f". Within the thresholds on PSNR, SSIM and TV ratio: {', '.join(same) or 'no model'}.")
    if collapsed:
        claims.append(f"Collapsed (near-constant outputs, trivially stable, no result): {', '.join(collapsed)}.")
    return claims


def _page_setup(main: dict, labels: dict[str, str], argv: list[str], lowpass: str, seconds: float, parallel: int,
                threads: int) -> str:
    """The page's title, regenerate command and setup paragraph (conditions and definitions)."""
    return f"""# Reproduction study: anti-aliased pix2pix on procedural facades

Regenerate everything on this page (numbers and figures) with:

```bash
python -m studies.reproduce {' '.join(argv)}
```

(`--render-only` redraws the page and figures from the evaluations in `outputs/repro/` without
training or evaluating.)

Setup: {len(labels)} generators ({', '.join(labels)}) trained with `configs/cpu_quick.yaml` (APS:
`configs/cpu_quick_aps.yaml`, the same with circular padding): procedural facades, labels -> photo,
128x128 (num_downs 7), ngf = ndf = 32, batch 4, 12 epochs (6 constant + 6 decay), seed 0, same data
and order for every model. Evaluation (main table): {conditions(main, labels)}. Generators in eval
mode, PSNR with data range 2. Crop protocol = shifted windows of the reflect-padded test image
compared on their common region; circular = torch.roll. **Headline: crop pooled** (squared error
pooled over every compared pixel, shift and image, then converted to dB once); crop mean = mean of
the per-image, per-shift PSNRs (secondary: a few exact shifts inflate it); equal bandwidth = crop
pooled with both compared outputs low-passed by the same {lowpass} filter first, so a blurrier model
gains nothing from its blur alone; panning flicker = pooled PSNR between consecutive outputs of a
window moving 1 pixel per frame, after undoing the motion. Sharpness beside it: TV ratio = total
variation of the outputs / that of the targets, HF ratio = spectral energy above half Nyquist of
the outputs / that of the targets (1 = as sharp as the targets; below 1 = smoother). Definitions:
docs/DESIGN.md section 5b. Study wall time: {seconds / 60:.0f} min on this machine (2 CPU cores,
trainings {parallel} at a time with {threads} thread(s) each). Training minutes are wall time from the
run's TensorBoard events (they depend on what else the machine ran; docs/PERFORMANCE.md has the
interleaved per-mode costs).

"""


def _page_tables(main: dict, seed1: dict, photos: dict, labels: dict[str, str], minutes: dict[str, float | None],
                 sentences: list[str]) -> str:
    """The main table with its gains, the noise thresholds, the stability spectrum and the other inputs' tables."""
    base_images = main["models"][labels["baseline"]]["crop"]["num_images"]
    photo_images = photos["models"][labels["baseline"]]["crop"]["num_images"]
    return f"""## Main table: facades test split ({base_images} images, same generator seed as training)

{table(main, labels, minutes)}

Differences to the baseline (stability in dB; share = equal-bandwidth gain / raw gain, shown when
the raw gain exceeds the noise):

{gains_table(main, labels)}

{(chr(10) + chr(10)).join(sentences)}

Noise thresholds used for every "within noise" / "differs" on this page (the seed-to-seed spread
measured in docs/RESULTS_SEEDS.md, rounded up): stability {NOISE['stability']:.1f} dB, PSNR {NOISE['psnr']:.1f} dB,
SSIM {NOISE['ssim']:.2f}, TV ratio {NOISE['tv_ratio']:.2f}.

## Stability spectrum (crop protocol, facades test split)

Output energy / inconsistency energy per radial octave band of the output spectrum (dB,
cycles/pixel; higher = more stable in that band; in brackets: the difference to the baseline). A
model stable only because it produces no high frequencies shows it in the top bands:

{spectrum_table(main, labels)}

![stability spectrum](images/results/stability_spectrum.png)

## Other inputs (same trained models)

Facades drawn with another seed (seed 1: layouts and textures never seen in training;
{conditions(seed1, labels)}):

{table(seed1, labels)}

Real photographs bundled with scikit-image ({photo_images} test images), as edge maps -> photo (a different
distribution: the models never saw edge maps, so quality is meaningless here; stability still
measures how the output moves with the input; {conditions(photos, labels)}):

{table(photos, labels)}

"""


def _page_claims_and_figures(claims: list[str], labels: dict[str, str], figure_models: list[str]) -> str:
    """The "Claims checked" section, how to read it, and the figures (the panning animation when drawn)."""
    gif = "\n\nPanning (input | " + " | ".join(labels) + "), a window moving 1 pixel per frame:\n\n" \
          "![panning](images/results/panning.gif)" if (FIGS / "panning.gif").exists() else ""
    return f"""## Claims checked

{chr(10).join('- ' + c for c in claims)}

How to read these: the crop protocol is what a user sees when an image is re-cropped; its
differences between filters are the paper's claim. The circular protocol isolates the network's
own equivariance (no new content enters at the border) and is where APS is exact. A stability
gain is only a gain at equal quality when SSIM and TV ratio stay within noise; otherwise the
equal-bandwidth column says how much of it is equivariance rather than smoothing. These
briefly trained 128 px networks are far from the paper's 200-epoch 256 px models, so absolute dB
values are not comparable with the paper's table; the order between filters is what is tested.
One seed per model here; [RESULTS_SEEDS.md](RESULTS_SEEDS.md) trains every model again with two
more seeds (`studies/seeds.py`) and says which gaps survive the seed-to-seed spread.

## Figures

Internal feature distance per layer (baseline vs Bin-5 vs APS), like the paper's figure:

![feature distance](images/results/feature_distance.png)

Stability per shift (mean over images of the per-image PSNR at each shift):

![crop](images/results/stability_vs_shift_crop.png)
![circular](images/results/stability_vs_shift_circular.png)

One test input at shift (0, 0) and (3, 5); per model: the two inputs, the two outputs on their
common region, and their difference x8 (rows: {', '.join(figure_models)}):

![shifted outputs](images/results/shifted_outputs.png){gif}

Per-model heatmaps, the raw results (JSON/CSV) and an offline page (`index.html`: table, spectrum,
heatmaps, panning animation, samples) are in `outputs/repro/<set>/` after a run, and in
TensorBoard under each run's `evaluation/<--out name>-<hash>/` (`tensorboard --logdir runs`).
"""


def write_page(text: str) -> None:
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
                   help="redraw figures and the page from the results already in outputs/repro "
                        "(no training or evaluation)")
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
    names = [n for n in VARIANTS if n in args.variants]  # tables in the canonical order
    out = ROOT / "outputs" / "repro"
    if args.render_only:
        main_res, seed1, photos = (json.loads((out / d / "results.json").read_text())
                                   for d in ("facades", "facades_seed1", "photos"))
    else:
        ensure_data()
        main_res, seed1, photos = run_evaluations(names, out, args)
    labels = {n: f"cpu_quick_{n}/{VERSION}/last" for n in names}
    if args.render_only:  # keep the wall time and command of the run that produced the numbers
        study = json.loads((out / "study.json").read_text())
        seconds, args.passthrough = study["seconds"], study["argv"]
        stored = p.parse_args(study["argv"])
        args.parallel, args.threads = stored.parallel, stored.threads
    else:
        seconds = time.perf_counter() - start
        (out / "study.json").write_text(json.dumps({"seconds": seconds, "argv": args.passthrough}))
    rows_of(main_res, labels)  # an older results.json stops here, before any figure is redrawn
    write_figures(main_res, labels, out / "facades", args.figure_models)
    minutes = {n: training_minutes(n) for n in names}
    write_page(render_page(main_res, seed1, photos, labels, minutes, args.passthrough, seconds, args.parallel,
                           args.threads, args.figure_models))
    shutil.copy(out / "facades" / "results.json", FIGS / "results_facades.json")
    print(f"wrote {DOCS / 'RESULTS.md'} and {FIGS}", flush=True)
    return 0


#: The panning animation is copied next to the page only when it is at most this large (bytes).
MAX_GIF_BYTES = 2_000_000


def write_figures(main_res: dict, labels: dict[str, str], evaluation: Path, figure_models: list[str]) -> None:
    """The page's figures: from the main evaluation's results.json, its folder (spectrum plot,
    panning animation) and, for the shifted outputs, the runs' checkpoints (skipped when absent)."""
    FIGS.mkdir(parents=True, exist_ok=True)
    if all(main_res["models"][labels[n]].get("features") for n in ("baseline", "bin5", "aps") if n in labels):
        figure_feature_distance(main_res, labels, FIGS / "feature_distance.png")
    else:
        print("[figures] no feature distances in the results: feature_distance.png not redrawn", flush=True)
    for protocol in ("crop", "circular"):
        figure_stability_vs_shift(main_res, labels, protocol, FIGS / f"stability_vs_shift_{protocol}.png")
    missing = [n for n in figure_models if not (run_dir(n) / "checkpoints" / "last.ckpt").exists()]
    if missing:
        print(f"[figures] no checkpoint of {missing}: shifted_outputs.png not redrawn", flush=True)
    else:
        figure_shifted_outputs(figure_models, FIGS / "shifted_outputs.png")
    for name in ("stability_spectrum.png", "panning.gif"):
        src, dst = evaluation / name, FIGS / name
        if src.exists() and (name != "panning.gif" or src.stat().st_size <= MAX_GIF_BYTES):
            shutil.copy(src, dst)
        elif dst.exists():
            dst.unlink()  # never leave a figure of an older evaluation beside this one's numbers


def run_evaluations(names: list[str], out: Path, args: argparse.Namespace) -> tuple[dict, dict, dict]:
    main_res = evaluate(names, out / "facades", args.max_images, args.eval_processes, [])
    seed1 = evaluate(names, out / "facades_seed1", args.max_images, args.eval_processes,
                     ["--dataset", "aligned", "--data-dir", "data/facades_seed1", "--layers", "none",
                      "--no-tensorboard"])
    ensure_photos()
    photos = evaluate(names, out / "photos", args.max_images, args.eval_processes,
                      ["--dataset", "photos", "--data-dir", "data/photos", "--layers", "none", "--no-tensorboard"])
    return main_res, seed1, photos


if __name__ == "__main__":
    sys.exit(main())
