"""``ResumeRNGState``: the global RNG states saved with every checkpoint and restored on resume.

Lightning does not store RNG states in checkpoints, so dropout and (with ``num_workers=0``) the
random crops/flips after a resume differ from an uninterrupted run.
"""

from __future__ import annotations

import os
import random
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import Callback

__all__ = ["ResumeRNGState"]


class ResumeRNGState(Callback):
    """Saves the global RNG states with every checkpoint and restores them on resume.

    Restored in ``load_state_dict``, which Lightning calls before it builds the training
    iterator, so the first batch after a resume already draws from the saved state. Stored as
    tensors and lists of ints (numpy's key as a list), so ``weights_only=True`` can read them.
    What this cannot restore: the state of the training DataLoader's own ``generator`` (shuffle
    order, worker seeds), which the data module re-seeds every time ``fit`` starts, and the RNG
    inside DataLoader worker processes; see docs/RELIABILITY.md.
    """

    def state_dict(self) -> dict[str, Any]:
        kind, key, pos, has_gauss, gauss = np.random.get_state()
        version, py_state, py_gauss = random.getstate()
        state = {"torch": torch.get_rng_state(), "numpy": [kind, key.tolist(), pos, has_gauss, gauss],
                 "python": [version, list(py_state), py_gauss]}
        seed = os.environ.get("PL_GLOBAL_SEED")  # seed_everything's: a resume that asks for another is refused
        if seed is not None:
            state["seed"] = int(seed)
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            state["cuda"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if not state_dict:
            return
        torch.set_rng_state(state_dict["torch"])
        kind, key, pos, has_gauss, gauss = state_dict["numpy"]
        np.random.set_state((kind, np.asarray(key, dtype=np.uint32), pos, has_gauss, gauss))
        version, py_state, py_gauss = state_dict["python"]
        random.setstate((version, tuple(py_state), py_gauss))
        if "cuda" in state_dict and torch.cuda.is_available() and len(state_dict["cuda"]) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(state_dict["cuda"])
