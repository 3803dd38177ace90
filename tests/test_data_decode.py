"""The one decode function: EXIF orientation, explicit modes, the file types accepted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_aa.data import AlignedDataset, PairedFolderDataset, decode_image, image_header
from pix2pix_aa.data.image_io import IMAGE_EXTENSIONS, list_images

ORIENTATION = 0x0112  # the EXIF tag


def _photo(h: int = 32, w: int = 48) -> np.ndarray:
    """A non-square RGB image with a bright top-left quadrant: any flip or rotation shows."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 2] = 60
    img[: h // 2, : w // 2] = (250, 200, 40)
    return img


def _save_tagged(arr: np.ndarray, path: Path, orientation: int) -> Path:
    """Save ``arr``'s pixels with an EXIF orientation tag (what a camera writes)."""
    im = Image.fromarray(arr)
    exif = im.getexif()
    exif[ORIENTATION] = orientation
    kwargs = ({"quality": 98} if path.suffix in (".jpg", ".jpeg")
              else {"lossless": True} if path.suffix == ".webp" else {})
    im.save(path, exif=exif.tobytes(), **kwargs)
    return path


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


def test_jpeg_tagged_rotate_180_loads_upright(tmp_path):
    upright = _photo()
    stored = np.rot90(upright, 2)  # the camera stores the pixels upside down and tags "rotate 180"
    path = _save_tagged(np.ascontiguousarray(stored), tmp_path / "r180.jpg", orientation=3)
    got = _hwc(decode_image(path))
    assert got.shape == upright.shape
    assert np.abs(got.astype(int) - upright).mean() < 3  # JPEG rounding only
    assert image_header(path)[:2] == (48, 32)


@pytest.mark.parametrize("ext", [".jpg", ".png", ".webp", ".tif"])
def test_rotate_90_tag_on_a_non_square_photo_gives_the_transposed_size(tmp_path, ext):
    upright = _photo(32, 48)  # viewed: 48 wide, 32 high
    stored = np.ascontiguousarray(np.rot90(upright, 1))  # stored 32 wide, 48 high; tag 6 = rotate 90 CW to view
    path = _save_tagged(stored, tmp_path / f"r90{ext}", orientation=6)
    assert image_header(path) == (48, 32, "RGB")  # the header check reports the oriented size too
    got = _hwc(decode_image(path))
    assert got.shape == (32, 48, 3)
    err = np.abs(got.astype(int) - upright)
    if ext == ".jpg":
        assert err.mean() < 3  # JPEG rounding (any other orientation is off by ~50 on average)
    else:
        assert err.max() == 0


def test_tagged_jpeg_half_of_an_aligned_pair_is_aligned_with_its_label(tmp_path):
    """An aligned A|B file whose JPEG is tagged rotate-180: the pair comes out aligned and upright."""
    a = _photo(32, 32)
    b = 255 - a
    ab = np.concatenate([a, b], axis=1)
    (tmp_path / "train").mkdir()
    _save_tagged(np.ascontiguousarray(np.rot90(ab, 2)), tmp_path / "train" / "1.jpg", orientation=3)
    item = AlignedDataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)[0]
    got_a = ((item["input"] + 1) * 127.5).permute(1, 2, 0).numpy()
    assert np.abs(got_a - a).mean() < 3


def test_paired_rotate_90_photo_matches_its_upright_label(tmp_path):
    """A 90-degree tag on a non-square photo: used to be a size-mismatch error, now the pair loads."""
    photo = _photo(32, 48)
    for side in ("A", "B"):
        (tmp_path / "train" / side).mkdir(parents=True)
    _save_tagged(np.ascontiguousarray(np.rot90(photo, 1)), tmp_path / "train" / "A" / "p.jpg", orientation=6)
    Image.fromarray(255 - photo).save(tmp_path / "train" / "B" / "p.png")
    ds = PairedFolderDataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)
    item = ds[0]
    assert item["input"].shape == item["target"].shape == (3, 32, 32)
    assert (item["input"] + item["target"]).abs().mean() < 0.05  # B = 255 - A, so aligned pixels sum to ~0


@pytest.mark.parametrize("ext", [".bmp", ".tif", ".tiff", ".TIF"])
def test_bmp_and_tiff_are_accepted(tmp_path, ext):
    assert {".bmp", ".tif", ".tiff"} <= set(IMAGE_EXTENSIONS)
    img = _photo(32, 64)
    (tmp_path / "train").mkdir()
    Image.fromarray(img).save(tmp_path / "train" / f"x{ext}", format="BMP" if ext == ".bmp" else "TIFF")
    ds = AlignedDataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)
    assert [p.name for p in ds.files] == [f"x{ext}"]
    np.testing.assert_array_equal(_hwc(decode_image(ds.files[0])), img)


def test_sixteen_bit_grayscale_is_scaled_to_eight_bits(tmp_path):
    arr = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    got = decode_image(tmp_path / "g16.png", channels=1)
    assert got.shape == (1, 32, 32) and got.dtype == torch.uint8
    np.testing.assert_array_equal(got[0].numpy(), np.round(arr / 257.0).astype(np.uint8))


