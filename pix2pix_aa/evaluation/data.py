"""Which data each checkpoint is evaluated on, and the provenance recorded with its numbers.

Every checkpoint is scored on *its own* data settings (data dir, data set kind, direction, image
size, generation settings), read from the datamodule hyper-parameters Lightning saves in the
checkpoint, or, for a checkpoint without them, from the ``config.yaml`` of its run. A command-line
flag overrides the recorded value for every checkpoint. Nothing falls back to a library default:
a default can change between versions (the data module's default direction did), and a model
scored on data in the other direction gives plausible, wrong numbers without any error.
"""

from __future__ import annotations

import inspect
import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import torch

from pix2pix_aa.evaluation.checkpoints import LoadedGenerator

__all__ = ["DataSettings", "code_version", "data_settings", "load_data"]

#: The data module's options that only say how a procedural set is generated into its data_dir.
GENERATION_OPTIONS = ("seed", "generate_size", "generate_counts")
#: Settings without which the evaluation data is not defined -> the flag that sets them.
REQUIRED = {"data_dir": "--data-dir", "dataset": "--dataset", "direction": "--direction", "crop_size": "--size"}


@dataclass
class DataSettings:
    """The data one checkpoint is evaluated on.

    Attributes:
        kwargs: keyword arguments of ``Pix2PixDataModule`` (resize to ``crop_size``, no crop).
        split: ``"test"``, ``"val"``, ...
        source: where the recorded settings came from (``"checkpoint"`` or a config.yaml path).
        overridden: the settings given on the command line instead of the recorded ones.
        trained_with: flag -> the recorded value each overridden flag replaced.
    """

    kwargs: dict
    split: str
    source: str
    overridden: list[str] = field(default_factory=list)
    trained_with: dict = field(default_factory=dict)

    @property
    def key(self) -> str:
        """Equal for checkpoints that are evaluated on the very same images."""
        return json.dumps({"split": self.split, **self.kwargs}, sort_keys=True, default=str)

    def provenance(self, inputs: torch.Tensor) -> dict:
        """What results.json / results.csv record about the data of a row.

        Args:
            inputs: (N, C, H, W) the evaluated input images.
        """
        return {"data_dir": str(self.kwargs["data_dir"]),
                "data_dir_resolved": str(Path(self.kwargs["data_dir"]).resolve()),
                "dataset": self.kwargs["dataset"], "split": self.split, "direction": self.kwargs["direction"],
                "image_size": [int(inputs.shape[-2]), int(inputs.shape[-1])], "images": int(inputs.shape[0]),
                "settings_from": self.source, "overridden": list(self.overridden),
                "trained_with": {flag: value if value is None or isinstance(value, (int, float)) else str(value)
                                 for flag, value in self.trained_with.items()}}

    def describe(self) -> str:
        k = self.kwargs
        return f"{k['data_dir']} ({k['dataset']}, {self.split}, {k['direction']}, {k['crop_size']} px)"


def _recorded(item: LoadedGenerator) -> tuple[dict, str]:
    """The data hyper-parameters of the checkpoint, else of its run's config.yaml, else {}."""
    if item.datamodule_hparams:
        return dict(item.datamodule_hparams), item.data_source or "checkpoint"
    cfg = item.run_dir / "config.yaml"
    if cfg.is_file():
        import yaml

        try:
            data = (yaml.safe_load(cfg.read_text()) or {}).get("data")
        except (yaml.YAMLError, AttributeError):
            data = None
        if isinstance(data, dict):
            data = data.get("init_args", data) if "class_path" in data else data
            return dict(data), str(cfg)
    return {}, "none"


