"""The README's main job (``make demo``): generate the procedural facades if missing, train the
baseline, the paper's Bin-5 anti-aliased U-Net (both ``configs/cpu_quick.yaml``) and the design
docs/DESIGN_STUDY.md recommends (``configs/cpu_quick_aa.yaml``), evaluate them together, print the
comparison table (``--variants`` picks a subset).

Each step runs the same public command a user would type (``train.py`` / ``evaluate.py``) in a
subprocess. A finished run is not trained again; an interrupted one resumes from ``last.ckpt``; a run
whose generator is not the one its config asks for (a shipped config changed since) is refused.

The trainings run side by side (``--jobs``, default: all of them with one thread each, else as many
as the cores hold at ``--threads`` each), each in its own process with its own thread count, so a
model does not depend on what runs beside it: the same commands, seeds and numbers as one after
another, in less time. Their output goes to ``outputs/demo/logs/<variant>.log``; with ``--jobs 1``
it is shown as it comes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: name -> (config, antialias override; None: the config's own). "base" is ``--config``.
VARIANTS: dict[str, tuple[str, str | None]] = {"baseline": ("base", "none"), "bin5": ("base", "bin5"),
                                               "aa": ("configs/cpu_quick_aa.yaml", None)}
VERSION = "main"


def thread_env(threads: int) -> dict:
    """This process's environment with ``threads`` torch (OpenMP) and MKL threads for a child."""
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))


def _run(cmd: list[str], threads: int | None = None) -> None:
    """Run ``cmd`` in the repository; ``threads``: its torch / MKL threads (None: the defaults)."""
    env = None if threads is None else thread_env(threads)
    print("\n$ " + ("" if threads is None else f"OMP_NUM_THREADS={threads} ") + " ".join(cmd), flush=True)
    subprocess.run(cmd, cwd=ROOT, check=True, env=env)


def _run_logged(cmd: list[str], threads: int, log: Path) -> float:
    """Run ``cmd`` in the repository with ``threads`` threads, its output into ``log``; minutes taken.

    Raises:
        SystemExit: the command failed: its exit code, the log's path and last lines.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"\n$ OMP_NUM_THREADS={threads} {' '.join(cmd)}   (output: {log.relative_to(ROOT)})", flush=True)
    start = time.perf_counter()
    with log.open("w") as f:
        rc = subprocess.run(cmd, cwd=ROOT, env=thread_env(threads), stdout=f, stderr=subprocess.STDOUT).returncode
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise SystemExit(f"error: exit code {rc} from {' '.join(cmd[1:3])} (see {log.relative_to(ROOT)}); its last "
                         f"lines:\n{tail}")
    return (time.perf_counter() - start) / 60


def asked_data(config: str, extra: Sequence[str] = ()) -> dict:
    """The data options a training of ``config`` with the train.py arguments ``extra`` asks for:
    the config's ``data`` section, with the ``--data.<key> <value>`` pairs of ``extra`` over it."""
    import yaml

    data = dict((yaml.safe_load((ROOT / config).read_text()) or {}).get("data") or {})
    data.update({flag[len("--data."):]: yaml.safe_load(value) for flag, value in zip(extra, extra[1:])
                 if flag.startswith("--data.")})
    return data


def check_data_folder(config: str, extra: Sequence[str] = ()) -> None:
    """Refuse a generated data folder of other counts than the demo asks for: the data module takes
    an existing folder as it is when the counts are left at their default, so a tiny demo's 4-image
    set was trained and scored on by the next plain demo, whose table then read as the full one.

    Raises:
        SystemExit: naming the folder, what it holds and what is asked, and the fix.
    """
    import json

    from pix2pix_aa.data.facades import DEFAULT_SPLITS

    data = asked_data(config, extra)
    if data.get("dataset", "facades") != "facades":
        return
    folder = Path(data.get("data_dir") or "data/facades")
    meta_path = (folder if folder.is_absolute() else ROOT / folder) / "generation.json"
    if not meta_path.is_file():
        return
    held = (json.loads(meta_path.read_text()) or {}).get("splits")
    asked = data.get("generate_counts") or DEFAULT_SPLITS
    if held is not None and held != asked:
        raise SystemExit(f"error: {folder} holds facades generated with counts {held}, and the demo asks for {asked} "
                         "(a smaller run's data?): move it away (the demo generates it again), or pass --train-args "
                         "--data.generate_counts with those counts")


