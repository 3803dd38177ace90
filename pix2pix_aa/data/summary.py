"""What a run's data are, said at start-up, and the data a model was not trained for.

``fit`` prints one summary line (data set kind, folder, direction and which side is the input,
images per split, sizes) and one notice for each of:

* a val/ or test/ split with images whose aspect ratio (or size) matches no training image: they
  are resized to the training shape, squashed, and still score the model and pick
  ``best-*.ckpt`` (a folder of single images where A|B pairs were expected looks like this);
* val/ or test/ files whose content (bytes) is that of a training file: validation then measures
  memorisation;

``predict`` on ``--data.predict_dir`` images twice as wide as high while the model was trained on
A|B pair files prints one notice: the generator reads the whole file, both halves, and the
direction applies to data set splits only.

Cheap by construction: sizes come from the headers the datasets already read (test/'s headers
are read here, nothing is decoded), and a file is hashed only when a file of the other split has
its exact byte size, each at most once.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

from torch.utils.data import Dataset, Subset

from pix2pix_aa.console import notice
from pix2pix_aa.data.image_io import image_header, is_image_file

__all__ = ["ASPECT_TOLERANCE", "describe_sizes", "pair_files_notice", "report_fit_data", "report_predict_inputs",
           "shared_content_notice", "split_shape_notice"]

#: Relative difference of aspect ratios (width / height) taken as the same shape (JPEG crops of a
#: few pixels, odd sizes).
ASPECT_TOLERANCE = 0.02

#: Data set kinds stored as A|B pair files (left half A, right half B).
PAIR_FILE_KINDS = ("aligned", "facades", "photos", "colorize")

Sample = tuple[tuple[Path, ...], tuple[int, int]]  # (the sample's files, (width, height) of one side)


def samples(ds: Optional[Dataset]) -> list[Sample]:
    """(files, oriented (width, height) of one side) of each sample of a pair dataset (or a
    Subset of one), from the headers it read; empty for anything else."""
    indices = None
    if isinstance(ds, Subset):
        ds, indices = ds.dataset, list(ds.indices)
    sizes = getattr(ds, "sizes", None)
    if sizes is None:
        return []
    pairs = getattr(ds, "pairs", None)
    files = [tuple(p) for p in pairs] if pairs is not None else [(p,) for p in getattr(ds, "files", [])]
    return [(files[i], sizes[i]) for i in (indices if indices is not None else range(len(sizes)))]


def _scan_split(root: Path, split: str, paired: bool) -> list[Sample]:
    """Samples of a split that fit does not load (test/), from the headers; files that cannot be
    read are left out (``train.py test`` reports them)."""
    folder = root / split / ("A" if paired else "")
    if not folder.is_dir():
        return []
    b_side = {p.stem: p for p in (root / split / "B").iterdir()} if paired and (root / split / "B").is_dir() else {}
    out = []
    for p in sorted(folder.iterdir()):
        if not (p.is_file() and is_image_file(p)):
            continue
        try:
            w, h, _ = image_header(p)
        except ValueError:
            continue
        if paired:
            b = b_side.get(p.stem)
            out.append(((p, b) if b is not None and b.is_file() else (p,), (w, h)))
        else:
            out.append(((p,), (w // 2, h)))
    return out


def describe_sizes(sizes: Sequence[tuple[int, int]]) -> str:
    """``256x256`` for one size, else the count and the most common ones (WxH)."""
    counts: dict[tuple[int, int], int] = {}
    for s in sizes:
        counts[s] = counts.get(s, 0) + 1
    if not counts:
        return "-"
    common = sorted(counts.items(), key=lambda kv: -kv[1])
    if len(common) == 1:
        return f"{common[0][0][0]}x{common[0][0][1]}"
    shown = ", ".join(f"{w}x{h} ({n})" for (w, h), n in common[:3])
    return f"{len(common)} sizes: {shown}{', ...' if len(common) > 3 else ''}"


def _same_aspect(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return abs(math.log((a[0] / a[1]) / (b[0] / b[1]))) <= math.log1p(ASPECT_TOLERANCE)


def split_shape_notice(split: str, split_samples: list[Sample], train: list[Sample], crop_size: int) -> Optional[str]:
    """One line for the images of ``split`` whose aspect ratio no training image has (squashed by
    the resize) or, with a training aspect ratio, whose size no training image has; None if all match."""
    train_sizes = {s for _, s in train}
    train_aspects: list[tuple[int, int]] = []
    for s in train_sizes:
        if not any(_same_aspect(s, t) for t in train_aspects):
            train_aspects.append(s)
    aspect = [(f, s) for f, s in split_samples if not any(_same_aspect(s, t) for t in train_aspects)]
    size = [(f, s) for f, s in split_samples if s not in train_sizes and (f, s) not in aspect]
    if not train_sizes or not (aspect or size):
        return None
    parts = []
    if aspect:
        (files, (w, h)) = aspect[0]
        parts.append(f"{len(aspect)} in aspect ratio (e.g. {files[0].name}: {w}x{h}), resized to the training shape "
                     "they are squashed")
    if size:
        (files, (w, h)) = size[0]
        parts.append(f"{len(size)} in size only (e.g. {files[0].name}: {w}x{h}), seen at another scale")
    use = ("they choose best-*.ckpt and score the model" if split == "val"
           else "train.py test and evaluate.py score them")
    return (f"{split}/: {len(aspect) + len(size)} of {len(split_samples)} images match no training image "
            f"(training: {describe_sizes([s for _, s in train])} per side; crop_size {crop_size}): "
            f"{'; '.join(parts)}; {use}. Images of the training kind (an A|B pair per file for aligned data) "
            "give scores that mean what the training did")


class _Hasher:
    """BLAKE2b of file bytes, each file read at most once."""

    def __init__(self) -> None:
        self._digests: dict[Path, bytes] = {}

    def __call__(self, path: Path) -> bytes:
        if path not in self._digests:
            digest = hashlib.blake2b(digest_size=16)
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
            self._digests[path] = digest.digest()
        return self._digests[path]


def shared_content_notice(split: str, split_samples: list[Sample], train: list[Sample],
                          hasher: Optional[_Hasher] = None) -> Optional[str]:
    """One line for the samples of ``split`` whose files have the bytes of a training sample's
    (every file of the pair for paired folders), or None. Only files whose byte sizes match a
    training sample's are hashed."""
    hasher = hasher or _Hasher()

    def byte_sizes(files: tuple[Path, ...]) -> tuple[int, ...]:
        return tuple(p.stat().st_size for p in files)

    by_size: dict[tuple[int, ...], list[tuple[Path, ...]]] = {}
    for files, _ in train:
        by_size.setdefault(byte_sizes(files), []).append(files)
    by_content: dict[tuple[bytes, ...], tuple[Path, ...]] = {}
    hashed: set[tuple[int, ...]] = set()  # byte sizes whose training files are in by_content
    shared = []
    for files, _ in split_samples:
        sizes = byte_sizes(files)
        if sizes not in by_size:
            continue
        if sizes not in hashed:
            hashed.add(sizes)
            for t in by_size[sizes]:
                by_content.setdefault(tuple(hasher(p) for p in t), t)
        match = by_content.get(tuple(hasher(p) for p in files))
        if match is not None:
            shared.append((files[0], match[0]))
    if not shared:
        return None
    mine, theirs = shared[0]
    return (f"{split}/: {len(shared)} of {len(split_samples)} files have the same content as training files (e.g. "
            f"{mine} = {theirs}): scores on {split}/ then measure memorisation, not generalisation"
            f"{' (and choose best-*.ckpt)' if split == 'val' else ''}; remove them from {split}/")


