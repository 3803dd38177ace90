"""Data-parallel stability evaluation: the chunks of images are spread over processes and the
per-chunk results merged exactly (:func:`pix2pix_aa.evaluation.runner.merge_chunks`), so the
numbers equal a single-process run's.

Three backends, one result: each returns a :class:`JobOutcome` per generator, merged by the same
function. In this process (:func:`evaluate_in_process`), or two ways to get more processes:

- ``--num-processes N`` (:func:`evaluate_in_pool`): one machine, a spawn-started pool of N
  workers, each with ``threads // N`` intra-op threads (or its own GPU). Chunks are handed out
  one at a time, so a slow chunk does not hold back a whole shard.
- ``torchrun --nproc_per_node N evaluate.py ...`` (:func:`evaluate_distributed`): ranks of a
  ``torch.distributed`` job (also multi-node); rank r takes chunks r, r + N, ... and the results
  are gathered with ``all_gather_object`` over gloo (small Python objects, not tensors on GPU).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from pix2pix_aa.evaluation.runner import EvalOptions, ModelResult, chunk_starts, evaluate_chunks
from pix2pix_aa.evaluation.speed import keep_freed_memory
from pix2pix_aa.metrics.psnr import scale_is_known, scale_known

__all__ = ["JobOutcome", "distributed_env", "evaluate_distributed", "evaluate_in_pool", "evaluate_in_process"]


@dataclass
class JobOutcome:
    """What happened to one generator: its chunks (any order), or the first error, and the
    seconds its chunks took, summed over workers (comparable between models; not wall time)."""

    parts: list[ModelResult]
    error: Optional[str]
    seconds: float


def evaluate_in_process(generators: Sequence[nn.Module], inputs: torch.Tensor, targets: torch.Tensor,
                        opts: EvalOptions, device: torch.device | str = "cpu",
                        on_images_done: Optional[Callable[[int, int], None]] = None,
                        starts: Optional[Sequence[int]] = None) -> list[JobOutcome]:
    """Every generator's chunks (those beginning at ``starts``; default all) in this process, one
    generator after another; an error (e.g. an image size a generator does not take) is that
    generator's outcome and the rest go on (under torchrun the other ranks wait for this one)."""
    outcomes = []
    for g, generator in enumerate(generators):
        start = time.perf_counter()
        try:
            parts = evaluate_chunks(generator, inputs, targets, opts, starts=starts, device=device,
                                    on_images_done=None if on_images_done is None else
                                    (lambda k, g=g: on_images_done(g, k)))
        except ValueError as e:
            parts, error = [], str(e)
        else:
            error = None
        outcomes.append(JobOutcome(parts=parts, error=error, seconds=time.perf_counter() - start))
    return outcomes


# --- a pool of worker processes ----------------------------------------------------------
_WORKER: dict = {}


def _init_worker(generators: Sequence[nn.Module], inputs: torch.Tensor, targets: torch.Tensor,
                 opts: EvalOptions, device: str, threads: int, keep_memory: bool = False,
                 known_scale: bool = False) -> None:
    import multiprocessing

    if keep_memory:
        keep_freed_memory()
    torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda" and dev.index is None and torch.cuda.device_count() > 1:
        worker = multiprocessing.current_process()._identity[0] - 1  # 1-based pool index
        dev = torch.device("cuda", worker % torch.cuda.device_count())
    _WORKER.update(generators=[g.to(dev).eval() for g in generators], inputs=inputs, targets=targets,
                   opts=opts, device=dev, known_scale=known_scale)


def _run_chunk(task: tuple[int, int]) -> tuple[int, int, Optional[ModelResult], Optional[str], float]:
    g, start = task
    w = _WORKER
    t0 = time.perf_counter()
    try:
        with scale_known() if w["known_scale"] else nullcontext():  # the parent's, which spawn does not carry
            part = evaluate_chunks(w["generators"][g], w["inputs"], w["targets"], w["opts"], starts=[start],
                                   device=w["device"])[0]
    except ValueError as e:  # e.g. an image size this generator does not take: reported per model
        return g, start, None, str(e), time.perf_counter() - t0
    return g, start, part, None, time.perf_counter() - t0


def evaluate_in_pool(generators: Sequence[nn.Module], inputs: torch.Tensor, targets: torch.Tensor,
                     opts: EvalOptions, num_processes: int, device: torch.device | str = "cpu",
                     on_images_done: Optional[Callable[[int, int], None]] = None, threads: Optional[int] = None,
                     keep_memory: bool = False) -> list[JobOutcome]:
    """Evaluate every generator on ``inputs`` (N, C, H, W) / ``targets`` with ``num_processes``
    spawned workers. ``on_images_done(generator_index, k)`` is called as chunks finish.
    ``threads``: intra-op threads per worker (default: this process's threads divided between
    the workers); ``keep_memory``: workers keep freed memory mapped (``speed.keep_freed_memory``)."""
    if num_processes < 1:
        raise ValueError(f"num_processes must be >= 1, got {num_processes}")
    threads = threads or max(1, torch.get_num_threads() // num_processes)
    tasks = [(g, lo) for g in range(len(generators)) for lo in chunk_starts(inputs.shape[0], opts.chunk)]
    outcomes = [JobOutcome([], None, 0.0) for _ in generators]
    ctx = torch.multiprocessing.get_context("spawn")  # fork is unsafe with OpenMP / CUDA state
    with ctx.Pool(num_processes, initializer=_init_worker,
                  initargs=(list(generators), inputs, targets, opts, str(device), threads, keep_memory,
                            scale_is_known())) as pool:
        for g, lo, part, error, seconds in pool.imap_unordered(_run_chunk, tasks):
            out = outcomes[g]
            if error is not None:
                out.error = out.error or error
            else:
                out.parts.append(part)
            out.seconds += seconds
            if on_images_done is not None:
                on_images_done(g, min(opts.chunk, inputs.shape[0] - lo))
    return outcomes


# --- ranks of a torch.distributed job (torchrun, SLURM srun) ------------------------------
def distributed_env() -> tuple[int, int, int]:
    """(rank, world size, local rank) from the variables torchrun sets; (0, 1, 0) otherwise."""
    def get(name: str, default: int) -> int:
        value = os.environ.get(name, str(default))
        try:
            return int(value)
        except ValueError:
            raise ValueError(f"environment variable {name}={value!r} is not an integer") from None

    return get("RANK", 0), get("WORLD_SIZE", 1), get("LOCAL_RANK", 0)


def evaluate_distributed(generators: Sequence[nn.Module], inputs: torch.Tensor, targets: torch.Tensor,
                         opts: EvalOptions, device: torch.device | str = "cpu",
                         on_images_done: Optional[Callable[[int, int], None]] = None) -> list[JobOutcome]:
    """This rank's share of the chunks of every generator, then an all-gather: every rank returns
    the outcomes of all chunks. Initialises the default process group (gloo) from torchrun's
    environment if needed; every rank must call this with the same generators and images."""
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    starts = chunk_starts(inputs.shape[0], opts.chunk, rank, world)
    local = [(o.parts, o.error, o.seconds)
             for o in evaluate_in_process(generators, inputs, targets, opts, device, on_images_done, starts)]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, local)
    outcomes = []
    for g in range(len(generators)):
        per_rank = [r[g] for r in gathered]
        outcomes.append(JobOutcome(parts=[p for parts, _, _ in per_rank for p in parts],
                                   error=next((e for _, e, _ in per_rank if e), None),
                                   seconds=max(s for _, _, s in per_rank)))
    return outcomes
