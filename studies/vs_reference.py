"""Training speed against the reference pix2pix: one command, each implementation in its own process.

    .venv/bin/python -m studies.vs_reference --reference PATH            # PATH: a checkout of
        # junyanz/pytorch-CycleGAN-and-pix2pix (its models/, options/, data/, util/ are used unchanged)
    .venv/bin/python -m studies.vs_reference                             # no checkout: against the
        # re-statement of its loop (studies/train_step.py's bare loop over this project's networks)
    .venv/bin/python -m studies.vs_reference --reference PATH --settings 128b4 --threads 1 \\
        --contenders baseline baseline:system --rounds 3                   # an A/B of one option

Contenders, per setting (``256b1``: 256x256, batch 1, unet_256, ngf = ndf = 64, the pix2pix recipe;
``128b4``: 128x128, batch 4, unet_128, ngf = ndf = 32, configs/cpu_quick.yaml):

  ref        the reference, built as its ``train.py`` builds it: its own ``TrainOptions().parse()`` on
             ``--model pix2pix --direction BtoA --gpu_ids -1 --netG ... --ngf ... --batch_size ...``,
             ``models.create_model(opt)``, ``model.setup(opt)``; an iteration is what its train.py does per
             batch (``model.set_input(data); model.optimize_parameters()``). Needs ``--reference``.
  bare       (without ``--reference``) the same loop re-stated over this project's networks
             (``studies/train_step.py``: PyTorch's default Adam, set_requires_grad toggling).
  baseline, bin5, aa   this project as ``train.py fit --config C`` builds it (``pix2pix_aa.cli.main``: its
             start-up settings included), trained by a Trainer with train.py's per-batch callbacks and a
             TensorBoard logger (``studies/profile_step.py``); configs facades_baseline / facades_bin5 /
             facades_aa.yaml (256b1), cpu_quick.yaml (+ antialias bin5) / cpu_quick_aa.yaml (128b4).
  baseline-unfused     baseline with ``--model.fused_adam false`` (the reference's Adam: like for like).
  NAME:system          NAME with ``--allocator system`` (glibc's allocator defaults).
  NAME:bf16            NAME with ``--trainer.precision bf16-mixed`` (the opt-in bf16 autocast).
  NAME:cl              NAME with ``--model.channels_last true`` (weights and activations channels-last).
  NAME:noterm          NAME with ``--model.lambda_shift 0`` (what the shift-equivariance term costs).
  NAME:halfpath        NAME with its full-resolution path at half the config's channels
             (``--model.generator.init_args.fullres_channels``: 16 at 256b1, 8 at 128b4; what the path
             costs; a different model, measured by studies/real_data_study.py at 128 px).
  NAME:OPT+OPT         several options at once (e.g. ``aa:bf16+cl``).

How it measures: for each thread count, for each setting, every contender runs in its own worker process
(``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` and ``torch.set_num_threads`` set to that count), built once;
then ``--rounds`` rounds, in each of which every worker in turn (rotating start) runs ``--warmup``
untimed and ``--iters`` timed iterations while the others wait, so a machine whose speed drifts biases
no contender. A worker's model, optimiser states and (Lightning) fit continue across rounds, as in one
training run. Per iteration: wall and process CPU time from the end of the previous iteration to the
end of this one (all of a training loop's per-batch work: for Lightning the step, logging and
progress bar). Medians over rounds x iters; ratios to ``ref`` (or ``bare``) of the same setting and
thread count. Peak RSS: each worker's ``VmHWM`` after its last round (Python, torch and, for this
project, Lightning included), split into what it held when ready to train (the imports and the
built networks, before the first step) and the rest, training's own. The same in-memory batches
(random pairs in [-1, 1]) for all.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: setting -> (size, batch, the reference's flags, ngf).
SETTINGS: dict[str, dict[str, Any]] = {
    "256b1": {"size": 256, "batch": 1, "ngf": 64,
              "ref_flags": ["--netG", "unet_256", "--ngf", "64", "--ndf", "64", "--batch_size", "1",
                            "--load_size", "286", "--crop_size", "256"]},
    "128b4": {"size": 128, "batch": 4, "ngf": 32,
              "ref_flags": ["--netG", "unet_128", "--ngf", "32", "--ndf", "32", "--batch_size", "4",
                            "--load_size", "143", "--crop_size", "128"]},
}
#: The reference's flags for every setting: pix2pix, label map -> photo (BtoA, as this project's configs), CPU.
REF_COMMON = ["--model", "pix2pix", "--direction", "BtoA", "--gpu_ids", "-1", "--display_id", "0"]
PROJECT = ("baseline", "bin5", "aa", "baseline-unfused")
#: Contender options (``NAME:OPT`` or ``NAME:OPT+OPT``) -> their train.py flags, given the contender's
#: config: ``halfpath`` is the full-resolution path at half the config's channels.
OPTION_FLAGS: dict[str, Callable[[str], list[str]]] = {
    "system": lambda config: ["--allocator", "system"],
    "bf16": lambda config: ["--trainer.precision", "bf16-mixed"],
    "cl": lambda config: ["--model.channels_last", "true"],
    "noterm": lambda config: ["--model.lambda_shift", "0"],
    "halfpath": lambda config: ["--model.generator.init_args.fullres_channels", str(path_channels(config) // 2)],
}
OPTIONS = tuple(OPTION_FLAGS)
#: Distinct batches per worker (cycled).
NUM_BATCHES = 4


def project_args(setting: str, name: str) -> tuple[str, list[str]]:
    """(config, extra train.py arguments) of project contender ``name`` (``:system`` suffix allowed)."""
    from studies.profile_step import SETTINGS as CONFIGS

    base, options = split_contender(name)
    unfused = base == "baseline-unfused"
    config, extra = CONFIGS[setting]["baseline" if unfused else base]
    extra = [*extra, *(["--model.fused_adam", "false"] if unfused else []),
             *(flag for option, flags in OPTION_FLAGS.items() if option in options for flag in flags(config))]
    return config, extra


def split_contender(name: str) -> tuple[str, list[str]]:
    """``"aa:bf16+cl"`` -> ``("aa", ["bf16", "cl"])``."""
    base, _, options = name.partition(":")
    return base, options.split("+") if options else []


def path_channels(config: str) -> int:
    """The full-resolution path's channels in ``config`` (a path under the repository root)."""
    import yaml

    init = yaml.safe_load((ROOT / config).read_text())["model"]["generator"].get("init_args", {})
    if not init.get("fullres_channels"):
        raise SystemExit(f"{config}: no full-resolution path (model.generator.init_args.fullres_channels) to halve")
    return int(init["fullres_channels"])


