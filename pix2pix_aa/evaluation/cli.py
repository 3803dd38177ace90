"""``evaluate.py`` / ``pix2pix-aa-evaluate``: shift stability of one or many checkpoints.

    python evaluate.py runs/cpu_quick_baseline runs/cpu_quick_bin5 --max-images 20

writes ``results.json``, ``results.csv``, ``results.md`` (one row per checkpoint), heatmaps as PNG,
and logs the same to TensorBoard beside each run. A checkpoint that does not load is reported
in one line and the others still run; the exit code is then 2.

Data-parallel (same numbers as one process; see pix2pix_aa/evaluation/parallel.py):

    python evaluate.py runs/... --num-processes 4          # a pool of 4 local processes
    torchrun --nproc_per_node 4 evaluate.py runs/...       # 4 ranks (rank 0 writes the report)
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import hashlib
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, Optional

import torch

from pix2pix_aa.console import notice, output_path_problem
from pix2pix_aa.data.writer import GenerationStopped
from pix2pix_aa.evaluation.checkpoints import (
    REFERENCE_OPTIONS,
    CheckpointError,
    LoadedGenerator,
    find_checkpoints,
    load_recorded,
    run_dir_of,
)
from pix2pix_aa.evaluation.data import DataSettings, code_version, data_settings, load_data
from pix2pix_aa.evaluation.parallel import distributed_env, evaluate_distributed, evaluate_in_pool, evaluate_in_process
from pix2pix_aa.evaluation.report import (
    DEFINITIONS,
    checkpoints_of,
    earlier_models,
    foreign_outputs,
    heatmap_ranges,
    log_to_tensorboard,
    markdown_table,
    outputs_of,
    table_notes,
    unowned_outputs,
    write_report,
)
from pix2pix_aa.evaluation.runner import (
    EvalOptions,
    ModelResult,
    merge_chunks,
    options_dict,
    output_dir_default,
)
from pix2pix_aa.evaluation.speed import default_threads, keep_freed_memory
from pix2pix_aa.evaluation.table import slug
from pix2pix_aa.metrics.bandwidth import LOWPASS_CHOICES
from pix2pix_aa.metrics.pretrained import FID_WEIGHTS_ENV, LPIPS_WEIGHTS_ENV, OFFLINE_ENV, offline, resolve_weights
from pix2pix_aa.metrics.psnr import scale_known

EXIT_USAGE = 2


def _count(text: str) -> int:
    """A count (images, pixels), at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {value}")
    return value


