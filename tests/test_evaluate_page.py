"""The panning animation, the samples and the offline results page (index.html)."""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from pix2pix_aa.evaluation import report
from pix2pix_aa.evaluation.page import panning_columns, write_index_html
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator, options_dict


class Identity(nn.Module):
    def forward(self, x):
        return x


class Flat(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


class Aliasing(nn.Module):
    def forward(self, x):
        return F.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")


@pytest.fixture(scope="module")
def evaluated():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    opts = EvalOptions(max_shift=3, layers=None, noise=(), chunk=2, flicker_frames=8, flicker_images=2, samples=2)
    results = [evaluate_generator(G, x, x, opts, label=name) for name, G in (("identity", Identity()),
                                                                             ("aliasing", Aliasing()))]
    return results, opts


def test_panning_flicker_of_the_identity_is_the_cap_and_merges_over_chunks(evaluated):
    (identity, aliasing), opts = evaluated
    assert identity.row()["flicker_pooled_db"] == 200.0 and aliasing.row()["flicker_pooled_db"] < 30
    assert identity.flicker.mse.shape == (2, 7)  # the first flicker_images images, over two chunks
    assert identity.flicker.output_frames.shape == (8, 32, 32, 3) and identity.samples.shape == (2, 32, 96, 3)


def test_the_pages_state_the_frames_and_images_of_the_flicker(evaluated, tmp_path):
    """results.md and index.html gave the flicker figure without its frame and image counts (only
    results.json held them); a row of flicker over 4 frames read like one over 32."""
    (identity, aliasing), opts = evaluated
    files = report.write_report([identity, aliasing], tmp_path, options_dict(opts), {})
    for name in ("md", "html"):
        assert "panning flicker over 8 frames on the first 2 images." in files[name].read_text()
    without = EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=0, samples=0)
    x = torch.zeros(1, 3, 16, 16)
    notes = report.table_notes([evaluate_generator(Identity(), x, x, without, label="id")], options_dict(without))
    assert "; no panning flicker." in notes


def test_the_pages_show_the_noise_robustness_measured_by_default(tmp_path):
    """--noise (on by default) was written to results.csv / .json only: the printed table,
    results.md and index.html never showed it."""
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    opts = EvalOptions(max_shift=2, layers=None, noise=(0.01, 0.1), flicker_frames=0, samples=0)
    result = evaluate_generator(Identity(), x, x, opts, label="identity")
    files = report.write_report([result], tmp_path, options_dict(opts), {})
    # The identity's output moves as its input: PSNR of sigma-z noise over data range 2.
    expected = [10 * np.log10(4 / (s * s)) for s in (0.01, 0.1)]
    line = (f"identity sigma 0.01: {result.noise[0.01]:.2f}, sigma 0.1: {result.noise[0.1]:.2f}.")
    assert result.noise[0.01] == pytest.approx(expected[0], abs=0.3) and result.noise[0.1] == pytest.approx(
        expected[1], abs=0.3)
    for name in ("md", "html"):
        assert "Robustness to input noise (mean PSNR in dB between G(x) and G(x + sigma z)" in files[name].read_text()
        assert line in files[name].read_text()
    # A collapsed model's figures are marked, not left out without a word (every 2-epoch model collapses).
    flat = evaluate_generator(Flat(), x, x, opts, label="flat")
    assert flat.collapsed
    notes = report.table_notes([result, flat], options_dict(opts))
    assert "; flat (collapsed) sigma 0.01: " in notes


def test_the_animation_shows_input_and_every_model_side_by_side(evaluated, tmp_path):
    (identity, aliasing), opts = evaluated
    files = report.write_report([identity, aliasing], tmp_path, options_dict(opts), {})
    assert [c for c, _ in panning_columns([identity, aliasing])] == ["input", "identity", "aliasing"]
    with Image.open(files["gif"]) as gif:
        assert gif.n_frames == 8 and gif.size == (3 * 32 + 2 * 4, 32)
        gif.seek(1)
        second = np.asarray(gif.convert("RGB"))
    # Column 2 (identity output) shows the same frame as column 1 (the input).
    assert np.array_equal(second[:, :32], second[:, 36:68])


