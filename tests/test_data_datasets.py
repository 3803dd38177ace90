"""Aligned / paired datasets: round trip, direction, value range, joint crop/flip alignment."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_aa.data import AlignedDataset, ImageFolderDataset, PairedFolderDataset
from pix2pix_aa.data.palette import CLASS_IDS, decode_labels, palette_distance


def to_uint8_hwc(x: torch.Tensor) -> np.ndarray:
    """(3, H, W) in [-1, 1] -> (H, W, 3) uint8."""
    return ((x.permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255).astype(np.uint8)


def near_palette_share(x: torch.Tensor) -> float:
    """Share of pixels within 12 colour units of a CMP palette colour."""
    return float((palette_distance(to_uint8_hwc(x)) < 12).mean())


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_round_trip_direction_value_range(tiny_facades, direction, split):
    ds = AlignedDataset(tiny_facades, split, direction, load_size=72, crop_size=64)
    assert len(ds) == {"train": 4, "test": 1}[split]
    for item in ds:
        for key in ("input", "target"):
            x = item[key]
            assert type(x) is torch.Tensor and x.dtype == torch.float32 and x.shape == (3, 64, 64)
            assert x.min() >= -1 and x.max() <= 1
        labels, photo = (item["target"], item["input"]) if direction == "AtoB" else (item["input"], item["target"])
        assert near_palette_share(labels) > 0.7, "the label map side should be in palette colours"
        assert near_palette_share(photo) < 0.3, "the photo side should not be"
        classes = set(np.unique(decode_labels(to_uint8_hwc(labels))))
        assert {CLASS_IDS["facade"], CLASS_IDS["window"]} <= classes
    assert item["name"] == ds.files[-1].stem


def test_eval_transform_is_deterministic_and_exact(tiny_facades):
    ds = AlignedDataset(tiny_facades, "val", "BtoA", load_size=64, crop_size=64)
    assert not ds.train
    a, b = ds[0], ds[0]
    assert torch.equal(a["input"], b["input"]) and torch.equal(a["target"], b["target"])
    # Same size in and out: the label map comes back with exact palette colours.
    ab = np.asarray(Image.open(ds.files[0]))
    np.testing.assert_array_equal(to_uint8_hwc(a["input"]), ab[:, 64:])
    np.testing.assert_array_equal(to_uint8_hwc(a["target"]), ab[:, :64])


def _write_complement_pair(path: Path, h: int = 40, w: int = 40, seed: int = 0) -> None:
    """A|B where B = 255 - A (random noise): any misalignment between A and B shows pixel by pixel."""
    a = np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(path)


@pytest.mark.parametrize("load_size", [40, 52])
def test_joint_crop_and_flip_keep_a_and_b_aligned(tmp_path, load_size):
    (tmp_path / "train").mkdir()
    _write_complement_pair(tmp_path / "train" / "p.png")
    ds = AlignedDataset(tmp_path, "train", "AtoB", load_size=load_size, crop_size=32)
    torch.manual_seed(0)
    outs = []
    for _ in range(24):
        item = ds[0]
        # B = 255 - A  <=>  input + target = 0 in [-1, 1] (resize is linear; the fixed-point
        # uint8 resize may round the two sides apart by up to 2 levels; misalignment gives ~1).
        err = (item["input"] + item["target"]).abs()
        assert err.max() <= 2.01 / 127.5 and err.mean() < 0.5 / 127.5
        outs.append(item["input"])
    distinct = {x.numpy().tobytes() for x in outs}
    assert len(distinct) > 2, "random crop/flip should vary between draws"
    if load_size == 40:
        # No resize: every output is an exact crop of A or of its mirror image.
        a = torch.from_numpy(np.array(Image.open(tmp_path / "train" / "p.png"))[:, :40]).permute(2, 0, 1)
        a = a.float() / 127.5 - 1
        flipped = 0
        for x in outs:
            hits = [(f, i, j) for f, src in ((0, a), (1, a.flip(-1))) for i in range(9) for j in range(9)
                    if torch.allclose(src[:, i:i + 32, j:j + 32], x, atol=1e-6)]
            assert len(hits) == 1
            flipped += hits[0][0]
        assert 0 < flipped < len(outs)


def test_train_randomness_is_seeded(tiny_facades):
    ds = AlignedDataset(tiny_facades, "train", "BtoA", load_size=80, crop_size=64)
    torch.manual_seed(123)
    first = [ds[i]["input"] for i in range(4)]
    torch.manual_seed(123)
    again = [ds[i]["input"] for i in range(4)]
    assert all(torch.equal(x, y) for x, y in zip(first, again))


def test_paired_folders_match_by_stem(tmp_path):
    rng = np.random.default_rng(1)
    for side in ("A", "B"):
        (tmp_path / "test" / side).mkdir(parents=True)
    for stem in ("b", "a", "c10", "c9"):
        img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
        Image.fromarray(img).save(tmp_path / "test" / "A" / f"{stem}.png")
        Image.fromarray(255 - img).save(tmp_path / "test" / "B" / f"{stem}.jpg" if stem == "b"
                                        else tmp_path / "test" / "B" / f"{stem}.png")
    ds = PairedFolderDataset(tmp_path, "test", "BtoA", load_size=32, crop_size=32)
    assert [pa.stem for pa, _ in ds.pairs] == ["a", "b", "c9", "c10"]  # natural order
    item = ds[0]
    assert item["name"] == "a" and item["input"].shape == (3, 32, 32)
    assert (item["input"] + item["target"]).abs().max() <= 2.01 / 127.5  # B (= 255 - A) is the input


def test_image_folder_dataset_for_prediction(tmp_path):
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "x.png")
    ds = ImageFolderDataset(tmp_path, size=16)
    item = ds[0]
    assert set(item) == {"input", "name"} and item["input"].shape == (3, 16, 16) and item["name"] == "x.png"
    assert torch.all(item["input"] == -1)
    kept = ImageFolderDataset(tmp_path)[0]  # default: the input's own size
    assert kept["input"].shape == (3, 20, 30) and torch.all(kept["input"] == -1)