def _direction_words(kind: str, direction: str) -> str:
    src, dst = ("A", "B") if direction == "AtoB" else ("B", "A")
    if kind == "paired":
        return f"input {src}/, target {dst}/"
    side = {"A": "left", "B": "right"}
    return f"input the {side[src]} half ({src}) of each A|B file, target the {side[dst]} half ({dst})"


def report_fit_data(dm: Any) -> None:
    """``fit``'s start-up lines for data module ``dm`` (a set-up :class:`Pix2PixDataModule`): the
    summary, then the notices of the module doc (val/ and test/ against train/)."""
    train = samples(dm.train_set)
    val = samples(dm.val_set)
    test = _scan_split(Path(dm.data_dir), "test", dm.dataset == "paired")
    counts = [f"train {len(dm.train_set) if dm.train_set is not None else 0}",
              f"val {len(dm.val_set) if dm.val_set is not None else 'none'}", f"test {len(test) or 'none'}"]
    sizes = [f"{name} {describe_sizes([s for _, s in part])}" for name, part in (("train", train), ("val", val),
                                                                                  ("test", test)) if part]
    layout = "paired folders" if dm.dataset == "paired" else "A|B files"
    notice(f"data: {dm.dataset} ({layout}) at {dm.data_dir}, direction {dm.direction} "
           f"({_direction_words(dm.dataset, dm.direction)}); images: {', '.join(counts)}; sizes per side (WxH): "
           f"{'; '.join(sizes) or '-'}; preprocess {dm.preprocess}, load_size {dm.load_size}, crop_size {dm.crop_size}")
    n_train = len(dm.train_set) if dm.train_set is not None else 0
    if 0 < n_train < dm.batch_size:  # the loader keeps the last, short batch: every batch is smaller
        notice(f"data.batch_size {dm.batch_size} > the {n_train} training images: each epoch is one batch of "
               f"{n_train}")
    hasher = _Hasher()
    for split, part in (("val", val), ("test", test)):
        if not part or not train:
            continue
        for line in (split_shape_notice(split, part, train, dm.crop_size),
                     shared_content_notice(split, part, train, hasher)):
            if line:
                notice(line)


def pair_files_notice(files: Sequence[Path], kind: str, direction: str) -> Optional[str]:
    """One line when prediction inputs look like A|B pair files (twice as wide as high, give or
    take a pixel; 8 px high at least) and the model was trained on such files (``kind`` in :data:`PAIR_FILE_KINDS`),
    else None."""
    if kind not in PAIR_FILE_KINDS:
        return None
    wide = []
    for p in files:
        try:
            w, h, _ = image_header(p)
        except ValueError:
            continue
        if abs(w - 2 * h) <= 1 and h >= 8:  # a pixel's tolerance, which a tiny image would meet whatever it is
            wide.append((p, w, h))
    if not wide:
        return None
    p, w, h = wide[0]
    half = "right (B)" if direction == "BtoA" else "left (A)"
    return (f"predict: {len(wide)} of {len(files)} inputs are twice as wide as high (e.g. {p.name}: {w}x{h}), like "
            f"the A|B pair files the model was trained on: the generator reads each whole file, both halves "
            f"(direction {direction} picks the {half} half of data set splits only); give it the input halves alone, "
            f"or leave --data.predict_dir unset to predict the test split's inputs")


def report_predict_inputs(dm: Any) -> None:
    """``predict``'s notice for ``--data.predict_dir`` inputs that look like A|B pair files."""
    files = getattr(dm.predict_set, "files", None)
    if dm.predict_dir is None or not files:
        return
    line = pair_files_notice(files, dm.dataset, dm.direction)
    if line:
        notice(line)
