"""The evaluation report a user acts on: epoch/step, shift counts, definitions, collapsed models,
one colour scale for all heatmaps, the stability spectrum and sharpness in every table."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.evaluation import report
from pix2pix_aa.evaluation.cli import main as evaluate_main
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator, options_dict


class Flat(nn.Module):
    """A collapsed generator: the same grey image whatever the input (trivially stable)."""

    def forward(self, x):
        return torch.full_like(x, 0.1)


class Aliasing(nn.Module):
    """Stride-2 subsampling then nearest upsampling: sharp but not shift-equivariant."""

    def forward(self, x):
        return F.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")


def _images(n: int = 2, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return F.avg_pool2d(torch.rand(n, 3, size + 1, size + 1, generator=g) * 2 - 1, 2, 1)  # some spatial correlation


@pytest.fixture(scope="module")
def results():
    x = _images()
    opts = EvalOptions(max_shift=4, layers=None, noise=(), chunk=1)
    models = (("flat", Flat()), ("aliasing", Aliasing()))
    return [evaluate_generator(G, x, x, opts, label=name) for name, G in models], opts


def test_a_collapsed_model_is_flagged_and_listed_last_instead_of_topping_the_table(results):
    (flat, aliasing), opts = results
    assert flat.row()["stability_crop_pooled_db"] == 200.0 > aliasing.row()["stability_crop_pooled_db"]
    assert flat.collapsed and flat.tv_ratio == 0 and not aliasing.collapsed
    table = report.markdown_table([flat, aliasing])
    rows = [ln for ln in table.splitlines() if ln.startswith("| flat") or ln.startswith("| aliasing")]
    assert rows[0].startswith("| aliasing |") and rows[1].startswith("| flat (collapsed) |")
    assert "200.00 (collapsed)" in rows[1]
    notes = report.table_notes([flat, aliasing], options_dict(opts))
    assert "Collapsed (listed last): flat (TV ratio 0.000, content lost on 100% of the images)" in notes
    # the reason fits noise that lost the content too (it said "such outputs are trivially stable")
    assert "such a model translates nothing, so its stability numbers are no result" in notes
    assert flat.to_dict()["sharpness"]["collapsed"] is True


def test_table_has_sharpness_equal_bandwidth_and_pooled_headline_columns(results):
    (flat, aliasing), _ = results
    header = report.markdown_table([aliasing]).splitlines()[0]
    for column in ("| epoch | step |", "crop pooled (dB)", "crop pooled, equal bandwidth (dB)", "crop mean (dB)",
                   "SSIM", "TV ratio", "HF ratio"):
        assert column in header
    assert header.index("crop pooled (dB)") < header.index("crop mean (dB)")  # headline first
    row = aliasing.row()
    assert row["tv_ratio"] == pytest.approx(aliasing.quality["tv"] / aliasing.quality["tv_target"], abs=1e-4)
    # Equal bandwidth: both outputs low-passed, so the inconsistency shrinks and the figure rises.
    assert row["stability_crop_eb_pooled_db"] > row["stability_crop_pooled_db"]


def test_footer_counts_the_compared_shifts_and_defines_mean_and_pooled(results):
    (_, aliasing), _ = results
    opts8 = EvalOptions(max_shift=8, layers=None, noise=())
    notes = report.table_notes([], options_dict(opts8))
    assert "63 compared shifts (dy, dx) of the 8x8 grid, (0, 0) excluded" in notes
    notes4 = report.table_notes([aliasing], options_dict(EvalOptions(max_shift=4)))
    assert "15 compared shifts" in notes4 and len(aliasing.crop.shifts) == 15
    assert "pooled = squared error pooled over every compared pixel" in notes4 and "mean = mean over images" in notes4
    assert "protocol both; crop protocol margin 0" in notes4
    # --protocol circular: the footer spoke of the crop protocol's margin.
    circular = report.table_notes([], options_dict(EvalOptions(max_shift=4, protocol="circular")))
    assert "protocol circular; equal-bandwidth" in circular and "margin" not in circular.split("Shifts:")[1][:120]


def test_help_defines_mean_pooled_and_the_lowpass(capsys):
    with pytest.raises(SystemExit):
        evaluate_main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "pooled = squared error pooled" in text and "mean = mean over images" in text
    assert "--lowpass NAME|none" in text and "equal-bandwidth" in text


def test_unknown_lowpass_is_one_error_line(trained_run, monkeypatch, tmp_path, capsys):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    assert evaluate_main([str(run), "--lowpass", "gauss", "--no-progress", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown low-pass filter 'gauss'") and "Traceback" not in err


def test_every_network_filter_is_a_lowpass_kaiser9_included(trained_run, monkeypatch, tmp_path):
    # The equal-bandwidth filter takes the names the networks take (one list, layers/filters.py).
    folder, run = trained_run
    monkeypatch.chdir(folder)
    fast = ["--max-images", "1", "--shifts", "2", "--noise", "none", "--layers", "none", "--protocol", "crop",
            "--flicker-frames", "0", "--no-progress", "--no-tensorboard"]
    assert evaluate_main([str(run), "--lowpass", "kaiser9", *fast, "--out", str(tmp_path)]) == 0
    (model,) = json.loads((tmp_path / "results.json").read_text())["models"].values()
    eb = model["crop"]["equal_bandwidth"]
    assert eb["lowpass"] == "kaiser9" and eb["lowpass_radius"] == 4


def test_tensorboard_heatmaps_share_the_colour_scale_of_the_pngs(results, monkeypatch, tmp_path):
    (flat, aliasing), opts = results
    seen: list[tuple] = []
    real = report.plot_stability_heatmap

    def recording(res, path=None, title=None, vmin=None, vmax=None, **kw):
        seen.append((res.protocol, vmin, vmax))
        return real(res, path, title=title, vmin=vmin, vmax=vmax, **kw)

    monkeypatch.setattr(report, "plot_stability_heatmap", recording)
    report.write_report([flat, aliasing], tmp_path / "out", options_dict(opts), {})
    png = sorted(set(seen))
    seen.clear()
    ranges = report.heatmap_ranges([flat, aliasing])
    for r in (flat, aliasing):
        report.log_to_tensorboard(r, tmp_path / r.label, "table", ranges=ranges, all_results=[flat, aliasing])
    assert sorted(set(seen)) == png and len(png) == 2  # one scale per protocol, the same in both places
    lo, hi = ranges["crop"]
    assert hi == 200.0 and lo < 100  # spans both models (flat at the cap, aliasing far below)


def test_report_writes_the_spectrum_plot_and_numbers(results, tmp_path):
    (flat, aliasing), opts = results
    files = report.write_report([flat, aliasing], tmp_path, options_dict(opts), {})
    assert files["spectrum"].name == "stability_spectrum.png" and files["spectrum"].stat().st_size > 1000
    model = json.loads((tmp_path / "results.json").read_text())["models"]["aliasing"]
    spectrum = model["crop"]["spectrum"]
    assert len(spectrum["stability_db"]) == 5 and spectrum["band_edges_cycles_per_pixel"][-2] == 0.25
    assert model["crop"]["equal_bandwidth"]["lowpass"] == "bin5"
    assert model["row"]["hf_ratio"] is not None and model["row"]["collapsed"] is False


def _dark_sparse(n: int = 8, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(label maps, targets) of a dark, sparse set: black images, each with one 8x8 bright object
    at a seeded place (the input marks the object's place in another colour)."""
    g = torch.Generator().manual_seed(1)
    inputs, targets = torch.full((n, 3, size, size), -1.0), torch.full((n, 3, size, size), -1.0)
    for i in range(n):
        y, x = (int(v) for v in torch.randint(4, size - 12, (2,), generator=g))
        inputs[i, 2, y:y + 8, x:x + 8] = 1.0
        targets[i, :, y:y + 8, x:x + 8] = 0.6
    return inputs, targets + 0.004 * torch.randn(targets.shape, generator=g)