def _floats(text: str) -> list[float]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad value in one line (argparse prints its 20-line usage block first)."""

    def error(self, message: str) -> NoReturn:
        if message.startswith("unrecognized arguments:"):  # --max_images for --max-images, the usual slip
            flags = [t.split("=")[0] for t in message.split(":", 1)[1].split() if t.startswith("--")]
            close = [difflib.get_close_matches(f.replace("_", "-"), list(self._option_string_actions), n=1)
                     for f in flags]
            hints = [f"{f}: did you mean {c[0]}?" for f, c in zip(flags, close) if c]
            message += f" ({'; '.join(hints)})" if hints else ""
        self.exit(EXIT_USAGE, f"error: {message}\n(run {self.prog} --help for the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """evaluate.py's parser: the checkpoints, then the data, metric, reference-generator, output and
    speed options (each group a function below, added in this order: the usage line lists them so)."""
    p = _Parser(
        prog="evaluate.py",
        description="Measure generation stability (docs/DESIGN.md section 5) of pix2pix checkpoints.",
        epilog=DEFINITIONS)
    p.add_argument("checkpoints", nargs="+", help=".ckpt files, run folders (their last.ckpt is used), reference "
                                                  "pix2pix generator files (latest_net_G.pth) or the name of an "
                                                  "official one downloaded by pix2pix-aa-data model NAME")
    _add_data_options(p)
    _add_metric_options(p)
    _add_reference_options(p)
    _add_output_and_speed_options(p)
    return p


def _add_data_options(p: argparse.ArgumentParser) -> None:
    """Which data each checkpoint is scored on (default: its own, read from the checkpoint)."""
    d = p.add_argument_group(
        "data (default: each checkpoint is scored on the data it was trained on, read from the checkpoint; "
        "a flag given here overrides that for every checkpoint)")
    d.add_argument("--data-dir", help="data set root (default: each checkpoint's data.data_dir)")
    d.add_argument("--dataset", choices=["facades", "aligned", "paired", "photos", "colorize"],
                   help="data set kind (default: each checkpoint's)")
    d.add_argument("--split", help="split to evaluate on (default: test, or the held-out split recorded beside a "
                                   "downloaded official generator)")
    d.add_argument("--direction", choices=["AtoB", "BtoA"], help="default: each checkpoint's")
    d.add_argument("--size", type=_count, help="image size (default: each checkpoint's crop_size)")
    d.add_argument("--max-images", type=_count, default=None, help="evaluate the first N images only")


def _add_metric_options(p: argparse.ArgumentParser) -> None:
    """What is measured: shifts, protocols, equal bandwidth, spectrum, flicker, features, noise."""
    m = p.add_argument_group("metrics")
    m.add_argument("--shifts", type=int, default=8, help="S: shifts (dy, dx) in [0, S)^2 (default 8)")
    m.add_argument("--num-shifts", type=int, default=None, help="a seeded sample of the S*S shifts (default: all)")
    m.add_argument("--protocol", choices=["crop", "circular", "both"], default="both",
                   help="crop: windows of a larger source, compared on their common region; circular: rolled "
                        "inputs, compared after undoing the roll (default both)")
    m.add_argument("--lowpass", default="bin5", metavar="NAME|none",
                   help="filter of the equal-bandwidth stability: both compared outputs are low-passed by it at "
                        f"full resolution before the PSNR ({LOWPASS_CHOICES}; none: not computed; "
                        "default bin5)")
    m.add_argument("--no-spectrum", dest="spectrum", action="store_false",
                   help="skip the stability spectrum (its FFTs were 8%% of the crop metric's time at 256 px in bf16; "
                        "every other figure is unchanged)")
    m.add_argument("--flicker-frames", type=int, default=32,
                   help="panning flicker: frames of a 1-pixel diagonal path over the reflect-padded image, "
                        "consecutive outputs compared after undoing the motion (pooled dB; 0: off; default 32)")
    m.add_argument("--flicker-images", type=int, default=4,
                   help="images the panning flicker is measured on (the first N; default 4)")
    m.add_argument("--samples", type=int, default=3, help="input | output | target samples per model in index.html")
    m.add_argument("--layers", default="all",
                   help="feature-distance layers: 'all', 'none' or names such as enc1,enc3,dec2")
    m.add_argument("--noise", type=_floats, default=[0.01, 0.05, 0.1], help="noise sigmas, e.g. 0.01,0.05 ('none')")
    m.add_argument("--margin", type=int, default=0, help="crop protocol: border excluded from the comparison")
    m.add_argument("--batch-size", type=int, default=None, help="max images per forward pass (default: auto)")
    m.add_argument("--seed", type=int, default=0)
    q = p.add_argument_group(
        "quality metrics (FID, KID, LPIPS; docs/QUALITY_METRICS.md): their networks' weights come from a file given "
        "here, else the torch.hub cache, else a download into it; without any, the rest is computed and one line "
        "says what was skipped")
    q.add_argument("--fid-weights", metavar="PATH",
                   help=f"FID Inception v3 weights for FID and KID (a copy of torch-fidelity's "
                        f"weights-inception-2015-12-05-6726825d.pth; default: ${FID_WEIGHTS_ENV}, else the cache)")
    q.add_argument("--lpips-weights", metavar="PATH",
                   help=f"AlexNet weights for LPIPS (a copy of torchvision's alexnet-owt-7be5be79.pth; default: "
                        f"${LPIPS_WEIGHTS_ENV}, else the cache); LPIPS's linear layers ship with torchmetrics")
    q.add_argument("--offline", action="store_true",
                   help=f"never download weights (also ${OFFLINE_ENV}=1): use the files given or the cache")
    q.add_argument("--no-quality-metrics", dest="quality_metrics", action="store_false",
                   help="skip FID, KID and LPIPS (no network is built or downloaded)")
    m.add_argument("--chunk", type=int, default=4,
                   help="images per chunk: the unit of progress and of work handed to a process (default 4)")


def _add_reference_options(p: argparse.ArgumentParser) -> None:
    """Checks of a reference pix2pix generator file, named as the reference's options."""
    r = p.add_argument_group(
        "reference pix2pix generators (.pth files such as latest_net_G.pth: the architecture is read from the keys; "
        "these check it, named as the reference's options; a train.py checkpoint records its own generator and is "
        "checked the same way: a model whose architecture differs is refused in one line)")
    r.add_argument("--netG", help="unet_256 | unet_128 | resnet_9blocks | resnet_6blocks")
    r.add_argument("--norm", choices=["batch", "instance", "none"])
    r.add_argument("--ngf", type=int)
    r.add_argument("--input-nc", type=int)
    r.add_argument("--output-nc", type=int)


