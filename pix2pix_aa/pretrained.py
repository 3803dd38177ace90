"""The reference pix2pix's official pretrained generators, and the record kept beside each one.

The reference (junyanz/pytorch-CycleGAN-and-pix2pix, ``scripts/download_pix2pix_model.sh``)
publishes five generators as bare state_dicts. A state_dict records the architecture (read back
by :mod:`pix2pix_aa.reference`) but not the data it was trained on: scored on the wrong split,
direction or size, a generator gives plausible, wrong numbers. So ``pix2pix-aa-data model NAME``
(:mod:`pix2pix_aa.download`) writes a small JSON *record* beside the weights::

    checkpoints/facades_label2photo_pretrained/latest_net_G.pth    the weights, as published
    checkpoints/facades_label2photo_pretrained/latest_net_G.json   this module's record

and ``evaluate.py facades_label2photo`` (a name, the folder or the ``.pth``) reads the data
settings from it, as it reads a ``train.py`` checkpoint's own. The record of any other reference
``.pth`` can be written by hand (:data:`RECORD_FORMAT` and the ``data`` keys of
:func:`read_record`), so its evaluation needs no data flags either.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

__all__ = [
    "MODELS",
    "MODEL_ROOT",
    "RECORD_FORMAT",
    "WEIGHTS_NAME",
    "OfficialModel",
    "model_folder",
    "read_record",
    "record_path",
    "resolve_pretrained",
]

#: Where ``pix2pix-aa-data model`` saves, and where ``evaluate.py NAME`` looks (relative to the
#: current folder, as ``runs/``): ``checkpoints/<name>_pretrained/latest_net_G.pth``, the
#: reference's own layout.
MODEL_ROOT = Path("checkpoints")
WEIGHTS_NAME = "latest_net_G.pth"
#: The ``format`` value of a record; the number changes if its keys ever do.
RECORD_FORMAT = "pix2pix_aa.pretrained/1"
#: Data settings a record must hold (keys of ``Pix2PixDataModule``), as a checkpoint must.
RECORD_DATA_KEYS = ("data_dir", "dataset", "direction", "crop_size")


@dataclass(frozen=True)
class OfficialModel:
    """One official generator and what it was trained on.

    Attributes:
        name: the reference's name (``facades_label2photo``): the file ``<name>.pth``.
        dataset: the pix2pix data set it was trained on (a name of ``pix2pix-aa-data download``).
        direction: ``AtoB`` | ``BtoA`` on that data set's A|B files.
        task: what it translates, for people.
        split: the data set's held-out split (the sets without ``test/`` have ``val/`` only).
        netG, norm: the reference pix2pix's defaults, which its test command for these models
            relies on (no ``--netG`` / ``--norm``); the download reads the file's own and records
            those.
        crop_size, load_size: the reference's defaults (resize to 286, random 256 crops; its
            test resizes to 256).
    """

    name: str
    dataset: str
    direction: str
    task: str
    split: str
    netG: str = "unet_256"
    norm: str = "batch"
    crop_size: int = 256
    load_size: int = 286


#: The reference's list (``scripts/download_pix2pix_model.sh``). Directions: facades keeps the
#: photo in A and the labels in B, maps the aerial photo in A and the map in B, edges2shoes the
#: edges in A, night2day the night in A (the reference: "to train a day2night pix2pix model,
#: add --direction BtoA").
MODELS: dict[str, OfficialModel] = {m.name: m for m in (
    OfficialModel("facades_label2photo", "facades", "BtoA", "facade label map -> photo", "test"),
    OfficialModel("sat2map", "maps", "AtoB", "aerial photo -> map", "val"),
    OfficialModel("map2sat", "maps", "BtoA", "map -> aerial photo", "val"),
    OfficialModel("edges2shoes", "edges2shoes", "AtoB", "edges -> shoe photo", "val"),
    OfficialModel("day2night", "night2day", "BtoA", "daytime scene -> night", "test"),
)}


def model_folder(name: str, root: Union[str, Path] = MODEL_ROOT) -> Path:
    """``<root>/<name>_pretrained``: the folder of one downloaded official generator."""
    return Path(root) / f"{name}_pretrained"


def record_path(weights: Union[str, Path]) -> Path:
    """The record beside a ``.pth`` file: ``latest_net_G.pth`` -> ``latest_net_G.json``."""
    return Path(weights).with_suffix(".json")


def read_record(weights: Union[str, Path]) -> Optional[dict[str, Any]]:
    """The record beside ``weights``, or None when there is none.

    A record is a JSON object with ``"format": "pix2pix_aa.pretrained/1"`` and ``"data"``, the
    keyword arguments of ``Pix2PixDataModule`` the generator was trained with: at least
    ``data_dir``, ``dataset``, ``direction`` and ``crop_size`` (``load_size``, ``preprocess``,
    ``input_nc``, ``output_nc`` ... optional; ``split``: the held-out split evaluate.py scores by
    default, else ``test``). ``generator`` (``netG``, ``norm``, ``ngf``,
    ``input_nc``, ``output_nc``) is optional; ``pix2pix-aa-data`` also writes ``name``,
    ``source`` (url, size, sha256) and ``trained_on``.

    Raises:
        ValueError: one line naming the record, for a file that is not such a record.
    """
    path = record_path(weights)
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: unreadable record of {Path(weights).name} ({e}); delete it, or download the model "
                         "again (pix2pix-aa-data model NAME --force)") from None
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        found = record.get("format") if isinstance(record, dict) else type(record).__name__
        raise ValueError(f"{path}: not a pix2pix_aa record (format {found!r}, expected {RECORD_FORMAT!r}); move it "
                         f"away from {Path(weights).name} or fix it (docs/DOWNLOADS.md)")
    data = record.get("data")
    missing = [k for k in RECORD_DATA_KEYS if not isinstance(data, dict) or data.get(k) is None]
    if missing:
        raise ValueError(f"{path}: the record has no data settings {', '.join(missing)} (expected under \"data\": "
                         f"{', '.join(RECORD_DATA_KEYS)})")
    return record


def resolve_pretrained(given: str, root: Union[str, Path] = MODEL_ROOT) -> Optional[Path]:
    """The reference generator file ``given`` names, or None when it names none.

    * an existing folder that holds ``latest_net_G.pth`` and no ``.ckpt`` -> that file;
    * a name of :data:`MODELS` that is not an existing path -> ``<root>/<name>_pretrained/latest_net_G.pth``.

    Raises:
        FileNotFoundError: a name of :data:`MODELS` not downloaded yet (with the command that
            downloads it).
    """
    path = Path(given)
    if path.is_dir():
        weights = path / WEIGHTS_NAME
        if weights.is_file() and not any(path.rglob("*.ckpt")):
            return weights
        return None
    if path.exists() or given not in MODELS:
        return None
    weights = model_folder(given, root) / WEIGHTS_NAME
    if not weights.is_file():
        raise FileNotFoundError(f"{given}: the official pix2pix generator is not downloaded ({weights} does not "
                                f"exist); download it with: pix2pix-aa-data model {given}")
    return weights