class NearBlack(nn.Module):
    """A collapsed generator on dark data: a near-black image with faint noise, no object."""

    def forward(self, x):
        noise = torch.randn(x.shape[-2:], generator=torch.Generator().manual_seed(2))
        return -1 + 0.003 * noise.expand_as(x)


class Painter(nn.Module):
    """A healthy generator: paints a slightly dimmer, blurred object where the label map marks it."""

    def forward(self, x):
        obj = F.avg_pool2d((x[:, 2:3] > 0).float(), 3, 1, 1)
        return (-1 + 1.5 * obj).expand(-1, 3, -1, -1).contiguous()


def test_a_near_black_generator_on_dark_sparse_data_is_collapsed_and_a_healthy_one_is_not():
    """The faint noise of a near-black output has a TV comparable to a dark target's few edges (TV
    ratio above 0.1: the old global test passed it, with collapsed: false and a high stability);
    per image, the output lost all of its target's content, and that is what is tested now."""
    from pix2pix_aa.metrics import COLLAPSE_TV_RATIO, content_lost

    x, y = _dark_sparse()
    opts = EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=0, samples=0, protocol="crop")
    dark = evaluate_generator(NearBlack(), x, y, opts, label="dark")
    healthy = evaluate_generator(Painter(), x, y, opts, label="healthy")
    assert dark.tv_ratio > COLLAPSE_TV_RATIO  # what the global TV threshold saw: not collapsed
    assert content_lost(NearBlack()(x), y).all() and dark.content_lost == 1.0
    assert dark.collapsed and dark.row()["collapsed"] is True and dark.to_dict()["sharpness"]["content_lost"] == 1.0
    assert not content_lost(Painter()(x), y).any() and healthy.content_lost == 0.0 and not healthy.collapsed
    table = report.markdown_table([dark, healthy])
    assert table.splitlines()[-1].startswith("| dark (collapsed) |")
    notes = report.table_notes([dark, healthy], options_dict(opts))
    assert f"dark (TV ratio {dark.tv_ratio:.3f}, content lost on 100% of the images)" in notes


