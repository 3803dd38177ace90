"""predict's data and writer: a file or a folder, each input at its own size, nothing overwritten."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from PIL import Image

from pix2pix_aa.callbacks import ImageWriter, output_file_name
from pix2pix_aa.callbacks.prediction import written_by_predict
from pix2pix_aa.data import ImageFolderDataset, Pix2PixDataModule


def _img(h: int, w: int, seed: int = 0, gray: bool = False) -> np.ndarray:
    shape = (h, w) if gray else (h, w, 3)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def _dm(tmp_path: Path, predict_dir: Path, **kw) -> Pix2PixDataModule:
    args = dict(data_dir=str(tmp_path / "unused"), dataset="aligned", load_size=64, crop_size=64, batch_size=4,
                num_workers=0, predict_dir=str(predict_dir))
    args.update(kw)
    return Pix2PixDataModule(**args)


class _Identity(pl.LightningModule):
    """predict_step returning the input in [0, 1]: checks the loader -> writer path on its own."""

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def predict_step(self, batch, batch_idx):
        return {"name": batch["name"], "image": (batch["input"] + 1) / 2}


@pytest.fixture
def predict(cpu_trainer):
    """predict(tmp_path, dm, out): the CPU trainer after writing _Identity's predictions of ``dm`` to ``out``."""

    def run(tmp_path: Path, dm: Pix2PixDataModule, out: Path) -> pl.Trainer:
        trainer = cpu_trainer(default_root_dir=str(tmp_path), callbacks=[ImageWriter(str(out))])
        trainer.predict(_Identity(), datamodule=dm, return_predictions=False)
        return trainer

    return run


# --- what is read -------------------------------------------------------------------------
def test_a_single_file_is_accepted(tmp_path):
    Image.fromarray(_img(40, 56)).save(tmp_path / "photo.png")
    dm = _dm(tmp_path, tmp_path / "photo.png")
    dm.setup("predict")
    batches = list(dm.predict_dataloader())
    assert len(batches) == 1 and batches[0]["name"] == ["photo.png"]
    assert batches[0]["input"].shape == (1, 3, 40, 56)  # its own size, not crop_size


def test_missing_path_and_non_image_file_are_one_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"prediction input .*nope\.png does not exist \(expected a folder "
                                                r"of images or one image file\)"):
        ImageFolderDataset(tmp_path / "nope.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes\.txt is not an image file of a supported type \(\.png, \.jpg, "
                                         r"\.jpeg, \.webp, \.bmp, \.tif, \.tiff\)"):
        ImageFolderDataset(tmp_path / "notes.txt")


def test_tiff_read_and_subfolders_and_other_files_reported(tmp_path, capsys):
    Image.fromarray(_img(32, 32)).save(tmp_path / "a.tif")
    Image.fromarray(_img(32, 32, 1)).save(tmp_path / "b.png")
    (tmp_path / "notes.txt").write_text("x")
    for sub in ("more", "old"):
        (tmp_path / sub).mkdir()
        Image.fromarray(_img(32, 32)).save(tmp_path / sub / "c.png")
    ds = ImageFolderDataset(tmp_path)
    assert [p.name for p in ds.files] == ["a.tif", "b.png"]
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2, lines
    assert re.fullmatch(r"\[pix2pix_aa\] prediction input folder .*: skipped 2 subfolder\(s\): more/, old/ "
                        r"\(reads the images of one folder, not recursive\)", lines[0]), lines[0]
    assert re.fullmatch(r"\[pix2pix_aa\] prediction input folder .*: skipped 1 file\(s\) that are not "
                        r"\.png/.*/\.tiff images: notes\.txt", lines[1]), lines[1]


def test_keep_size_is_the_default_and_batches_one_at_a_time(tmp_path, capsys):
    Image.fromarray(_img(40, 56)).save(tmp_path / "wide.png")
    Image.fromarray(_img(72, 48, 1)).save(tmp_path / "tall.jpg")
    dm = _dm(tmp_path, tmp_path, batch_size=4)
    dm.setup("predict")
    assert "predict: batch size 1, not 4 (each input keeps its own size; --data.predict_resize true" \
        in capsys.readouterr().err
    shapes = {b["name"][0]: tuple(b["input"].shape) for b in dm.predict_dataloader()}
    assert shapes == {"tall.jpg": (1, 3, 72, 48), "wide.png": (1, 3, 40, 56)}


