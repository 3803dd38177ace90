"""The 256 px recipe on a lent GPU: baseline vs the recommended design, on the facades and one real-photo task.

On a machine with a GPU and the project installed (everything it writes goes under ``--out``, so a
lent machine's output folder brings it all back):

    python -m studies.gpu_recipe --minutes 10 --out OUT/gpu_recipe

Here, on the CPU, the same orchestration end to end (2 training steps per run on 4 images of 256
px, 2 evaluation images, 2 shifts), to test the script before spending device time on it; it took
about 15 minutes on the 2-core development machine under load, mostly start-up and evaluation:

    .venv/bin/python -m studies.gpu_recipe --dry-run --out outputs/gpu_recipe_dry

Four trainings, one after another (configs/facades_baseline.yaml and configs/facades_aa.yaml, on
data/facades and on the colorize task at 256 px), each with ``--model.n_epochs E
--model.n_epochs_decay E`` (a shortened schedule that still decays the LR to 0) and
``--trainer.max_time`` = its share of ``--minutes`` as the safety stop; then ``evaluate.py`` on
each data set's test split, baseline and recommended in one table. Everything written goes under
``--out`` (runs, evaluation pages, ``summary.json`` with the commit, the device and the minutes
each training took), so it comes back from the device.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = {"baseline": "configs/facades_baseline.yaml", "recommended": "configs/facades_aa.yaml"}
DATASETS = {"facades": [], "colorize": ["--data.dataset", "colorize", "--data.data_dir", "data/colorize_256",
                                        "--data.generate_size", "256"]}


def plan(args: argparse.Namespace) -> list[dict]:
    """One entry per training: its name, the command, and its evaluation's data set."""
    out_runs = Path(args.out) / "runs"
    share = max(1, int(args.minutes * 60 / (len(DESIGNS) * len(DATASETS))))
    jobs = []
    for data, flags in DATASETS.items():
        for design, config in DESIGNS.items():
            name = f"{data}_{design}"
            cmd = [sys.executable, "train.py", "fit", "--config", config, *flags,
                   "--trainer.logger.init_args.save_dir", str(out_runs), "--trainer.logger.init_args.name", name,
                   "--trainer.logger.init_args.version", "gpu", "--trainer.enable_progress_bar", "false",
                   "--model.n_epochs", str(args.epochs), "--model.n_epochs_decay", str(args.epochs),
                   "--trainer.max_time", f"00:00:{share // 60:02d}:{share % 60:02d}", "--seed_everything",
                   str(args.seed)]
            if args.dry_run:  # the plumbing only: 2 steps on a 4-image set, CPU
                cmd += ["--trainer.max_steps", "2", "--trainer.accelerator", "cpu", "--data.num_workers", "0",
                        "--data.data_dir", str(Path(args.out) / "data" / data), "--data.generate_counts",
                        json.dumps({"train": 4, "val": 2, "test": 2}), "--data.max_val_images", "2"]
                if data == "facades":
                    cmd += ["--data.generate_size", "256"]
            jobs.append({"name": name, "data": data, "design": design, "cmd": cmd,
                         "run": out_runs / name / "gpu"})
    return jobs


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder for everything this writes (the device's $OUT/...)")
    p.add_argument("--minutes", type=float, default=10.0, help="training minutes in all, shared by the 4 runs")
    p.add_argument("--epochs", type=int, default=10, help="E: E epochs at the initial LR, E decaying (default 10)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-images", type=int, default=50, help="test images per evaluation")
    p.add_argument("--dry-run", action="store_true", help="CPU, 2 steps a run, tiny data: test the script")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                              text=True).stdout.strip(), "args": vars(args), "runs": {}}
    import torch

    summary["device"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu"
    jobs = plan(args)
    for job in jobs:
        print(f"[gpu_recipe] train {job['name']}", flush=True)
        start = time.perf_counter()
        with (out / f"train_{job['name']}.log").open("w") as log:
            rc = subprocess.run(job["cmd"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        summary["runs"][job["name"]] = {"exit": rc, "minutes": round((time.perf_counter() - start) / 60, 2)}
        if rc != 0:
            print(f"[gpu_recipe] {job['name']} failed (exit {rc}); see {out / ('train_' + job['name'] + '.log')}")
    for data in DATASETS:
        runs = [str(j["run"]) for j in jobs if j["data"] == data and summary["runs"][j["name"]]["exit"] == 0]
        if len(runs) < 2:
            continue
        cmd = [sys.executable, "evaluate.py", *runs, "--out", str(out / f"eval_{data}"), "--layers", "none",
               "--no-progress", "--max-images", str(2 if args.dry_run else args.max_images)]
        if args.dry_run:
            cmd += ["--shifts", "2", "--noise", "none", "--num-processes", "1"]
        print(f"[gpu_recipe] evaluate {data}", flush=True)
        with (out / f"eval_{data}.log").open("w") as log:
            rc = subprocess.run(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
        summary[f"eval_{data}_exit"] = rc
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(f"[gpu_recipe] wrote {out / 'summary.json'}", flush=True)
    return 0 if all(r["exit"] == 0 for r in summary["runs"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
