"""The prediction writer: each predicted image to disk, never overwriting another."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from PIL import Image
from PIL.PngImagePlugin import PngInfo
from pytorch_lightning.callbacks import BasePredictionWriter
from torchvision.transforms.v2.functional import to_pil_image

from pix2pix_aa.data.image_io import IMAGE_EXTENSIONS

__all__ = ["SOFTWARE", "ImageWriter", "output_file_name", "written_by_predict"]


#: The PNG text chunk that marks predict's outputs ("Software"): a later predict into the folder
#: may replace such files, and refuses to replace any other. A mark inside each file, not a list
#: beside them, so the output folder holds the images alone.
SOFTWARE = "pix2pix-aa predict"


def written_by_predict(path: Path) -> bool:
    """Whether ``path`` is a PNG that predict wrote (its "Software" text chunk)."""
    try:
        with Image.open(path) as im:
            return im.format == "PNG" and im.info.get("Software") == SOFTWARE
    except (OSError, ValueError):
        return False


def _input_names(dataset: Any) -> list[str] | None:
    """The input file names a predict data set will give, when it can say without decoding."""
    files = getattr(dataset, "files", None)
    if files is not None:
        return [Path(f).name for f in files]
    source = getattr(getattr(dataset, "dataset", None), "source_name", None)
    return [source(i) for i in range(len(dataset))] if source is not None else None


def output_file_name(name: str) -> str:
    """The PNG a prediction for input ``name`` is written to: the input's extension is kept in
    the name, so inputs that share a stem never overwrite each other.

    ``scene.jpg`` -> ``scene_jpg.png``, ``scene.png`` -> ``scene_png.png``; a name without an
    image extension (a stem) -> ``<name>.png``.
    """
    path = Path(name)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        return f"{path.stem}_{path.suffix[1:]}.png"
    return f"{name}.png"


class ImageWriter(BasePredictionWriter):
    """Writes each predicted image as ``<output_dir>/<stem>_<ext>.png`` (``predict`` subcommand),
    at the size ``predict_step`` returns, 1-channel outputs as grayscale PNGs, and prints one line
    at the end: how many files were written where (also when an error stops it part-way).

    Expects ``predict_step`` to return ``{"name": list[str] (input file names),
    "image": Tensor (N, C, H, W) in [0, 1], C = 1 or 3}``.

    Each PNG carries a "Software" text chunk (:data:`SOFTWARE`): a later predict into the folder
    replaces such files, and refuses (at its start, before writing anything) to replace any other.

    Raises:
        ValueError: two predictions of one run would be written to the same file (the names
            are listed), or an output name is a file of the folder that no predict wrote: nothing
            is overwritten silently.
    """

    def __init__(self, output_dir: str = "outputs/predict") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)
        self.written: dict[str, str] = {}  # output file name -> input name, this run

    def on_predict_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.written = {}
        datamodule = getattr(trainer, "datamodule", None)
        names = _input_names(getattr(datamodule, "predict_set", None)) if datamodule is not None else None
        if not names or not self.output_dir.is_dir():
            return
        # A link is never ours: writing through it would replace a file outside the folder.
        theirs = sorted({out for out in map(output_file_name, names)
                         if (self.output_dir / out).is_symlink()
                         or (self.output_dir / out).exists() and not written_by_predict(self.output_dir / out)})
        if theirs:  # the user's own files under the names this run writes, replaced without a word
            shown = ", ".join(theirs[:3]) + (f" and {len(theirs) - 3} more" if len(theirs) > 3 else "")
            raise ValueError(f"--predict_output_dir {self.output_dir} holds {shown}, which this predict would "
                             "overwrite and no earlier predict wrote; pass another --predict_output_dir, or move them")

    def write_on_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, prediction: Any,
                           batch_indices: Sequence[int] | None, batch: Any, batch_idx: int,
                           dataloader_idx: int) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        images = prediction["image"]
        if images.dim() != 4 or images.shape[1] not in (1, 3):
            raise ValueError(f"predict_step returned images of shape {tuple(images.shape)}; expected (N, 1 or 3, H, W)")
        for name, image in zip(prediction["name"], images):
            out = output_file_name(str(name))
            if out in self.written:
                raise ValueError(f"predict: inputs {self.written[out]!r} and {name!r} would both be written to "
                                 f"{self.output_dir / out}; rename one")
            self.written[out] = str(name)
            # Round to 8 bits as torchvision.utils.save_image does; 1 channel -> mode L.
            pixels = image.detach().float().clamp(0, 1).mul(255).add(0.5).floor().to(torch.uint8).cpu()
            mark = PngInfo()
            mark.add_text("Software", SOFTWARE)
            to_pil_image(pixels).save(self.output_dir / out, pnginfo=mark)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        # An unreadable input stops predict part-way: say what is already on disk, so a folder
        # holding some outputs is not taken for the whole result.
        if self.written:
            print(f"[pix2pix_aa] predict stopped: {len(self.written)} image(s) were already written to "
                  f"{self.output_dir}; the other inputs have no output", file=sys.stderr, flush=True)

    def on_predict_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        where = f" (rank {trainer.global_rank})" if trainer.world_size > 1 else ""
        # An earlier predict's outputs of other inputs stay beside these: said, so the folder is not
        # taken for this run's result alone (other ranks' outputs are this run's: not counted there).
        earlier = [] if trainer.world_size > 1 else sorted(
            p.name for p in self.output_dir.glob("*.png") if p.name not in self.written and written_by_predict(p))
        also = (f"; the folder also holds {len(earlier)} image(s) of an earlier predict that this one did not write "
                f"({', '.join(earlier[:3])}{', ...' if len(earlier) > 3 else ''})") if earlier else ""
        print(f"[pix2pix_aa] predict: wrote {len(self.written)} image(s) to {self.output_dir}{where}{also}",
              file=sys.stderr, flush=True)
