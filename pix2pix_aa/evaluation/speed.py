"""Speed settings of the evaluation (docs/PERFORMANCE.md section 5); :func:`keep_freed_memory` is
train.py's default too (``--allocator``, section 7).

* :func:`keep_freed_memory`: glibc's allocator gives every block over its mmap threshold (at
  most 32 MiB) back to the kernel when freed, so each forward pass of a batch of shifted images
  maps its activations afresh and takes a page fault per 4 KiB page on first touch. On the
  project's 2-core machine that was 30-40% of an evaluation's CPU time (system time), more for
  anti-aliased generators, whose stride-1 encoder convs make 4x larger maps. Serving all blocks
  from the heap and never trimming it keeps the pages mapped between forward passes: the same
  arithmetic on reused memory (numbers unchanged), at the price of holding the peak.
* :func:`prepare_generator`: channels_last memory format and ``torch.compile`` for inference.
* :func:`autocast`: the ``bf16`` precision (autocast; AMX on CPU, tensor cores on GPU).
* :func:`default_threads`: intra-op threads that do not oversubscribe the cores this process may
  use (``os.sched_getaffinity``), split between local worker processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
from typing import Optional

import torch
from torch import nn

__all__ = ["PRECISIONS", "SPEED_OPTIONS", "autocast", "available_cores", "default_threads", "freed_memory_kept",
           "keep_freed_memory", "prepare_generator", "speed_variant"]

PRECISIONS = ("32", "bf16")
#: Names of the inference speed options, as benchmarks combine them (``bf16+compile``).
SPEED_OPTIONS = ("fp32", "bf16", "channels_last", "compile")

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_KEPT = False


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory mapped for reuse (no mmap for large blocks, no
    trimming of the heap) in this process. Idempotent; returns False where the C library is not
    glibc (nothing changed). Process-wide: meant for a command such as evaluate.py or train.py,
    whose forward (and backward) passes repeat the same large allocations."""
    global _KEPT
    if _KEPT:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _ = libc.gnu_get_libc_version  # glibc only; other C libraries have other knobs
    except (OSError, AttributeError):
        return False
    ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
    ok = libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(2 ** 31 - 1)) == 1 and ok
    _KEPT = ok
    return ok


def freed_memory_kept() -> bool:
    """Whether :func:`keep_freed_memory` changed this process's allocator."""
    return _KEPT


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_threads(num_processes: int = 1) -> int:
    """Intra-op threads per process: ``OMP_NUM_THREADS`` if set (the user's choice), else the
    available cores divided between ``num_processes`` processes (at least 1 each), so that
    processes x threads never exceeds the cores."""
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) > 0:
        return max(1, int(env) // max(1, num_processes)) if num_processes > 1 else int(env)
    return max(1, available_cores() // max(1, num_processes))


def prepare_generator(generator: nn.Module, channels_last: bool = False, compile: bool = False) -> nn.Module:
    """The generator in eval mode, in channels_last memory format and/or wrapped by
    ``torch.compile`` (inference: no backward graph). Features (``generator.features``) stay
    the eager module's; a compiled wrapper keeps the attribute pointing at it."""
    generator = generator.eval()
    if channels_last:
        generator = generator.to(memory_format=torch.channels_last)
    if not compile:
        return generator
    compiled = torch.compile(generator, dynamic=False)
    if hasattr(generator, "features"):
        try:
            compiled.features = generator.features
        except AttributeError:  # pragma: no cover - OptimizedModule forwards attributes
            pass
    return compiled


def speed_variant(variant: str) -> dict:
    """``EvalOptions`` keywords of a benchmark variant: names of :data:`SPEED_OPTIONS` joined by
    ``+`` (``"fp32"``, ``"bf16+compile"``). Raises ValueError naming an unknown option or two
    precisions."""
    parts = set(variant.split("+"))
    if parts - set(SPEED_OPTIONS) or {"fp32", "bf16"} <= parts:
        raise ValueError(f"variant {variant!r}: expected options from {', '.join(SPEED_OPTIONS)} joined by '+' "
                         "(at most one precision)")
    return {"precision": "bf16" if "bf16" in parts else "32", "channels_last": "channels_last" in parts,
            "compile": "compile" in parts}


def autocast(device: torch.device | str, precision: str = "32") -> contextlib.AbstractContextManager:
    """``torch.autocast(device, bfloat16)`` for ``precision="bf16"``, a no-op for ``"32"``."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "32":
        return contextlib.nullcontext()
    kind = torch.device(device).type
    return torch.autocast(kind, dtype=torch.bfloat16)


def as_float(out: torch.Tensor) -> torch.Tensor:
    """Outputs under bf16 autocast come back in bfloat16; the metrics compare float32."""
    return out.float() if out.dtype in (torch.bfloat16, torch.float16) else out


def wrap_precision(generator, device: torch.device | str, precision: str = "32", channels_last: bool = False):
    """A callable (N, C, H, W) -> (N, C', H, W) float32 running ``generator`` under ``precision``
    (inputs moved to channels_last when the generator is). Identity wrapper for float32 NCHW."""
    if precision == "32" and not channels_last:
        return generator

    def run(x: torch.Tensor) -> torch.Tensor:
        if channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, precision):
            return as_float(generator(x)).contiguous()

    return run


def settings_line(threads: int, precision: str, channels_last: bool, compile: bool, kept: Optional[bool]) -> str:
    parts = [f"{threads} thread{'s' if threads != 1 else ''}", f"precision {precision}"]
    if channels_last:
        parts.append("channels_last")
    if compile:
        parts.append("torch.compile")
    if kept is not None:
        parts.append("allocator keeps freed memory" if kept else "system allocator")
    return ", ".join(parts)