def check_contender(name: str, reference: Optional[str]) -> Optional[str]:
    """Why ``name`` is not a contender here (one line), or None."""
    base, options = split_contender(name)
    if (any(o not in OPTIONS for o in options) or base not in ("ref", "bare", *PROJECT)
            or (options and base in ("ref", "bare")) or name.endswith(":")):
        return (f"unknown contender {name!r}: expected ref, bare, {', '.join(PROJECT)}, or one of the last four "
                f"with ':' and options joined by '+' ({', '.join(OPTIONS)}; e.g. aa:bf16+cl)")
    if len(set(options)) < len(options):
        return f"contender {name!r}: an option given twice"
    if "halfpath" in options and base != "aa":
        return f"contender {name!r}: only aa has a full-resolution path to halve (aa:halfpath)"
    if base == "ref" and not reference:
        return "contender ref needs --reference PATH (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix)"
    return None


def command_line(argv: list[str], reference: Optional[str], module: Optional[str] = None) -> str:
    """The command as a reader would type it, for the raw output: ``-m module`` when it was run
    so, else the script relative to the repository, and the reference checkout as PATH (where
    either lies on this machine is no part of the figures)."""
    script = os.path.relpath(argv[0], ROOT) if Path(argv[0]).is_absolute() else argv[0]
    rest = ["PATH" if reference and a == reference else a for a in argv[1:]]
    return shlex.join([Path(sys.executable).name, *(["-m", module] if module else [script]), *rest])


