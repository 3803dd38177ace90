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
                crop_size=32, batch_size=2, num_workers=0, direction="BtoA")
    args.update(kw)
    return Pix2PixDataModule(**args)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crop_size": 40, "load_size": 36}, r"crop_size \(40\) must not exceed load_size \(36\)"),
        ({"batch_size": 0}, r"batch_size must be an integer >= 1, got 0"),
        ({"dataset": "cityscapes"},
         r"dataset must be one of \('facades', 'aligned', 'paired', 'photos', 'colorize'\), got 'cityscapes'"),
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


def test_default_direction_is_the_references_atob():
    assert Pix2PixDataModule().direction == "AtoB"


def test_end_to_end_facades_generated_on_demand(tmp_path, capsys):
    dm = _dm(tmp_path, max_val_images=1, predict_resize=True)
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
    # Prediction inputs are the test inputs (label maps for BtoA), named by file (with extension).
    first_test = next(iter(test))
    assert torch.equal(pred["input"], first_test["input"])
    assert pred["name"] == [f"{n}.png" for n in first_test["name"]]


def test_prepare_data_reuses_existing_and_warns_on_different_settings(tmp_path, capsys):
    _dm(tmp_path).prepare_data()
    f = tmp_path / "facades" / "train" / "1.png"
    before = f.read_bytes()
    capsys.readouterr()
    _dm(tmp_path).prepare_data()  # same settings: silent reuse
    assert "different settings" not in capsys.readouterr().err
    _dm(tmp_path, seed=3).prepare_data()
    err = capsys.readouterr().err
    assert err.startswith("[pix2pix_aa] ") and "generated with different settings (seed: on disk 0, asked 3)" in err
    assert f.read_bytes() == before


def test_a_folder_of_the_other_procedural_kind_is_refused(tmp_path):
    # Facades and photos are both aligned pairs on disk: without the check, dataset photos on a
    # facades folder evaluated the facades under the photos' name.
    _dm(tmp_path).prepare_data()
    with pytest.raises(ValueError, match=r"holds the procedural facades .* but the dataset is 'photos'"):
        _dm(tmp_path, dataset="photos").prepare_data()


def test_an_existing_empty_data_dir_says_generation_only_fills_a_new_folder(tmp_path):
    # It used to reach the loader and report a missing train/ split of an "aligned data set".
    (tmp_path / "facades").mkdir()
    with pytest.raises(FileNotFoundError, match=r"exists but holds no data set .* generated only into a folder that"):
        _dm(tmp_path).prepare_data()


def test_a_generate_size_given_is_compared_even_at_the_generating_default(tmp_path, capsys):
    # 256 is what an unset generate_size generates; given explicitly it asks for 256 px data.
    _dm(tmp_path).prepare_data()
    dm = Pix2PixDataModule(data_dir=str(tmp_path / "facades"), load_size=36, crop_size=32, batch_size=2,
                           num_workers=0, direction="BtoA", generate_size=256)
    # A generation-only option unlike the folder's would be accepted and ignored: refused.
    with pytest.raises(ValueError, match=r"data.generate_size: .* was generated with size 32, not the 256 asked"):
        dm.prepare_data()
    counts = Pix2PixDataModule(data_dir=str(tmp_path / "facades"), load_size=36, crop_size=32, batch_size=2,
                               num_workers=0, direction="BtoA", generate_size=32,
                               generate_counts={"train": 9, "val": 1, "test": 1})
    with pytest.raises(ValueError, match=r"data.generate_counts: .* pass a new --data.data_dir"):
        counts.prepare_data()


def test_generate_options_left_at_their_defaults_ask_for_nothing(tmp_path, capsys):
    # A folder generated at 32 px read with the default generate_size (256) and counts: no warning.
    _dm(tmp_path).prepare_data()
    dm = Pix2PixDataModule(data_dir=str(tmp_path / "facades"), load_size=36, crop_size=32, batch_size=2,
                           num_workers=0, direction="BtoA")
    capsys.readouterr()
    dm.prepare_data()
    err = capsys.readouterr().err
    assert "different settings" not in err
    # But a set of other counts than the default is named: a smaller run's 4 images were trained
    # and scored on as if they were the full set.
    assert "holds facades generated with counts {'train': 4, 'val': 2, 'test': 2}, not the default" in err


