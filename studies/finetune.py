"""Fine-tuning into anti-aliasing vs training it from scratch, on the cpu_quick recipe.

    python -m studies.finetune                 # train what is missing, evaluate, write the page
    python -m studies.finetune --epochs 3 --threads 1

Anti-aliasing adds no parameters, so a trained baseline's generator and discriminator load into
a Bin-5 U-Net (``--model.generator_weights`` / ``--model.discriminator_weights``). This trains
that fine-tune for ``--epochs`` epochs (constant LR for the first, then the pix2pix linear decay)
and compares it with the baseline it starts from and with Bin-5 trained from scratch for the
recipe's 12 epochs, on the facades test split (20 images, every shift of the 8x8 grid, crop
protocol, pooled; equal bandwidth = both outputs low-passed by Bin-5 first). The antialiased-cnns
authors found fine-tuning from a baseline beats training from scratch for classifiers; this
measures it for a pix2pix generator.

The runs are those of ``make demo`` (``runs/cpu_quick_baseline`` and ``runs/cpu_quick_bin5``,
trained if missing) plus ``runs/cpu_quick_bin5_ft<E>``; finished runs are not trained again.
Training time is the wall time between the first and last logged training step (TensorBoard
events), so start-up is excluded alike for all. Writes docs/RESULTS_FINETUNE.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from pix2pix_aa.demo import run_dir, thread_env, train_command  # the same runs as `make demo`

ROOT = Path(__file__).resolve().parent.parent


CONFIG = "configs/cpu_quick.yaml"
PAGE = ROOT / "docs" / "RESULTS_FINETUNE.md"


def train(name: str, antialias: str, threads: int, extra: list[str]) -> None:
    cmd = train_command(name, antialias, CONFIG, ["--trainer.enable_progress_bar", "false", *extra])
    log = ROOT / "logs" / f"finetune_{name}.log"
    log.parent.mkdir(exist_ok=True)
    print(f"[train] {name}: {' '.join(cmd[1:])}  (log: {log.relative_to(ROOT)})", flush=True)
    with log.open("a") as f:
        subprocess.run(cmd, cwd=ROOT, env=thread_env(threads), stdout=f, stderr=subprocess.STDOUT, check=True)


def training_minutes(name: str) -> tuple[float, int]:
    """(wall minutes between the first and last logged training step, logged steps)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir(name)), size_guidance={"scalars": 0})
    events.Reload()
    steps = events.Scalars("train/loss_G_step")
    return (steps[-1].wall_time - steps[0].wall_time) / 60, steps[-1].step + 1


def evaluate(names: list[str], out: Path, max_images: int, threads: int) -> dict:
    cmd = [sys.executable, "evaluate.py", *[str(run_dir(n)) for n in names], "--max-images", str(max_images),
           "--out", str(out), "--no-progress", "--protocol", "crop", "--layers", "none", "--noise", "none",
           "--flicker-frames", "0", "--no-tensorboard"]
    print(f"[evaluate] {' '.join(cmd[1:])}", flush=True)
    subprocess.run(cmd, cwd=ROOT, env=thread_env(threads), check=True)
    return json.loads((out / "results.json").read_text())


def _row(results: dict, label_prefix: str) -> dict:
    for row in (m["row"] for m in results["models"].values()):
        if str(row["model"]).startswith(label_prefix):
            return row
    raise KeyError(label_prefix)


