"""The real-photo tasks (pix2pix_aa/data/photos.py): splits share no pixel, same seed same bytes,
each task's input is what it says."""

import hashlib

import numpy as np
import pytest
from PIL import Image

from pix2pix_aa.data.photos import PHOTO_NAMES, _scaled, generate_photos, gray_map, photo_cells

COUNTS = {"train": 3, "val": 2, "test": 2}


@pytest.mark.parametrize("size", [128, 256])
def test_no_pixel_of_a_photograph_is_in_two_splits(size):
    cells = photo_cells(0, size)
    owner: dict[str, np.ndarray] = {}
    for k, boxes in enumerate(cells.values()):
        for name, top, left in boxes:
            h, w = _scaled(name, size).shape[:2]
            assert top + size <= h and left + size <= w, "a cell leaves its photograph"
            grid = owner.setdefault(name, np.full((h, w), -1))
            assert (grid[top:top + size, left:left + size] == -1).all(), f"{name}: cells overlap"
            grid[top:top + size, left:left + size] = k
    assert set(owner) == set(PHOTO_NAMES)
    assert cells["val"] and cells["test"] and len(cells["train"]) > 2 * len(cells["test"])


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


def test_same_seed_same_bytes_other_seed_other_split(tmp_path):
    a, b, c = (generate_photos(tmp_path / n, seed=s, splits=COUNTS, size=64) for n, s in (("a", 0), ("b", 0), ("c", 1)))
    assert _digest(a) == _digest(b) and len(_digest(a)) == 7
    assert _digest(a) != _digest(c)
    assert photo_cells(0, 64) != photo_cells(1, 64)


def test_colorize_input_is_the_targets_luma(tmp_path):
    root = generate_photos(tmp_path / "col", seed=0, splits=COUNTS, size=64, task="colorize")
    pair = np.asarray(Image.open(root / "test" / "1.png"))
    photo, gray = pair[:, :64], pair[:, 64:]
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    luma = 0.2125 * photo[..., 0] + 0.7154 * photo[..., 1] + 0.0721 * photo[..., 2]  # rgb2gray's weights
    assert np.abs(gray[..., 0] - luma).max() <= 1.0
    assert (gray_map(photo) == gray).all()
    assert photo.std(axis=-1).mean() > 1, "the target keeps its colour"


def test_more_images_than_cells_is_refused_with_the_counts(tmp_path):
    with pytest.raises(ValueError, match=r"split 'test': 500 images asked, but the 128px photo cells give 17"):
        generate_photos(tmp_path / "x", splits={"test": 500}, size=128)
    assert not (tmp_path / "x").exists()


def test_datamodule_refuses_an_edges_folder_for_colorize(tmp_path):
    from pix2pix_aa.data.datamodule import Pix2PixDataModule

    generate_photos(tmp_path / "p", seed=0, splits=COUNTS, size=64, task="edges")
    dm = Pix2PixDataModule(data_dir=str(tmp_path / "p"), dataset="colorize", num_workers=0)
    with pytest.raises(ValueError, match=r"holds the real-photo task 'photos' .* but the dataset is 'colorize'"):
        dm.prepare_data()


@pytest.mark.parametrize("args, message", [
    (["--size", "0"], "size must be an integer >= 16, got 0"),
    (["--size", "2000"], "the largest size with one in every split is "),
    (["--train", "0"], "--train 0: a data set without training images"),
])
def test_the_command_refuses_what_would_write_an_empty_or_no_data_set(tmp_path, capsys, args, message):
    from pix2pix_aa.data.photos import main

    with pytest.raises(SystemExit) as info:
        main(["--out", str(tmp_path / "p"), *args])
    assert info.value.code == 2 and message in capsys.readouterr().err
    assert not (tmp_path / "p").exists()


def test_the_largest_size_gives_every_split_a_cell_and_the_next_one_does_not(tmp_path):
    from pix2pix_aa.data.photos import largest_size

    size = largest_size(0)
    assert all(photo_cells(0, size).values()) and not all(photo_cells(0, size + 16).values())
    with pytest.raises(ValueError, match=f"the largest size with one in every split is {size}"):
        generate_photos(tmp_path / "p", size=size + 16)  # the data module's call: no split counts
    assert not (tmp_path / "p").exists()


def test_an_output_path_that_is_a_file_is_one_line(tmp_path, capsys):
    from pix2pix_aa.data.photos import main

    (tmp_path / "f").write_text("x")
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path / "f"), "--overwrite"])
    assert "is a file, not a data set folder" in capsys.readouterr().err