def test_predict_dir_of_plain_images(tmp_path):
    pdir = tmp_path / "inputs"
    pdir.mkdir()
    for name in ("b", "a"):
        Image.fromarray(np.full((40, 50, 3), 255, np.uint8)).save(pdir / f"{name}.png")
    dm = _dm(tmp_path, predict_dir=str(pdir), batch_size=1, predict_resize=True)
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert [b["name"] for b in batches] == [["a.png"], ["b.png"]]
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
    with pytest.raises(FileNotFoundError, match="aligned data set root .*facades does not exist") as error:
        dm.setup("fit")
    # a folder named as one of the reference's sets: how to download it (before: not said)
    assert f"download it with: pix2pix-aa-data download facades --root {tmp_path}; or pass the folder" in str(
        error.value)


def test_photos_generated_larger_than_trained_say_how_to_get_more(tmp_path, capsys):
    """Without --data.generate_size train.py cut 256 px cells (32 training images) and resized them
    to the 128 px the cpu_quick configs train on, without a word."""
    dm = _dm(tmp_path, data_dir=str(tmp_path / "photos"), dataset="photos", generate_size=None, load_size=128,
             crop_size=128, generate_counts={"train": 1, "val": 1, "test": 1})
    dm.prepare_data()
    assert ("256px cells, resized to 128 px for training; --data.generate_size 128 cuts more, smaller cells "
            "(94 training images at 128 px against 32 at 256)") in capsys.readouterr().out


def test_photos_edges_to_photo(tmp_path):
    dm = _dm(tmp_path, data_dir=str(tmp_path / "photos"), dataset="photos",
             generate_counts={"train": 2, "val": 1, "test": 1})
    dm.prepare_data()
    dm.setup("test")
    item = dm.test_set[0]
    edges, photo = item["input"], item["target"]  # BtoA: edges -> photo
    share_bw = ((edges.abs() > 0.9).all(dim=0)).float().mean()
    assert share_bw > 0.8, "edge map should be (nearly) black and white"
    assert (edges < 0).any(), "some edges expected"
    assert photo.std() > 0.1 and (photo[0] != photo[1]).any(), "target should be a colour photo"


