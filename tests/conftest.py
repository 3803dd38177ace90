"""Shared pytest fixtures. Keep each block small; append new fixtures below their own header."""

from __future__ import annotations

from pathlib import Path

import pytest


# --- data fixtures (pix2pix_aa.data) -----------------------------------------------------
@pytest.fixture(scope="session")
def tiny_facades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny procedural facades set: 4/1/1 train/val/test images, 64x64 halves (A|B = 64x128 PNG)."""
    from pix2pix_aa.data.facades import generate_facades

    root = tmp_path_factory.mktemp("data") / "facades"
    return generate_facades(root, seed=0, splits={"train": 4, "val": 1, "test": 1}, size=64, workers=1)