def check_reference(path: str) -> Optional[str]:
    """Why ``path`` is not a reference checkout (one line), or None."""
    missing = [p for p in ("models/pix2pix_model.py", "models/networks.py", "options/train_options.py",
                           "data/__init__.py", "util/util.py") if not (Path(path) / p).is_file()]
    if missing:
        return (f"--reference {path}: not a checkout of junyanz/pytorch-CycleGAN-and-pix2pix "
                f"(no {', '.join(missing)})")
    return None


# -- worker side --------------------------------------------------------------------------------------
def make_batches(size: int, batch: int, seed: int = 0):
    import torch

    gen = torch.Generator().manual_seed(seed)
    return [(torch.rand(batch, 3, size, size, generator=gen) * 2 - 1,
             torch.rand(batch, 3, size, size, generator=gen) * 2 - 1) for _ in range(NUM_BATCHES)]


def vm_peak_mb() -> Optional[float]:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


class Protocol:
    """Commands on stdin (``run W N`` / ``quit``), replies as JSON lines on the original stdout;
    everything else the worker prints (progress bars, banners) goes to stderr."""

    def __init__(self) -> None:
        self.out = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr

    def send(self, kind: str, **payload: Any) -> None:
        if kind == "ready":  # imports and built networks, before the first step: the RSS training starts from
            payload["ready_mb"] = vm_peak_mb()
        self.out.write(json.dumps({"kind": kind, **payload}) + "\n")
        self.out.flush()

    @staticmethod
    def receive() -> tuple[str, int, int]:
        parts = sys.stdin.readline().split()
        if not parts or parts[0] == "quit":
            return "quit", 0, 0
        return parts[0], int(parts[1]), int(parts[2])


class Rounds:
    """Per-iteration end times; a round is ``warmup`` untimed then ``iters`` timed iterations."""

    def __init__(self, proto: Protocol) -> None:
        self.proto = proto
        self.command = proto.receive()
        self.i, self.prev = 0, None
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> None:
        if self.i == 0:  # a round starts: periods are measured from here
            self.prev = (time.perf_counter(), time.process_time())

    def end(self) -> bool:
        """Record an iteration; at the end of a round, reply and wait for the next command.
        Returns False when told to quit."""
        now = (time.perf_counter(), time.process_time())
        _, warmup, iters = self.command
        if self.i >= warmup:
            self.wall.append(now[0] - self.prev[0])
            self.cpu.append(now[1] - self.prev[1])
        self.prev, self.i = now, self.i + 1
        if self.i < warmup + iters:
            return True
        import torch

        self.proto.send("times", wall=self.wall, cpu=self.cpu, threads=torch.get_num_threads())
        self.wall, self.cpu, self.i = [], [], 0
        self.command = self.proto.receive()
        return self.command[0] != "quit"


def worker(setting: str, name: str, threads: int, reference: Optional[str], seed: int) -> None:
    proto = Protocol()
    import torch

    torch.set_num_threads(threads)
    spec = SETTINGS[setting]
    batches = make_batches(spec["size"], spec["batch"], seed)
    with tempfile.TemporaryDirectory(prefix="vs_reference_") as tmp:
        base = name.partition(":")[0]
        if base == "ref":
            run_reference(proto, reference, setting, batches, tmp, seed)
        elif base == "bare":
            run_bare(proto, setting, batches, seed)
        else:
            run_project(proto, setting, name, batches, tmp, seed)
    proto.send("done", peak_mb=vm_peak_mb(), lightning="pytorch_lightning" in sys.modules)