def test_predict_resize_resizes_to_crop_size_and_batches(tmp_path):
    for i, (h, w) in enumerate([(40, 56), (72, 48), (64, 64)]):
        Image.fromarray(_img(h, w, i)).save(tmp_path / f"{i}.png")
    dm = _dm(tmp_path, tmp_path, batch_size=2, crop_size=32, load_size=32, predict_resize=True)
    dm.setup("predict")
    assert [tuple(b["input"].shape) for b in dm.predict_dataloader()] == [(2, 3, 32, 32), (1, 3, 32, 32)]


def test_test_split_inputs_keep_their_size_too(tmp_path):
    (tmp_path / "set" / "test").mkdir(parents=True)
    Image.fromarray(_img(48, 80)).save(tmp_path / "set" / "test" / "1.png")  # two 40x48 halves
    dm = Pix2PixDataModule(data_dir=str(tmp_path / "set"), dataset="aligned", load_size=40, crop_size=32,
                           num_workers=0)
    dm.setup("predict")
    batch = next(iter(dm.predict_dataloader()))
    assert batch["name"] == ["1.png"] and batch["input"].shape == (1, 3, 48, 40)


# --- what is written -----------------------------------------------------------------------
def test_output_names_keep_the_extension():
    assert output_file_name("scene.jpg") == "scene_jpg.png"
    assert output_file_name("scene.png") == "scene_png.png"
    assert output_file_name("a.b.TIF") == "a.b_TIF.png"
    assert output_file_name("12") == "12.png"  # a stem, from a custom dataset


def test_same_stem_inputs_are_both_written_at_their_own_size(tmp_path, capsys, predict):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    png, jpg = _img(40, 56, 0), _img(24, 72, 1)
    Image.fromarray(png).save(inputs / "scene.png")
    Image.fromarray(jpg).save(inputs / "scene.jpg", quality=95)
    predict(tmp_path, _dm(tmp_path, inputs), out)
    assert sorted(p.name for p in out.glob("*.png")) == ["scene_jpg.png", "scene_png.png"]
    assert Image.open(out / "scene_png.png").size == (56, 40) and Image.open(out / "scene_jpg.png").size == (72, 24)
    np.testing.assert_array_equal(np.asarray(Image.open(out / "scene_png.png")), png)  # identity: exact round trip
    assert capsys.readouterr().err.strip().splitlines()[-1] == f"[pix2pix_aa] predict: wrote 2 image(s) to {out}"


def test_an_earlier_predicts_other_outputs_in_the_folder_are_named(tmp_path, capsys, predict):
    """A second predict of other inputs into the same folder left the first one's outputs beside
    its own without a word: the folder read as one run's result."""
    first, second, out = tmp_path / "a", tmp_path / "b", tmp_path / "out"
    for folder, names in ((first, ("x.png", "y.png")), (second, ("z.png",))):
        folder.mkdir()
        for name in names:
            Image.fromarray(_img(32, 32, 0)).save(folder / name)
    predict(tmp_path, _dm(tmp_path, first), out)
    (out / "notes.png").write_bytes((out / "x_png.png").read_bytes()[:8])  # the user's: not predict's
    capsys.readouterr()
    predict(tmp_path, _dm(tmp_path, second), out)
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"[pix2pix_aa] predict: wrote 1 image(s) to {out}; the folder also holds 2 image(s) of an earlier predict "
        "that this one did not write (x_png.png, y_png.png)")


def test_one_channel_outputs_are_grayscale_pngs(tmp_path, predict):
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    gray = _img(40, 24, gray=True)
    Image.fromarray(gray).save(inputs / "g.png")
    predict(tmp_path, _dm(tmp_path, inputs, input_nc=1, output_nc=1), out)
    written = Image.open(out / "g_png.png")
    assert written.mode == "L"
    np.testing.assert_array_equal(np.asarray(written), gray)


def test_writer_refuses_to_overwrite_within_a_run(tmp_path):
    writer = ImageWriter(str(tmp_path / "out"))
    pred = {"name": ["x.png", "x.png"], "image": torch.zeros(2, 3, 8, 8)}
    with pytest.raises(ValueError, match=r"inputs 'x\.png' and 'x\.png' would both be written to .*x_png\.png"):
        writer.write_on_batch_end(None, None, pred, None, None, 0, 0)


