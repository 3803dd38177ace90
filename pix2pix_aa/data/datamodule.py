"""``Pix2PixDataModule``: the Lightning side of the data (datasets, generation, loaders).

Reproducibility: the training loader gets ``generator=torch.Generator().manual_seed(seed)``,
which fixes the shuffle order and the seed of every worker's torch RNG (PyTorch seeds worker
``k`` with ``base_seed + k``, ``base_seed`` drawn from that generator), hence the random crops
and flips. With ``pytorch_lightning.seed_everything(seed, workers=True)`` numpy / random are
seeded in the workers too. A run is then repeatable for a fixed ``seed`` and ``num_workers``
(changing the worker count changes which worker RNG serves which sample). Under DDP Lightning
swaps the sampler for a ``DistributedSampler`` (seeded, ``set_epoch`` per epoch); we do not
set a sampler ourselves so that it can.

Per-rank augmentation under DDP: every rank runs ``seed_everything(seed)``, so without care all
ranks would draw the *same* crop offsets and flips at the same step (for different images).
Rank ``r > 0`` therefore seeds its loader generator from ``SeedSequence([seed, r])`` (worker
seeds differ per rank even without Lightning's ``workers=True`` worker-init), and with
``num_workers=0`` the training set draws its crops from its own per-rank RNG stream
(:class:`RankSeededDataset`) instead of the global one shared with dropout. Rank 0 keeps the
single-process loader seed.
"""

from __future__ import annotations

import difflib
import inspect
import json
from pathlib import Path
from typing import Any, Literal, Optional, get_args

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Subset

from pix2pix_aa.console import notice
from pix2pix_aa.data.datasets import (
    DIRECTIONS,
    AlignedDataset,
    Direction,
    ImageFolderDataset,
    InputOnly,
    PairedFolderDataset,
    check_options,
)
from pix2pix_aa.data.image_io import GrayscalePolicy
from pix2pix_aa.data.transforms import PREPROCESS, VARIABLE_SIZE, Preprocess

__all__ = ["DATASETS", "Pix2PixDataModule", "RankSeededDataset", "rank_seed"]

#: ``dataset`` kinds: facades / photos / colorize are generated into ``data_dir`` if missing.
DatasetKind = Literal["facades", "aligned", "paired", "photos", "colorize"]
#: The generated kinds, and the photo task (:mod:`pix2pix_aa.data.photos`) of each real-photo kind.
GENERATED_KINDS = ("facades", "photos", "colorize")
PHOTO_KIND_TASKS = {"photos": "edges", "colorize": "colorize"}
#: The side a generated set is made at when ``generate_size`` is left unset.
DEFAULT_GENERATE_SIZE = 256
DATASETS: tuple[str, ...] = get_args(DatasetKind)


def rank_seed(seed: int, rank: int) -> int:
    """The augmentation seed of process ``rank``: ``seed`` itself on rank 0 (so rank 0 of a
    multi-process run draws like a single-process run), else a 63-bit value from
    ``SeedSequence([seed, rank])`` (independent streams; no collision with ``seed + k``)."""
    if rank == 0:
        return seed
    return int(np.random.SeedSequence([seed, rank]).generate_state(2, np.uint64)[0] >> np.uint64(1))