def _add_output_and_speed_options(p: argparse.ArgumentParser) -> None:
    """Where results go, and how fast they are computed (the output group's last flags come after the
    speed group's, as they always did: the usage line keeps its order)."""
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, default=None, help="output folder (default outputs/eval-<time>)")
    o.add_argument("--no-tensorboard", action="store_true", help="do not log to each run's TensorBoard folder")
    o.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    o.add_argument("--num-processes", type=int, default=1,
                   help="evaluate chunks of images in N local processes (threads split between them; "
                        "with --device cuda one GPU each). Under torchrun use --nproc_per_node instead")
    f = p.add_argument_group(
        "speed (docs/PERFORMANCE.md section 5; none changes the figures except --precision bf16)")
    f.add_argument("--threads", type=int, default=None,
                   help="intra-op threads per evaluating process (default: torch's, i.e. OMP_NUM_THREADS or the "
                        "cores this process may use; with --num-processes those divided between the workers)")
    f.add_argument("--precision", choices=["32", "bf16"], default="32",
                   help="32: float32 (default); bf16: generator under bfloat16 autocast (AMX or AVX512-BF16 on "
                        "CPU, tensor cores on GPU): about 2x faster; stability figures within 0.01 dB, the "
                        "small-sigma noise figure not (docs/PERFORMANCE.md section 5c)")
    f.add_argument("--channels-last", action="store_true", help="run the generator in channels_last memory format")
    f.add_argument("--compile", action="store_true",
                   help="torch.compile the generator for inference (compile time is paid once per model)")
    f.add_argument("--allocator", choices=["keep", "system"], default="keep",
                   help="keep (default): glibc malloc keeps freed memory mapped for the next forward pass "
                        "(no page faults on every batch; holds the peak); system: glibc's defaults")
    o.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of checkpoints (runs code from the file: only for files you trust)")
    o.add_argument("--no-progress", action="store_true")
    o.add_argument("--debug", action="store_true", help="show full tracebacks")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    # Other torch device types (mps, xpu, meta, ...) parse, then failed deep in .to(device): the
    # evaluation runs on the CPU and CUDA only.
    if device.type not in ("cpu", "cuda") or device.type == "cpu" and device.index not in (None, 0):
        raise ValueError(f"--device {name}: the evaluation runs on cpu or cuda (cuda:N); use auto, cpu, cuda or cuda:N")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available; use --device cpu")
    return device


class _LineProgress:
    """Progress as plain lines ``[evaluate] evaluating <model>: 8/20 images (40%), 1m12s elapsed,
    about 1m48s left``: one when the model changes, then at most one every ``interval`` seconds,
    and one at the end. For output that is not a terminal (a log file, a pipe, a job scheduler),
    where rich's bar printed nothing until the evaluation was over; and for the log file.

    The ``add_task`` / ``update`` subset of ``rich.progress.Progress`` that :func:`run` uses.
    """

    def __init__(self, write: Callable[[str], None], interval: float = 10.0) -> None:
        self.write, self.interval = write, interval
        self.total, self.done, self.description = 0, 0, ""
        self.start = self.last = time.monotonic()

    def __enter__(self) -> _LineProgress:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        self.description, self.total = description, total
        return 0

    def update(self, task: int, description: Optional[str] = None, advance: int = 0,
               completed: Optional[int] = None) -> None:
        changed = description is not None and description != self.description
        if description is not None:
            self.description = description
        self.done = completed if completed is not None else self.done + advance
        now = time.monotonic()
        if changed or now - self.last >= self.interval or self.done >= self.total:
            self.last = now
            elapsed = now - self.start
            left = elapsed / self.done * (self.total - self.done) if self.done else None
            self.write(f"[evaluate] {self.description}: {self.done}/{self.total} images "
                       f"({100 * self.done // max(self.total, 1)}%), {_duration(elapsed)} elapsed"
                       + (f", about {_duration(left)} left" if left is not None and self.done < self.total else ""))