def _params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def run_reference(proto: Protocol, path: str, setting: str, batches, tmp: str, seed: int) -> None:
    """The reference's own option parser, model factory and ``optimize_parameters``."""
    import torch

    ref = str(Path(path).resolve())  # on PYTHONPATH (Worker): a checkout, not a package, imported as its train.py does
    import models
    from options.train_options import TrainOptions

    for mod in ("models", "options", "data", "util"):
        origin = Path(sys.modules[mod].__file__).resolve()
        if Path(ref) not in origin.parents:
            raise RuntimeError(f"{mod} was imported from {origin}, not from {ref}")
    argv = ["train.py", "--dataroot", tmp, "--name", "bench", "--checkpoints_dir", tmp, *REF_COMMON,
            *SETTINGS[setting]["ref_flags"]]  # --dataroot is never read: the batches are in memory
    saved, sys.argv = sys.argv, argv
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            opt = TrainOptions().parse()
            torch.manual_seed(seed)
            model = models.create_model(opt)
            model.setup(opt)
    finally:
        sys.argv = saved
    proto.send("ready", generator=_params(model.netG), discriminator=_params(model.netD),
               command=shlex.join(argv[1:]).replace(tmp, "TMP"))

    def iteration(x, t) -> None:
        # BtoA: the reference's input (real_A) is its batch's 'B'.
        model.set_input({"A": t, "B": x, "A_paths": ["a"] * len(x), "B_paths": ["b"] * len(x)})
        model.optimize_parameters()

    plain_rounds(proto, batches, iteration)


def plain_rounds(proto: Protocol, batches, iteration) -> None:
    """Run ``iteration(input, target)`` over the cycled batches, round after round, until told to quit."""
    rounds = Rounds(proto)
    i = 0
    while rounds.command[0] != "quit":
        x, t = batches[i % len(batches)]
        i += 1
        rounds.start()
        iteration(x, t)
        if not rounds.end():
            break


def run_bare(proto: Protocol, setting: str, batches, seed: int) -> None:
    """studies/train_step.py's re-statement of the reference loop, over this project's networks."""
    from studies.train_step import BareLoop, build_nets

    spec = SETTINGS[setting]
    g, d = build_nets("baseline", spec["size"], spec["ngf"], seed)
    loop = BareLoop(g, d)
    proto.send("ready", generator=_params(g), discriminator=_params(d), command="studies/train_step.py BareLoop")
    plain_rounds(proto, batches, loop.optimize_parameters)


def run_project(proto: Protocol, setting: str, name: str, batches, tmp: str, seed: int) -> None:
    """One continuing fit, as ``train.py fit --config C`` builds it, over an endless batch stream;
    the callback that ends each round waits there for the next command."""
    import torch

    from studies.profile_step import build_module, fit, quiet

    quiet()
    config_path, extra = project_args(setting, name)
    module, config = build_module(config_path, extra, tmp, seed)
    from pix2pix_aa.evaluation.speed import freed_memory_kept

    proto.send("ready", generator=_params(module.generator), discriminator=_params(module.discriminator),
               command=shlex.join(["train.py", "fit", "--config", config_path, *extra]),
               allocator_kept=freed_memory_kept())

    class Endless(torch.utils.data.IterableDataset):
        def __iter__(self):
            i = 0
            while True:
                x, t = batches[i % len(batches)]
                i += 1
                yield {"input": x, "target": t, "name": [str(j) for j in range(len(x))]}

    rounds = Rounds(proto)
    state: dict[str, bool] = {}

    def on_end(_: int) -> None:
        if not rounds.end():
            state["stop"] = True

    fit(module, config, Endless(), tmp, lambda _: rounds.start(), on_end, stop=lambda: state.get("stop", False))