class RankSeededDataset(Dataset):
    """Wraps a training set so that its random transforms draw from a private torch RNG stream
    seeded with ``seed`` rather than from the process-global RNG.

    For ``num_workers=0`` under DDP only: samples are then made in the main process, where the
    global RNG is seeded identically on every rank (and shared with dropout). The stream
    advances with every ``__getitem__``, like the global RNG would. Not for worker processes:
    each would copy the same state (there PyTorch/Lightning seed the workers per rank).
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = seed
        self._state = torch.Generator().manual_seed(seed).get_state()

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):  # restores the global RNG afterwards
            torch.set_rng_state(self._state)
            item = self.dataset[index]
            self._state = torch.get_rng_state()
        return item


def _rank_and_world(trainer: Any) -> tuple[int, int]:
    """(global rank, world size) from the attached Trainer, else torch.distributed, else (0, 1)."""
    if trainer is not None:
        return int(trainer.global_rank), int(trainer.world_size)
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def _check_module_options(*, preprocess: str, tile: int | None, tile_overlap: int | None, dataset: str,
                          direction: str, load_size: int, crop_size: int, grayscale: str, input_nc: int,
                          output_nc: int, no_flip: bool, predict_resize: bool, batch_size: int, num_workers: int,
                          generate_size: int | None, max_val_images: int | None,
                          generate_counts: dict[str, int] | None) -> None:
    """:class:`Pix2PixDataModule`'s options, checked before any file is read.

    Raises:
        ValueError: the first bad option, naming it and what it takes.
    """
    if preprocess not in PREPROCESS:
        raise ValueError(f"preprocess must be one of {PREPROCESS} (the reference pix2pix's --preprocess), "
                         f"got {preprocess!r}")
    for name, v, lo in (("tile", tile, 1), ("tile_overlap", tile_overlap, 0)):
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < lo):
            raise ValueError(f"data.{name} must be an integer >= {lo} (or unset), got {v!r}")
    if tile is None and tile_overlap is not None:
        raise ValueError(f"tile_overlap={tile_overlap} needs tile (--data.tile N): the overlap of what?")
    if tile is not None and tile_overlap is not None and tile_overlap >= tile:
        raise ValueError(f"tile_overlap ({tile_overlap}) must be smaller than tile ({tile})")
    if dataset not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {dataset!r}")
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    check_options(direction, load_size, crop_size, grayscale, input_nc=input_nc, output_nc=output_nc,
                  preprocess=preprocess)
    for name, v in (("no_flip", no_flip), ("predict_resize", predict_resize)):
        if not isinstance(v, bool):
            raise ValueError(f"{name} must be true or false, got {v!r}")
    for name, v, lo in (("batch_size", batch_size, 1), ("num_workers", num_workers, 0),
                        ("generate_size", DEFAULT_GENERATE_SIZE if generate_size is None else generate_size, 16)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise ValueError(f"{name} must be an integer >= {lo}, got {v!r}")
    if max_val_images is not None and (not isinstance(max_val_images, int) or max_val_images < 1):
        raise ValueError(f"max_val_images must be None or an integer >= 1, got {max_val_images!r}")
    if generate_counts is not None:
        bad = set(generate_counts) - {"train", "val", "test"}
        if bad or any(not isinstance(n, int) or n < 0 for n in generate_counts.values()):
            raise ValueError(
                f"generate_counts must map 'train'/'val'/'test' to non-negative integers, got {generate_counts!r}"
            )


class Pix2PixDataModule(pl.LightningDataModule):
    """Train / val / test / predict loaders for pix2pix.

    Args:
        data_dir: data set folder (``train/ val/ test/``).
        dataset: ``"facades"`` (aligned layout, procedural facades generated on demand),
            ``"aligned"`` (existing A|B files), ``"paired"`` (``A/`` and ``B/`` folders),
            ``"photos"`` (edges -> photo) and ``"colorize"`` (grayscale -> colour): real photographs
            shipped in the installed wheels, cut into disjoint cells per split, generated on demand
            (:mod:`pix2pix_aa.data.photos`).
        direction: ``"AtoB"`` (default, as in the pix2pix reference) or ``"BtoA"`` (facades /
            photos: ``BtoA`` = labels/edges -> photo; the shipped configs say so).
        load_size, crop_size: training resize and random crop (pix2pix 286 / 256); val/test
            resize to ``crop_size``, predict too with ``predict_resize``.
        preprocess: the reference pix2pix's ``--preprocess``: ``resize_and_crop`` (default, as
            above), ``crop``, ``scale_width``, ``scale_width_and_crop`` or ``none`` (each image at
            its own size; the generator pads to 2**num_downs and crops back: it needs
            ``pad_input=true`` unless every image is a multiple). Training and evaluation
            transforms: :mod:`pix2pix_aa.data.transforms`. With ``scale_width`` / ``none``,
            images of different sizes cannot share a batch: training then needs ``batch_size``
            1 (refused otherwise), validation / test run one image per batch.
        batch_size: pix2pix uses 1. ``predict`` batches one image at a time unless
            ``predict_resize`` (inputs of different sizes cannot share a batch).
        num_workers: DataLoader processes (persistent when > 0).
        seed: seed of generation (facades/photos) and of the training loader's shuffling/augmentation.
        generate_size: side of each half of generated images; None (default): 256 when the set is
            generated, and an existing folder is used at the size it was made at. A size given
            is compared with the folder's generation.json (a notice when they differ).
        generate_counts: split -> count for generated sets (default: 400/100/106 facades, every
            cell of the real photos, 94/17/17 at 128 px); e.g. ``{"train": 8, "val": 2, "test": 2}``.
        predict_dir: a folder of plain input images (not recursive), or one image file, for
            ``predict``; default: the test split's inputs.
        max_val_images: use only the first N validation images (cheap validation).
        grayscale: ``"convert"`` or ``"error"`` for files whose mode does not match the channel
            count (grayscale or RGBA when RGB is asked, colour when grayscale is asked).
        input_nc, output_nc: channels of the input and the target images, 1 (grayscale) or 3
            (RGB); they must match the generator's ``in_channels`` / ``out_channels``.
        no_flip: no random horizontal flip in training (the reference's ``--no_flip``).
        predict_resize: ``predict`` resizes every input to ``crop_size`` x ``crop_size``;
            default False: each output has its input's size and aspect ratio.
        tile, tile_overlap: ``predict`` only: generate in ``tile`` x ``tile`` tiles overlapping by
            ``tile_overlap`` pixels, blended (:mod:`pix2pix_aa.tiling`), for images too large to
            generate at once; both multiples of 2**num_downs (tile offsets on the generator's
            grid); ``tile_overlap`` defaults to half a tile rounded down to such a multiple.
            Default None: the whole image at once.

    Raises:
        ValueError: a bad option, naming it (before any file is read).
    """

    def __init__(
        self,
        data_dir: str = "data/facades",
        dataset: DatasetKind = "facades",
        direction: Direction = "AtoB",
        load_size: int = 286,
        crop_size: int = 256,
        batch_size: int = 1,
        num_workers: int = 2,
        seed: int = 0,
        generate_size: Optional[int] = None,
        generate_counts: dict[str, int] | None = None,
        predict_dir: str | None = None,
        max_val_images: int | None = None,
        grayscale: GrayscalePolicy = "convert",
        input_nc: int = 3,
        output_nc: int = 3,
        no_flip: bool = False,
        predict_resize: bool = False,
        preprocess: Preprocess = "resize_and_crop",
        tile: int | None = None,
        tile_overlap: int | None = None,
    ) -> None:
        super().__init__()
        _check_module_options(preprocess=preprocess, tile=tile, tile_overlap=tile_overlap, dataset=dataset,
                              direction=direction, load_size=load_size, crop_size=crop_size, grayscale=grayscale,
                              input_nc=input_nc, output_nc=output_nc, no_flip=no_flip,
                              predict_resize=predict_resize, batch_size=batch_size, num_workers=num_workers,
                              generate_size=generate_size, max_val_images=max_val_images,
                              generate_counts=generate_counts)
        self.save_hyperparameters()
        self.data_dir = Path(data_dir)
        self.dataset = dataset
        self.direction = direction
        self.load_size = load_size
        self.crop_size = crop_size
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.generate_size = generate_size
        self.generate_counts = dict(generate_counts) if generate_counts is not None else None
        self.predict_dir = predict_dir
        self.max_val_images = max_val_images
        self.grayscale = grayscale
        self.input_nc = input_nc
        self.output_nc = output_nc
        self.no_flip = no_flip
        self.predict_resize = predict_resize
        self.preprocess = preprocess
        # Options this preprocess never reads, named when set (they would be printed in the data
        # summary as if used): the transforms table in pix2pix_aa/data/transforms.py.
        given = {"load_size": load_size, "crop_size": crop_size}
        unused = [k for k in {"crop": ("load_size",), "none": ("load_size", "crop_size")}.get(preprocess, ())
                  if given[k] != _DEFAULTS[k]]
        if unused:
            why = ("no resize: images are cropped at their own scale" if preprocess == "crop" else
                   "each image at its own size" + ("; crop_size still sizes predict_resize" if "crop_size" in unused
                                                   else ""))
            named = ", ".join(f"data.{k}={given[k]}" for k in unused)
            notice(f"data.preprocess={preprocess}: {named} not used ({why})")
        generating = {"data.generate_size": generate_size, "data.generate_counts": generate_counts}
        if dataset not in GENERATED_KINDS and any(v is not None for v in generating.values()):
            named = ", ".join(f"{k}={v}" for k, v in generating.items() if v is not None)
            notice(f"{named}: not used (data.dataset {dataset} reads the files in data_dir; "
                   f"{', '.join(GENERATED_KINDS)} are the sets made on first use)")
        self.tile = tile
        self.tile_overlap = tile_overlap
        self.train_set: Dataset | None = None
        # Loaders that run one image per batch because their images differ in size (stage -> why).
        self._one_per_batch: dict[str, str] = {}
        self._reported: set[str] = set()  # stages whose data lines were printed (setup may run twice)
        self._val_missing: str | None = None  # why there is no validation set (fit without val/)
        self.val_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self.predict_set: Dataset | None = None
        # One shuffle generator for the whole fit, saved in checkpoints (state_dict), so that a
        # resumed run continues the epoch order instead of replaying epoch 0's.
        self._shuffle_generator: torch.Generator | None = None
        self._pending_generator_state: torch.Tensor | None = None

    # ------------------------------------------------------------------ data on disk
    def prepare_data(self) -> None:
        """Generate the procedural facades / photos into ``data_dir`` if it does not exist.

        Runs once per node (Lightning calls it on local rank 0 only). Generation is atomic
        (temporary folder, then rename), so a crashed run leaves no half-written data set.
        """
        if self.dataset not in GENERATED_KINDS:
            return
        # Compared with generation.json only where set away from the default: an option left at its
        # default asks for nothing (a folder made with --size 64 must not warn "asked 256" on every run).
        wanted = {key: value for key, opt, value in (("seed", "seed", self.seed),
                                                     ("size", "generate_size", self.generate_size),
                                                     ("splits", "generate_counts", self.generate_counts))
                  if value != _DEFAULTS.get(opt)}
        if self.data_dir.exists():
            self._check_existing(wanted)
            return
        try:
            self._generate()
        except FileExistsError:  # another process generated it meanwhile: use theirs
            self._check_existing(wanted)

    def _check_existing(self, wanted: dict[str, Any]) -> None:
        """Check an existing folder against its generation.json (none: nothing to check, unless the
        folder holds no data set at all, which generation would not fill: it only writes a new one)."""
        meta_path = self.data_dir / "generation.json"
        if not meta_path.is_file():
            if self.data_dir.is_dir() and not (self.data_dir / "train").is_dir():
                raise FileNotFoundError(
                    f"data_dir {self.data_dir} exists but holds no data set (no train/ folder, no generation.json): "
                    f"the {self.dataset} data are generated only into a folder that does not exist yet; remove "
                    "it or pass a new --data.data_dir")
            return
        meta = json.loads(meta_path.read_text())
        self._check_kind(meta, meta_path)
        self._warn_if_different(wanted, meta)

    def _check_kind(self, meta: dict, meta_path: Path) -> None:
        """Both procedural kinds are aligned pairs on disk, so a folder of one would load as the
        other without a word: refuse a folder that generation.json says holds the other kind."""
        made_by = meta.get("generator", "")
        kind = made_by.rsplit(".", 1)[-1] if made_by.startswith("pix2pix_aa.data.") else None
        if kind == "photos":  # one generator, two tasks (older folders: edges)
            kind = {task: k for k, task in PHOTO_KIND_TASKS.items()}.get(meta.get("task", "edges"), kind)
        if kind in GENERATED_KINDS and kind != self.dataset:
            held = "the procedural facades" if kind == "facades" else f"the real-photo task {kind!r}"
            raise ValueError(f"data_dir {self.data_dir} holds {held} ({meta_path}), but the dataset is "
                             f"{self.dataset!r}: pass a data_dir for the {self.dataset} (it is generated there if "
                             f"missing) or dataset {kind!r}")

    @property
    def size_to_generate(self) -> int:
        """``generate_size``, or :data:`DEFAULT_GENERATE_SIZE` when it was left unset."""
        return DEFAULT_GENERATE_SIZE if self.generate_size is None else self.generate_size

    def _generate(self) -> None:
        if self.dataset == "facades":
            from pix2pix_aa.data.facades import generate_facades

            print(f"[pix2pix_aa] {self.data_dir} not found: generating procedural facades (seed {self.seed}, "
                  f"{self.size_to_generate}px, counts {self.generate_counts or 'default 400/100/106'}) ...",
                  flush=True)
            generate_facades(self.data_dir, seed=self.seed, splits=self.generate_counts, size=self.size_to_generate)
        else:
            from pix2pix_aa.data.photos import generate_photos

            task = PHOTO_KIND_TASKS[self.dataset]
            # Cells are cut from a few photographs: their size sets how many there are.
            fewer = (f"; --data.generate_size {self.load_size} cuts more, smaller cells (94 training images at 128 px "
                     "against 32 at 256)" if self.generate_size is None and self.load_size * 2 <= self.size_to_generate
                     else "")
            print(f"[pix2pix_aa] {self.data_dir} not found: generating the real-photo task {task} "
                  f"(seed {self.seed}, {self.size_to_generate}px cells, resized to {self.load_size} px for training"
                  f"{fewer}) ...", flush=True)
            generate_photos(self.data_dir, seed=self.seed, splits=self.generate_counts, size=self.size_to_generate,
                            task=task)
        print(f"[pix2pix_aa] wrote {self.data_dir}", flush=True)

    def _warn_if_different(self, wanted: dict[str, Any], meta: dict) -> None:
        """A generation-only option (``generate_size``, ``generate_counts``) given and unlike the
        folder's is refused: it would be accepted and ignored. ``seed`` also seeds the shuffling, so a
        different one is said and the folder used."""
        diff = {k: (meta.get(k), v) for k, v in wanted.items() if meta.get(k) != v}
        refused = {k: d for k, d in diff.items() if k in ("size", "splits")}
        if refused:
            option = {"size": "generate_size", "splits": "generate_counts"}
            raise ValueError(
                f"data.{', data.'.join(option[k] for k in refused)}: {self.data_dir} was generated with "
                f"{', '.join(f'{k} {a}' for k, (a, _) in refused.items())}, not the "
                f"{', '.join(str(b) for _, b in refused.values())} asked, and is never regenerated in place: pass "
                "a new --data.data_dir to generate those data, or drop the option to use the folder as it is")
        if diff:
            # A plain line, as the other data notices: a UserWarning would print this file's source line.
            notice(f"{self.data_dir} exists and was generated with different settings "
                   f"({', '.join(f'{k}: on disk {a}, asked {b}' for k, (a, b) in diff.items())}); using it as is. "
                   f"Delete it or choose another data_dir to regenerate.")
        if self.dataset == "facades" and "splits" not in wanted:
            from pix2pix_aa.data.facades import DEFAULT_SPLITS

            held = meta.get("splits")
            if held is not None and held != DEFAULT_SPLITS:
                # Counts left at their default ask for nothing, but a smaller run's set (4 images)
                # was then trained and scored on as if it were the full one, without a word.
                notice(f"{self.data_dir} holds facades generated with counts {held}, not the default "
                       f"{DEFAULT_SPLITS}; using it as it is (--data.generate_counts says which you want: a "
                       "folder of other counts is refused then)")

    # ------------------------------------------------------------------ datasets
    def _make(self, split: str, train: bool | None = None, keep_size: bool = False, hint: str = "") -> Dataset:
        cls = PairedFolderDataset if self.dataset == "paired" else AlignedDataset
        return cls(
            self.data_dir,
            split=split,
            direction=self.direction,
            load_size=self.load_size,
            crop_size=self.crop_size,
            grayscale=self.grayscale,
            train=train,
            flip=not self.no_flip,
            input_nc=self.input_nc,
            output_nc=self.output_nc,
            keep_size=keep_size,
            missing_hint=hint,
            preprocess=self.preprocess,
        )

    def eval_dataset(self, split: str = "test") -> Dataset:
        """A deterministic dataset of ``split`` (the evaluation transform of ``preprocess``: for
        the default, resized to ``crop_size``, no crop, no flip), for evaluation outside a Trainer
        (``evaluate.py``). With ``preprocess`` ``scale_width`` / ``none`` its images may differ
        in size.

        Raises:
            FileNotFoundError: the split folder is missing (the message names the splits present).
        """
        others = [s for s in ("val", "test", "train") if s != split and (self.data_dir / s).is_dir()]
        # The closest name first (a typo: --split tset -> test), else the first split present.
        others = difflib.get_close_matches(split, others, n=1, cutoff=0.5) or others
        hint = f"choose a split that exists (evaluate.py --split {others[0]})" if others else ""
        if others and others[0] == "train":  # the only one there: its figures are no held-out result
            hint += ", though scores on the training images measure fitting, not generalisation"
        return self._make(split, train=False, hint=hint)

    def missing_validation(self) -> str | None:
        """Why ``fit`` would have no validation set: the error for a ``data_dir`` that exists
        without a ``val/`` folder, else None (the CLI raises it at start-up when validation is on).
        None too when ``train/`` is missing as well: the training set's error, which names the
        folders found, is the one to read first."""
        off = "train without validation with --trainer.limit_val_batches 0"
        counts = self.generate_counts
        if (self.dataset in GENERATED_KINDS and not self.data_dir.exists() and counts is not None
                and not counts.get("val")):  # checked before the set is made, which would lack val/
            return (f"no validation data: data.generate_counts={counts} makes no val split in {self.data_dir}; add "
                    f"val (e.g. {{{', '.join(f'{k}: {v}' for k, v in {**counts, 'val': 2}.items())}}}), or {off}")
        val = self.data_dir / "val"
        if val.is_dir():  # an empty one (or paired, an empty val/A) stopped with no way out named
            from pix2pix_aa.data.image_io import is_image_file

            folder = val / "A" if self.dataset == "paired" else val
            entries = list(folder.iterdir()) if folder.is_dir() else None
            # (subfolders: the data set's own error names the layout they suggest)
            if entries is not None and not any(
                    p.is_dir() or (p.is_file() and is_image_file(p) and not p.name.startswith(".")) for p in entries):
                return f"no validation data: {folder} holds no image files; {off}, or put the validation pairs there"
            return None
        if not self.data_dir.is_dir() or not (self.data_dir / "train").is_dir():
            return None
        if self.dataset in GENERATED_KINDS and (self.data_dir / "generation.json").is_file():
            return (f"no validation data: {self.data_dir} was generated without a val split, and a set is never "
                    f"regenerated in place; {off}, or generate one with val in data.generate_counts into another "
                    "--data.data_dir")
        return f"no validation data: {self.data_dir} has no val/ folder; {off}, or add {self.data_dir / 'val'}"

    def val_image_count(self) -> int | None:
        """How many validation images a fit scores before the trainer's limits: ``val/``'s images
        (its ``A/`` for ``paired``) up to ``max_val_images``, or for a generated set not made yet
        the ``val`` of ``generate_counts``; None where that is not known yet (the default counts
        of a set still to generate, no ``val/``). Lists files only, reads no image."""
        from pix2pix_aa.data.image_io import list_images

        val = self.data_dir / "val"
        if val.is_dir():
            folder = val / "A" if self.dataset == "paired" else val
            try:
                count = len(list_images(folder, "validation")) if folder.is_dir() else 0
            except FileNotFoundError:  # no image there: the data set's own error, when it is built, says why
                return None
        elif self.dataset in GENERATED_KINDS and not self.data_dir.exists() and "val" in (self.generate_counts or {}):
            count = self.generate_counts["val"]
        else:
            return None
        return count if self.max_val_images is None else min(count, self.max_val_images)

    def setup(self, stage: str | None = None) -> None:
        """Build the datasets a stage needs (``fit``, ``validate``, ``test``, ``predict``; None = all).

        ``fit`` without a ``val/`` folder builds no validation set and says so in one line; that
        is fine with validation off (``--trainer.limit_val_batches 0``), and
        :meth:`val_dataloader` raises if validation runs anyway.
        """
        if stage in (None, "fit") and self.train_set is None:
            if self.dataset in GENERATED_KINDS and self.direction == "AtoB":
                # The generated sets hold A = photo, B = the task's input (as the reference's facades),
                # and AtoB is the default: most likely the task the wrong way round.
                task = {"facades": "label map", "photos": "edge map", "colorize": "grayscale"}[self.dataset]
                notice(f"data.dataset {self.dataset} with data.direction AtoB trains photo -> {task} (its files "
                       f"hold A = photo, B = {task}); --data.direction BtoA is its {task} -> photo task")
            self.train_set = self._make("train")
        if stage in (None, "fit", "validate") and self.val_set is None:
            missing = self.missing_validation() if stage == "fit" else None
            if missing:
                if self._val_missing is None:
                    self._val_missing = missing
                    trainer = self._trainer_or_none()
                    if trainer is None or trainer.limit_val_batches != 0:  # off: the advice was the flag given
                        notice(f"{self.data_dir} has no val/ folder: no validation set (train with "
                               f"--trainer.limit_val_batches 0, or add one)")
            else:
                val = self._make("val", hint="validation reads val/: add it, train with --trainer.limit_val_batches 0, "
                                               "or score test/ with `train.py test`")
                if self.max_val_images is not None and self.max_val_images < len(val):
                    val = Subset(val, range(self.max_val_images))
                self.val_set = val
                self._val_missing = None
        if stage in (None, "test") and self.test_set is None:
            has_val = (self.data_dir / "val").is_dir()
            self.test_set = self._make(
                "test", hint="score the val split with `train.py validate` (or `evaluate.py --split val`), "
                             "or add a test/ folder" if has_val else "add a test/ folder (there is no val/ either)")
        if stage in (None, "predict") and self.predict_set is None:
            if self.predict_dir is not None:
                self.predict_set = ImageFolderDataset(
                    self.predict_dir, None if not self.predict_resize else self.crop_size, self.grayscale,
                    channels=self.input_nc)
            else:
                self.predict_set = InputOnly(self._make(
                    "test", train=False, keep_size=not self.predict_resize,
                    hint="pass --data.predict_dir FOLDER_OR_FILE to predict on your own images"))
            if not self.predict_resize and self.batch_size > 1:
                notice(f"predict: batch size 1, not {self.batch_size} (each input keeps its own size; "
                       f"--data.predict_resize true resizes them to crop_size {self.crop_size} and batches them)")
        self._check_sizes(stage)
        self._report(stage)

    def _report(self, stage: str | None) -> None:
        """Start-up lines about the data, once per stage, on rank 0: fit's summary and its notices
        for val/ and test/ against train/, predict's for A|B pair files given as inputs
        (:mod:`pix2pix_aa.data.summary`)."""
        if stage not in ("fit", "predict") or stage in self._reported or _rank_and_world(self._trainer_or_none())[0]:
            return
        self._reported.add(stage)
        from pix2pix_aa.data.summary import report_fit_data, report_predict_inputs

        (report_fit_data if stage == "fit" else report_predict_inputs)(self)

    # ------------------------------------------------------------------ sizes against batches and the generator
    @staticmethod
    def _sized(ds: Dataset | None) -> list[tuple[str, tuple[int, int]]]:
        """(file, (width, height) as the network sees it) per sample of a pair dataset (or a
        Subset of one); empty for anything else."""
        indices = None
        if isinstance(ds, Subset):
            ds, indices = ds.dataset, list(ds.indices)
        sizes_of = getattr(ds, "network_sizes", None)
        if sizes_of is None or getattr(ds, "sizes", None) is None:
            return []
        sizes = sizes_of()
        return [(str(ds.source_path(i)), sizes[i]) for i in (indices if indices is not None else range(len(sizes)))]

    def _check_sizes(self, stage: str | None) -> None:
        """Start-up checks of image sizes, from the headers (nothing decoded):

        * ``preprocess`` ``scale_width`` / ``none`` with ``batch_size > 1``: training images of
          different sizes are refused (a batch needs one size); validation / test run one image
          per batch (one line says so);
        * under a Trainer whose module has a ``generator`` with a ``size_multiple`` and no
          ``pad_input``: every training / evaluation size must be a multiple of it (``none`` and
          ``scale_width`` make sizes per image: the generator would fail mid-run);
        * ``predict`` with ``tile``: ``tile`` / ``tile_overlap`` on the generator's grid, and a
          generator whose tiles can agree with the whole image (no per-input instance norm).

        Raises:
            ValueError: one line naming the options, a file and its size.
        """
        sets = {"fit": [("train", self.train_set, "fit"), ("val", self.val_set, "validate")],
                "validate": [("val", self.val_set, "validate")], "test": [("test", self.test_set, "test")]}
        todo = [t for st in ((stage,) if stage in sets else ("fit", "test") if stage is None else ()) for t in sets[st]]
        generator = getattr(getattr(self._trainer_or_none(), "lightning_module", None), "generator", None)
        multiple = getattr(generator, "size_multiple", None)
        if stage == "predict" and self.tile is not None and multiple:
            from pix2pix_aa.tiling import resolve_overlap, tiling_problem

            overlap = resolve_overlap(self.tile, self.tile_overlap, int(multiple))  # raises naming the option
            if overlap == 0 and self.tile_overlap is None:  # half a tile rounds down to 0 on the grid
                notice(f"data.tile={self.tile}: no overlap (half a tile, rounded down to the generator's grid of "
                       f"{int(multiple)} px, is 0): neighbouring tiles meet at hard seams; --data.tile "
                       f"{2 * int(multiple)} or more blends them")
            problem = tiling_problem(generator)  # instance norm: each tile its own statistics
            if problem:
                raise ValueError(problem)
        if self.preprocess in VARIABLE_SIZE and self.batch_size > 1:
            for split, ds, loader_stage in todo:
                sized = self._sized(ds)
                distinct = {}
                for path, size in sized:
                    distinct.setdefault(size, path)
                if len(distinct) < 2:
                    continue
                found = ", ".join(f"{w}x{h} ({p})" for (w, h), p in list(distinct.items())[:2])
                if split == "train":
                    raise ValueError(
                        f"data.preprocess={self.preprocess} keeps each image's own size, and a batch needs one size: "
                        f"data.batch_size={self.batch_size} but {split}/ holds {len(distinct)} sizes (WxH: {found}"
                        f"{', ...' if len(distinct) > 2 else ''}); use --data.batch_size 1 (the reference's default), "
                        f"images of one size, or --data.preprocess resize_and_crop / scale_width_and_crop")
                if loader_stage not in self._one_per_batch:
                    self._one_per_batch[loader_stage] = split
                    notice(f"{split}: batch size 1, not {self.batch_size}: preprocess {self.preprocess} keeps each "
                           f"image's size and {split}/ holds {len(distinct)} sizes ({found})")
        discriminator = getattr(getattr(self._trainer_or_none(), "lightning_module", None), "discriminator", None)
        if stage in (None, "fit") and self.preprocess in VARIABLE_SIZE and discriminator is not None:
            # train.py's crop-size check cannot see these sizes; the smallest side binds (each of the
            # discriminator's output sides depends on that input side alone).
            sized = self._sized(self.train_set) if self.train_set is not None else []
            if sized:
                from pix2pix_aa.options import discriminator_size_problem

                path, (w, h) = min(sized, key=lambda item: min(item[1]))
                channels = getattr(discriminator, "in_channels", self.input_nc + self.output_nc)
                problem = discriminator_size_problem(discriminator, channels, min(w, h))
                if problem:
                    raise ValueError(
                        f"data.preprocess={self.preprocess}: {path} reaches the discriminator as {w}x{h} (WxH), "
                        f"too small for it: {problem}; use larger images, --data.preprocess resize_and_crop, or "
                        "fewer model.discriminator.init_args.n_layers")
        if not multiple or getattr(generator, "pad_input", False):
            return
        m = int(multiple)
        for _split, ds, _ in todo:
            for path, (w, h) in self._sized(ds):
                if w % m or h % m:
                    raise ValueError(
                        f"data.preprocess={self.preprocess}: {path} reaches the generator as {w}x{h} (WxH), not a "
                        f"multiple of its size multiple {m} (2**num_downs); set "
                        f"--model.generator.init_args.pad_input true (reflect-pads to a multiple and crops back), "
                        f"or use images whose sides are multiples of {m}")

    # ------------------------------------------------------------------ loaders
    def _loader(self, ds: Dataset | None, stage: str, shuffle: bool = False,
                batch_size: int | None = None) -> DataLoader:
        if ds is None:
            if stage == "validate" and self._val_missing is not None:
                raise FileNotFoundError(self._val_missing)
            raise RuntimeError(f"no {stage} dataset: call datamodule.setup({stage!r}) first")
        kwargs: dict[str, Any] = {}
        if shuffle:
            # Seeds the shuffle order (single process; DDP uses its DistributedSampler's seed) and
            # each worker's torch RNG (random crop / flip): per rank, so ranks augment differently.
            rank, world = _rank_and_world(self._trainer_or_none())
            seed = rank_seed(self.seed, rank)
            if self._shuffle_generator is None:
                self._shuffle_generator = torch.Generator().manual_seed(seed)
                if self._pending_generator_state is not None:
                    self._shuffle_generator.set_state(self._pending_generator_state)
            kwargs["generator"] = self._shuffle_generator
            if world > 1 and self.num_workers == 0:
                ds = RankSeededDataset(ds, seed)
        return DataLoader(
            ds,
            batch_size=self.batch_size if batch_size is None else batch_size,
            shuffle=shuffle,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            drop_last=False,
            **kwargs,
        )

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints by Lightning: the shuffle generator's state (exact resume of the
        epoch order; crops with ``num_workers=0`` come from the global RNG, which the
        ``ResumeRNGState`` callback restores. Worker processes are re-seeded on resume, so with
        ``num_workers > 0`` the crops after a resume differ from an uninterrupted run)."""
        if self._shuffle_generator is None:
            return {}
        return {"shuffle_generator": self._shuffle_generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = state_dict.get("shuffle_generator")
        if state is None:
            return
        if self._shuffle_generator is not None:
            self._shuffle_generator.set_state(state)
        else:
            self._pending_generator_state = state

    def _trainer_or_none(self) -> Any:
        # LightningDataModule.trainer is None outside a Trainer (plain Python use, evaluate.py).
        return getattr(self, "trainer", None)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, "fit", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, "validate", batch_size=1 if "validate" in self._one_per_batch else None)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_set, "test", batch_size=1 if "test" in self._one_per_batch else None)

    def predict_dataloader(self) -> DataLoader:
        """Batches of ``{"input": (N, input_nc, H, W), "name": list of file names}``; N = 1 unless
        ``predict_resize`` (then ``batch_size``, all at ``crop_size``)."""
        return self._loader(self.predict_set, "predict", batch_size=self.batch_size if self.predict_resize else 1)


#: Pix2PixDataModule's argument defaults: an option at its default was not asked for.
_DEFAULTS = {k: p.default for k, p in inspect.signature(Pix2PixDataModule.__init__).parameters.items()}
