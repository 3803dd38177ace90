"""evaluate.py scores every checkpoint on its own data settings and records them with its numbers."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import pix2pix_aa
from pix2pix_aa.evaluation.cli import main as evaluate_main

FAST = ["--max-images", "2", "--shifts", "2", "--noise", "none", "--layers", "none", "--protocol", "crop",
        "--no-progress", "--no-tensorboard"]


@pytest.fixture(scope="module")
def two_directions(tmp_path_factory, write_tiny_config, run_cli) -> tuple[Path, Path, Path]:
    """Two 1-epoch runs on the same tiny facades, trained BtoA and AtoB (set explicitly: the data
    module's default direction is not relied on). Returns (folder, BtoA run, AtoB run)."""
    folder = tmp_path_factory.mktemp("directions")
    for direction in ("BtoA", "AtoB"):
        cfg = write_tiny_config(folder, f"{direction}.yaml", trainer__max_epochs=1, data__direction=direction)
        run_cli(folder, ["fit", "--config", str(cfg), "--trainer.logger.init_args.name", direction])
    return folder, folder / "runs" / "BtoA" / "version_0", folder / "runs" / "AtoB" / "version_0"


def _models(out: Path) -> dict:
    return json.loads((out / "results.json").read_text())["models"]


def _numbers(model: dict) -> dict:
    row = dict(model["row"])
    row.pop("seconds")
    return row


def test_each_checkpoint_is_scored_on_its_own_direction(two_directions, monkeypatch, tmp_path, capsys):
    folder, btoa, atob = two_directions
    monkeypatch.chdir(folder)
    assert evaluate_main([str(btoa), str(atob), "--out", str(tmp_path / "both"), *FAST]) == 0
    printed = capsys.readouterr().out
    both = _models(tmp_path / "both")
    assert both["BtoA/version_0/last"]["data"]["direction"] == "BtoA"
    assert both["AtoB/version_0/last"]["data"]["direction"] == "AtoB"
    # The AtoB model listed second gets the numbers of an AtoB-only evaluation, not BtoA ones.
    assert evaluate_main([str(atob), "--out", str(tmp_path / "atob"), *FAST]) == 0
    assert "note:" not in capsys.readouterr().err
    assert evaluate_main([str(atob), "--direction", "BtoA", "--out", str(tmp_path / "wrong"), *FAST]) == 0
    assert "--direction BtoA (recorded: AtoB)" in capsys.readouterr().err  # an override is announced
    alone, wrong = _models(tmp_path / "atob")["AtoB/version_0/last"], _models(tmp_path / "wrong")["AtoB/version_0/last"]
    assert _numbers(both["AtoB/version_0/last"]) == _numbers(alone)
    assert wrong["row"]["quality_psnr"] != alone["row"]["quality_psnr"]
    assert wrong["data"]["overridden"] == ["--direction"] and alone["data"]["overridden"] == []
    # A table that mixes data settings says so, in the printed output and in results.md.
    md = (tmp_path / "both" / "results.md").read_text()
    for text in (printed, md):
        assert "measured on different data" in text and ", AtoB, 64x64 px (HxW), 2 images" in text
    assert "different data" not in (tmp_path / "atob" / "results.md").read_text()


def test_results_record_the_data_and_code_of_every_row(two_directions, monkeypatch, tmp_path):
    folder, btoa, _ = two_directions
    monkeypatch.chdir(folder)
    assert evaluate_main([str(btoa), "--out", str(tmp_path), *FAST]) == 0
    payload = json.loads((tmp_path / "results.json").read_text())
    data = payload["models"]["BtoA/version_0/last"]["data"]
    assert data["data_dir"] == "data/tiny" and data["data_dir_resolved"] == str((folder / "data/tiny").resolve())
    assert (data["dataset"], data["split"], data["direction"], data["image_size"], data["images"]) == \
        ("facades", "test", "BtoA", [64, 64], 2)
    assert data["settings_from"] == "checkpoint"
    assert payload["options"]["code"]["version"] == pix2pix_aa.__version__
    commit = payload["options"]["code"]["git_commit"]
    assert commit is None or len(commit) >= 4
    assert payload["options"]["max_shift"] == 2 and payload["options"]["protocol"] == "crop"
    with (tmp_path / "results.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["data_dir"], row["split"], row["direction"], row["image_size"], row["images"]) == \
        ("data/tiny", "test", "BtoA", "64x64", "2")
    assert row["epoch"] == "0" and row["step"] == "4"  # 1 epoch of 8 images in batches of 2


def _strip_data_hparams(src: Path, dst: Path) -> Path:
    ckpt = torch.load(src, weights_only=True)
    del ckpt["datamodule_hyper_parameters"]
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ckpt, dst)
    return dst


def test_a_checkpoint_without_data_settings_uses_its_config_or_fails_in_one_line(two_directions, monkeypatch,
                                                                                  tmp_path, capsys):
    folder, _, atob = two_directions
    monkeypatch.chdir(folder)
    # In its run folder: the run's config.yaml says AtoB.
    run = tmp_path / "runs" / "copy" / "version_0"
    shutil.copy(atob / "config.yaml", (run / "checkpoints").mkdir(parents=True) or run / "config.yaml")
    in_run = _strip_data_hparams(atob / "checkpoints" / "last.ckpt", run / "checkpoints" / "last.ckpt")
    assert evaluate_main([str(in_run), "--out", str(tmp_path / "cfg"), *FAST]) == 0
    data = _models(tmp_path / "cfg")["copy/version_0/last"]["data"]
    assert data["direction"] == "AtoB" and data["settings_from"] == str(run / "config.yaml")
    # Alone: no recorded direction, no default assumed.
    alone = _strip_data_hparams(atob / "checkpoints" / "last.ckpt", tmp_path / "alone" / "model.ckpt")
    assert evaluate_main([str(alone), "--out", str(tmp_path / "none"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "does not record its data settings data_dir, dataset, direction, crop_size" in err
    assert "pass --data-dir --dataset --direction --size" in err and "Traceback" not in err
    args = ["--data-dir", "data/tiny", "--dataset", "facades", "--direction", "AtoB", "--size", "64"]
    assert evaluate_main([str(alone), *args, "--out", str(tmp_path / "flags"), *FAST]) == 0
    assert _models(tmp_path / "flags")["model"]["data"]["direction"] == "AtoB"


def test_a_missing_data_dir_flag_is_an_error_not_freshly_generated_data(two_directions, monkeypatch, tmp_path,
                                                                        capsys):
    folder, _, atob = two_directions
    monkeypatch.chdir(folder)
    typo = folder / "data" / "tinny"
    assert evaluate_main([str(atob), "--data-dir", str(typo), "--out", str(tmp_path / "typo"), *FAST]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {typo} does not exist" in err and "Traceback" not in err
    assert f"facades sets are generated only at a checkpoint's own data_dir: make one there first (python -m " \
           f"pix2pix_aa.data.facades --out {typo} --size 64)" in err  # the checkpoint's size: its images
    assert not typo.exists() and not (tmp_path / "typo" / "results.json").exists()
    # A set of the user's own: no generator suggested (it said to make procedural facades there)
    assert evaluate_main([str(atob), "--data-dir", str(typo), "--dataset", "aligned", *FAST]) == 2
    err = capsys.readouterr().err
    assert f"--data-dir {typo} does not exist" in err and "generated" not in err
    # The data module's hints in evaluate.py's options (it said "pass --data.dataset aligned")
    own = tmp_path / "own_pairs"
    (own / "test").mkdir(parents=True)
    Image.fromarray(np.zeros((64, 128, 3), np.uint8)).save(own / "test" / "1.png")
    assert evaluate_main([str(atob), "--data-dir", str(own), "--dataset", "paired", *FAST]) == 2
    err = capsys.readouterr().err
    assert "A|B files side by side are the aligned layout; pass --dataset aligned" in err and "--data." not in err
    # The checkpoint's own data_dir is still regenerated from its recorded settings when missing.
    recorded = folder / "data" / "tiny"
    shutil.move(recorded, tmp_path / "kept")
    try:
        assert evaluate_main([str(atob), "--out", str(tmp_path / "own"), *FAST]) == 0
        assert (recorded / "generation.json").is_file()
    finally:
        shutil.rmtree(recorded, ignore_errors=True)
        shutil.move(tmp_path / "kept", recorded)


def test_a_data_dir_flag_scores_another_generated_set_as_it_is(trained_run, monkeypatch, tmp_path, capsys):
    """The checkpoint's recorded generation settings (counts, size, seed) were checked against a
    ``--data-dir`` set: one generated with other counts was refused with train.py's words
    (``--data.data_dir``, "drop the option"), for every model trained with ``generate_counts``."""
    from pix2pix_aa.data.facades import generate_facades

    folder, run = trained_run  # trained with generate_counts 8/2/2 at 64 px, seed 0
    monkeypatch.chdir(folder)
    other = generate_facades(tmp_path / "other", seed=7, splits={"train": 1, "val": 1, "test": 3}, size=64)
    capsys.readouterr()
    out = tmp_path / "eval"
    assert evaluate_main([str(run), "--data-dir", str(other), "--out", str(out), *FAST, "--max-images", "3"]) == 0
    err = capsys.readouterr().err
    assert "data.generate_counts" not in err and "--data." not in err, err
    data = json.loads((out / "results.json").read_text())["models"]["tiny/version_0/last"]["data"]
    assert data["images"] == 3 and data["trained_with"] == {"--data-dir": "data/tiny"}
    # The pages say it too: a row on other data is not the model's own held-out score.
    assert (f"Data: {other} (facades), split test, BtoA, 64x64 px (HxW), 3 images -- not as the model was trained: "
            f"--data-dir {other} (trained: data/tiny).") in (out / "results.md").read_text()


def test_a_size_the_generator_cannot_take_is_refused_before_evaluating(two_directions, monkeypatch, tmp_path,
                                                                       capsys):
    folder, btoa, atob = two_directions
    monkeypatch.chdir(folder)
    # Both generators need multiples of 64 (num_downs 6): --size 60 is refused for each, in one line
    # naming the evaluate.py flag that fixes it, and nothing is written.
    assert evaluate_main([str(btoa), str(atob), "--size", "60", "--out", str(tmp_path / "bad"), *FAST]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 2 and all("input size (60, 60) is not a multiple of 2**num_downs = 64" in ln
                                   and "nearest valid: 60 -> 64; pass --size N" in ln for ln in lines), err
    assert "pad_input" not in err and "Traceback" not in err
    assert not (tmp_path / "bad" / "results.json").exists()