def test_a_float_image_is_refused_at_start_up_not_read_as_black(tmp_path):
    """A 32-bit float TIFF in [0, 1]: Pillow's conversion truncated it to 0..1 of 255 (black), with
    only a 'converting' notice, and the table then showed an HF ratio of 486355."""
    (tmp_path / "train").mkdir()
    pair = np.concatenate([np.random.default_rng(0).random((32, 32)), np.full((32, 32), 0.5)], 1).astype(np.float32)
    path = tmp_path / "train" / "x.tif"
    Image.fromarray(pair, mode="F").save(path)
    for read in (lambda: decode_image(path), lambda: AlignedDataset(tmp_path, "train", "AtoB", load_size=32,
                                                                    crop_size=32, train=False)):
        with pytest.raises(ValueError, match=r"x.tif: 32-bit float image \(mode F\), whose values have no standard "
                                             r"scale"):
            read()


def test_a_sixteen_bit_file_of_eight_bit_values_is_refused_at_start_up(tmp_path):
    """Class ids 0..11 (or 8-bit data) in a 16-bit PNG were scaled by 1/257 to all zeros: black."""
    (tmp_path / "train").mkdir()
    arr = np.concatenate([np.arange(32 * 32).reshape(32, 32) % 12, np.full((32, 32), 7)], 1).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "train" / "ids.png")
    for read in (lambda: decode_image(tmp_path / "train" / "ids.png"),
                 lambda: AlignedDataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)):
        with pytest.raises(ValueError, match=r"ids.png: 16-bit image \(mode I;16\) whose values are all in 0..11"):
            read()
    # 12-bit data (0..4080) read as at most 16 of 255.
    Image.fromarray((arr * 340).astype(np.uint16)).save(tmp_path / "train" / "ids.png")
    with pytest.raises(ValueError, match=r"values are all in 0..3740: 8- to 12-bit data"):
        decode_image(tmp_path / "train" / "ids.png")


def test_a_sixteen_bit_colour_file_of_eight_bit_values_is_refused_at_start_up(tmp_path):
    """Pillow reads a 16-bit RGB TIFF as 8-bit RGB keeping the high bytes: 0..255 values came out black."""
    tifffile = pytest.importorskip("tifffile")
    (tmp_path / "train").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (32, 64, 3)).astype(np.uint16)
    tifffile.imwrite(tmp_path / "train" / "x.tif", rgb, photometric="rgb")
    for read in (lambda: decode_image(tmp_path / "train" / "x.tif"),
                 lambda: AlignedDataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)):
        with pytest.raises(ValueError, match=r"x.tif: 16-bit image \(mode RGB, 16 bits a sample\) whose values are "
                                             r"all in 0..255"):
            read()
    tifffile.imwrite(tmp_path / "train" / "x.tif", rgb * 257, photometric="rgb")  # the full 16-bit range: read
    assert int(decode_image(tmp_path / "train" / "x.tif").max()) == 255


def test_a_tiff_pillow_cannot_read_is_named_as_such_not_as_damaged(tmp_path):
    tifffile = pytest.importorskip("tifffile")
    (tmp_path / "train").mkdir()
    path = tmp_path / "train" / "x.tif"
    tifffile.imwrite(path, np.random.default_rng(0).random((32, 64)))  # float64: Pillow cannot identify it
    for read in (lambda: decode_image(path), lambda: AlignedDataset(tmp_path, "train", "AtoB", load_size=32,
                                                                    crop_size=32, train=False)):
        with pytest.raises(ValueError, match=r"x.tif: cannot decode this TIFF: a sample format Pillow does not read"):
            read()


def test_decode_image_bad_arguments_name_the_option(tmp_path):
    Image.fromarray(_photo()).save(tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"channels must be one of \(1, 3\), got 2"):
        decode_image(tmp_path / "x.png", channels=2)
    with pytest.raises(FileNotFoundError, match=r"image file .*nope\.png does not exist"):
        decode_image(tmp_path / "nope.png")


def test_listing_is_natural_and_case_insensitive(tmp_path):
    for name in ("10.png", "2.JPG", "1.tiff", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images(tmp_path, "x")] == ["1.tiff", "2.JPG", "10.png"]


@pytest.mark.parametrize("layout", ["aligned", "paired"])
def test_training_data_names_the_files_it_skips_and_refuses_broken_image_links(tmp_path, capsys, layout):
    """A split's .gif / .tga files were left out without a word (12 of 16 files, the count the only
    hint), and a link named like an image that points at nothing too (in a paired set, so was its
    partner, never named as unmatched)."""
    pair = np.concatenate([_photo(), _photo()], axis=1)
    sides = {"aligned": [tmp_path / "train"], "paired": [tmp_path / "train" / "A", tmp_path / "train" / "B"]}[layout]
    for folder in sides:
        folder.mkdir(parents=True)
        Image.fromarray(pair if layout == "aligned" else _photo()).save(folder / "1.png")
        Image.fromarray(pair if layout == "aligned" else _photo()).save(folder / "2.gif")
        (folder / ".DS_Store").write_bytes(b"")
        (folder / "._1.png").write_bytes(b"\x00\x05\x16\x07")  # macOS AppleDouble: stopped the run, unreadable
    dataset = AlignedDataset if layout == "aligned" else PairedFolderDataset
    assert len(dataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)) == 1
    err = capsys.readouterr().err
    assert "skipped 1 file(s) that are not .png/.jpg/.jpeg/.webp/.bmp/.tif/.tiff images: 2.gif" in err
    assert "skipped 1 hidden file(s) named like images: ._1.png (macOS writes ._<name> resource files" in err
    assert ".DS_Store" not in err
    (sides[0] / "3.png").symlink_to(tmp_path / "moved" / "3.png")
    with pytest.raises(FileNotFoundError, match=r"1 link\(s\) to images that do not exist: 3\.png \(3\.png -> "):
        dataset(tmp_path, "train", "AtoB", load_size=32, crop_size=32, train=False)