def write_page(rows: dict[str, dict], minutes: dict[str, tuple[float, int]], epochs: int, args: argparse.Namespace,
               results: dict) -> None:
    def get(row: dict, *keys: str):
        for k in keys:
            if row.get(k) is not None:
                return row[k]
        return None

    cols = [("crop pooled (dB)", ("stability_crop_pooled_db",), 2),
            ("equal bandwidth (dB)", ("stability_crop_eb_pooled_db",), 2),
            ("PSNR to target (dB)", ("quality_psnr",), 2), ("SSIM", ("quality_ssim",), 3),
            ("TV ratio", ("tv_ratio",), 3), ("HF ratio", ("hf_ratio",), 4)]
    what = {"baseline": "baseline (the starting point), 12 epochs from scratch",
            "bin5": "Bin-5, 12 epochs from scratch",
            f"bin5_ft{epochs}": f"Bin-5 fine-tuned from the baseline, {epochs} epochs"}
    lines = ["| model | training | " + " | ".join(c[0] for c in cols) + " | training wall min (batches) |",
             "|---|---|" + "---|" * len(cols) + "---|"]
    for name, row in rows.items():
        vals = []
        for _, keys, digits in cols:
            v = get(row, *keys)
            vals.append("n/a" if v is None else f"{v:.{digits}f}")
        m, steps = minutes[name]
        lines.append(f"| {name} | {what[name]} | " + " | ".join(vals) + f" | {m:.1f} ({steps}) |")
    ft, scratch, base = rows[f"bin5_ft{epochs}"], rows["bin5"], rows["baseline"]

    def gap(a: dict, b: dict, key: str) -> float:
        return float(a[key]) - float(b[key])

    key, eb = "stability_crop_pooled_db", "stability_crop_eb_pooled_db"
    ratio = minutes[f"bin5_ft{epochs}"][0] / max(minutes["bin5"][0], 1e-9)
    summary = (
        f"- Fine-tuned vs from scratch: crop pooled {gap(ft, scratch, key):+.2f} dB, equal bandwidth "
        f"{gap(ft, scratch, eb):+.2f} dB, PSNR to target {gap(ft, scratch, 'quality_psnr'):+.2f} dB, SSIM "
        f"{gap(ft, scratch, 'quality_ssim'):+.3f}, TV ratio {float(ft['tv_ratio']):.3f} vs "
        f"{float(scratch['tv_ratio']):.3f}, at {ratio:.2f}x the training wall time.\n"
        f"- Fine-tuned vs the baseline it started from: crop pooled {gap(ft, base, key):+.2f} dB, equal bandwidth "
        f"{gap(ft, base, eb):+.2f} dB, SSIM {gap(ft, base, 'quality_ssim'):+.3f}.\n"
        f"- Read together: the fine-tune's extra stability over Bin-5 from scratch is "
        f"{'mostly bandwidth' if gap(ft, scratch, eb) < 0.5 * gap(ft, scratch, key) else 'mostly equivariance'} "
        f"(equal-bandwidth gain {gap(ft, scratch, eb):+.2f} of {gap(ft, scratch, key):+.2f} dB raw): its outputs are "
        f"{'smoother' if float(ft['tv_ratio']) < float(scratch['tv_ratio']) else 'sharper'} "
        f"(TV ratio {float(ft['tv_ratio']):.2f}), so it is not a free win.")
    code_info = results.get("options", {}).get("code", {})
    code = f"pix2pix_aa {code_info.get('version', '?')}, git {code_info.get('git_commit', '?')}"
    PAGE.write_text(f"""# Fine-tuning into anti-aliasing vs training from scratch

Regenerated by `python -m studies.finetune --epochs {epochs} --threads {args.threads}` (every
number below comes from that run; {time.strftime('%Y-%m-%d')}). Recipe: `{CONFIG}` (128x128,
num_downs 7, ngf = ndf = 32, batch 4, procedural facades, seed 0). The fine-tune starts from the
baseline's generator *and* discriminator (`--model.generator_weights`, `--model.discriminator_weights`;
anti-aliasing adds no parameters) and trains {epochs} epochs: LR 2e-4 for one, then linear decay.
Evaluation: `evaluate.py` on the first {args.max_images} facades of the test split, every shift of the
8x8 grid (63), crop protocol, pooled PSNR (data range 2); equal bandwidth = both compared outputs
low-passed by one Bin-5 filter first; TV ratio / HF ratio = output / target total variation /
energy above half Nyquist. Training wall time: first to last logged training step, {args.threads}
torch thread(s), on a shared 2-core CPU (other jobs ran beside it: compare ratios only, and
loosely). One seed: the seed-to-seed spread of this recipe's stability is about 1 dB
(docs/RESULTS_SEEDS.md), so gaps under that are not evidence. Code version: {code}.

{chr(10).join(lines)}

{summary}
""")
    print(f"wrote {PAGE.relative_to(ROOT)}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=3, help="fine-tuning epochs (default 3: 1 constant + 2 decay)")
    p.add_argument("--threads", type=int, default=1, help="torch threads per training / evaluation process")
    p.add_argument("--max-images", type=int, default=20)
    p.add_argument("--render-only", action="store_true", help="re-render the page from the last evaluation")
    args = p.parse_args(argv)
    ft = f"bin5_ft{args.epochs}"
    out = ROOT / "outputs" / "finetune"
    if not args.render_only:
        train("baseline", "none", args.threads, [])
        train("bin5", "bin5", args.threads, [])
        base_ckpt = run_dir("baseline") / "checkpoints" / "last.ckpt"
        train(ft, "bin5", args.threads, [
            "--model.generator_weights", str(base_ckpt), "--model.discriminator_weights", str(base_ckpt),
            "--model.n_epochs", "1", "--model.n_epochs_decay", str(args.epochs - 1),
            "--trainer.max_epochs", str(args.epochs)])
        results = evaluate(["baseline", "bin5", ft], out, args.max_images, args.threads)
    else:
        results = json.loads((out / "results.json").read_text())
    rows = {n: _row(results, f"cpu_quick_{n}/") for n in ("baseline", "bin5", ft)}
    minutes = {n: training_minutes(n) for n in rows}
    write_page(rows, minutes, args.epochs, args, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
