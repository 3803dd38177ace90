"""Benchmark: how far evaluate.py's speed options move the figures of trained models.

    .venv/bin/python -m studies.eval_precision runs/cpu_quick_baseline runs/cpu_quick_bin5 \\
        --max-images 20 --variants bf16,channels_last

For each checkpoint (run folders take their last.ckpt; read only), the same images (its own
test data, as evaluate.py chooses them) are evaluated with every default metric except the
feature layers, once in float32 (the reference) and once per variant, and each headline figure's
difference to float32 is printed: crop / circular / equal-bandwidth pooled stability (dB), mean
stability (dB), flicker (dB), noise robustness (dB), PSNR (dB), SSIM, TV and HF ratios. The last
line gives the largest absolute dB difference per variant over all checkpoints: the bound quoted
in docs/PERFORMANCE.md. Timing is printed too (one run each, not interleaved: see
studies/evaluate_speed.py for timings).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from pix2pix_aa.evaluation.checkpoints import find_checkpoints, load_generator
from pix2pix_aa.evaluation.data import data_settings, load_data
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator
from pix2pix_aa.evaluation.speed import keep_freed_memory, speed_variant

DB_KEYS = ("stability_crop_pooled_db", "stability_crop_eb_pooled_db", "stability_crop_mean_db",
           "stability_circular_pooled_db", "stability_circular_eb_pooled_db", "stability_circular_mean_db",
           "flicker_pooled_db", "quality_psnr")
OTHER_KEYS = ("quality_ssim", "tv_ratio", "hf_ratio")


def figures(result) -> dict:
    row = result.row()
    out = {k: row.get(k) for k in DB_KEYS + OTHER_KEYS}
    out.update({k: v for k, v in row.items() if k.startswith("noise_")})
    out["spectrum_crop_db"] = None if result.crop is None or result.crop.spectrum_db is None else \
        [float(v) for v in result.crop.spectrum_db]
    return out


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+")
    p.add_argument("--max-images", type=int, default=20)
    p.add_argument("--variants", default="bf16", help="comma-separated: bf16, channels_last, compile, "
                   "or options joined by '+' (bf16+compile)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--json", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    keep_freed_memory()
    variants = args.variants.split(",")
    report, worst = {}, {v: 0.0 for v in variants}
    worst_other = {v: 0.0 for v in variants}
    for path in find_checkpoints(args.checkpoints):
        item = load_generator(path)
        inputs, targets = load_data(data_settings(item), args.max_images)
        runs = {}
        for variant in ["fp32"] + variants:
            opts = EvalOptions(layers=None, samples=0, **speed_variant(variant))
            start = time.perf_counter()
            res = evaluate_generator(item.generator, inputs, targets, opts, label=item.label)
            runs[variant] = (figures(res), time.perf_counter() - start)
        ref = runs["fp32"][0]
        print(f"{item.label} ({item.antialias}, {inputs.shape[0]} images {tuple(inputs.shape[-2:])}): "
              f"fp32 {runs['fp32'][1]:.1f} s")
        for variant in variants:
            fig, seconds = runs[variant]
            diffs = {}
            for k, v in fig.items():
                if k == "spectrum_crop_db":
                    if v is not None and ref[k] is not None:
                        diffs[k] = max(abs(a - b) for a, b in zip(v, ref[k]))
                elif v is not None and ref.get(k) is not None:
                    diffs[k] = v - ref[k]
            db = {k: d for k, d in diffs.items() if k in DB_KEYS or k.startswith("noise_")}
            worst[variant] = max([worst[variant]] + [abs(d) for d in db.values()])
            worst_other[variant] = max([worst_other[variant]] + [abs(diffs[k]) for k in OTHER_KEYS if k in diffs])
            print(f"  {variant:14s} {seconds:6.1f} s  " + ", ".join(f"{k} {d:+.4f}" for k, d in diffs.items()))
        report[item.label] = {v: {"figures": f, "seconds": s} for v, (f, s) in runs.items()}
    print("largest |difference| to float32 over all checkpoints: " +
          ", ".join(f"{v}: {worst[v]:.4f} dB, {worst_other[v]:.4f} (SSIM / TV / HF ratio)" for v in variants))
    report["worst_db"] = worst
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return report


if __name__ == "__main__":
    main()
