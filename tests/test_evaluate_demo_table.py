"""The demo's summary table is read from results.json: stability beside sharpness."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.demo import DEMO_COLUMNS, demo_table
from pix2pix_aa.evaluation.report import write_report
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator, options_dict


class Aliasing(nn.Module):
    def forward(self, x):
        return F.interpolate(x[..., ::2, ::2], scale_factor=2, mode="nearest")


class Flat(nn.Module):
    def forward(self, x):
        return torch.zeros_like(x)


def test_demo_table_has_the_new_columns_and_the_written_numbers(tmp_path):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    opts = EvalOptions(max_shift=3, layers=None, noise=(), flicker_frames=4, flicker_images=1, samples=0)
    results = [evaluate_generator(G, x, x.flip(-1), opts, label=n, antialias=a)
               for n, G, a in (("alias", Aliasing(), "none"), ("flat", Flat(), "bin5"))]
    write_report(results, tmp_path, options_dict(opts), {})
    lines = demo_table(tmp_path / "results.json").splitlines()
    assert lines[0] == ("| model | crop pooled (dB) | crop pooled, equal bandwidth (dB) | panning flicker (dB) | "
                        "PSNR (dB) | SSIM | TV ratio | HF ratio |") and len(DEMO_COLUMNS) == 8
    row = results[0].row()
    expected = (f"| alias [none] | {row['stability_crop_pooled_db']:.2f} | {row['stability_crop_eb_pooled_db']:.2f} | "
                f"{row['flicker_pooled_db']:.2f} | {row['quality_psnr']:.2f} | {row['quality_ssim']:.3f} | "
                f"{row['tv_ratio']:.3f} | {row['hf_ratio']:.3f} |")
    assert lines[2] == expected
    assert lines[3].startswith("| flat [bin5] (collapsed) | 200.00 |")


def test_demo_trains_the_baseline_the_paper_and_the_shipped_recommended_design():
    from pix2pix_aa.demo import ROOT, VARIANTS, train_command

    assert list(VARIANTS) == ["baseline", "bin5", "aa"]
    config, antialias = VARIANTS["aa"]
    assert antialias is None and (ROOT / config).is_file()  # the generator comes from the config itself
    cmd = train_command("aa", antialias, config)
    assert "--model.generator.init_args.antialias" not in cmd and cmd[cmd.index("--config") + 1] == config
    cmd = train_command("bin5", "bin5", "configs/cpu_quick.yaml")
    assert cmd[cmd.index("--model.generator.init_args.antialias") + 1] == "bin5"


def test_demo_trainings_run_with_one_thread_by_default(monkeypatch, tmp_path):
    # The thread count changes a float reduction's order, and training amplifies it: without a
    # fixed count the demo's models (and table) differed from machine to machine.
    from pix2pix_aa import demo

    calls = []
    monkeypatch.setattr(demo.subprocess, "run", lambda cmd, **kw: calls.append((cmd, kw.get("env"))))
    monkeypatch.setattr(demo, "demo_table", lambda path: "")
    monkeypatch.setattr(demo, "run_dir", lambda name: tmp_path / name)
    assert demo.main(["--variants", "baseline"]) == 0
    (train, train_env), (evaluate, eval_env) = calls
    assert "train.py" in train and train_env["OMP_NUM_THREADS"] == "1" and train_env["MKL_NUM_THREADS"] == "1"
    assert "evaluate.py" in evaluate and eval_env is None  # evaluation keeps its own thread defaults


def test_demo_table_carries_fid_kid_lpips_when_computed_and_says_why_when_not(tmp_path):
    class MeanColour(nn.Module):  # uint8 (N, 3, H, W) -> (N, 3): a small feature network
        def forward(self, x):
            return x.float().mean((2, 3))

    x = torch.rand(4, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    opts = EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=0, samples=0, fid_network=MeanColour(),
                       lpips_network=lambda p, t: (p - t).abs().mean((1, 2, 3)))
    result = evaluate_generator(Aliasing(), x, x.flip(-1), opts, label="alias")
    write_report([result], tmp_path / "with", options_dict(opts), {})
    lines = demo_table(tmp_path / "with" / "results.json").splitlines()
    row = result.row()
    assert lines[0].endswith("| HF ratio | FID | KID (mean ± std) | LPIPS |")
    assert lines[2].endswith(f"| {row['fid']:.2f} | {row['kid_mean']:.4f} ± {row['kid_std']:.4f} | "
                             f"{row['quality_lpips']:.3f} |")
    assert "FID / KID / LPIPS on 4 images per model" in lines[-1]
    # Skipped (no weights): no blank columns, one line naming what is missing and why.
    plain = EvalOptions(max_shift=2, layers=None, noise=(), flicker_frames=0, samples=0)
    why = {"fid": "FID and KID skipped: no weights", "lpips": "LPIPS skipped: no weights"}
    write_report([evaluate_generator(Aliasing(), x, x, plain, label="a")], tmp_path / "without",
                 {**options_dict(plain), "quality_metrics": why}, {})
    lines = demo_table(tmp_path / "without" / "results.json").splitlines()
    assert "FID" not in lines[0]
    assert lines[-1] == ("FID, KID (mean ± std), LPIPS: not computed (FID and KID skipped: no weights; "
                         "LPIPS skipped: no weights).")