def prepare_data(config: str, extra: Sequence[str] = ()) -> None:
    """The data set ``config`` (with ``extra`` train.py arguments) trains on, generated if missing by
    the data module itself, as train.py would: before trainings start side by side, so that they do
    not each generate it."""
    import logging

    from pix2pix_aa.cli import main as cli_main
    from pix2pix_aa.data.writer import GenerationStopped

    # Quietly: the demo's own argv is not the CLI's, and the trainings print Lightning's banners.
    quieted = [logging.getLogger(n) for n in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch")]
    levels = [lg.level for lg in quieted]
    saved_argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        for lg in quieted:
            lg.setLevel(logging.WARNING)
        cli = cli_main(["--config", str(ROOT / config), *extra, "--trainer.logger", "false"], run=False)
        try:
            cli.datamodule.prepare_data()
        except GenerationStopped as e:
            print(f"error: {e}", file=sys.stderr)
            raise SystemExit(128 + 15) from None
    finally:
        sys.argv = saved_argv
        for lg, level in zip(quieted, levels):
            lg.setLevel(level)


def train_all(trainings: list[tuple[str, list[str]]], threads: int, jobs: int, logs: Path) -> None:
    """Run the (variant, command) trainings, ``jobs`` at a time with ``threads`` threads each.

    Raises:
        SystemExit: a training failed (the others are finished first).
    """
    if jobs <= 1:
        for _, cmd in trainings:
            _run(cmd, threads=threads)
        return
    # Listed order reversed: the recommended design's training is the longest and Bin-5's the next,
    # so started first they finish closest together.
    order = trainings[::-1]
    failures = []
    with ThreadPoolExecutor(jobs) as pool:  # threads: each training is a subprocess
        futures = {name: pool.submit(_run_logged, cmd, threads, logs / f"{name}.log") for name, cmd in order}
        for name, future in futures.items():
            try:
                print(f"{name}: trained in {future.result():.1f} min", flush=True)
            except SystemExit as e:
                failures.append(e)
    if failures:
        raise failures[0]


def default_jobs(variants: int, threads: int) -> int:
    """Trainings at a time. One thread each: every variant at once, even past the cores (one-thread
    processes share cores without OpenMP's spinning, and no core idles while the longest training
    finishes alone: on 2 cores the demo took 13.7 min against 16.3 two at a time,
    docs/PERFORMANCE.md section 9). More threads each: as many as the cores this process may use
    hold."""
    from pix2pix_aa.evaluation.speed import available_cores

    if threads <= 1:
        return max(1, variants)
    return max(1, min(variants, available_cores() // threads))


def run_dir(name: str) -> Path:
    """The run folder of variant ``name`` (shared with studies/reproduce.py, which trains the
    same runs, so the demo re-uses a finished study and vice versa)."""
    return ROOT / "runs" / f"cpu_quick_{name}" / VERSION


def train_command(name: str, antialias: str | None, config: str, extra: Sequence[str] = ()) -> list[str]:
    """``train.py fit`` for one variant (``antialias`` None: the config's generator as it is),
    resuming from its last.ckpt when there is one (Lightning resumes an interrupted run and
    returns at once from a finished one)."""
    override = [] if antialias is None else ["--model.generator.init_args.antialias", antialias]
    cmd = [sys.executable, "train.py", "fit", "--config", config, *override,
           "--trainer.logger.init_args.name", f"cpu_quick_{name}", "--trainer.logger.init_args.version", VERSION,
           *extra]
    last = run_dir(name) / "checkpoints" / "last.ckpt"
    if last.exists():
        check_same_generator(last, config, antialias, extra)
        print(f"{name}: found {last.relative_to(ROOT)}; resuming from it", flush=True)
        cmd += ["--ckpt_path", str(last)]
    return cmd


#: Module options of the training objective, and of its length, that a run must share with what
#: the demo asks for: a finished tiny run (``--train-args --model.n_epochs 1``) was otherwise taken
#: up by the next plain demo, which printed its table as the 12-epoch result.
OBJECTIVE_OPTIONS = ("gan_mode", "lambda_l1", "lambda_shift", "shift_images", "max_shift", "n_epochs", "n_epochs_decay")
#: Data options a run must share with what the demo asks for (the same reason: a tiny data set).
DATA_OPTIONS = ("generate_counts", "generate_size", "batch_size", "crop_size", "load_size", "seed")
#: train.py options that would move the run away from the folder the demo evaluates.
RUN_NAMING = ("--trainer.logger", "--trainer.default_root_dir")


def check_same_generator(last: Path, config: str, antialias: str | None, extra: Sequence[str] = ()) -> None:
    """Refuse to resume a run whose generator is not the one ``config`` (with ``antialias`` and the
    ``--model.generator.init_args.<k> <v>`` pairs of ``extra``) asks for: resuming keeps the
    checkpoint's networks, so a run trained before a shipped config changed would be reported
    under the new design's name. The training objective's options (:data:`OBJECTIVE_OPTIONS`)
    are compared too, as the config and the ``--model.<option> <value>`` pairs of ``extra`` set them.

    Raises:
        SystemExit: naming the run, the options that differ and what to do; or the checkpoint's
            own error (``read_checkpoint``) when it cannot be read.
    """
    import yaml

    from pix2pix_aa.checkpoints import CheckpointError, read_checkpoint
    from pix2pix_aa.module import Pix2PixModule
    from pix2pix_aa.options import argument_defaults

    module = (yaml.safe_load((ROOT / config).read_text()) or {}).get("model", {})
    wanted = dict(module.get("generator", {}).get("init_args", {}))
    if antialias is not None:
        wanted["antialias"] = antialias
    prefix = "--model.generator.init_args."
    for flag, value in zip(extra, extra[1:]):
        if flag.startswith(prefix):
            wanted[flag[len(prefix):]] = yaml.safe_load(value)
    try:
        ckpt = read_checkpoint(last)
    except CheckpointError as e:  # a damaged last.ckpt: one line, as train.py would give
        raise SystemExit(f"error: {e}") from e
    hparams = ckpt.get("hyper_parameters", {})
    trained = (hparams.get("generator") or {}).get("init_args", {})
    differ = {k: (trained.get(k), v) for k, v in wanted.items() if trained.get(k) != v}
    # The training objective shapes the generator as much as its layers (the shift term): the
    # config's loss options against the run's, each at the module's default where unset.
    defaults = argument_defaults(Pix2PixModule)
    # A ``--model.<key> <value>`` pair of ``extra`` sets the objective as the command line does.
    asked = {**module, **{flag[len("--model."):]: yaml.safe_load(value) for flag, value in zip(extra, extra[1:])
                          if flag.startswith("--model.") and flag[len("--model."):] in OBJECTIVE_OPTIONS}}
    for key in OBJECTIVE_OPTIONS:
        run_value, config_value = hparams.get(key, defaults[key]), asked.get(key, defaults[key])
        if run_value != config_value:
            differ[f"model.{key}"] = (run_value, config_value)
    from pix2pix_aa.data import Pix2PixDataModule

    data_defaults = argument_defaults(Pix2PixDataModule)
    data_asked = asked_data(config, extra)
    saved = ckpt.get("datamodule_hyper_parameters") or {}
    for key in DATA_OPTIONS:
        run_value, config_value = saved.get(key, data_defaults[key]), data_asked.get(key, data_defaults[key])
        if run_value != config_value:
            differ[f"data.{key}"] = (run_value, config_value)
    if differ:
        raise SystemExit(f"error: {last.relative_to(ROOT)} was trained with another generator, objective, length or "
                         f"data than {config} (with --train-args) asks for "
                         f"({'; '.join(f'{k}: run {a!r}, asked {b!r}' for k, (a, b) in differ.items())}). "
                         f"Move or delete {last.parent.parent.relative_to(ROOT)} to train the current design.")


#: (results.json row key, header) of the demo's summary: stability (pooled; equal bandwidth) beside
#: sharpness, so no stability gain is read without what the smoothing costs.
DEMO_COLUMNS = [
    ("model", "model"),
    ("stability_crop_pooled_db", "crop pooled (dB)"),
    ("stability_crop_eb_pooled_db", "crop pooled, equal bandwidth (dB)"),
    ("flicker_pooled_db", "panning flicker (dB)"),
    ("quality_psnr", "PSNR (dB)"),
    ("quality_ssim", "SSIM"),
    ("tv_ratio", "TV ratio"),
    ("hf_ratio", "HF ratio"),
]


#: Distribution and perceptual quality (FID, KID, LPIPS), shown when evaluate.py computed them (their
#: networks' weights were reachable); otherwise a line under the table says why they are missing.
DEMO_QUALITY_COLUMNS = [("fid", "FID"), ("kid_mean", "KID (mean ± std)"), ("quality_lpips", "LPIPS")]


def _cell(key: str, row: dict) -> str:
    v = row.get(key)
    if v is None:
        return "-"
    if key == "kid_mean":
        return f"{v:.4f}" + ("" if row.get("kid_std") is None else f" ± {row['kid_std']:.4f}")
    return f"{v:.2f}" if key.endswith("_db") or key in ("quality_psnr", "fid") else f"{v:.3f}"


def demo_table(results_json: Path) -> str:
    """The demo's Markdown summary from an evaluation's results.json (one row per model;
    collapsed models marked), with FID / KID / LPIPS columns where they were computed and a line
    naming the missing ones and why where not."""
    payload = json.loads(Path(results_json).read_text())
    rows = {label: model["row"] for label, model in payload["models"].items()}
    quality = [(k, h) for k, h in DEMO_QUALITY_COLUMNS if any(r.get(k) is not None for r in rows.values())]
    columns = DEMO_COLUMNS + quality
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "|".join("---" for _ in columns) + "|"]
    for label, row in rows.items():
        cells = [f"{label} [{row.get('filter')}]" + (" (collapsed)" if row.get("collapsed") else "") if key == "model"
                 else _cell(key, row) for key, _ in columns]
        lines.append("| " + " | ".join(cells) + " |")
    if quality:
        counts = sorted({r.get("images") for r in rows.values() if r.get("images")})
        lines.append(f"\nFID / KID / LPIPS on {', '.join(map(str, counts))} images per model: FID is biased upwards "
                     "on so few images (comparable only between these rows); read KID mean ± std.")
    missing = [h for k, h in DEMO_QUALITY_COLUMNS if (k, h) not in quality]
    if missing:
        status = (payload.get("options") or {}).get("quality_metrics") or {}
        why = [str(v) for v in status.values() if "skipped" in str(v) or str(v).startswith("off")]
        lines.append(f"\n{', '.join(missing)}: not computed ({'; '.join(why) or 'not asked for by this evaluation'}).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/cpu_quick.yaml", help="recipe of the baseline and Bin-5")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS),
                        help="baseline, bin5 (the paper's design), aa (the recommended design, "
                             "configs/cpu_quick_aa.yaml); default: all three")
    parser.add_argument("--max-images", type=int, default=20, help="test images to evaluate stability on")
    # A float reduction's order follows the thread count, and a GAN's training amplifies the
    # difference: the same seed trained with 1 and 2 threads gave baselines 0.7 dB apart. One
    # thread per training makes the demo's models the same on any machine (and the design
    # study's, which trains its runs with one thread too).
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of each training (default 1: the same models on any machine)")
    parser.add_argument("--jobs", type=int, default=None,
                        help="trainings run side by side (default: all of them at --threads 1, else the cores "
                             "this process may use divided by --threads); the models do not depend on it")
    parser.add_argument("--train-args", nargs=argparse.REMAINDER, default=[],
                        help="extra train.py arguments, e.g. --model.n_epochs 1 --model.n_epochs_decay 0")
    args = parser.parse_args(argv)
    if args.threads < 1 or (args.jobs is not None and args.jobs < 1):
        parser.error("--threads and --jobs must be >= 1")
    if args.max_images < 1:  # checked before the trainings, not by evaluate.py after them
        parser.error(f"--max-images must be >= 1, got {args.max_images}")
    naming = [a for a in args.train_args if a.split("=")[0].startswith(RUN_NAMING)]
    if naming:  # the demo evaluates runs/cpu_quick_<variant>/main: a run trained elsewhere was not scored
        parser.error(f"--train-args {' '.join(naming)}: the demo names its runs (runs/cpu_quick_<variant>/"
                     f"{VERSION}) and evaluates those; train elsewhere with train.py itself")
    start = time.perf_counter()
    names = [v for v in VARIANTS if v in args.variants]
    for config in dict.fromkeys(args.config if VARIANTS[n][0] == "base" else VARIANTS[n][0] for n in names):
        check_data_folder(config, args.train_args)
    trainings = []
    for name in names:
        config, antialias = VARIANTS[name]
        trainings.append((name, train_command(name, antialias, args.config if config == "base" else config,
                                              args.train_args)))
    jobs = args.jobs if args.jobs is not None else default_jobs(len(trainings), args.threads)
    if jobs > 1 and len(trainings) > 1:
        for config in dict.fromkeys(args.config if VARIANTS[n][0] == "base" else VARIANTS[n][0] for n in names):
            prepare_data(config, args.train_args)
    train_all(trainings, args.threads, jobs, ROOT / "outputs" / "demo" / "logs")
    runs = [run_dir(name) for name in names]
    _run([sys.executable, "evaluate.py", *map(str, runs), "--max-images", str(args.max_images),
          "--out", "outputs/demo"])
    print("\n" + demo_table(ROOT / "outputs" / "demo" / "results.json"), flush=True)
    print(f"\nDemo finished in {(time.perf_counter() - start) / 60:.1f} min. Results: outputs/demo/index.html, "
          f"outputs/demo/results.md. "
          f"TensorBoard: tensorboard --logdir runs", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
