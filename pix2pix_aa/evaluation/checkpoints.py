"""Loading generators from Lightning checkpoints, safely and with one clear line per failure."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from torch import nn

from pix2pix_aa.checkpoints import CheckpointError, check_module_checkpoint, read_checkpoint
from pix2pix_aa.compat import batches_in_checkpoint, epochs_in_checkpoint
from pix2pix_aa.download import sha256_of
from pix2pix_aa.module import Pix2PixModule
from pix2pix_aa.options import argument_defaults

__all__ = ["REFERENCE_OPTIONS", "CheckpointError", "LoadedGenerator", "file_record", "filter_label",
           "find_checkpoints", "load_generator", "load_recorded", "objective_label"]

#: The reference-named options that check a generator's architecture (evaluate.py's flags
#: ``--netG --norm --ngf --input-nc --output-nc``).
REFERENCE_OPTIONS = ("netG", "norm", "ngf", "input_nc", "output_nc")


@dataclass
class LoadedGenerator:
    path: Path
    label: str
    generator: nn.Module
    hparams: dict
    datamodule_hparams: dict
    epoch: Optional[int]
    step: Optional[int] = None
    #: The anti-aliasing design for tables and titles (:func:`filter_label`); None: the encoder filter.
    design: Optional[str] = None
    #: Where ``datamodule_hparams`` were read when not from the checkpoint (a reference file's record).
    data_source: Optional[str] = None
    #: The file the weights were read from (:func:`file_record`), when loaded by :func:`load_recorded`.
    checkpoint: Optional[dict] = None
    #: ``(epochs trained, epochs of its schedule)`` of a train.py checkpoint; None where not recorded.
    epochs: Optional[tuple[int, int]] = None

    @property
    def antialias(self) -> str:
        if self.design is not None:
            return self.design
        args = (self.hparams.get("generator") or {})
        return str(args.get("antialias", "none"))

    def outputs(self, inputs: torch.Tensor, batch_size: int = 4) -> torch.Tensor:
        """The generator's outputs for ``inputs``, ``batch_size`` images at a time, without
        autograd (the generator is in eval mode, as loaded).

        Shape: (N, C_in, H, W) -> (N, C_out, H, W).
        """
        with torch.no_grad():
            return torch.cat([self.generator(inputs[i:i + batch_size]) for i in range(0, len(inputs), batch_size)])

    @property
    def run_dir(self) -> Path:
        """The Lightning log dir of the run (``.../version_N``) when the checkpoint sits in it."""
        return run_dir_of(self.path)


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder of a checkpoint file: ``.../version_N`` for ``.../version_N/checkpoints/x.ckpt``,
    else the file's own folder (evaluate.py logs its TensorBoard events under it)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent


#: Generator options that change the anti-aliasing design beside the encoder filter.
DESIGN_OPTIONS = ("antialias_mode", "upsample_antialias", "upsample", "fullres_channels", "head_layers")


def _compact(value: Any) -> str:
    """A config value, lists with repeated entries run-length written: [none, bin5 x6]."""
    if isinstance(value, bool):
        return str(value).lower()
    if not isinstance(value, (list, tuple)):
        return str(value).lower() if value is None else str(value)
    runs: list[list] = []
    for v in value:
        if runs and runs[-1][0] == v:
            runs[-1][1] += 1
        else:
            runs.append([v, 1])
    return "[" + ", ".join(_compact(v) + (f" x{n}" if n > 1 else "") for v, n in runs) + "]"


def filter_label(cls: type, init_args: dict) -> str:
    """The generator's anti-aliasing design in one line: the encoder filter, then every option of
    :data:`DESIGN_OPTIONS` set away from ``cls``'s default, e.g. ``kaiser9_c0.17_w0.16
    (antialias_mode blur_conv, upsample_antialias [none, kaiser13_c0.19_w0.12 x6],
    fullres_channels 16)``. Two designs that share an encoder filter read differently."""
    defaults = argument_defaults(cls)  # {} for a class without an inspectable signature: encoder filter only
    label = _compact(init_args.get("antialias", defaults.get("antialias", "none")))
    changed = [f"{k} {_compact(init_args[k])}" for k in DESIGN_OPTIONS
               if k in init_args and k in defaults and init_args[k] != defaults[k]
               and not (k == "upsample_antialias" and init_args[k] in (None, True))]  # same as the encoder
    return label + (f" ({', '.join(changed)})" if changed else "")


def objective_label(hparams: dict) -> str:
    """The training objective's departures from pix2pix that shape a generator as much as its
    layers, for the design label: ``"trained with lambda_shift 3 (1 image a batch)"``, or ``""``
    (a generator trained with the shift term reads like its architecture alone otherwise)."""
    weight = hparams.get("lambda_shift") or 0
    if not weight:
        return ""
    k, every = hparams.get("shift_images", 1), hparams.get("shift_every", 1)
    often = f"{k} image{'s' if k != 1 else ''} a batch" + (f", every {every} batches" if every != 1 else "")
    return f"trained with lambda_shift {weight:g} ({often})"


def find_checkpoints(paths: list[str]) -> list[Path]:
    """Expand folders of runs into their ``last.ckpt`` files (or their only checkpoint).

    A file path is kept as given (even if missing: loading reports it). A folder is searched
    recursively; in each folder holding ``.ckpt`` files, ``last.ckpt`` is used, else the only one:
    several without a ``last.ckpt`` raise :class:`CheckpointError` naming them. A folder of a reference
    generator (``latest_net_G.pth``, no ``.ckpt``) and the name of a downloaded official generator
    (``facades_label2photo``: :func:`pix2pix_aa.pretrained.resolve_pretrained`) give its ``.pth``.
    """
    from pix2pix_aa.pretrained import resolve_pretrained

    found: list[Path] = []
    for p in map(Path, paths):
        try:
            pretrained = resolve_pretrained(str(p))
        except FileNotFoundError as e:
            raise CheckpointError(str(e)) from None
        if pretrained is not None:
            found.append(pretrained)
            continue
        if str(p) in ("last", "best") and not p.exists():  # train.py's --ckpt_path keywords, not paths here
            raise CheckpointError(f"{p}: train.py's --ckpt_path {p} names a run's checkpoint; evaluate.py takes the "
                                  "run's folder (e.g. runs/NAME, its last.ckpt) or a checkpoint file")
        if not p.is_dir():
            found.append(p)
            continue
        ckpt_dirs = sorted({c.parent for c in p.rglob("*.ckpt")})
        if not ckpt_dirs:
            raise CheckpointError(f"no .ckpt files under folder {p}")
        for d in ckpt_dirs:
            last, files = d / "last.ckpt", sorted(d.glob("*.ckpt"))
            if not last.exists() and len(files) > 1:
                # Picking one would drop the others without a word (and a name sort puts
                # epoch=9 after epoch=10): the user says which.
                names = ", ".join(f.name for f in files[:4]) + (f" and {len(files) - 4} more" if len(files) > 4 else "")
                raise CheckpointError(f"{d} holds {len(files)} checkpoints and no last.ckpt ({names}): pass the "
                                      f"file(s) you mean, e.g. {d / files[0].name} (or {d}/*.ckpt for all)")
            found.append(last if last.exists() else files[0])
    return found


def _label(path: Path) -> str:
    parts = path.parts
    if len(parts) >= 4 and parts[-2] == "checkpoints":  # runs/<name>/<version>/checkpoints/x.ckpt
        return f"{parts[-4]}/{parts[-3]}/{path.stem}"
    return path.stem


def load_generator(path: str | Path, trust: bool = False, reference: Optional[dict] = None) -> LoadedGenerator:
    """Rebuild the generator of a ``Pix2PixModule`` checkpoint and load its weights.

    A ``.pth`` file is read as a reference pix2pix generator (``latest_net_G.pth``) by
    :func:`pix2pix_aa.reference.load_reference_generator`, with ``reference`` its keyword
    arguments (``netG``, ``norm``, ``ngf``, ``input_nc``, ``output_nc``); its data settings come
    from the record beside it (``latest_net_G.json``, written by ``pix2pix-aa-data model``), else
    from evaluate.py's data flags. ``reference`` checks a train.py checkpoint's generator the same
    way (a value given that the checkpoint's generator does not have raises), so evaluate.py's
    reference-named flags mean one thing whatever the file.

    The checkpoint is read with ``weights_only=True`` unless ``trust`` is given, so it cannot run
    code. The generator is rebuilt from the ``class_path`` / ``init_args`` that LightningCLI saved
    in the checkpoint's hyper-parameters; only classes under ``pix2pix_aa.`` or ``torch.nn.`` are
    built without ``trust``.

    Raises:
        CheckpointError: one line naming the file and what is wrong.
    """
    path = Path(path)
    if path.suffix == ".pth":
        return _load_reference(path, reference or {})
    ckpt = read_checkpoint(path, trust)  # shared with train.py: weights_only unless trusted
    check_module_checkpoint(path, ckpt, Pix2PixModule.__name__, "generator")
    hp = dict(ckpt.get("hyper_parameters") or {})
    state = ckpt["state_dict"]
    gen_cfg = hp.get("generator")
    if not isinstance(gen_cfg, dict) or "class_path" not in gen_cfg:
        raise CheckpointError(f"{path}: the generator's config (class_path/init_args) is not in the checkpoint; "
                              "train with train.py (LightningCLI) so it is saved")
    gen_path = gen_cfg["class_path"]
    if not trust and not gen_path.startswith(("pix2pix_aa.", "torch.nn.")):
        raise CheckpointError(f"{path}: generator class {gen_path} is outside pix2pix_aa; pass --trust-checkpoint "
                              "to build it")
    module_name, _, cls_name = gen_path.rpartition(".")
    try:
        cls = getattr(__import__(module_name, fromlist=[cls_name]), cls_name)
        generator = cls(**(gen_cfg.get("init_args") or {}))
    except (ImportError, AttributeError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: cannot build generator {gen_path}: {e}") from e
    weights = {k[len("generator."):]: v for k, v in state.items() if k.startswith("generator.")}
    try:
        result = generator.load_state_dict(weights, strict=False)
    except RuntimeError as e:  # shape mismatches are raised even with strict=False
        first = next((ln.strip() for ln in str(e).splitlines() if "size mismatch" in ln), str(e)[:200])
        raise CheckpointError(f"{path}: generator config does not match the weights ({first})") from e
    if result.missing_keys or result.unexpected_keys:
        raise CheckpointError(
            f"{path}: generator config does not match the weights (missing {len(result.missing_keys)} keys, e.g. "
            f"{result.missing_keys[:2]}; unexpected {len(result.unexpected_keys)}, e.g. {result.unexpected_keys[:2]})")
    flat = {**(gen_cfg.get("init_args") or {})}
    _check_reference_options(path, cls, flat, reference or {})
    hp_out = {k: v for k, v in hp.items() if k != "generator"}
    hp_out["generator"] = flat
    return LoadedGenerator(path=path, label=_label(path), generator=generator.eval(), hparams=hp_out,
                           datamodule_hparams=dict(ckpt.get("datamodule_hyper_parameters") or {}),
                           epoch=ckpt.get("epoch"), step=batches_in_checkpoint(ckpt),
                           design="; ".join(filter(None, [filter_label(cls, flat), objective_label(hp)])),
                           epochs=_epochs_of(ckpt, hp))


def _epochs_of(ckpt: dict, hparams: dict) -> Optional[tuple[int, int]]:
    """(epochs the checkpoint trained, epochs its LR schedule has), or None when either is unknown."""
    trained = epochs_in_checkpoint(ckpt)
    try:
        scheduled = int(hparams["n_epochs"]) + int(hparams["n_epochs_decay"])
    except (KeyError, TypeError, ValueError):
        return None
    return None if trained is None else (trained, scheduled)


def _reference_view(cls: type, init_args: dict) -> dict:
    """A train.py generator described by the reference's option names (None where it has no such
    option): ``{"netG": "unet_64", "norm": "batch", "ngf": 8, "input_nc": 3, "output_nc": 3}``."""
    from pix2pix_aa.networks import ResNetGenerator, UNetGenerator

    defaults = argument_defaults(cls)
    args = {**defaults, **init_args}
    netg = None  # the reference's names for the same layouts (pix2pix_aa.reference.ReferenceLayout.name)
    if isinstance(cls, type) and issubclass(cls, UNetGenerator) and "num_downs" in args:
        netg = f"unet_{2 ** int(args['num_downs'])}"
    elif isinstance(cls, type) and issubclass(cls, ResNetGenerator) and "n_blocks" in args:
        netg = f"resnet_{int(args['n_blocks'])}blocks"
    return {"netG": netg, "norm": args.get("norm"), "ngf": args.get("ngf"), "input_nc": args.get("in_channels"),
            "output_nc": args.get("out_channels")}


def _check_reference_options(path: Path, cls: type, init_args: dict, options: dict) -> None:
    """The reference-named options given (not None) against a train.py checkpoint's generator, as
    :func:`pix2pix_aa.reference.load_reference_generator` checks them against a ``.pth`` file.

    Raises:
        CheckpointError: one line naming the flags that do not match and what the checkpoint holds.
    """
    given = {k: options[k] for k in REFERENCE_OPTIONS if options.get(k) is not None}
    if not given:
        return
    held = _reference_view(cls, init_args)
    wrong = [f"--{k.replace('_', '-')} {v}" for k, v in given.items() if v != held[k]]
    if wrong:
        holds = ", ".join(f"{k}={v}" for k, v in held.items() if v is not None) or "none of these options"
        raise CheckpointError(
            f"{path}: {', '.join(wrong)} given, but the checkpoint's generator is {cls.__name__} ({holds}); "
            "these flags check the architecture of every model given, and a train.py checkpoint records its "
            "own: drop them, or correct them")


def _stat_key(path: Path) -> tuple:
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def file_record(path: Path) -> dict:
    """What identifies a model file: ``{"path": as given, "path_resolved", "sha256": hex digest of
    its bytes, "bytes", "modified": its mtime in UTC (ISO 8601)}``."""
    st = path.stat()
    return {"path": str(path), "path_resolved": str(path.resolve()), "sha256": sha256_of(path),
            "bytes": st.st_size, "modified": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(st.st_mtime))}


def load_recorded(path: str | Path, trust: bool = False, reference: Optional[dict] = None) -> LoadedGenerator:
    """:func:`load_generator`, with :func:`file_record` of the file in ``.checkpoint``.

    The file is hashed after it is loaded, and its identity (device, inode, size, mtime) must be
    the same before and after: a ``last.ckpt`` that a running training replaces in between is
    refused rather than recorded under the other file's hash.

    Raises:
        CheckpointError: as :func:`load_generator`, or the file changed while it was read.
    """
    path = Path(path)
    try:
        before = _stat_key(path)
    except OSError:
        before = None  # missing or unreadable: load_generator says so in its own words
    item = load_generator(path, trust=trust, reference=reference)
    try:
        record = file_record(path)
        after = _stat_key(path)
    except OSError as e:
        raise CheckpointError(f"{path}: could not be read again to hash it ({e.strerror or e})") from None
    if before != after:
        raise CheckpointError(f"{path}: the file changed while it was read (a training still saving it?); "
                              "evaluate it again once it is written")
    _check_downloaded_digest(path, record["sha256"])
    if item.epochs is not None and item.epochs[0] < item.epochs[1]:  # a run stopped or still training
        record["trained_epochs"], record["schedule_epochs"] = item.epochs
    item.checkpoint = record
    return item


def _check_downloaded_digest(path: Path, digest: str) -> None:
    """A downloaded reference generator must still be the file its record describes: the record's
    data settings and generator options are that file's, and its name labels the results."""
    from pix2pix_aa.pretrained import read_record, record_path

    try:
        saved = read_record(path) if path.suffix == ".pth" else None
    except ValueError:
        return  # the loader has said what is wrong with the record
    expected = ((saved or {}).get("source") or {}).get("sha256")
    if expected and expected != digest:
        name = (saved or {}).get("name") or "NAME"
        raise CheckpointError(f"{path}: sha256 {digest[:12]}... does not match {expected[:12]}... recorded in "
                              f"{record_path(path)}: the file changed since it was downloaded; download it again "
                              f"(pix2pix-aa-data model {name} --force), or evaluate a copy of it outside that folder")


def _load_reference(path: Path, options: dict) -> LoadedGenerator:
    """A reference pix2pix generator file; its epoch from ``<epoch>_net_G.pth`` names. Its record
    (``latest_net_G.json``, :func:`pix2pix_aa.pretrained.read_record`), when there is one, gives
    the data settings and checks the architecture as the reference-named options would."""
    from pix2pix_aa.pretrained import read_record, record_path
    from pix2pix_aa.reference import load_reference_generator

    try:
        record = read_record(path)
        recorded = (record or {}).get("generator") or {}
        options = {**options, **{k: recorded[k] for k in ("netG", "norm", "ngf", "input_nc", "output_nc")
                                 if options.get(k) is None and recorded.get(k) is not None}}
        generator, info = load_reference_generator(path, **options)
    except ValueError as e:
        raise CheckpointError(str(e)) from None
    epoch = path.stem.split("_")[0]
    return LoadedGenerator(path=path, label=f"{path.parent.name}/{path.stem}", generator=generator,
                           hparams={"generator": info["init_args"]},
                           datamodule_hparams=dict(record["data"]) if record else {},
                           epoch=int(epoch) if epoch.isdigit() else None,
                           data_source=str(record_path(path)) if record else None)