def test_index_html_is_written_and_links_only_files_that_exist(evaluated, tmp_path):
    (identity, aliasing), opts = evaluated
    files = report.write_report([identity, aliasing], tmp_path, options_dict(opts), {"broken.ckpt": "file not found"})
    page = files["html"].read_text()
    links = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert ({"stability_spectrum.png", "panning.gif", "samples_identity.png", "stability_crop_aliasing.png"}
            <= set(links))
    assert all((tmp_path / link).is_file() and "/" not in link for link in links)
    assert "http" not in page and "<script" not in page  # offline
    assert "<th>crop pooled (dB)</th>" in page and "broken.ckpt: file not found" in page
    # A file that is not there is not linked.
    (tmp_path / "stability_crop_aliasing.png").unlink()
    write_index_html([identity, aliasing], tmp_path, files, "notes", {}, {})
    assert "stability_crop_aliasing.png" not in (tmp_path / "index.html").read_text()


def test_bad_flicker_options_are_refused():
    with pytest.raises(ValueError, match="--flicker-frames must be 0 \\(off\\) or >= 2, got 1"):
        EvalOptions(flicker_frames=1)
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError, match="lower --flicker-frames"):
        evaluate_generator(Identity(), x, x, EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=20))


def test_runs_named_in_another_script_get_files_of_their_own(evaluated, tmp_path):
    """Two runs whose names differ only in Chinese letters: each model's figures in its own files,
    and index.html shows each model's own (the slug used to drop the letters, so the second model's
    files overwrote the first's)."""
    (identity, aliasing), opts = evaluated
    renamed = [copy.copy(identity), copy.copy(aliasing)]
    renamed[0].label, renamed[1].label = "运行甲/version_0/last", "运行乙/version_0/last"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        files = report.write_report(renamed, tmp_path, options_dict(opts), {})
    # The plot font has no CJK glyphs: boxes in the titles, not a warning per character and figure.
    assert not [w for w in caught if "missing from font" in str(w.message)]
    own = {r.label: files[f"samples_{r.label}"] for r in renamed}
    assert own[renamed[0].label].name == "samples_运行甲_version_0_last.png"
    assert own[renamed[0].label] != own[renamed[1].label]
    # The identity's samples show input == output; the aliasing model's do not.
    for r, same in zip(renamed, (True, False)):
        strip = np.asarray(Image.open(own[r.label]))[:32]
        assert np.array_equal(strip[:, :32], strip[:, 32:64]) == same, r.label
    page = files["html"].read_text(encoding="utf-8")
    for r in renamed:
        section = page.split(f">{r.label} [")[1].split("<h2")[0]
        assert own[r.label].name in section and own[[x for x in renamed if x is not r][0].label].name not in section


def test_labels_whose_slugs_coincide_get_distinct_file_names():
    stems = report.file_stems(["a/b", "a_b", "c"])
    assert stems["c"] == "c" and len(set(stems.values())) == 3
    assert stems["a/b"].startswith("a_b-") and stems["a_b"].startswith("a_b-")


def test_checkpoints_sharing_a_label_are_labelled_by_their_paths():
    from pix2pix_aa.evaluation.checkpoints import LoadedGenerator
    from pix2pix_aa.evaluation.cli import _distinct_labels

    items = [LoadedGenerator(path=Path(p), label="last", generator=nn.Identity(), hparams={}, datamodule_hparams={},
                             epoch=0) for p in ("a/last.ckpt", "b/last.ckpt")]
    items.append(LoadedGenerator(path=Path("c/x.ckpt"), label="x", generator=nn.Identity(), hparams={},
                                 datamodule_hparams={}, epoch=0))
    _distinct_labels(items)
    assert [i.label for i in items] == ["a/last.ckpt", "b/last.ckpt", "x"]