def data_settings(item: LoadedGenerator, split: Optional[str] = None, data_dir: Optional[str] = None,
                  dataset: Optional[str] = None, direction: Optional[str] = None,
                  size: Optional[int] = None) -> DataSettings:
    """The evaluation data of ``item``: its recorded settings, with the given flags overriding them.
    ``split`` None: the recorded held-out split (a reference generator's record names one: the
    sets without ``test/`` have ``val/``), else ``test``.

    Raises:
        ValueError: one line naming the checkpoint, the settings it does not record and the
            flags that set them (no default is assumed).
    """
    from pix2pix_aa.data import Pix2PixDataModule

    recorded, source = _recorded(item)
    split = split or recorded.get("split") or "test"
    flags = {"data_dir": data_dir, "dataset": dataset, "direction": direction, "crop_size": size}
    overrides = {k: v for k, v in flags.items() if v is not None}
    merged = {**recorded, **overrides}
    missing = [k for k in REQUIRED if merged.get(k) is None]
    if missing:
        raise ValueError(f"{item.path}: the checkpoint does not record its data settings {', '.join(missing)} "
                         f"(no datamodule hyper-parameters, no config.yaml); pass "
                         f"{' '.join(REQUIRED[k] for k in missing)}")
    accepted = set(inspect.signature(Pix2PixDataModule.__init__).parameters) - {"self"}
    kwargs: dict[str, Any] = {k: v for k, v in merged.items() if k in accepted}
    if size is not None and kwargs.get("preprocess", "resize_and_crop") != "resize_and_crop":
        # --size N means "evaluate at N x N": a checkpoint trained at its images' own sizes
        # (preprocess none / scale_width ...) is then resized like resize_and_crop evaluates.
        kwargs["preprocess"] = "resize_and_crop"
    size_px = int(merged["crop_size"])
    evaluation = {"load_size": size_px, "crop_size": size_px, "batch_size": 1, "num_workers": 0,
                  "predict_dir": None, "max_val_images": None}
    kwargs.update({k: v for k, v in evaluation.items() if k in accepted})
    changed = [k for k in overrides if recorded.get(k) != overrides[k]]
    trained_with = {REQUIRED[k]: recorded.get(k) for k in changed}
    own_sizes = recorded.get("preprocess", "resize_and_crop")
    if size is not None and own_sizes != "resize_and_crop":  # resized to size x size: never as trained
        if "crop_size" not in changed:
            changed.append("crop_size")
        trained_with["--size"] = f"the images' own sizes (preprocess {own_sizes})"
    return DataSettings(kwargs=kwargs, split=split, source=source, overridden=[REQUIRED[k] for k in changed],
                        trained_with=trained_with)


def load_data(settings: DataSettings, max_images: Optional[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets), each (N, C, H, W) in [-1, 1], of the first ``max_images`` samples of
    ``settings.split``. A missing procedural set is generated first, as in training, only at the
    checkpoint's own data_dir (its recorded generation settings make the very images it was
    trained and tested on); a ``--data-dir`` given on the command line must exist.

    Raises:
        FileNotFoundError: a ``--data-dir`` that does not exist (a typo would otherwise be
            scored on freshly generated facades, plausible numbers on the wrong images).
        ValueError, FileNotFoundError: from the data module (bad settings, missing folder).
    """
    from pix2pix_aa.data import Pix2PixDataModule
    from pix2pix_aa.evaluation.runner import load_eval_images

    data_dir = Path(settings.kwargs["data_dir"])
    if "--data-dir" in settings.overridden and not data_dir.exists():
        kind = settings.kwargs.get("dataset")
        size = settings.kwargs.get("generate_size")  # the checkpoint's: other sizes make other images
        make = {"facades": f"python -m pix2pix_aa.data.facades --out {data_dir}",
                "photos": f"python -m pix2pix_aa.data.photos --task edges --out {data_dir}",
                "colorize": f"python -m pix2pix_aa.data.photos --task colorize --out {data_dir}"}.get(kind)
        seed = settings.kwargs.get("seed")
        make = make and make + (f" --size {size}" if size else "") + (f" --seed {seed}" if seed else "")
        raise FileNotFoundError(
            f"--data-dir {data_dir} does not exist (resolved: {data_dir.resolve()}). Check the path"
            + (f"; {kind} sets are generated only at a checkpoint's own data_dir: make one there first ({make})"
               if make else ""))
    if not data_dir.exists() and settings.source.endswith(".json"):  # a reference generator's record
        from pix2pix_aa.download import DATASETS

        fix = f"download it (pix2pix-aa-data download {data_dir.name}) or " if data_dir.name in DATASETS else ""
        raise FileNotFoundError(f"{data_dir} does not exist: the data set recorded in {settings.source}; {fix}pass "
                                "--data-dir")
    if "--data-dir" in settings.overridden:
        # Another set, scored as it is: the checkpoint's generation settings (counts, size, seed)
        # describe its own data_dir, and checked against this folder they would refuse it.
        dm = Pix2PixDataModule(**{k: v for k, v in settings.kwargs.items() if k not in GENERATION_OPTIONS})
    else:
        dm = Pix2PixDataModule(**settings.kwargs)
        dm.prepare_data()
    return load_eval_images(dm.eval_dataset(settings.split), max_images)


def code_version() -> dict:
    """``{"version": pix2pix_aa.__version__, "git_commit": short hash or None}`` of the code
    that computed the numbers (git only when the package runs from a git checkout; the hash
    ends in ``+modified`` when tracked files have uncommitted edits)."""
    import pix2pix_aa

    commit = None
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(pix2pix_aa.__file__).parent,
                             capture_output=True, text=True, timeout=10)
        if out.returncode == 0:
            commit = out.stdout.strip() or None
        if commit:
            # A commit names the code only if the checkout is clean: mark local edits.
            status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                                    cwd=Path(pix2pix_aa.__file__).parent, capture_output=True, text=True, timeout=10)
            if status.returncode == 0 and status.stdout.strip():
                commit += "+modified"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"version": pix2pix_aa.__version__, "git_commit": commit}
