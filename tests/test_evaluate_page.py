"""The panning animation, the samples and the offline results page (index.html)."""

from __future__ import annotations

import re

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
    with pytest.raises(ValueError, match="flicker frames must be 0"):
        EvalOptions(flicker_frames=1)
    x = torch.zeros(1, 3, 16, 16)
    with pytest.raises(ValueError, match="lower --flicker-frames"):
        evaluate_generator(Identity(), x, x, EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=20))
