"""Lightning callbacks: writing predicted images to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytorch_lightning as pl
import torchvision
from pytorch_lightning.callbacks import BasePredictionWriter


class ImageWriter(BasePredictionWriter):
    """Writes each predicted image as ``<output_dir>/<name>.png`` (``predict`` subcommand).

    Expects ``predict_step`` to return ``{"name": list[str], "image": Tensor (N, 3, H, W) in [0, 1]}``.
    """

    def __init__(self, output_dir: str = "outputs/predict") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for name, image in zip(prediction["name"], prediction["image"]):
            torchvision.utils.save_image(image, self.output_dir / f"{name}.png")
