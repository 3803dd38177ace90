"""Bad input gets a clear error naming the file / option and what was expected (one test per case)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pix2pix_aa.data import AlignedDataset, PairedFolderDataset
from pix2pix_aa.data.image_io import decode_image


def _rgb(h: int = 32, w: int = 64, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def _split(tmp_path: Path, *images: tuple[str, np.ndarray], split: str = "train") -> Path:
    folder = tmp_path / split
    folder.mkdir(parents=True, exist_ok=True)
    for name, arr in images:
        Image.fromarray(arr).save(folder / name)
    return tmp_path


def _aligned(root: Path, **kw) -> AlignedDataset:
    kw.setdefault("load_size", 32)
    kw.setdefault("crop_size", 32)
    return AlignedDataset(root, "train", **kw)


def test_missing_root(tmp_path):
    root = tmp_path / "nope"
    with pytest.raises(FileNotFoundError,
                       match=re.escape(str(root)) + ".*does not exist; pass the folder .*--data.data_dir"):
        _aligned(root)


def test_missing_split_folder(tmp_path):
    _split(tmp_path, ("1.png", _rgb()), split="val")
    with pytest.raises(FileNotFoundError, match=r"split folder .*train does not exist \(found folders: \['val'\]\)"):
        _aligned(tmp_path)


def test_empty_split(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "notes.txt").write_text("no images here")
    with pytest.raises(FileNotFoundError,
                       match=r"split 'train'.*no image files .* in .*train \(it holds 1 other entries\)"):
        _aligned(tmp_path)


def test_odd_width_aligned_image(tmp_path):
    _split(tmp_path, ("odd.png", _rgb(32, 65)))
    with pytest.raises(ValueError, match=r"odd\.png: aligned A\|B image must have an even width .* got 65x32"):
        _aligned(tmp_path)


def test_half_smaller_than_crop_size_is_upscaled_with_one_line(tmp_path, capsys):
    """resize_and_crop resizes before it crops, so a small image is upscaled, as the reference
    pix2pix does (it used to be refused)."""
    _split(tmp_path, ("small.png", _rgb(32, 48)))
    ds = _aligned(tmp_path)
    assert "1 image(s) smaller than crop_size=32 are upscaled by resize_and_crop: " in capsys.readouterr().err
    assert tuple(ds[0]["input"].shape[-2:]) == (32, 32)


def test_not_an_image_file(tmp_path):
    _split(tmp_path, ("1.png", _rgb()))
    (tmp_path / "train" / "2.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(ValueError, match=r"2\.jpg: not a readable image"):
        _aligned(tmp_path)


def test_empty_file(tmp_path):
    _split(tmp_path, ("1.png", _rgb()))
    (tmp_path / "train" / "2.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"2\.png: file is empty \(0 bytes\)"):  # the data set said "not readable"
        _aligned(tmp_path)
    with pytest.raises(ValueError, match=r"2\.png: file is empty"):
        decode_image(tmp_path / "train" / "2.png")


@pytest.mark.parametrize("fmt", ["png", "jpg"])
def test_truncated_file_raises_not_black(tmp_path, fmt):
    _split(tmp_path, (f"1.{fmt}", _rgb()))
    f = tmp_path / "train" / f"1.{fmt}"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])  # header intact: passes the header scan
    ds = _aligned(tmp_path)
    with pytest.raises(ValueError, match=rf"1\.{fmt}: cannot decode image, the file is truncated or corrupt"):
        ds[0]


def _one_plain_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Warning" not in err and "warn(" not in err  # no warning class, no source line
    return lines[0]


def test_grayscale_converted_with_one_line(tmp_path, capsys, recwarn):
    gray = _rgb()[..., 0]
    _split(tmp_path, ("g.png", gray), ("h.png", gray))
    ds = _aligned(tmp_path, grayscale="convert")
    line = _one_plain_line(capsys.readouterr().err)
    assert re.fullmatch(r"\[pix2pix_aa\] split 'train' of aligned data set .*: converting 2 image\(s\) "
                        r"\(2 is grayscale -> 3-channel RGB\): .*g\.png, .*h\.png", line), line
    assert not recwarn.list
    ds[0], ds[1]  # reading them adds nothing
    assert capsys.readouterr().err == "" and not recwarn.list
    item = ds[0]
    assert item["input"].shape == (3, 32, 32)
    assert (item["input"][0] == item["input"][1]).all() and (item["input"][1] == item["input"][2]).all()


def test_grayscale_refused(tmp_path):
    _split(tmp_path, ("g.png", _rgb()[..., 0]))
    with pytest.raises(ValueError, match=r"g\.png: image is grayscale \(mode L\); expected 3-channel RGB\. "
                                         r"Pass grayscale='convert' to convert such files, or input_nc/output_nc=1"):
        _aligned(tmp_path, grayscale="error")


def test_rgba_converted_with_one_line_and_refused(tmp_path, capsys):
    rgba = np.concatenate([_rgb(), np.full((32, 64, 1), 128, np.uint8)], axis=-1)
    _split(tmp_path, ("a.png", rgba))
    ds = _aligned(tmp_path, train=False)
    assert re.search(r"converting 1 image\(s\) \(1 has an alpha channel -> 3-channel RGB\): .*a\.png",
                     _one_plain_line(capsys.readouterr().err))
    expected = np.asarray(Image.open(tmp_path / "train" / "a.png"))[:, :32, :3]
    got = ((ds[0]["input"].permute(1, 2, 0).numpy() + 1) * 127.5).round()
    np.testing.assert_array_equal(got, expected)  # alpha dropped, colour kept
    with pytest.raises(ValueError, match=r"a\.png: image has an alpha channel \(mode RGBA\)"):
        _aligned(tmp_path, grayscale="error")


def test_paired_mismatched_names(tmp_path):
    for side, stems in (("A", ["1", "2", "3"]), ("B", ["1", "2", "4"])):
        (tmp_path / "train" / side).mkdir(parents=True)
        for s in stems:
            Image.fromarray(_rgb(32, 32)).save(tmp_path / "train" / side / f"{s}.png")
    with pytest.raises(ValueError, match=r"A/ and B/ file names do not match; only in A: \['3'\], only in B: \['4'\]"):
        PairedFolderDataset(tmp_path, "train", load_size=32, crop_size=32)


def test_paired_duplicate_stems_refused(tmp_path):
    """x.png and x.jpg in A/: pairs are matched by stem, so one of them used to be dropped silently."""
    for side in ("A", "B"):
        (tmp_path / "train" / side).mkdir(parents=True)
    for name in ("A/x.png", "A/x.jpg", "B/x.png"):
        Image.fromarray(_rgb(32, 32)).save(tmp_path / "train" / name)
    with pytest.raises(ValueError, match=r"A/ holds 2 files with the stem 'x' \(x\.jpg, x\.png\); pairs are "
                                         r"matched by stem: rename or remove all but one"):
        PairedFolderDataset(tmp_path, "train", load_size=32, crop_size=32)


def test_paired_size_mismatch(tmp_path):
    for side, w in (("A", 32), ("B", 40)):
        (tmp_path / "train" / side).mkdir(parents=True)
        Image.fromarray(_rgb(32, w)).save(tmp_path / "train" / side / "x.png")
    with pytest.raises(ValueError, match=r"paired images differ in size: .*A/x\.png is 32x32, .*B/x\.png is 40x32"):
        PairedFolderDataset(tmp_path, "train", load_size=32, crop_size=32)


def test_paired_missing_side_folder(tmp_path):
    (tmp_path / "train" / "A").mkdir(parents=True)
    Image.fromarray(_rgb(32, 32)).save(tmp_path / "train" / "A" / "x.png")
    with pytest.raises(FileNotFoundError, match=r"\(B side\): folder .*train/B does not exist"):
        PairedFolderDataset(tmp_path, "train", load_size=32, crop_size=32)


def test_the_other_layout_is_named(tmp_path):
    # "no image files ... (it holds 2 other entries)" and "train/A does not exist" did not say
    # that the folder is in the other layout.
    paired, aligned = tmp_path / "paired", tmp_path / "aligned"
    for side in ("A", "B"):
        (paired / "train" / side).mkdir(parents=True)
        Image.fromarray(_rgb(32, 32)).save(paired / "train" / side / "x.png")
    with pytest.raises(FileNotFoundError, match=r"holds A/ and B/ folders, not A\|B image files: that is the paired "
                                                r"layout; pass --data.dataset paired"):
        _aligned(paired)
    _split(aligned, ("1.png", _rgb()))
    with pytest.raises(FileNotFoundError, match=r"holds image files but no A/ and B/ folders: A\|B files side by side "
                                                r"are the aligned layout; pass --data.dataset aligned"):
        PairedFolderDataset(aligned, "train", load_size=32, crop_size=32)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"crop_size": 300, "load_size": 286}, r"crop_size \(300\) must not exceed load_size \(286\)"),
        ({"direction": "AtoC"}, r"direction must be one of \('AtoB', 'BtoA'\), got 'AtoC'"),
        ({"grayscale": "drop"}, r"grayscale must be one of \('convert', 'error'\)"),
        ({"load_size": 0}, r"load_size must be a positive integer"),
    ],
)
def test_bad_options_raise_before_reading(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        AlignedDataset(tmp_path / "does-not-exist", "train", **kwargs)
