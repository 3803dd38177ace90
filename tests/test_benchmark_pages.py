"""studies/reproduce.py and studies/seeds.py: their pages are computed from an evaluation's
results.json (no training here: small fixed operators stand in for generators)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.evaluation.report import write_report
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator, options_dict

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def reproduce():
    from studies import reproduce

    return reproduce


@pytest.fixture(scope="module")
def seeds(reproduce):
    from studies import seeds

    return seeds


class Op(nn.Module):
    def features(self, x):  # one "layer", so the feature-distance figure has something to draw
        return {"out": (self(x), 1)}


class Aliasing(Op):
    """Sub-sampling then nearest up-sampling: sharp and shift-unstable."""

    def forward(self, x):
        return F.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")


class Smoothed(Op):
    """The same operator, then a 5x5 box blur: more stable and visibly smoother."""

    def forward(self, x):
        y = Aliasing()(x)
        return F.avg_pool2d(F.pad(y, (2, 2, 2, 2), mode="reflect"), 5, stride=1)


class Identity(Op):
    """Exactly shift-equivariant."""

    def forward(self, x):
        return x


OPS = {"baseline": Aliasing, "bin5": Smoothed, "aps": Identity}
OPTS = EvalOptions(max_shift=3, layers=("all",), noise=(), flicker_frames=4, flicker_images=1, samples=0)


def _evaluate(out: Path, labels: dict[str, str], ops: dict[str, type]) -> dict:
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    results = [evaluate_generator(ops[n](), x, x.flip(-1), OPTS, label=label) for n, label in labels.items()]
    write_report(results, out, {**options_dict(OPTS), "code": {"version": "test", "git_commit": "abc1234"}}, {})
    return json.loads((out / "results.json").read_text())


def test_results_page_states_the_figures_of_results_json(reproduce, tmp_path):
    labels = {n: f"cpu_quick_{n}/main/last" for n in OPS}
    res = _evaluate(tmp_path, labels, OPS)
    page = reproduce.render_page(res, res, res, labels, {n: None for n in labels}, ["--parallel", "1"], 60.0, 1, 1,
                                 ["baseline", "bin5"])
    rows = {n: res["models"][l]["row"] for n, l in labels.items()}
    b, s = rows["baseline"], rows["bin5"]
    head = next(line for line in page.splitlines() if line.startswith("| model | crop pooled (dB) |"))
    for title in ("crop mean (dB)", "crop pooled, equal bandwidth (dB)", "circular pooled (dB)",
                  "panning flicker (dB)", "SSIM", "TV ratio", "HF ratio"):
        assert f"| {title} |" in head
    raw = s["stability_crop_pooled_db"] - b["stability_crop_pooled_db"]
    eb = s["stability_crop_eb_pooled_db"] - b["stability_crop_eb_pooled_db"]
    sentence = next(line for line in page.splitlines() if line.startswith("bin5's gain over the baseline"))
    assert f"{raw:+.2f} dB raw, {eb:+.2f} dB at equal bandwidth" in sentence
    assert f"TV ratio is {s['tv_ratio']:.3f} vs the baseline's {b['tv_ratio']:.3f}" in sentence
    assert abs(s["tv_ratio"] - b["tv_ratio"]) > reproduce.NOISE["tv_ratio"]  # the blur is visible ...
    assert "the output quality is not the same" in sentence and "within the noise" not in sentence  # ... and said
    flat = " ".join(page.split())  # the only "equal quality" is the rule for reading the page
    assert flat.count("equal quality") == 1 and "is only a gain at equal quality when SSIM and TV ratio" in flat
    assert f"{rows['aps']['stability_crop_pooled_db']:.2f}" in page
    assert "`data/tiny`" not in page and "commit abc1234" in page


def test_results_page_refuses_an_older_results_json(reproduce):
    old = {"models": {"m": {"row": {"stability_crop_db": 20.0, "quality_psnr": 15.0}}}}
    with pytest.raises(SystemExit, match="older evaluate.py"):
        reproduce.table(old, {"baseline": "m"})


def test_render_only_redraws_from_stored_results(reproduce, tmp_path, monkeypatch):
    labels = {n: f"cpu_quick_{n}/{reproduce.VERSION}/last" for n in OPS}
    out = tmp_path / "outputs" / "repro"
    for d in ("facades", "facades_seed1", "photos"):
        _evaluate(out / d, labels, OPS)
    (out / "study.json").write_text(json.dumps({"seconds": 120.0, "argv": ["--parallel", "2", "--threads", "1"]}))
    monkeypatch.setattr(reproduce, "ROOT", tmp_path)
    monkeypatch.setattr(reproduce, "DOCS", tmp_path / "docs")
    monkeypatch.setattr(reproduce, "FIGS", tmp_path / "docs" / "images" / "results")
    monkeypatch.setattr(reproduce, "run_dir", lambda name: tmp_path / "runs" / name)  # no runs: figure skipped
    (tmp_path / "docs").mkdir()
    assert reproduce.main(["--render-only", "--variants", *OPS]) == 0
    page = (tmp_path / "docs" / "RESULTS.md").read_text()
    assert "python -m studies.reproduce --parallel 2 --threads 1" in page
    figs = tmp_path / "docs" / "images" / "results"
    for name in ("feature_distance.png", "stability_vs_shift_crop.png", "stability_spectrum.png", "panning.gif",
                 "results_facades.json"):
        assert (figs / name).is_file(), name
    for link in (line.split("](")[1].rstrip(")") for line in page.splitlines() if line.startswith("![")):
        assert link == "images/results/shifted_outputs.png" or (tmp_path / "docs" / link).is_file(), link


def test_seed_page_uses_the_pooled_headline_and_sharpness(seeds, tmp_path, monkeypatch):
    ops = {"baseline": Aliasing, "bin5": Smoothed}
    labels = {seeds.label(v, s): v for s in (0, 1) for v in ops}
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    results = [evaluate_generator(ops[v](), x + 0.01 * k, (x + 0.01 * k).flip(-1), OPTS, label=lab)
               for k, (lab, v) in enumerate(labels.items())]
    write_report(results, tmp_path, options_dict(OPTS), {})
    payload = json.loads((tmp_path / "results.json").read_text())
    monkeypatch.setattr(seeds, "DOCS", tmp_path)
    seeds.write_page(payload, list(ops), [0, 1], ["--seeds", "1"], 60.0)
    page = (tmp_path / "RESULTS_SEEDS.md").read_text()
    assert "## Gap to the baseline, seed-matched (crop pooled, dB)" in page and "TV ratio" in page
    rows = {(v, s): payload["models"][seeds.label(v, s)]["row"] for v in ops for s in (0, 1)}
    gap0 = rows[("bin5", 0)]["stability_crop_pooled_db"] - rows[("baseline", 0)]["stability_crop_pooled_db"]
    assert f"{gap0:+.2f}" in page


def test_seed_runs_use_the_adam_of_their_seed0_run(seeds, tmp_path, monkeypatch):
    monkeypatch.setattr(seeds, "run_dir", lambda name: tmp_path / name)
    (tmp_path / "baseline").mkdir()
    (tmp_path / "baseline" / "config.yaml").write_text("model:\n  fused_adam: true\n")
    (tmp_path / "bin5").mkdir()
    (tmp_path / "bin5" / "config.yaml").write_text("model:\n  lr: 0.0002\n")  # predates the option
    assert seeds.train_extra("baseline", 2) == ("--data.seed", "2", "--model.fused_adam", "true")
    assert seeds.train_extra("bin5", 1)[-1] == "false"


@pytest.fixture(scope="module")
def tv_bands():
    from studies import tv_bands

    return tv_bands


def test_a_checkerboard_adds_tv_ratio_that_the_nyquist_band_filter_takes_away(tv_bands):
    g = torch.Generator().manual_seed(0)
    # Smooth targets (a 9x9 box of noise: little energy next to 0.5 cycles/px) and the same
    # targets plus a transposed conv's checkerboard (all of it at 0.5 cycles/px).
    targets = F.avg_pool2d(torch.rand(4, 3, 72, 72, generator=g) * 2 - 1, 9, stride=1)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = 0.05 * (-1.0) ** (yy + xx)
    ratios = tv_bands.tv_ratios(targets + checker, targets, ["none", "kaiser13_c0.45_w0.08", "bin5"])
    assert ratios["none"] > 1.5  # the pattern's TV counts as sharpness
    assert ratios["kaiser13_c0.45_w0.08"] == pytest.approx(1.0, abs=0.03)  # gain 0.01 at 0.5
    assert ratios["bin5"] == pytest.approx(1.0, abs=0.03)
    same = tv_bands.tv_ratios(targets, targets, ["none", "kaiser13_c0.45_w0.08"])
    assert same == {"none": pytest.approx(1.0), "kaiser13_c0.45_w0.08": pytest.approx(1.0)}


def test_the_top_band_tells_a_checkerboard_from_detail_in_place(tv_bands):
    g = torch.Generator().manual_seed(0)
    # Targets with sharp edges (nearest-upsampled noise: energy up to 0.5 cycles/px).
    targets = F.interpolate(torch.rand(4, 3, 16, 16, generator=g) * 2 - 1, scale_factor=4, mode="nearest")
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    checker = 0.3 * (-1.0) ** (yy + xx)
    assert tv_bands.top_band(targets, targets) == (pytest.approx(1.0), pytest.approx(1.0))
    energy, corr = tv_bands.top_band(targets + checker, targets)
    assert energy > 2 and corr < 0.6  # the pattern's energy, unrelated to the targets' band
    assert tv_bands.top_band(-targets, targets)[1] == pytest.approx(-1.0)
    energy, _ = tv_bands.top_band(tv_bands.filtered(targets, "kaiser13_c0.38_w0.1"), targets)
    assert energy < 0.01  # stopped from 0.43 on: (almost) nothing left in the band
    with pytest.raises(ValueError, match="lower edge"):
        tv_bands.top_band(targets, targets, 0.5)


def test_tv_bands_prints_one_row_per_checkpoint(tv_bands, trained_run, monkeypatch, capsys):
    folder, run = trained_run
    monkeypatch.chdir(folder)  # the run recorded its data folder relative to here
    assert tv_bands.main([str(run), "--max-images", "2", "--filters", "none", "bin5"]) == 0
    assert torch.is_grad_enabled()  # no global state left behind for later tests
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 4  # per table: header + the run
    ratios = [float(v) for v in rows[1].strip("| ").split(" | ")[-2:]]
    assert all(0 < r < 10 for r in ratios)
    energy, corr = (float(v) for v in rows[3].strip("| ").split(" | ")[-2:])
    assert energy >= 0 and -1 <= corr <= 1


def test_tv_bands_marks_a_collapsed_generator(tv_bands):
    assert tv_bands.marked("run", 0.05) == "run (collapsed: TV ratio 0.050 < 0.1)"
    assert tv_bands.marked("run", 0.41, 0.75) == "run (collapsed: content lost on 75% of the images)"
    assert tv_bands.marked("run", 0.41, 0.25) == "run" and tv_bands.marked("run", 0.41) == "run"
    assert tv_bands.marked("run", 0.1) == "run"


@pytest.mark.parametrize("args, expected", [
    (["--filters", "kaiserX"], "--filters kaiserX"),
    (["--band", "0.7"], "--band 0.7"),
    (["--max-images", "0"], "--max-images 0"),
    (["--data-dir", "no/such/folder"], "no/such/folder"),
])
def test_tv_bands_refuses_bad_options_in_one_line(tv_bands, trained_run, monkeypatch, capsys, args, expected):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    with pytest.raises(SystemExit) as exc:
        tv_bands.main([str(run), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
