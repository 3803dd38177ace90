"""Test helper for tests/test_ddp.py: a callback that records what each DDP rank saw and ended with.

Loaded by the ``train.py`` subprocesses through ``--trainer.callbacks+=ddp_probe.RankProbe``
(``tests/`` on PYTHONPATH). Writes ``<out_dir>/rank<r>.json`` per rank at the end of fit.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytorch_lightning as pl
import torch


def digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over the names and exact bytes of a state dict (bitwise identity across ranks)."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _params(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return dict(module.named_parameters())


class RankProbe(pl.Callback):
    """Per rank: batches stepped, sample names, step times, parameter hashes before/after, metrics."""

    def __init__(self, out_dir: str = "rank_probe") -> None:
        self.out_dir = Path(out_dir)
        self.names: list[str] = []
        self.step_seconds: list[float] = []
        self.start: dict[str, str] = {}
        self._t0 = 0.0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.start = {"G": digest(_params(pl_module.generator)), "D": digest(_params(pl_module.discriminator))}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.names.extend(batch["name"])
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.step_seconds.append(time.perf_counter() - self._t0)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        record = {
            "rank": trainer.global_rank, "world_size": trainer.world_size,
            "strategy": type(trainer.strategy).__name__, "global_step": trainer.global_step,
            "names": self.names, "step_seconds": self.step_seconds,
            "start": self.start,
            "end": {"G": digest(_params(pl_module.generator)), "D": digest(_params(pl_module.discriminator))},
            "metrics": {k: float(v) for k, v in trainer.callback_metrics.items()},
            "train_sampler": type(getattr(trainer.train_dataloader, "sampler", None)).__name__,
        }
        (self.out_dir / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))
