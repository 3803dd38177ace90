"""Where one training iteration's time goes: torch.profiler (operators) and cProfile (Python) of
``Pix2PixModule.training_step`` as ``train.py fit --config CONFIG`` builds and runs it.

    .venv/bin/python -m studies.profile_step                                  # the three designs below
    .venv/bin/python -m studies.profile_step --designs aa --iters 4 --top 25

Designs, ``--setting 128b4`` (the cpu_quick recipe: 128x128, unet_128, ngf = ndf = 32, batch 4):
``baseline`` (configs/cpu_quick.yaml), ``bin5`` (the same with ``--model.generator.init_args.antialias
bin5``), ``aa`` (configs/cpu_quick_aa.yaml, the recommended design with the shift term); ``--setting
256b1`` (the pix2pix recipe: 256x256, unet_256, ngf = ndf = 64, batch 1): configs/facades_baseline.yaml,
facades_bin5.yaml, facades_aa.yaml. Each is built by the
project's CLI (``pix2pix_aa.cli.main(..., run=False)``: what ``train.py fit`` instantiates) and fitted
by a Trainer with the config's precision and logging interval, train.py's per-batch callbacks
(progress bar, RNG state) and a TensorBoard logger, on fixed in-memory batches (no data loading).
After ``--warmup`` iterations, ``--iters`` iterations are recorded; per-operator self CPU time is
printed in groups (convolutions forward / backward, batch norm, optimiser, the rest) and the
Python functions of the loop by cumulative time. The designs are built with train.py's defaults,
its allocator setting included (printed; ``studies/vs_reference.py`` compares allocators, one
process each, since the setting is process-wide).

Also the building blocks of ``studies/vs_reference.py`` (:func:`build_module`, :func:`fit`).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import os
import pstats
import resource
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import torch

ROOT = Path(__file__).resolve().parents[1]

#: setting -> design -> (config, extra train.py arguments). 128b4: the cpu_quick recipe (128x128,
#: unet_128, ngf = ndf = 32, batch 4); 256b1: the pix2pix recipe (256x256, unet_256, ngf = ndf = 64, batch 1).
SETTINGS: dict[str, dict[str, tuple[str, list[str]]]] = {
    "128b4": {
        "baseline": ("configs/cpu_quick.yaml", []),
        "bin5": ("configs/cpu_quick.yaml", ["--model.generator.init_args.antialias", "bin5"]),
        "aa": ("configs/cpu_quick_aa.yaml", []),
    },
    "256b1": {
        "baseline": ("configs/facades_baseline.yaml", []),
        "bin5": ("configs/facades_bin5.yaml", []),
        "aa": ("configs/facades_aa.yaml", []),
    },
}
DESIGNS = list(SETTINGS["128b4"])


def quiet() -> None:
    """Lightning's banners and warnings off (they do not change what an iteration does)."""
    import logging

    import pytorch_lightning  # noqa: F401  (its import sets its loggers to INFO)

    warnings.filterwarnings("ignore")
    for name in ("pytorch_lightning", "lightning_fabric", "lightning.pytorch", "lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def build_module(config: str, extra: list[str], workdir: str, seed: int = 0):
    """(Pix2PixModule, parsed config) exactly as ``train.py fit --config CONFIG EXTRA`` builds them."""
    from pix2pix_aa.cli import main

    args = ["--config", str(ROOT / config), *extra, "--seed_everything", str(seed),
            "--trainer.logger.init_args.save_dir", workdir, "--trainer.accelerator", "cpu"]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        cli = main(args=args, run=False)
    return cli.model, cli.config


def batches(size: int, batch: int, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """``count`` fixed batches of random (input, target) pairs in [-1, 1], as the data module yields them."""
    gen = torch.Generator().manual_seed(seed)
    return [{"input": torch.rand(batch, 3, size, size, generator=gen) * 2 - 1,
             "target": torch.rand(batch, 3, size, size, generator=gen) * 2 - 1,
             "name": [f"{i}_{j}" for j in range(batch)]} for i in range(count)]


class _List(torch.utils.data.Dataset):
    def __init__(self, items: list) -> None:
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> Any:
        return self.items[i]


def fit(module, config, data: list[dict[str, Any]] | torch.utils.data.Dataset, workdir: str,
        on_start: Callable[[int], None], on_end: Callable[[int], None], progress_bar: bool = True,
        stop: Callable[[], bool] = lambda: False) -> None:
    """One epoch over ``data`` (batches: a list, or a dataset yielding them) with a fresh Trainer
    built as train.py builds it for these settings (the config's precision and log_every_n_steps,
    QuietProgressBar, ResumeRNGState, TensorBoard); ``on_start(i)`` / ``on_end(i)`` run at the start
    / end of batch ``i`` (after the other callbacks); the fit ends after a batch when ``stop()``."""
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import TensorBoardLogger

    from pix2pix_aa.callbacks import QuietProgressBar, ResumeRNGState

    class Hooks(pl.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            on_start(batch_idx)

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            on_end(batch_idx)
            if stop():
                trainer.should_stop = True

    t = config.trainer
    trainer = pl.Trainer(
        accelerator="cpu", devices=1, precision=t.precision, log_every_n_steps=t.log_every_n_steps,
        logger=TensorBoardLogger(workdir, name="bench", default_hp_metric=False),
        callbacks=[*([QuietProgressBar()] if progress_bar else []), ResumeRNGState(), Hooks()],
        enable_progress_bar=progress_bar, max_epochs=1, limit_val_batches=0, num_sanity_val_steps=0,
        enable_checkpointing=False, enable_model_summary=False, default_root_dir=workdir)
    dataset = _List(data) if isinstance(data, list) else data
    loader = torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=0)
    with contextlib.redirect_stdout(sys.stderr):  # the progress bar: stdout keeps the results
        trainer.fit(module, train_dataloaders=loader)


#: operator groups of the profile: (label, predicate on the operator's name).
GROUPS: list[tuple[str, Callable[[str], bool]]] = [
    ("conv backward", lambda n: "convolution_backward" in n),
    ("conv forward", lambda n: n in ("aten::mkldnn_convolution", "aten::_convolution", "aten::convolution",
                                     "aten::conv2d", "aten::conv_transpose2d", "aten::_slow_conv2d_forward",
                                     "aten::slow_conv_transpose2d", "aten::_nnpack_spatial_convolution")),
    ("batch norm", lambda n: "batch_norm" in n),
    ("optimiser (fused Adam, zero_grad)", lambda n: "adam" in n.lower() or "Optimizer" in n or "zero_grad" in n),
    ("padding / cat / copy", lambda n: any(k in n for k in ("pad", "cat", "copy_", "slice", "clone", "contiguous"))),
    ("activations / dropout", lambda n: any(k in n for k in ("relu", "tanh", "dropout", "threshold", "bernoulli",
                                                             "leaky", "sigmoid"))),
    ("losses / reductions / elementwise", lambda n: any(k in n for k in ("loss", "mean", "sum", "abs", "sub", "mul",
                                                                         "add", "div", "sgn", "where", "fill",
                                                                         "isfinite", "item", "_local_scalar"))),
]


def group_of(name: str) -> str:
    for label, pred in GROUPS:
        if pred(name):
            return label
    return "other"


def allocator_name() -> str:
    """How this process's allocator is set (train.py's ``--allocator``, applied by :func:`build_module`)."""
    from pix2pix_aa.evaluation.speed import freed_memory_kept

    return "keeps freed memory" if freed_memory_kept() else os.environ.get("GLIBC_TUNABLES") or "glibc default"


def profile_design(setting: str, design: str, warmup: int, iters: int, top: int, seed: int = 0) -> None:
    config_path, extra = SETTINGS[setting][design]
    with tempfile.TemporaryDirectory(prefix="profile_step_") as tmp:
        module, config = build_module(config_path, extra, tmp, seed)
        size, batch = config.data.crop_size, config.data.batch_size
        prof = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        py = cProfile.Profile()
        marks: dict[str, float] = {}

        def start(i: int) -> None:
            if i == warmup:
                marks["wall"], marks["cpu"] = time.perf_counter(), time.process_time()
                ru = resource.getrusage(resource.RUSAGE_SELF)
                marks["user"], marks["sys"] = ru.ru_utime, ru.ru_stime
                prof.start()
                py.enable()

        def end(i: int) -> None:
            if i == warmup + iters - 1:
                py.disable()
                prof.stop()
                marks["wall"] = time.perf_counter() - marks["wall"]
                marks["cpu"] = time.process_time() - marks["cpu"]
                ru = resource.getrusage(resource.RUSAGE_SELF)
                marks["user"], marks["sys"] = ru.ru_utime - marks["user"], ru.ru_stime - marks["sys"]

        fit(module, config, batches(size, batch, warmup + iters, seed), tmp, start, end)
    per_op: dict[str, float] = {}
    for evt in prof.key_averages():
        per_op[evt.key] = per_op.get(evt.key, 0.0) + evt.self_cpu_time_total / 1e3  # ms
    total = sum(per_op.values())
    groups: dict[str, float] = {}
    for name, ms in per_op.items():
        groups[group_of(name)] = groups.get(group_of(name), 0.0) + ms
    print(f"\n== {design}: {config_path} {' '.join(extra)} ({size} px, batch {batch}, "
          f"lambda_shift {config.model.get('lambda_shift')}); {iters} iterations after {warmup} warm-up: "
          f"{marks['wall'] / iters * 1e3:.0f} ms wall, {marks['cpu'] / iters * 1e3:.0f} ms CPU per iteration "
          f"({marks['user'] / iters * 1e3:.0f} user + {marks['sys'] / iters * 1e3:.0f} system; profiler overhead "
          f"included; allocator: {allocator_name()})")
    print("| operator group | self CPU ms / iteration | share |\n|---|---|---|")
    for label, ms in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"| {label} | {ms / iters:.1f} | {ms / total:.1%} |")
    print(f"\ntop {top} operators by self CPU time (ms / iteration):")
    for name, ms in sorted(per_op.items(), key=lambda kv: -kv[1])[:top]:
        print(f"  {ms / iters:9.2f}  {ms / total:6.1%}  {name}")
    out = io.StringIO()
    stats = pstats.Stats(py, stream=out)
    stats.sort_stats("cumulative").print_stats(top)
    print(f"\nPython (cProfile, cumulative, {iters} iterations):")
    print("\n".join(line for line in out.getvalue().splitlines()
                    if line.strip() and not line.startswith(("   Ordered", "   List"))))


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--designs", nargs="+", default=DESIGNS, choices=DESIGNS)
    p.add_argument("--setting", default="128b4", choices=list(SETTINGS))
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--iters", type=int, default=4)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    quiet()
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads} thread(s), "
          f"load average {os.getloadavg()[0]:.2f}")
    for design in args.designs:
        profile_design(args.setting, design, args.warmup, args.iters, args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