def _duration(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


class _Progresses:
    """Several progress displays updated together (the console's and the log file's)."""

    def __init__(self, *displays) -> None:
        self.displays = displays

    def __enter__(self) -> _Progresses:
        for d in self.displays:
            d.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for d in self.displays:
            d.__exit__(*exc)

    def add_task(self, description: str, total: int) -> list:
        return [d.add_task(description, total=total) for d in self.displays]

    def update(self, task: list, **kwargs) -> None:
        for d, t in zip(self.displays, task):
            d.update(t, **kwargs)


def _progress(total: int, enabled: bool, log: Optional[Callable[[str], None]] = None):
    """The console's progress (a rich bar on a terminal, plain lines on stderr otherwise; none
    when not ``enabled``) and, with ``log``, plain lines written to it too."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    displays = []
    if enabled and Console().is_terminal:
        displays.append(Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeRemainingColumn(), transient=False))
    elif enabled:
        displays.append(_LineProgress(lambda line: print(line, file=sys.stderr, flush=True)))
    if log is not None:
        displays.append(_LineProgress(log))
    return _Progresses(*displays)


def _evaluate_all(loaded: list[LoadedGenerator], inputs: torch.Tensor, targets: torch.Tensor, opts: EvalOptions,
                  device: torch.device, num_processes: int, world_size: int, progress, task, data: dict,
                  threads: Optional[int] = None, keep_memory: bool = True
                  ) -> tuple[list[tuple[LoadedGenerator, ModelResult]], dict[str, str]]:
    """Every loaded generator (all evaluated on the same ``inputs``), in this process, a local
    pool, or across torchrun ranks; the chunk results are merged identically in all three cases.
    ``data``: the provenance recorded with each result."""
    def advance(g: int, k: int) -> None:
        # The count is over every model's images: "20/40 images" beside one model's name read as its own.
        of = f" (model {g + 1} of {len(loaded)})" if len(loaded) > 1 else ""
        progress.update(task, description=f"evaluating {loaded[g].label}{of}", advance=k)

    generators = [i.generator for i in loaded]
    # The data module mapped the images to [-1, 1]: a set of bright ones (edge maps with no edge)
    # is not [0, 1] data, which the metrics would otherwise warn about.
    with scale_known():
        if world_size > 1:
            outcomes = evaluate_distributed(generators, inputs, targets, opts, device, advance)
            progress.update(task, completed=len(loaded) * inputs.shape[0])  # the other ranks' chunks are done too
        elif num_processes > 1:
            outcomes = evaluate_in_pool(generators, inputs, targets, opts, num_processes, device,
                                        advance, threads=threads, keep_memory=keep_memory)
        else:
            outcomes = evaluate_in_process(generators, inputs, targets, opts, device, advance)
    results, errors = [], {}
    for item, outcome in zip(loaded, outcomes):
        parts, error, seconds = outcome.parts, outcome.error, outcome.seconds
        if error is not None:
            errors[item.label] = error
            continue
        results.append((item, merge_chunks(parts, label=item.label, antialias=item.antialias, epoch=item.epoch,
                                           seconds=seconds, step=item.step, data=data, checkpoint=item.checkpoint)))
    return results, errors


def _size_problem(generator: torch.nn.Module, size: tuple[int, int]) -> Optional[str]:
    """Why ``generator`` cannot take the evaluation images of ``size`` (H, W), with the
    evaluate.py flag that fixes it, or None."""
    check = getattr(generator, "size_problem", None)  # the project's generators; others run as they are
    problem = check(size) if check else None
    if not problem:
        return None
    return (f"{problem}; pass --size N (the images are resized to N x N), N a multiple of "
            f"{generator.size_multiple}, or the size the checkpoint was trained at")


def quality_weights(args: argparse.Namespace, rank: int = 0) -> tuple[Optional[str], Optional[str], dict]:
    """(FID Inception weights path, AlexNet weights path, ``{name: status line}``) for the run: a
    path is None where its metrics are skipped, and rank 0 prints one line per skipped network.

    Raises:
        ValueError: a given weights file is missing or is not that network's (usage error).
    """
    if not args.quality_metrics:
        return None, None, {"off": "off (--no-quality-metrics)"}
    download = not (args.offline or offline())
    found = {name: resolve_weights(name, getattr(args, f"{name}_weights"), download=download,
                                   announce=notice if rank == 0 else None)
             for name in ("fid", "lpips")}
    if rank == 0:
        for status in found.values():
            if status.skipped:
                notice(status.skipped)
    return found["fid"].path, found["lpips"].path, {k: v.describe() for k, v in found.items()}


def _distinct_labels(loaded: list[LoadedGenerator]) -> None:
    """Give checkpoints that share a label (``a/last.ckpt`` and ``b/last.ckpt`` are both
    ``last``) their paths as labels instead: results, files and rows are keyed by label, and
    one model must never stand in for another."""
    counts: dict[str, int] = {}
    for item in loaded:
        counts[item.label] = counts.get(item.label, 0) + 1
    for item in loaded:
        if counts[item.label] > 1:
            item.label = str(item.path)


@dataclass
class _Invocation:
    """What one ``evaluate.py`` run carries from step to step: its flags, where this process sits
    among the ranks, and every error so far (by checkpoint, argument or label). All ranks compute;
    rank 0 speaks and writes the files."""

    args: argparse.Namespace
    rank: int
    world_size: int
    errors: dict[str, str] = field(default_factory=dict)
    #: Rank 0's ``evaluate.log`` writer (a timestamped line), once the output folder is known.
    log: Optional[Callable[[str], None]] = None

    def report(self, message: str) -> None:
        """One ``error: ...`` line on stderr (rank 0 only)."""
        if self.rank == 0:
            print(f"error: {message}", file=sys.stderr)

    def fail(self, key: str, message: str, line: Optional[str] = None) -> None:
        """Record ``message`` as the error of ``key`` and report ``line`` (default: the message)."""
        self.errors[key] = message
        self.report(message if line is None else line)


def _check_launch(args: argparse.Namespace) -> tuple[int, int, int]:
    """``(rank, world_size, local_rank)`` of this process, after checking ``--num-processes`` and
    ``--threads`` against the launch (torchrun or not).

    Raises:
        ValueError: one line naming the flag.
    """
    if args.num_processes < 1:
        raise ValueError(f"--num-processes must be >= 1, got {args.num_processes}")
    rank, world_size, local_rank = distributed_env()
    if world_size > 1 and args.num_processes > 1:
        raise ValueError("--num-processes cannot be combined with torchrun (WORLD_SIZE > 1): "
                         "use torchrun's --nproc_per_node to choose the number of processes")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")
    return rank, world_size, local_rank


def eval_options(args: argparse.Namespace) -> EvalOptions:
    """The metric options of the command line (validated by :class:`EvalOptions`)."""
    return EvalOptions(max_shift=args.shifts, num_shifts=args.num_shifts, protocol=args.protocol,
                       layers=None if args.layers == "none" else args.layers.split(","), noise=tuple(args.noise),
                       margin=args.margin, batch_size=args.batch_size, seed=args.seed, chunk=args.chunk,
                       lowpass=args.lowpass, spectrum=args.spectrum,
                       # --flicker-images 0 turns the flicker off: recorded so, not as 32 frames never measured.
                       flicker_frames=args.flicker_frames if args.flicker_images else 0,
                       flicker_images=args.flicker_images, samples=args.samples, precision=args.precision,
                       channels_last=args.channels_last, compile=args.compile)


def _set_up_process(args: argparse.Namespace) -> Optional[int]:
    """The process-wide settings of an evaluation (the allocator's ``--allocator keep``, torch's
    thread count); returns the threads per worker process (None: torch's default).

    Threads: ``--threads`` per process if given; else a single process keeps torch's default (the
    cores it may use, or OMP_NUM_THREADS) and a local pool splits the cores between its workers.
    """
    threads = args.threads
    if threads is None and args.num_processes > 1:
        threads = default_threads(args.num_processes)
    if args.allocator == "keep":
        keep_freed_memory()
    if args.threads is not None and args.num_processes == 1:
        torch.set_num_threads(args.threads)
    return threads


def _rank_device(name: str, world_size: int, local_rank: int) -> torch.device:
    """``--device``, with one GPU per rank of the node under torchrun."""
    device = _device(name)
    if world_size > 1 and device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)  # one GPU per rank of the node
    return device


def _file_key(path: Path) -> object:
    """Equal for two paths of one file (a run folder and its last.ckpt, a symlink, a hard link)."""
    try:
        st = path.stat()
        return st.st_dev, st.st_ino
    except OSError:
        return str(path.resolve())


def _refuse_repeats(found: list[tuple[str, Path]]) -> None:
    """A file named twice (``runs/t1`` and ``runs/t1/version_0/checkpoints/last.ckpt``) would be
    two rows of one model under one label, their files overwriting each other.

    Raises:
        ValueError: one line naming the file and the arguments that both give it.
    """
    seen: dict[object, tuple[str, Path]] = {}
    for given, path in found:
        key = _file_key(path)
        if key in seen:
            first_given, first_path = seen[key]
            how = (f"as {first_given!r} and as {given!r}" if first_given != given else f"twice as {given!r}")
            raise ValueError(f"{first_path} is given {how}: name each checkpoint once")
        seen[key] = (given, path)


def _load_checkpoints(run: _Invocation) -> list[LoadedGenerator]:
    """Every checkpoint the arguments name that loads, with its file's path and sha256; the
    others are errors.

    Raises:
        ValueError: a file named twice (usage error: nothing is evaluated).
    """
    args = run.args
    loaded: list[LoadedGenerator] = []
    found: list[tuple[str, Path]] = []
    for given in args.checkpoints:  # one argument at a time: a folder without checkpoints (a run
        try:                          # that failed at start-up) is one error line, not the end
            found += [(given, path) for path in find_checkpoints([given])]
        except CheckpointError as e:
            run.fail(given, str(e))
    _refuse_repeats(found)
    reference = {name: getattr(args, name) for name in REFERENCE_OPTIONS}
    for _, path in found:
        try:
            loaded.append(load_recorded(path, trust=args.trust_checkpoint, reference=reference))
        except CheckpointError as e:
            run.fail(str(path), str(e))
    return loaded


def _group_by_data(run: _Invocation, loaded: list[LoadedGenerator]
                   ) -> dict[str, tuple[DataSettings, list[LoadedGenerator]]]:
    """Each checkpoint on its own data settings; checkpoints with equal settings share the images.
    Settings given on the command line against the recorded ones are printed as a note."""
    args = run.args
    groups: dict[str, tuple[DataSettings, list[LoadedGenerator]]] = {}
    for item in loaded:
        try:
            settings = data_settings(item, split=args.split, data_dir=args.data_dir, dataset=args.dataset,
                                     direction=args.direction, size=args.size)
        except ValueError as e:
            run.fail(item.label, str(e))
            continue
        if settings.trained_with:  # legitimate (e.g. a held-out set), but never unannounced
            given = {"--data-dir": args.data_dir, "--dataset": args.dataset, "--direction": args.direction,
                     "--size": args.size}
            print(f"note: {item.label}: " + ", ".join(f"{flag} {given[flag]} (recorded: {was})"
                                                     for flag, was in settings.trained_with.items())
                  + f"; recorded settings from {settings.source}", file=sys.stderr)
        groups.setdefault(settings.key, (settings, []))[1].append(item)
    return groups


Batch = tuple[DataSettings, list[LoadedGenerator], torch.Tensor, torch.Tensor]

#: The data module's messages name train.py's options; evaluate.py's own for the same setting.
_EVALUATE_FLAGS = {"--data.dataset": "--dataset", "--data.data_dir": "--data-dir", "--data.direction": "--direction",
                   "--data.input_nc": "--input-nc", "--data.output_nc": "--output-nc"}


def _in_evaluate_terms(message: str) -> str:
    """``message`` with train.py's data options named as evaluate.py's (``--data.dataset aligned``
    -> ``--dataset aligned``): a user of evaluate.py cannot pass the former."""
    return re.sub("|".join(re.escape(k) + r"\b" for k in _EVALUATE_FLAGS), lambda m: _EVALUATE_FLAGS[m.group(0)],
                  message)


def _load_batches(run: _Invocation, groups: dict[str, tuple[DataSettings, list[LoadedGenerator]]]) -> list[Batch]:
    """The images of every data group, with the checkpoints that can take their size; a group
    whose data does not load, and a checkpoint that cannot take the size, are errors."""
    batches = []
    for settings, items in groups.values():
        try:
            inputs, targets = load_data(settings, run.args.max_images)
        except (ValueError, FileNotFoundError) as e:
            if run.args.debug:
                raise
            message = f"data {settings.describe()}: {_in_evaluate_terms(str(e))}"
            for item in items:
                run.fail(item.label, message, f"{item.label}: {message}")
            continue
        fitting = []
        for item in items:  # refused here, before the progress bar, in evaluate.py's own terms
            problem = _size_problem(item.generator, tuple(inputs.shape[-2:]))
            if problem:
                run.fail(item.label, problem, f"{item.label}: data {settings.describe()}: {problem}")
            else:
                fitting.append(item)
        if fitting:
            batches.append((settings, fitting, inputs, targets))
    return batches


def _evaluate_batches(run: _Invocation, batches: list[Batch], opts: EvalOptions, device: torch.device,
                      threads: Optional[int]) -> list[tuple[LoadedGenerator, ModelResult]]:
    """Every checkpoint on its images, under one progress bar; a model that fails is an error."""
    total = sum(len(items) * inputs.shape[0] for _, items, inputs, _ in batches)
    done: list[tuple[LoadedGenerator, ModelResult]] = []
    with _progress(total, not run.args.no_progress and run.rank == 0, run.log) as progress:
        task = progress.add_task("evaluating", total=total)
        for settings, items, inputs, targets in batches:
            group_done, model_errors = _evaluate_all(items, inputs, targets, opts, device, run.args.num_processes,
                                                     run.world_size, progress, task, settings.provenance(inputs),
                                                     threads=threads, keep_memory=run.args.allocator == "keep")
            done += group_done
            for label, message in model_errors.items():
                run.fail(label, message, f"{label}: {message}")
    return done


def _write_outputs(run: _Invocation, done: list[tuple[LoadedGenerator, ModelResult]], opts: EvalOptions,
                   device: torch.device, threads: Optional[int], out_dir: Path) -> None:
    """Rank 0: the report files, TensorBoard beside each run, and the table on stdout."""
    results = [r for _, r in done]
    # How the work was split: the figures do not depend on it (tested), the time does.
    execution = {"num_processes": run.args.num_processes, "world_size": run.world_size,
                 "threads_per_process": threads if threads is not None else torch.get_num_threads(),
                 "device": str(device)}
    earlier = earlier_models(out_dir)  # read before this evaluation's results.json replaces it
    earlier_runs = {run_dir_of(path) for path in checkpoints_of(earlier)}
    files = write_report(results, out_dir, {**options_dict(opts), "execution": execution, "code": code_version()},
                         run.errors)
    _remove_stale(run, out_dir, outputs_of(earlier), files)
    table = markdown_table(results)
    notes = table_notes(results, options_dict(opts))  # what the figures are and where they came from
    if not run.args.no_tensorboard:
        ranges = heatmap_ranges(results)
        # One TensorBoard run per --out folder: evaluations of one checkpoint on other data or fewer
        # images would otherwise share tags and steps, indistinguishable. Named after the folder and
        # a hash of its resolved path (two "eval" folders stay apart); an evaluation into the same
        # folder replaces the earlier one's events, as it replaces its files.
        name = f"{slug(out_dir.name)}-{hashlib.sha1(str(out_dir.resolve()).encode()).hexdigest()[:8]}"
        # Once per folder, before any model of this evaluation is logged: two checkpoints of one
        # run (last.ckpt and a best-*.ckpt) log into the same folder. The runs of models the
        # earlier evaluation into this folder scored and this one does not lose theirs too: the
        # folder's results no longer hold them.
        # Resolved: the earlier results record resolved paths, the command line may give relative
        # ones, and one run under two spellings was said to be "no longer scored".
        scored = {item.run_dir.resolve() for item, _ in done}
        dropped = []
        for run_dir in {*(r.resolve() for r in earlier_runs), *scored}:
            log_dir = run_dir / "evaluation" / name
            events = list(log_dir.glob("events.out.tfevents.*"))
            for old in events:
                old.unlink()
            if events and run_dir not in scored:
                dropped.append(str(log_dir))
            with contextlib.suppress(OSError):  # emptied (a model logged below makes it again)
                log_dir.rmdir()
        if dropped:  # folders of other runs: said, as the images removed from --out are
            line = (f"note: removed this --out's earlier TensorBoard run from the {len(dropped)} run(s) this "
                    f"evaluation no longer scores: {', '.join(sorted(dropped))}")
            print(line, file=sys.stderr)
            if run.log is not None:
                run.log(f"[evaluate] {line}")
        for item, result in done:
            # At the checkpoint's iteration, the x-axis of its run's training curves (its epoch put the
            # final evaluation among the first iterations there); a reference file has only an epoch.
            step = item.step if item.step is not None else item.epoch or 0
            log_to_tensorboard(result, item.run_dir / "evaluation" / name, table, step=step,
                               ranges=ranges, all_results=results, hparams=item.hparams, evaluation=str(out_dir),
                               notes=notes)
    print(table)
    print("\n" + notes)
    print(f"\nwrote {', '.join(sorted({str(p.name) for p in files.values()})[:6])} ... to {out_dir}")
    if run.log is not None:
        run.log(f"[evaluate] wrote {len(files) + 1} files to {out_dir}"
                + (f"; {len(run.errors)} failed" if run.errors else ""))


def _remove_stale(run: _Invocation, out_dir: Path, earlier: list[str], files: dict) -> None:
    """Remove the images an earlier evaluation wrote into ``out_dir`` that this one did not write
    again (other models, or a figure now off), so the folder and its index.html are of one
    evaluation; one line says so. Only the names the earlier results.json implies are removed."""
    written = {Path(p).name for p in files.values()}
    stale = [name for name in dict.fromkeys(earlier) if name not in written and (out_dir / name).is_file()]
    for name in stale:
        (out_dir / name).unlink()
    if stale:
        shown = ", ".join(stale[:4]) + (f" and {len(stale) - 4} more" if len(stale) > 4 else "")
        line = (f"note: --out {out_dir} held an earlier evaluation: removed its {len(stale)} image"
                f"{'s' if len(stale) > 1 else ''} this one did not rewrite ({shown})")
        print(line, file=sys.stderr)
        if run.log is not None:
            run.log(f"[evaluate] {line}")


def run(args: argparse.Namespace) -> int:
    """One evaluation, step by step; the exit code (2 when anything failed)."""
    rank, world_size, local_rank = _check_launch(args)
    opts = eval_options(args)
    threads = _set_up_process(args)
    device = _rank_device(args.device, world_size, local_rank)
    state = _Invocation(args, rank, world_size)
    loaded = _load_checkpoints(state)
    if not loaded:
        if not state.errors:  # each failed checkpoint has had its line: a summary under it said nothing new
            state.report("no checkpoint could be loaded")
        return EXIT_USAGE
    _distinct_labels(loaded)
    out_dir = args.out or output_dir_default()
    unowned = unowned_outputs(out_dir, [item.label for item in loaded])
    if unowned:
        state.report(f"--out {out_dir} holds {', '.join(unowned)} that no evaluation wrote (the earlier evaluation's "
                     "results.json does not name them) and this one would overwrite; pass another --out or move them")
        return EXIT_USAGE
    batches = _load_batches(state, _group_by_data(state, loaded))
    if not batches:
        return EXIT_USAGE
    # Once there is something to score: a checkpoint or data set that is missing is said first,
    # not after lines about the quality metrics' weights.
    opts.fid_network, opts.lpips_network, opts.quality_metrics = quality_weights(args, rank)
    for settings, *_ in batches:  # the report's PNGs would be read as images of that split next time
        data_dir = Path(settings.kwargs["data_dir"]).resolve()
        if out_dir.resolve() == data_dir or data_dir in out_dir.resolve().parents:
            state.report(f"--out {out_dir} is inside the data folder {settings.kwargs['data_dir']}: the report's "
                         "images would be read as data by the next evaluation or training; pass a folder outside it")
            return EXIT_USAGE
    if rank == 0:
        state.log = _open_log(out_dir, batches)
    done = _evaluate_batches(state, batches, opts, device, threads)
    order = {id(item): k for k, item in enumerate(loaded)}
    done.sort(key=lambda pair: order[id(pair[0])])  # rows in the order the checkpoints were given
    if not done:
        return EXIT_USAGE
    if rank == 0:
        _write_outputs(state, done, opts, device, threads, out_dir)
    return EXIT_USAGE if state.errors else 0


def _open_log(out_dir: Path, batches: list[Batch]) -> Callable[[str], None]:
    """``out_dir/evaluate.log`` (new), with what is scored; returns its line writer, which the
    progress also writes to as it goes."""
    out_dir.mkdir(parents=True, exist_ok=True)
    log_path = out_dir / "evaluate.log"
    log_path.write_text("", encoding="utf-8")

    def log(line: str) -> None:
        with log_path.open("a", encoding="utf-8") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {line}\n")

    for settings, items, inputs, _ in batches:
        log(f"[evaluate] data {settings.describe()}: {inputs.shape[0]} images of {inputs.shape[-2]}x"
            f"{inputs.shape[-1]} px (HxW), for {', '.join(i.label for i in items)}")
        for item in items:
            if item.checkpoint:
                log(f"[evaluate] {item.label}: {item.checkpoint['path']} (sha256 {item.checkpoint['sha256']}, "
                    f"{item.checkpoint['bytes']} bytes, modified {item.checkpoint['modified']})")
    return log


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    given = {a.split("=")[0] for a in (sys.argv[1:] if argv is None else argv)}  # the flags on the command line
    if args.flicker_images == 0 and args.flicker_frames and "--flicker-frames" in given:
        print(f"error: --flicker-frames {args.flicker_frames} with --flicker-images 0: no flicker would be measured; "
              "drop one of them (--flicker-frames 0 turns the flicker off)", file=sys.stderr)
        return EXIT_USAGE
    if args.protocol == "circular" and "--margin" in given:
        print(f"error: --margin {args.margin} with --protocol circular: the margin is the crop protocol's border "
              "(the circular one compares every pixel); drop one of them", file=sys.stderr)
        return EXIT_USAGE
    weights = [flag for flag, value in (("--fid-weights", args.fid_weights), ("--lpips-weights", args.lpips_weights))
               if value]
    if weights and not args.quality_metrics:  # the file went unchecked and unused, without a word
        print(f"error: {' and '.join(weights)} with --no-quality-metrics: no quality metric would use "
              f"{'them' if len(weights) > 1 else 'it'}; drop one of them", file=sys.stderr)
        return EXIT_USAGE
    problem = output_path_problem(args.out, "--out") if args.out is not None else None
    foreign = foreign_outputs(Path(args.out)) if args.out is not None and problem is None else []
    if foreign:  # the user's own files under the names evaluate.py writes
        problem = (f"--out {args.out} holds {', '.join(foreign)} that no evaluation wrote (no results.json of "
                   "evaluate.py beside them) and this one would overwrite; pass another --out or move them")
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        return run(args)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except GenerationStopped as e:  # SIGTERM while the test data were generated
        print(f"error: {e}", file=sys.stderr)
        return 128 + 15
    except KeyboardInterrupt:  # Ctrl-C: a page of traceback from wherever it landed (a plot, a deepcopy)
        if args.debug:
            raise
        where = f" {args.out} may hold part of this evaluation (files and TensorBoard events);" if args.out else ""
        print(f"error: interrupted;{where} run the same command again to evaluate anew", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