# -- driver side --------------------------------------------------------------------------------------
class Worker:
    def __init__(self, setting: str, name: str, threads: int, reference: Optional[str], seed: int,
                 log_dir: str) -> None:
        self.setting, self.name = setting, name
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        if name.split(":")[0] == "ref":  # its packages (models, options, data, util) from the checkout
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(reference).resolve()), env.get("PYTHONPATH")]))
        self.log = open(Path(log_dir) / f"{setting}_{name.replace(':', '_')}_{threads}.log", "w")
        cmd = [sys.executable, "-m", "studies.vs_reference", "--worker", setting, name, "--threads", str(threads),
               "--seed", str(seed), *(["--reference", reference] if reference else [])]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log,
                                     text=True, cwd=str(ROOT), env=env)
        self.wall: list[float] = []
        self.cpu: list[float] = []
        self.info: dict[str, Any] = {}
        self.threads_seen: set[int] = set()

    def read(self, kind: str) -> dict[str, Any]:
        line = self.proc.stdout.readline()
        if not line:
            self.log.flush()
            tail = Path(self.log.name).read_text()[-2000:]
            raise RuntimeError(f"worker {self.setting} {self.name} ended (rc {self.proc.wait()}):\n{tail}")
        msg = json.loads(line)
        if msg["kind"] != kind:
            raise RuntimeError(f"worker {self.setting} {self.name}: expected {kind}, got {msg['kind']}")
        return msg

    def run(self, warmup: int, iters: int) -> None:
        self.proc.stdin.write(f"run {warmup} {iters}\n")
        self.proc.stdin.flush()
        msg = self.read("times")
        self.wall += msg["wall"]
        self.cpu += msg["cpu"]
        self.threads_seen.add(msg["threads"])

    def quit(self) -> dict[str, Any]:
        self.proc.stdin.write("quit\n")
        self.proc.stdin.flush()
        msg = self.read("done")
        self.proc.wait()
        self.log.close()
        return msg


def med(xs: list[float]) -> float:
    return statistics.median(xs) if xs else float("nan")


def measure(setting: str, contenders: list[str], threads: int, args: argparse.Namespace,
            log_dir: str) -> list[dict[str, Any]]:
    """Every contender of one setting at one thread count, in its own worker, rounds interleaved."""
    workers = []
    try:
        for name in contenders:  # built one after another: the builds do not compete
            w = Worker(setting, name, threads, args.reference, args.seed, log_dir)
            w.info = w.read("ready")
            workers.append(w)
        for r in range(args.rounds):
            k = r % len(workers)
            for w in workers[k:] + workers[:k]:
                w.run(args.warmup, args.iters)
            print(f"  {setting} {threads} thread(s) round {r + 1}/{args.rounds}: "
                  + ", ".join(f"{w.name} {med(w.wall[-args.iters:]) * 1e3:.0f} ms" for w in workers),
                  file=sys.stderr, flush=True)
        rows = []
        for w in workers:
            done = w.quit()
            rows.append({"setting": setting, "threads": threads, "contender": w.name, "wall": w.wall, "cpu": w.cpu,
                         "threads_seen": sorted(w.threads_seen), "peak_mb": done.get("peak_mb"), **w.info})
        return rows
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.kill()


