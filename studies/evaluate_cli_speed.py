"""evaluate.py end to end at 256 px: one process vs ``--num-processes``, float32 vs bf16.

    .venv/bin/python -m studies.evaluate_cli_speed                       # unet_256 baseline, 2 and 10 images
    .venv/bin/python -m studies.evaluate_cli_speed --antialias bin5 --settings 1p-fp32,2p-fp32
    .venv/bin/python -m studies.evaluate_cli_speed --settings 2p-bf16,2p-bf16+cl,2p-bf16+cl+nospec

What it measures: the public command, ``evaluate.py CKPT --protocol crop --noise none --layers
none --lowpass none --flicker-frames 0`` (the stability metric alone: 64 shifts of the 8x8 grid
per image) on the facades test split (data/facades, made by ``python -m pix2pix_aa.data.facades``
if missing) at 256x256, for a unet_256 generator (ngf 64, batch norm) with the pix2pix
normal(0, 0.02) init (trained weights cost the same), saved once as a minimal checkpoint of
``Pix2PixModule``'s layout in a temporary folder. Each setting runs as a subprocess, wall clock
from start to exit, for ``--small`` and ``--large`` images; the difference removes the fixed
cost (interpreter and torch import, pool start-up, model build, report writing), so

    per image = (t(large) - t(small)) / (large - small)
    100 images = t(small) + (100 - small) * per image.

Settings: ``<P>p-<precision>[+cl][+nospec]``: ``--num-processes P`` (each worker ``cores // P``
threads; 1p runs ``--threads 1`` so the two compare per core), ``--precision 32|bf16``, and
optionally ``--channels-last`` (``+cl``), ``--no-spectrum`` (``+nospec``) and ``--compile``
(``+compile``: inductor; its compile time is part of each run's fixed cost, after the warm-up
run has filled inductor's on-disk cache: the warm-up's own time, printed, is a cold start when
its setting compiles). The pooled dB of
each run is printed beside its time (bf16 must not move it beyond the stated bound; processes
must not move it at all). Read the load average printed at the end: the figures are for a machine
whose cores were free only if it is below the core count.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from pix2pix_aa.networks import UNetGenerator, init_weights

ROOT = Path(__file__).resolve().parents[1]


EVAL_FLAGS = ["--dataset", "facades", "--data-dir", "data/facades", "--direction", "BtoA", "--size", "256",
              "--protocol", "crop", "--noise", "none", "--layers", "none", "--lowpass", "none",
              "--flicker-frames", "0", "--samples", "0", "--no-tensorboard", "--no-progress"]


#: ``+name`` suffixes of a setting -> the evaluate.py option they add.
EXTRA_FLAGS = {"cl": "--channels-last", "nospec": "--no-spectrum", "compile": "--compile"}


def write_checkpoint(folder: Path, antialias: str, seed: int) -> Path:
    """A minimal Pix2PixModule checkpoint (generator weights and its LightningCLI config)."""
    torch.manual_seed(seed)
    init_args = {"num_downs": 8, "ngf": 64, "antialias": antialias}
    g = init_weights(UNetGenerator(**init_args))
    path = folder / f"unet256_{antialias}.ckpt"
    torch.save({"state_dict": {f"generator.{k}": v for k, v in g.state_dict().items()}, "epoch": 0,
                "hyper_parameters": {"generator": {"class_path": "pix2pix_aa.networks.UNetGenerator",
                                                   "init_args": init_args}}}, path)
    return path


def setting_flags(setting: str) -> list[str]:
    """The evaluate.py options of a setting (module docstring); SystemExit naming what is wrong."""
    base, *extras = setting.split("+")
    procs, precision = base.split("-")
    procs = int(procs.rstrip("p"))
    flags = ["--num-processes", str(procs)] if procs > 1 else ["--threads", "1"]
    flags += ["--precision", "bf16" if precision == "bf16" else "32"]
    unknown = set(extras) - set(EXTRA_FLAGS)
    if unknown:
        raise SystemExit(f"setting {setting!r}: unknown option(s) {', '.join(sorted(unknown))}; "
                         f"expected any of {', '.join(EXTRA_FLAGS)} after '+'")
    return flags + [EXTRA_FLAGS[e] for e in extras]


def run(ckpt: Path, flags: list[str], images: int, out: Path) -> tuple[float, float]:
    """(wall seconds, pooled crop dB) of one evaluate.py run with ``flags``."""
    cmd = [sys.executable, "evaluate.py", str(ckpt), "--max-images", str(images), "--out", str(out),
           *EVAL_FLAGS, *flags]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"evaluate.py failed ({' '.join(cmd[1:])}):\n{done.stderr[-2000:]}")
    row = next(iter(json.loads((out / "results.json").read_text())["models"].values()))["row"]
    return wall, row["stability_crop_pooled_db"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--antialias", default="none")
    p.add_argument("--settings", default="1p-fp32,2p-fp32,2p-bf16")
    p.add_argument("--small", type=int, default=2)
    p.add_argument("--large", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeats", type=int, default=1,
                   help="runs per setting and size, round-robin over the settings; the medians are used")
    p.add_argument("--no-warmup", action="store_true",
                   help="skip the discarded 1-image run before the measured ones")
    args = p.parse_args()
    if not (ROOT / "data" / "facades" / "test").is_dir():
        subprocess.run([sys.executable, "-m", "pix2pix_aa.data.facades", "--out", "data/facades"], cwd=ROOT, check=True)
    settings = args.settings.split(",")
    flags = {st: setting_flags(st) for st in settings}  # a bad setting fails before any run
    print(f"evaluate.py, unet_256 {args.antialias}, 256 px, crop protocol only (64 shifts), facades test; "
          f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}; "
          f"median of {args.repeats} run(s) per setting and size")
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = write_checkpoint(Path(tmp), args.antialias, args.seed)
        if not args.no_warmup:
            # The first evaluate.py after other work runs with cold caches (imports, data files,
            # the checkpoint): measured 26-54 s where later ones took 26-33 s for the same 2 images.
            wall, _ = run(ckpt, flags[settings[0]], 1, Path(tmp) / "warmup")
            print(f"warm-up ({settings[0]}, 1 image, discarded): {wall:.1f} s")
        print("| setting | wall s, " + f"{args.small} images | wall s, {args.large} images | s per image "
              "| 100 images, min | pooled dB |")
        print("|---|---|---|---|---|---|")
        walls: dict[str, dict[int, list[float]]] = {st: {args.small: [], args.large: []} for st in settings}
        dbs: dict[str, float] = {}
        for _ in range(args.repeats):
            for setting in settings:
                for n in (args.small, args.large):
                    wall, dbs[setting] = run(ckpt, flags[setting], n, Path(tmp) / f"{setting}_{n}")
                    walls[setting][n].append(wall)
        for setting in settings:
            small, large = (statistics.median(walls[setting][n]) for n in (args.small, args.large))
            per = (large - small) / (args.large - args.small)
            total = small + (100 - args.small) * per
            print(f"| {setting} | {small:.1f} | {large:.1f} | {per:.2f} | **{total / 60:.2f}** | {dbs[setting]:.3f} |")
        if args.repeats > 1:
            for setting in settings:
                print(f"{setting} runs: " + "; ".join(f"{n} images " + ", ".join(f"{w:.1f}" for w in ws) + " s"
                                                     for n, ws in walls[setting].items()))
    print(f"load average at the end {os.getloadavg()[0]:.2f} (1 min)")


if __name__ == "__main__":
    main()
