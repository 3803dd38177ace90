"""Where a design's input noise reaches the output: the full-resolution path or the U-Net body?

    .venv/bin/python -m studies.noise_path                      # the real-data study's colorize and photos runs
    .venv/bin/python -m studies.noise_path --runs RUN [RUN ...]  # any trained runs (runs/<name>)

On grayscale -> colour the designs with a full-resolution path (``fullres_channels`` > 0) are
about 6 dB less robust to input noise than the baseline (docs/REAL_DATA_STUDY.md). This
attributes that drop. For each run's test images x and evaluate.py's draw of the noise z
(sigma 0.05), it measures the mean per-image PSNR between
G(x) and G with the noisy input x + sigma z fed to

* ``both``: every part of G (evaluate.py's noise-robustness figure);
* ``body``: the U-Net's encoder and decoder only, the full-resolution path reading the clean x;
* ``path``: the full-resolution path only, the body reading the clean x;

and, as the scale a faithful model is measured on, ``copy``: the PSNR between x and x + sigma z
itself (a generator that passed its input through unchanged). On colorize the target's luma is
the input, so a model that keeps the input's detail passes part of its noise by construction.
The record (docs/images/real_data_study/noise_path.json) holds every run's figures with its
checkpoint; the real-data study's page reads it.
"""

from __future__ import annotations

import argparse
import sys

import torch

from pix2pix_aa.demo import run_dir
from studies import design_study as ds
from studies import real_data_study as rds

RECORD = rds.NOISE_PATH
SIGMA = 0.05


def default_runs() -> list[str]:
    """The real-data study's runs of the baseline and the designs with a full-resolution path,
    every data set, recipe and seed trained to its last epoch on disk."""
    names = []
    for dataset in ("colorize", "photos", "facades"):
        for recipe in rds.RECIPES:
            for candidate in ("baseline", rds.SHIPPED, "bc_kaiser9n_lastnone_upk13n_fr16", rds.DETAIL):
                for seed in range(5):
                    name = rds.run_name(dataset, recipe, candidate, seed)
                    if rds.is_finished(name, recipe):
                        names.append(name)
    return names


def split_forward(G: torch.nn.Module, x_body: torch.Tensor, x_path: torch.Tensor) -> torch.Tensor:
    """G's output with its full-resolution path reading ``x_path`` and the rest ``x_body``
    (both (N, C, H, W)). G without the path: G(x_body)."""
    path = getattr(G, "fullres", None)
    if path is None or getattr(G, "head", None) is None:
        return G(x_body)
    run = path.run
    path.run = lambda _x: run(x_path)  # the instance attribute shadows the method until deleted
    try:
        return G(x_body)
    finally:
        del path.run


def attribute(name: str, sigma: float = SIGMA, seed: int = 0) -> dict:
    """{"both" | "body" | "path" | "copy": mean PSNR dB, "images": N, "fullres": bool} of one run."""
    from pix2pix_aa.evaluation.checkpoints import load_generator
    from pix2pix_aa.evaluation.data import data_settings, load_data
    from pix2pix_aa.evaluation.runner import EvalOptions
    from pix2pix_aa.metrics.psnr import DATA_RANGE, MAX_PSNR_DB, mse_per_image, psnr_from_mse
    from pix2pix_aa.metrics.robustness import noise_draw

    item = load_generator(run_dir(name) / "checkpoints" / "last.ckpt")
    x, _ = load_data(data_settings(item), rds.DATASETS[name.split("_", 1)[0]]["images"])  # the study's images
    G = item.generator.eval()
    # evaluate.py's draw: one per chunk of images, seeded by the chunk's first index, so "both"
    # is the results.json figure (a sparse edge map's figure moves by dB with the draw).
    chunk = EvalOptions().chunk
    z = torch.cat([noise_draw(x[lo:lo + chunk], seed + lo) for lo in range(0, len(x), chunk)])
    noisy = x + sigma * z

    def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(psnr_from_mse(mse_per_image(a, b), DATA_RANGE, MAX_PSNR_DB).mean())

    with torch.no_grad():
        clean = torch.cat([G(x[i:i + 1]) for i in range(len(x))])
        out = {part: psnr(clean, torch.cat([split_forward(G, xb[i:i + 1], xp[i:i + 1]) for i in range(len(x))]))
               for part, (xb, xp) in {"both": (noisy, noisy), "body": (noisy, x), "path": (x, noisy)}.items()}
    evaluated = ds.read_json(rds.OUT / "eval" / name / "results.json") or {}
    noise = next(iter(evaluated.get("models", {}).values()), {}).get("row", {}).get(f"noise_{sigma:g}_db")
    return {**out, "copy": psnr(x, noisy), "images": len(x), "fullres": getattr(G, "fullres", None) is not None,
            "evaluate_py_db": noise,
            "checkpoint": str((run_dir(name) / "checkpoints" / "last.ckpt").relative_to(ds.ROOT))}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", nargs="+", help="the real-data study's run names, e.g. colorize_long_baseline_s0 "
                   "(default: its runs on disk)")
    args = p.parse_args(argv)
    names = args.runs or default_runs()
    if not names:
        print("noise_path: no trained run found (train the real-data study's runs first)", file=sys.stderr)
        return 2
    record = ds.read_json(RECORD) or {"sigma": SIGMA, "runs": {}}
    for name in names:
        record["runs"][name] = row = attribute(name)
        if row["evaluate_py_db"] is not None and abs(row["both"] - row["evaluate_py_db"]) > 0.01:
            ds.log(f"noise_path {name}: {row['both']:.3f} dB here, {row['evaluate_py_db']:.3f} dB in its results.json")
        ds.log(f"noise_path {name}: " + ", ".join(f"{k} {v:.1f} dB" for k, v in record["runs"][name].items()
                                                    if isinstance(v, float)))
    record.update(ds.git_state())
    ds.write_json(RECORD, record)
    print("\n".join(rds.noise_path_table(record)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