def report(rows: list[dict[str, Any]], base_name: str) -> str:
    lines = ["| setting | threads | contender | ms / iteration, wall | ms / iteration, CPU | x " + base_name
             + " (wall) | x " + base_name + " (CPU) | n | peak RSS MB | of it at start (imports, networks) | "
             "training's own |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        base = next(b for b in rows if b["setting"] == r["setting"] and b["threads"] == r["threads"]
                    and b["contender"] == base_name)
        peak, ready = r.get("peak_mb"), r.get("ready_mb")
        rss = [f"{peak:.0f}" if peak else "-", f"{ready:.0f}" if ready else "-",
               f"{peak - ready:.0f}" if peak and ready else "-"]
        lines.append(f"| {r['setting']} | {r['threads']} | {r['contender']} | {med(r['wall']) * 1e3:.0f} | "
                     f"{med(r['cpu']) * 1e3:.0f} | {med(r['wall']) / med(base['wall']):.2f} | "
                     f"{med(r['cpu']) / med(base['cpu']):.2f} | {len(r['wall'])} | {' | '.join(rss)} |")
    # The issue-style summary: one row per (setting, threads), one column per contender (x base, wall).
    names = list(dict.fromkeys(r["contender"] for r in rows if r["contender"] != base_name))
    lines += ["", "| setting | threads | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for key in dict.fromkeys((r["setting"], r["threads"]) for r in rows):
        base = next(b for b in rows if (b["setting"], b["threads"]) == key and b["contender"] == base_name)
        cells = []
        for n in names:
            r = next((x for x in rows if (x["setting"], x["threads"]) == key and x["contender"] == n), None)
            cells.append(f"{med(r['wall']) / med(base['wall']):.2f}x" if r else "-")
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    head, _, rest = __doc__.partition("\n\n")  # the first line once, as the description
    p = argparse.ArgumentParser(description=head, formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=rest)
    p.add_argument("--reference", default=None,
                   help="a checkout of junyanz/pytorch-CycleGAN-and-pix2pix (default: none; the ratios are then to "
                        "the re-statement of its loop, 'bare')")
    p.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--contenders", nargs="+", default=None,
                   help="default: ref (or bare), baseline, baseline-unfused, bin5, aa")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--iters", type=int, default=3, help="timed iterations per worker per round")
    p.add_argument("--warmup", type=int, default=1, help="untimed iterations per worker per round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write every iteration's times here")
    p.add_argument("--worker", nargs=2, metavar=("SETTING", "CONTENDER"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker[0], args.worker[1], args.threads[0], args.reference, args.seed)
        return 0
    if args.reference and check_reference(args.reference):
        p.error(check_reference(args.reference))
    base_name = "ref" if args.reference else "bare"
    contenders = args.contenders or [base_name, "baseline", "baseline-unfused", "bin5", "aa"]
    if base_name not in contenders:
        contenders = [base_name, *contenders]
    for name in contenders:
        if problem := check_contender(name, args.reference):
            p.error(problem)
    if len(set(contenders)) < len(contenders):
        p.error(f"--contenders: {', '.join(sorted({c for c in contenders if contenders.count(c) > 1}))} given twice")
    if args.warmup < 0 or args.iters < 1 or args.rounds < 1 or min(args.threads) < 1:
        p.error("--rounds, --iters and --threads must be >= 1, --warmup >= 0")
    command = command_line(sys.argv, args.reference, __spec__.name if __spec__ is not None else None)
    print(f"command: {command}")
    load0 = os.getloadavg()
    rows: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vs_reference_logs_") as logs:
        for threads in args.threads:
            for setting in args.settings:
                rows += measure(setting, contenders, threads, args, logs)
    load1 = os.getloadavg()
    for r in rows:
        if r["threads"] == args.threads[0]:
            kept = {True: "; allocator keeps freed memory",
                    False: "; glibc's allocator"}.get(r.get("allocator_kept"), "")
            print(f"{r['setting']} {r['contender']}: {r['command']} (G {r['generator']:,} / D {r['discriminator']:,} "
                  f"parameters{kept})")
    print(f"\nmedians of {args.rounds} rounds x {args.iters} iterations ({args.warmup} warm-up per round), each "
          f"contender in its own process, rounds interleaved; load average {load0[0]:.2f} at the start, "
          f"{load1[0]:.2f} at the end, {os.cpu_count()} CPUs; {time.perf_counter() - t0:.0f} s\n")
    print(report(rows, base_name))
    if args.json:
        Path(args.json).write_text(json.dumps({"command": command, "load": [load0, load1], "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
