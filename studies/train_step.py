"""Training speed: a full pix2pix iteration (D step + G step) three ways, in one run.

    .venv/bin/python -m studies.train_step                       # 256x256, unet_256 + 70x70 PatchGAN
    .venv/bin/python -m studies.train_step --size 128 --ngf 32   # quicker (unet_128, ngf = ndf = 32)

Ways, for each generator (baseline, bin5, aps) and batch size (1, 4):
  (a) bare       a bare PyTorch loop in the shape of the reference pix2pix ``optimize_parameters``
                 (junyanz/pytorch-CycleGAN-and-pix2pix): G forward, D step with set_requires_grad
                 toggling, G step; Adam(2e-4, (0.5, 0.999)) for both players
  (b) lightning  ``Pix2PixModule`` driven by a ``Trainer`` (progress bar on, TensorBoard logger,
                 no image logging, no validation), i.e. what ``train.py fit`` runs (its defaults:
                 fused Adam, gradients freed after each step)
  (c) lightning with one speed option each: ``channels_last``, ``bf16`` (Trainer precision
                 ``bf16-mixed``: CPU autocast), ``compile`` (``torch.compile`` of G and D),
                 ``unfused_adam`` (the module with ``fused_adam=False``: the default Adam, as the
                 bare loop uses); channels_last and compile are applied by this script (make_module)

How it measures: the same networks (same seed), the same in-memory batches (random pairs in
[-1, 1], so data loading is not part of the comparison; see ``--loader`` for that). Every
(generator, batch, way) runs once per round, in ``--rounds`` rounds (rounds outermost, rotating
start, alternating generator order), so a drifting machine biases neither ways nor generators; in
each round a way runs ``--warmup`` untimed iterations then ``--iters`` timed ones (a fresh module
and Trainer per round for (b)/(c), except that a compiled module is kept; fresh Adam states for
(a)). Lightning is timed by a callback from ``on_train_batch_start`` to
``on_train_batch_end`` ("step") and from one batch start to the next ("period": includes
fetching the batch, the progress bar and logging); the bare loop by the same two windows around
``optimize_parameters``. Medians of wall and process CPU time are printed, with ratios to (a).
The compile option's one-off compile time is reported separately (its first fit's warm-up).
Peak RSS: each (way, generator, batch) runs again in a child process for a few iterations and
reports its peak RSS (``VmHWM``: the whole process, Python, torch and Lightning included).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pix2pix_aa.networks import PatchGANDiscriminator, UNetGenerator, init_weights

ROOT = Path(__file__).resolve().parents[1]


GENERATORS: dict[str, dict[str, Any]] = {
    "baseline": {},
    "bin5": {"antialias": "bin5"},
    "aps": {"antialias": "aps"},
}
#: Lightning speed options: (Pix2PixModule kwargs, Trainer precision).
OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "lightning": ({}, "32-true"),
    "lightning+channels_last": ({"channels_last": True}, "32-true"),
    "lightning+bf16": ({}, "bf16-mixed"),
    "lightning+compile": ({"compile": True}, "32-true"),
    # The module's default is PyTorch's fused Adam; this way shows what that default gains.
    "lightning+unfused_adam": ({"fused_adam": False}, "32-true"),
}


# -- the two players ----------------------------------------------------------------------------
def build_nets(generator: str, size: int, ngf: int, seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """unet_256 (or unet_128 at 128) + 70x70 PatchGAN, normal(0, 0.02) init, fixed seed."""
    torch.manual_seed(seed)
    g = UNetGenerator(num_downs=size.bit_length() - 1, ngf=ngf, **GENERATORS[generator])
    d = PatchGANDiscriminator(in_channels=6, ndf=ngf)
    init_weights(g, "normal", 0.02)
    init_weights(d, "normal", 0.02)
    return g, d


class RandomPairs(Dataset):
    """``count`` fixed (input, target) pairs in [-1, 1], as the aligned dataset yields them."""

    def __init__(self, count: int, size: int, seed: int = 0) -> None:
        gen = torch.Generator().manual_seed(seed)
        self.a = torch.rand(count, 3, size, size, generator=gen) * 2 - 1
        self.b = torch.rand(count, 3, size, size, generator=gen) * 2 - 1

    def __len__(self) -> int:
        return len(self.a)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"input": self.a[i], "target": self.b[i], "name": str(i)}


def loader(size: int, batch: int, iters: int) -> DataLoader:
    return DataLoader(RandomPairs(batch * iters, size), batch_size=batch, shuffle=True, num_workers=0)


# -- (a) the bare loop ----------------------------------------------------------------------------
def set_requires_grad(net: nn.Module, flag: bool) -> None:
    for p in net.parameters():
        p.requires_grad = flag


class BareLoop:
    """The reference pix2pix model's ``optimize_parameters``, over our networks."""

    def __init__(self, g: nn.Module, d: nn.Module, lambda_l1: float = 100.0) -> None:
        self.g, self.d, self.lambda_l1 = g.train(), d.train(), lambda_l1
        self.opt_g = torch.optim.Adam(g.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(d.parameters(), lr=2e-4, betas=(0.5, 0.999))

    @staticmethod
    def gan(logits: torch.Tensor, real: bool) -> torch.Tensor:
        target = torch.ones_like(logits) if real else torch.zeros_like(logits)
        return F.binary_cross_entropy_with_logits(logits, target)

    def optimize_parameters(self, real_a: torch.Tensor, real_b: torch.Tensor) -> None:
        fake_b = self.g(real_a)
        set_requires_grad(self.d, True)
        self.opt_d.zero_grad()
        loss_d_fake = self.gan(self.d(torch.cat([real_a, fake_b.detach()], 1)), False)
        loss_d_real = self.gan(self.d(torch.cat([real_a, real_b], 1)), True)
        ((loss_d_fake + loss_d_real) * 0.5).backward()
        self.opt_d.step()
        set_requires_grad(self.d, False)
        self.opt_g.zero_grad()
        loss_g = self.gan(self.d(torch.cat([real_a, fake_b], 1)), True) + F.l1_loss(fake_b, real_b) * self.lambda_l1
        loss_g.backward()
        self.opt_g.step()
        set_requires_grad(self.d, True)


class Clock:
    """Per-iteration "step" (start -> end) and "period" (start -> next start) wall/CPU times."""

    def __init__(self, skip: int) -> None:
        self.skip, self.n = skip, 0
        self.step: list[tuple[float, float]] = []
        self.period: list[tuple[float, float]] = []
        self._start: tuple[float, float] | None = None

    def start(self) -> None:
        now = (time.perf_counter(), time.process_time())
        if self._start is not None and self.n > self.skip:
            self.period.append((now[0] - self._start[0], now[1] - self._start[1]))
        self._start = now

    def end(self) -> None:
        self.n += 1
        if self.n > self.skip and self._start is not None:
            now = (time.perf_counter(), time.process_time())
            self.step.append((now[0] - self._start[0], now[1] - self._start[1]))

    def close(self) -> None:  # the last period ends when the next batch would start
        self.start()


def run_bare(nets: tuple[nn.Module, nn.Module], size: int, batch: int, warmup: int, iters: int) -> Clock:
    loop, clock = BareLoop(*nets), Clock(warmup)
    for b in loader(size, batch, warmup + iters):
        clock.start()
        loop.optimize_parameters(b["input"], b["target"])
        clock.end()
    clock.close()
    return clock


# -- (b)/(c) Lightning ---------------------------------------------------------------------------
def make_module(nets: tuple[nn.Module, nn.Module], channels_last: bool = False, compile: bool = False,
                **module_kwargs: Any):
    """Pix2PixModule over ``nets``, with a speed option applied from outside the module.

    The options live here, not in ``Pix2PixModule``, because neither won on CPU
    (docs/PERFORMANCE.md): ``channels_last`` converts G, D and every batch to channels-last memory
    format; ``compile`` runs ``nn.Module.compile()`` (in place: state_dict keys unchanged) on G and D.
    """
    from pix2pix_aa.module import Pix2PixModule

    class Module(Pix2PixModule):
        def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
            if channels_last:
                batch = {k: v.contiguous(memory_format=torch.channels_last) if torch.is_tensor(v) else v
                         for k, v in batch.items()}
            return batch

    # Pix2PixModule re-initialises the networks (same normal(0, 0.02) scheme; values do not affect speed).
    module = Module(generator=nets[0], discriminator=nets[1], log_images_every_n_batches=0, val_stability_images=0,
                    **module_kwargs)
    for net in (module.generator, module.discriminator):
        if channels_last:
            net.to(memory_format=torch.channels_last)
        if compile:
            net.compile()
    return module


def run_lightning(module, size: int, batch: int, warmup: int, iters: int, precision: str,
                  progress_bar: bool = True) -> Clock:
    import pytorch_lightning as pl
    from pytorch_lightning.loggers import TensorBoardLogger

    clock = Clock(warmup)

    class Timer(pl.Callback):
        def on_train_batch_start(self, *args: Any) -> None:
            clock.start()

        def on_train_batch_end(self, *args: Any) -> None:
            clock.end()

        def on_train_epoch_end(self, *args: Any) -> None:
            clock.close()

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = pl.Trainer(accelerator="cpu", devices=1, precision=precision, max_epochs=1,
                             limit_val_batches=0, num_sanity_val_steps=0, enable_checkpointing=False,
                             enable_model_summary=False, enable_progress_bar=progress_bar,
                             logger=TensorBoardLogger(tmp, name="bench"), callbacks=[Timer()],
                             default_root_dir=tmp)
        trainer.fit(module, train_dataloaders=loader(size, batch, warmup + iters))
    return clock


# -- driver ---------------------------------------------------------------------------------------
def median(xs: list[tuple[float, float]], i: int) -> float:
    return statistics.median(x[i] for x in xs) if xs else float("nan")


#: (generator, batch, way) -> error of a way that raised (it is dropped from later rounds).
failures: dict[tuple[str, int, str], str] = {}


def time_all(args: argparse.Namespace) -> tuple[dict, dict]:
    """Interleaved timing of every (generator, batch, way); returns results and compile times.

    Rounds are the outer loop, so every generator and way is measured in every round: a machine
    that slows down during the run (shared hosts do) biases neither the ways nor the generators.
    """
    results: dict[tuple[str, int, str], dict[str, list]] = {}
    compile_s: dict[tuple[str, int], float] = {}
    compiled: dict[tuple[str, int, str], Any] = {}  # compile once per (generator, batch), reuse
    failures.clear()
    groups = []
    for gen in args.generators:
        for batch in args.batches:
            ways = ["bare", "lightning"]
            if batch in args.option_batches and gen in args.option_generators:
                ways += [w for w in OPTIONS if w != "lightning" and w.split("+")[1] in args.options]
            groups.append((gen, batch, ways))
            for way in ways:
                results[(gen, batch, way)] = {"step": [], "period": []}
    for r in range(args.rounds):
        for gen, batch, ways in (groups if r % 2 == 0 else groups[::-1]):
            for way in ways[r % len(ways):] + ways[:r % len(ways)]:
                key = (gen, batch, way)
                if key in failures:
                    continue
                if way == "bare":
                    clock = run_bare(build_nets(gen, args.size, args.ngf), args.size, batch, args.warmup, args.iters)
                else:
                    opts, precision = OPTIONS[way]
                    if key in compiled:
                        module = compiled[key]
                    else:
                        torch.manual_seed(0)
                        module = make_module(build_nets(gen, args.size, args.ngf), **opts)
                        if opts.get("compile"):
                            compiled[key] = module
                    first = time.perf_counter()
                    try:
                        clock = run_lightning(module, args.size, batch, args.warmup, args.iters,
                                              precision, progress_bar=not args.no_progress_bar)
                    except Exception as err:  # e.g. a compiler bug: report it, keep measuring the rest
                        failures[key] = f"{type(err).__name__}: {' '.join(str(err).split())[:300]}"
                        print(f"  {gen} b{batch} {way} FAILED: {failures[key]}", file=sys.stderr, flush=True)
                        continue
                    if opts.get("compile") and (gen, batch) not in compile_s:
                        total = time.perf_counter() - first
                        compile_s[(gen, batch)] = total - sum(s[0] for s in clock.step) * \
                            (args.warmup + args.iters) / max(len(clock.step), 1)
                results[key]["step"] += clock.step
                results[key]["period"] += clock.period
                print(f"  round {r + 1}/{args.rounds} {gen} b{batch} {way}: step "
                      f"{median(clock.step, 0):.3f} s wall, {median(clock.step, 1):.3f} s cpu",
                      file=sys.stderr, flush=True)
    return results, compile_s


def peak_rss(args: argparse.Namespace, gen: str, batch: int, way: str) -> float:
    """Peak RSS in MB of a child process running ``way`` for a few iterations."""
    cmd = [sys.executable, __file__, "--rss-child", way, gen, str(batch), "--size", str(args.size),
           "--ngf", str(args.ngf), "--threads", str(args.threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    for line in out.stdout.splitlines()[::-1]:
        if line.startswith("{"):
            return json.loads(line)["maxrss_mb"]
    print(out.stderr[-2000:], file=sys.stderr)
    return float("nan")


def rss_child(way: str, gen: str, batch: int, size: int, ngf: int) -> None:
    nets = build_nets(gen, size, ngf)
    if way == "bare":
        run_bare(nets, size, batch, 1, 2)
    else:
        opts, precision = OPTIONS[way]
        run_lightning(make_module(nets, **opts), size, batch, 1, 2, precision, progress_bar=False)
    print(json.dumps({"maxrss_mb": peak_rss_self_mb()}))


def peak_rss_self_mb() -> float:
    """This process's peak RSS. Linux's ``ru_maxrss`` survives fork + exec, so a child started by
    a big parent reports the parent's peak; ``VmHWM`` belongs to the new address space."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def loader_table(args: argparse.Namespace) -> None:
    """Seconds per batch of the real training DataLoader (facades: decode, resize 286, crop 256,
    flip) for a few worker settings, to set against the step times above."""
    from pix2pix_aa.data.datamodule import Pix2PixDataModule

    data_dir = ROOT / "data" / "facades"
    if not (data_dir / "train").is_dir():
        print(f"\n(--loader: {data_dir}/train not found; skipped)")
        return
    load = 286 if args.size == 256 else args.size + args.size // 8
    print(f"\nDataLoader, facades train split, load {load} crop {args.size}, batch 1: s/batch (median over "
          f"{args.loader_batches} batches after the first)")
    print("| num_workers | persistent | wall s/batch | main-process cpu s/batch |")
    print("|---|---|---|---|")
    for workers in (0, 1, 2):
        dm = Pix2PixDataModule(data_dir=str(data_dir), direction="BtoA", load_size=load, crop_size=args.size,
                               batch_size=1, num_workers=workers)
        dm.setup("fit")
        it: Iterator = iter(dm.train_dataloader())
        next(it)
        ws, cs = [], []
        for _ in range(args.loader_batches):
            w0, c0 = time.perf_counter(), time.process_time()
            next(it)
            ws.append(time.perf_counter() - w0)
            cs.append(time.process_time() - c0)
        print(f"| {workers} | {workers > 0} | {statistics.median(ws):.4f} | {statistics.median(cs):.4f} |")
        del it


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--size", type=int, default=256, help="256 (unet_256) or 128 (unet_128)")
    ap.add_argument("--ngf", type=int, default=64, help="ngf = ndf")
    ap.add_argument("--threads", type=int, default=1, help="torch.set_num_threads (default 1)")
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--generators", nargs="+", default=list(GENERATORS), choices=list(GENERATORS))
    option_names = [w.split("+")[1] for w in OPTIONS if "+" in w]
    ap.add_argument("--options", nargs="*", default=option_names, choices=option_names,
                    help="speed options to time (c)")
    ap.add_argument("--option-generators", nargs="*", default=["baseline", "bin5"])
    ap.add_argument("--option-batches", type=int, nargs="*", default=[1])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1, help="untimed iterations per way per round")
    ap.add_argument("--iters", type=int, default=2, help="timed iterations per way per round")
    ap.add_argument("--no-memory", action="store_true", help="skip the peak-RSS child processes")
    ap.add_argument("--memory-only", action="store_true", help="only the peak-RSS table (no timing)")
    ap.add_argument("--loader", action="store_true", help="also time the facades DataLoader settings")
    ap.add_argument("--loader-batches", type=int, default=20)
    ap.add_argument("--no-progress-bar", action="store_true")
    ap.add_argument("--rss-child", nargs=3, metavar=("WAY", "GENERATOR", "BATCH"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.size not in (128, 256) and args.size & (args.size - 1):
        raise SystemExit(f"--size must be a power of two (got {args.size})")
    torch.set_num_threads(args.threads)
    if args.rss_child:
        way, gen, batch = args.rss_child
        rss_child(way, gen, int(batch), args.size, args.ngf)
        return

    if args.memory_only:
        print(f"Peak RSS MB ({args.size}x{args.size}, ngf=ndf={args.ngf}, 3 iterations in a child process)\n")
        print("| generator | batch | bare | lightning |")
        print("|---|---|---|---|")
        for gen in args.generators:
            for batch in args.batches:
                print(f"| {gen} | {batch} | {peak_rss(args, gen, batch, 'bare'):.0f} "
                      f"| {peak_rss(args, gen, batch, 'lightning'):.0f} |", flush=True)
        return
    load0 = os.getloadavg()
    results, compile_s = time_all(args)
    load1 = os.getloadavg()
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"torch threads={args.threads}; load avg at start {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"at end {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(f"{args.size}x{args.size}, ngf=ndf={args.ngf}; one iteration = D step + G step; median of "
          f"{args.rounds} rounds x {args.iters} iterations, {args.warmup} warm-up per round\n")
    print("| generator | batch | way | step wall s | step cpu s | period wall s | period cpu s "
          "| step cpu / bare | period cpu / bare | period cpu / baseline's | peak RSS MB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for (gen, batch, way), res in results.items():
        bare = results[(gen, batch, "bare")]
        base = results.get(("baseline", batch, way))
        sw, sc = median(res["step"], 0), median(res["step"], 1)
        pw, pc = median(res["period"], 0), median(res["period"], 1)
        vs_base = pc / median(base["period"], 1) if base else float("nan")
        rss = float("nan")
        if not args.no_memory and way in ("bare", "lightning"):
            rss = peak_rss(args, gen, batch, way)
        print(f"| {gen} | {batch} | {way} | {sw:.3f} | {sc:.3f} | {pw:.3f} | {pc:.3f} "
              f"| {sc / median(bare['step'], 1):.3f} | {pc / median(bare['period'], 1):.3f} | {vs_base:.2f} "
              f"| {rss:.0f} |", flush=True)
    for (gen, batch, way), err in failures.items():
        print(f"\nFAILED {gen} batch {batch} {way}: {err}")
    for (gen, batch), s in compile_s.items():
        print(f"\ncompile (G + D, first fit's warm-up minus its timed median), {gen} batch {batch}: {s:.0f} s")
    if args.loader:
        loader_table(args)


if __name__ == "__main__":
    main()