# --- end to end through train.py predict (the module pads to the generator's size multiple) --
def test_train_py_predict_keeps_sizes_that_are_not_multiples_of_the_generator(trained_run, tmp_path, capsys, run_cli):
    folder, run = trained_run
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    Image.fromarray(_img(40, 100)).save(inputs / "wide.png")  # the tiny U-Net needs multiples of 64
    Image.fromarray(_img(64, 64, 1)).save(inputs / "wide.jpg")
    run_cli(folder, ["predict", "--config", str(folder / "tiny.yaml"),
                     "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
                     "--data.predict_dir", str(inputs / "wide.png"), "--predict_output_dir", str(out)])
    run_cli(folder, ["predict", "--config", str(folder / "tiny.yaml"),
                     "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
                     "--data.predict_dir", str(inputs), "--predict_output_dir", str(out)])
    assert sorted(p.name for p in out.iterdir()) == ["wide_jpg.png", "wide_png.png"]
    assert Image.open(out / "wide_png.png").size == (100, 40) and Image.open(out / "wide_jpg.png").size == (64, 64)
    err = capsys.readouterr().err
    assert f"[pix2pix_aa] predict: wrote 1 image(s) to {out}" in err
    assert f"[pix2pix_aa] predict: wrote 2 image(s) to {out}" in err


def test_an_input_that_fails_part_way_says_what_was_already_written(tmp_path, capsys, predict):
    # A truncated input sorting last stopped predict after the others were written; the error
    # line alone read as if nothing had been.
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for i in range(2):
        Image.fromarray(_img(64, 64, i)).save(inputs / f"{i}.png")
    Image.fromarray(_img(64, 64, 2)).save(inputs / "z.png")
    (inputs / "z.png").write_bytes((inputs / "z.png").read_bytes()[:200])
    with pytest.raises(ValueError, match="z.png"):
        predict(tmp_path, _dm(tmp_path, inputs, batch_size=1), out)
    assert sorted(p.name for p in out.iterdir()) == ["0_png.png", "1_png.png"]
    assert f"[pix2pix_aa] predict stopped: 2 image(s) were already written to {out}" in capsys.readouterr().err


def test_a_users_file_under_an_output_name_is_never_replaced(tmp_path, capsys, predict):
    """A file of the user's named like an output (or the inputs themselves, with the output folder
    the input folder) was replaced without a word."""
    inputs, out = tmp_path / "in", tmp_path / "out"
    inputs.mkdir()
    for name in ("a.png", "b.png"):
        Image.fromarray(_img(64, 64)).save(inputs / name)
    out.mkdir()
    (out / "b_png.png").write_bytes(b"the user's photo")
    with pytest.raises(ValueError, match=r"--predict_output_dir .*out holds b_png.png, which this predict would "
                                         r"overwrite and no earlier predict wrote"):
        predict(tmp_path, _dm(tmp_path, inputs), out)
    assert [p.name for p in out.iterdir()] == ["b_png.png"] and (out / "b_png.png").read_bytes() == b"the user's photo"
    # Its own outputs carry its mark (a PNG text chunk): a second predict into the folder replaces them.
    (out / "b_png.png").unlink()
    predict(tmp_path, _dm(tmp_path, inputs), out)
    predict(tmp_path, _dm(tmp_path, inputs / "a.png"), out)
    assert sorted(p.name for p in out.iterdir()) == ["a_png.png", "b_png.png"]
    assert all(written_by_predict(p) for p in out.iterdir())
    Image.fromarray(_img(64, 64)).save(out / "a_png.png")  # a PNG of the user's under that name
    with pytest.raises(ValueError, match="holds a_png.png, which this predict would overwrite"):
        predict(tmp_path, _dm(tmp_path, inputs), out)
    (out / "a_png.png").unlink()  # a link to predict's output elsewhere: it was written through
    (out / "a_png.png").symlink_to(out / "b_png.png")
    with pytest.raises(ValueError, match="holds a_png.png, which this predict would overwrite"):
        predict(tmp_path, _dm(tmp_path, inputs), out)


def test_predict_into_its_own_input_folder_is_refused(trained_run, tmp_path, capsys, run_cli):
    folder, run = trained_run
    inputs = tmp_path / "in"
    inputs.mkdir()
    Image.fromarray(_img(64, 64)).save(inputs / "a.png")
    with pytest.raises(SystemExit):
        run_cli(folder, ["predict", "--config", str(folder / "tiny.yaml"), "--ckpt_path",
                         str(run / "checkpoints" / "last.ckpt"), "--data.predict_dir", str(inputs),
                         "--predict_output_dir", str(inputs)])
    assert f"--predict_output_dir {inputs} is --data.predict_dir: the outputs would be written among the inputs" \
        in capsys.readouterr().err
    assert [p.name for p in inputs.iterdir()] == ["a.png"]