def test_content_is_lost_per_image_and_the_model_is_collapsed_from_half_of_them():
    from pix2pix_aa.metrics import content_lost

    x, y = _dark_sparse(4)
    out = Painter()(x)
    out[:2] = -1  # two of the four outputs lost their object
    assert content_lost(out, y).tolist() == [True, True, False, False]
    assert content_lost(y, torch.full_like(y, 0.5)).tolist() == [False] * 4  # a flat target has nothing to lose
    opts = EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=0, samples=0, protocol="crop", chunk=1)

    class Half(nn.Module):
        def forward(self, inp):
            return out[[int((x - inp[i]).abs().flatten(1).sum(1).argmin()) for i in range(inp.shape[0])]]

    half = evaluate_generator(Half(), x, y, opts, label="half")
    assert half.content_lost == 0.5 and half.collapsed  # merged over 4 chunks of one image
    out[1] = y[1]
    assert evaluate_generator(Half(), x, y, opts, label="quarter").content_lost == 0.25


def test_a_long_design_label_wraps_in_the_heatmap_title_instead_of_widening_the_figure(results, tmp_path):
    """A design label with many options ran past the heatmap (the saved PNG grew to the title's
    width and the plot shrank in it); the title now wraps and the figure keeps its width."""
    import copy

    from PIL import Image

    (_, aliasing), opts = results
    short = copy.copy(aliasing)
    long = copy.copy(aliasing)
    long.label = "a_run_with_a_long_name/version_12/last"
    long.antialias = ("bin5 (upsample_antialias ['bin5', 'bin5', 'bin5', 'bin5', 'bin5', 'none'], fullres_channels 32, "
                      "head_layers 2); trained with lambda_shift 3 (1 image a batch)")
    files = report.write_report([short, long], tmp_path, options_dict(opts), {})
    widths = {r.label: Image.open(files[f"stability_crop_{r.label}"]).size[0] for r in (short, long)}
    assert widths[long.label] <= widths[short.label] * 1.05, widths
    features = {r.label: Image.open(files[f"features_{r.label}"]).size[0] for r in (short, long) if r.features}
    assert len(set(features.values())) <= 1
    page = files["html"].read_text(encoding="utf-8")
    assert f"{long.label} [{long.antialias}]" in page.replace("&#x27;", "'")  # the full label is on the page


def test_flat_targets_get_no_sharpness_ratio_and_a_note():
    """All-black targets (16-bit files read as black) gave an HF ratio of 543948, unflagged, and
    the row ranked first."""
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    black = -torch.ones_like(x)
    flat = evaluate_generator(nn.Identity(), x, black, EvalOptions(max_shift=2, layers=None, noise=()), label="flat")
    assert flat.targets_flat and flat.row()["hf_ratio"] is None and flat.row()["tv_ratio"] is None
    notes = report.table_notes([flat], options_dict(EvalOptions(max_shift=2)))
    assert "Flat targets: flat (constant images, total variation at most 1e-6): the TV and HF ratios are not " \
           "defined" in notes
    fine = evaluate_generator(nn.Identity(), x, x, EvalOptions(max_shift=2, layers=None, noise=()), label="fine")
    assert not fine.targets_flat and fine.row()["hf_ratio"] == pytest.approx(1.0)


def test_a_tiny_sharpness_ratio_keeps_its_digits():
    """An output at 0.003 x the target has 0.003^2 = 9e-6 of its high-frequency energy: the row
    said 0.0 (4 decimals) and the table 0.0000, as if there were none at all."""

    class Faint(nn.Module):
        def __init__(self, gain: float = 0.003):
            super().__init__()
            self.gain = gain

        def forward(self, x):
            return self.gain * x

    x = _images()
    faint = evaluate_generator(Faint(), x, x, EvalOptions(max_shift=2, layers=None, noise=(), chunk=1), label="faint")
    assert faint.row()["hf_ratio"] == pytest.approx(9e-6, rel=1e-3)
    assert faint.to_dict()["sharpness"]["hf_ratio"] == pytest.approx(9e-6, rel=1e-3)
    assert faint.row()["tv_ratio"] == pytest.approx(0.003, rel=1e-3)
    cells = report.markdown_table([faint]).splitlines()[2].split(" | ")
    header = report.markdown_table([faint]).splitlines()[0].split(" | ")
    assert cells[header.index("HF ratio")] == "9e-06" and cells[header.index("TV ratio")] == "0.0030"
    # the targets' figures keep their digits too, so a CSV's tv / tv_target gives the ratio
    row = faint.row()
    assert row["quality_tv"] / row["quality_tv_target"] == pytest.approx(0.003, rel=1e-2)
    assert row["quality_hf"] / row["quality_hf_target"] == pytest.approx(9e-6, rel=1e-2)
    # and the collapsed note (a TV ratio of 0.003 is one) says its ratio, not 0.000
    fainter = evaluate_generator(Faint(3e-4), x, x, EvalOptions(max_shift=2, layers=None, noise=(), chunk=1),
                                 label="fainter")
    assert "fainter (TV ratio 0.0003, content lost" in report.table_notes([fainter], {})