# --- defaults a pix2pix user expects: flip switch, no val/ with validation off, no test/ --------
def _aligned_set(root, splits=("train",), n: int = 2, w: int = 32):
    """A|B files whose A is asymmetric left/right (a flip shows) and B = 255 - A."""
    a = np.zeros((32, w, 3), np.uint8)
    a[:, : w // 4] = 255
    for split in splits:
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(np.concatenate([a, 255 - a], axis=1)).save(root / split / f"{i}.png")
    return root


@pytest.mark.parametrize("no_flip", [False, True])
def test_no_flip_switches_the_random_flip_off(tmp_path, no_flip):
    root = _aligned_set(tmp_path / "set")
    dm = Pix2PixDataModule(data_dir=str(root), dataset="aligned", load_size=32, crop_size=32, num_workers=0,
                           no_flip=no_flip)
    dm.setup("fit")
    torch.manual_seed(0)
    left_bright = [bool(dm.train_set[0]["input"][0, 0, 0] > 0) for _ in range(16)]
    assert all(left_bright) if no_flip else not all(left_bright)  # 16 draws without a flip: p = 2**-16
    assert dm.hparams["no_flip"] is no_flip


class _Tiny(__import__("pytorch_lightning").LightningModule):
    """A 1x1 conv 'generator' with validation: just enough to drive Trainer.fit over the loaders."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Conv2d(3, 3, 1)

    def training_step(self, batch, batch_idx):
        return (self.net(batch["input"]) - batch["target"]).abs().mean()

    def validation_step(self, batch, batch_idx):
        self.log("val/l1", (self.net(batch["input"]) - batch["target"]).abs().mean())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


@pytest.fixture
def make_trainer(cpu_trainer):
    """make_trainer(tmp_path, **kw): a 1-epoch CPU trainer without checkpoints."""

    def make(tmp_path, **kw):
        return cpu_trainer(max_epochs=1, enable_checkpointing=False, default_root_dir=str(tmp_path), **kw)

    return make


def test_fit_without_val_folder_when_validation_is_off(tmp_path, capsys, make_trainer):
    root = _aligned_set(tmp_path / "noval")
    dm = Pix2PixDataModule(data_dir=str(root), dataset="aligned", load_size=32, crop_size=32, num_workers=0)
    trainer = make_trainer(tmp_path, limit_val_batches=0)
    trainer.fit(_Tiny(), datamodule=dm)
    assert trainer.current_epoch == 1
    lines = [ln for ln in capsys.readouterr().err.splitlines() if "pix2pix_aa" in ln]
    summary = [ln for ln in lines if ln.startswith("[pix2pix_aa] data: ")]  # the start-up data summary
    assert len(summary) == 1 and "images: train 2, val none, test none" in summary[0]
    # Nothing else: the line "no validation set (train with --trainer.limit_val_batches 0, ...)" advised
    # the flag this run was given.
    assert [ln for ln in lines if ln not in summary] == []


def test_fit_without_val_folder_with_validation_on_says_what_to_do(tmp_path, make_trainer):
    root = _aligned_set(tmp_path / "noval")
    dm = Pix2PixDataModule(data_dir=str(root), dataset="aligned", load_size=32, crop_size=32, num_workers=0)
    with pytest.raises(FileNotFoundError, match=r"no validation data: .*noval has no val/ folder; train without "
                                                r"validation with --trainer\.limit_val_batches 0, or add .*noval/val"):
        make_trainer(tmp_path).fit(_Tiny(), datamodule=dm)


def test_missing_test_split_suggests_val_or_predict_dir(tmp_path):
    root = _aligned_set(tmp_path / "set", splits=("train", "val"))
    dm = Pix2PixDataModule(data_dir=str(root), dataset="aligned", load_size=32, crop_size=32, num_workers=0)
    with pytest.raises(FileNotFoundError, match=r"split folder .*test does not exist \(found folders: \['train', "
                                                r"'val'\]\); score the val split with `train\.py validate` "
                                                r"\(or `evaluate\.py --split val`\)"):
        dm.setup("test")
    only_train = Pix2PixDataModule(data_dir=str(_aligned_set(tmp_path / "train_only", splits=("train",))),
                                   dataset="aligned", load_size=32, crop_size=32, num_workers=0)
    with pytest.raises(FileNotFoundError, match=r"test does not exist .*; add a test/ folder \(there is no val/"):
        only_train.setup("test")  # `train.py validate` was advised, which has no val/ to read either
    with pytest.raises(FileNotFoundError, match=r"test does not exist .*pass --data\.predict_dir FOLDER_OR_FILE"):
        dm.setup("predict")
    with pytest.raises(FileNotFoundError, match=r"test does not exist .*evaluate\.py --split val"):
        dm.eval_dataset("test")
    full = Pix2PixDataModule(data_dir=str(_aligned_set(tmp_path / "full", splits=("train", "val", "test"))),
                             dataset="aligned", load_size=32,
                             crop_size=32, num_workers=0)
    with pytest.raises(FileNotFoundError, match=r"tset does not exist .*evaluate\.py --split test"):
        full.eval_dataset("tset")  # a typo: the closest split, not the first one present


def test_shipped_facades_configs_say_btoa_explicitly():
    """The default is AtoB now; labels -> photo on the procedural sets needs BtoA, written out."""
    from pathlib import Path

    import yaml

    configs = sorted((Path(__file__).parent.parent / "configs").glob("*.yaml"))
    assert configs
    for path in configs:
        data = yaml.safe_load(path.read_text())["data"]
        data = data.get("init_args", data)
        if data.get("dataset", "facades") in ("facades", "photos"):
            assert data.get("direction") == "BtoA", path


def test_a_generated_set_at_the_default_direction_says_it_trains_the_task_backwards(tmp_path, capsys):
    """`--data.dataset colorize` at the default direction (AtoB) trained photo -> grayscale without
    a word: the generated sets hold A = photo, B = the input."""
    dm = _dm(tmp_path, direction="AtoB")
    dm.prepare_data()
    capsys.readouterr()
    dm.setup("fit")
    err = capsys.readouterr().err
    assert ("[pix2pix_aa] data.dataset facades with data.direction AtoB trains photo -> label map (its files hold "
            "A = photo, B = label map); --data.direction BtoA is its label map -> photo task") in err
    dm = _dm(tmp_path)  # BtoA: nothing said
    dm.setup("fit")
    assert "data.direction" not in capsys.readouterr().err
