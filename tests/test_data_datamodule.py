"""Pix2PixDataModule end to end on tiny generated sets; argument validation; seeding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import RandomSampler, SequentialSampler

from pix2pix_aa.data import Pix2PixDataModule

TINY = {"train": 4, "val": 2, "test": 2}


def _dm(tmp_path, **kw) -> Pix2PixDataModule:
    args = dict(data_dir=str(tmp_path / "facades"), generate_size=32, generate_counts=TINY, load_size=36,
                crop_size=32, batch_size=2, num_workers=0)
    args.update(kw)
    return Pix2PixDataModule(**args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crop_size": 40, "load_size": 36}, r"crop_size \(40\) must not exceed load_size \(36\)"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"dataset": "cityscapes"}, r"dataset must be one of \('facades', 'aligned', 'paired', 'photos'\), got 'cityscapes'"),
        ({"direction": "BtoC"}, r"direction must be one of \('AtoB', 'BtoA'\), got 'BtoC'"),
        ({"num_workers": -1}, r"num_workers must be an integer >= 0"),
        ({"generate_counts": {"dev": 3}}, r"generate_counts must map 'train'/'val'/'test'"),
        ({"max_val_images": 0}, r"max_val_images must be None or an integer >= 1"),
    ],
)
def test_invalid_arguments_fail_before_any_data_is_read(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        _dm(tmp_path, **kwargs)
    assert not (tmp_path / "facades").exists()


def test_end_to_end_facades_generated_on_demand(tmp_path, capsys):
    dm = _dm(tmp_path, max_val_images=1)
    assert dm.hparams["crop_size"] == 32 and dm.hparams["direction"] == "BtoA" and dm.hparams["dataset"] == "facades"
    dm.prepare_data()
    assert "not found: generating procedural facades" in capsys.readouterr().out
    assert (tmp_path / "facades" / "generation.json").is_file()
    dm.setup("fit")
    train = dm.train_dataloader()
    assert isinstance(train.sampler, RandomSampler)  # Lightning swaps in a DistributedSampler under DDP
    batch = next(iter(train))
    assert batch["input"].shape == (2, 3, 32, 32) and batch["target"].shape == (2, 3, 32, 32)
    assert batch["input"].dtype == torch.float32 and len(batch["name"]) == 2
    assert len(dm.val_dataloader().dataset) == 1
    dm.setup("test")
    test = dm.test_dataloader()
    assert isinstance(test.sampler, SequentialSampler) and len(test.dataset) == 2
    dm.setup("predict")
    pred = next(iter(dm.predict_dataloader()))
    assert set(pred) == {"input", "name"} and pred["input"].shape == (2, 3, 32, 32)
    # Prediction inputs are the test inputs (label maps for BtoA).
    first_test = next(iter(test))
    assert torch.equal(pred["input"], first_test["input"]) and pred["name"] == first_test["name"]


def test_prepare_data_reuses_existing_and_warns_on_different_settings(tmp_path):
    _dm(tmp_path).prepare_data()
    f = tmp_path / "facades" / "train" / "1.png"
    before = f.read_bytes()
    _dm(tmp_path).prepare_data()  # same settings: silent reuse
    with pytest.warns(UserWarning, match=r"generated with different settings \(seed: on disk 0, asked 3\)"):
        _dm(tmp_path, seed=3).prepare_data()
    assert f.read_bytes() == before


def test_predict_dir_of_plain_images(tmp_path):
    pdir = tmp_path / "inputs"
    pdir.mkdir()
    for name in ("b", "a"):
        Image.fromarray(np.full((40, 50, 3), 255, np.uint8)).save(pdir / f"{name}.png")
    dm = _dm(tmp_path, predict_dir=str(pdir), batch_size=1)
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert [b["name"] for b in batches] == [["a"], ["b"]]
    assert batches[0]["input"].shape == (1, 3, 32, 32) and torch.all(batches[0]["input"] == 1)


def test_workers_are_persistent_and_seeded(tmp_path):
    _dm(tmp_path).prepare_data()

    def first_batches(seed):
        dm = _dm(tmp_path, num_workers=1, seed=seed)
        dm.setup("fit")
        loader = dm.train_dataloader()
        assert loader.persistent_workers
        it = iter(loader)
        return [next(it) for _ in range(2)]

    a, b, c = first_batches(0), first_batches(0), first_batches(1)
    assert all(torch.equal(x["input"], y["input"]) and x["name"] == y["name"] for x, y in zip(a, b))
    assert not all(torch.equal(x["input"], y["input"]) for x, y in zip(a, c))


def test_aligned_dataset_kind_does_not_generate(tmp_path):
    dm = _dm(tmp_path, dataset="aligned")
    dm.prepare_data()
    assert not (tmp_path / "facades").exists()
    with pytest.raises(FileNotFoundError, match="aligned data set root .*facades does not exist"):
        dm.setup("fit")


def test_photos_edges_to_photo(tmp_path):
    dm = _dm(tmp_path, data_dir=str(tmp_path / "photos"), dataset="photos", generate_counts={"train": 2, "val": 1, "test": 1})
    dm.prepare_data()
    dm.setup("test")
    item = dm.test_set[0]
    edges, photo = item["input"], item["target"]  # BtoA: edges -> photo
    share_bw = ((edges.abs() > 0.9).all(dim=0)).float().mean()
    assert share_bw > 0.8, "edge map should be (nearly) black and white"
    assert (edges < 0).any(), "some edges expected"
    assert photo.std() > 0.1 and (photo[0] != photo[1]).any(), "target should be a colour photo"
