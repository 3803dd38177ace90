"""evaluate.py on a data set whose images differ in size: one clear error, and --size resizes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from pix2pix_aa.evaluation.cli import main as evaluate_main


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory, write_tiny_config, run_cli):
    """A 1-epoch preprocess-none run on aligned pairs of two sizes (64x64 and 64x128 halves)."""
    folder = tmp_path_factory.mktemp("mixed")
    rng = np.random.default_rng(0)
    for split, sizes in (("train", [(64, 64), (64, 64)]), ("val", [(64, 64)]), ("test", [(64, 64), (64, 128)])):
        (folder / "ab" / split).mkdir(parents=True)
        for i, (h, w) in enumerate(sizes):
            pixels = rng.integers(0, 255, (h, 2 * w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / "ab" / split / f"{i}.png")
    cfg = write_tiny_config(folder, "mixed.yaml", data__data_dir=str(folder / "ab"), data__dataset="aligned",
                            data__batch_size=1, trainer__max_epochs=1)
    run_cli(folder, ["fit", "--config", str(cfg), "--data.preprocess", "none", "--trainer.logger.init_args.name",
                     "mixed"])
    return folder, folder / "runs" / "mixed" / "version_0"


def test_mixed_sizes_are_one_error_and_size_resizes(mixed_run, capsys, tmp_path, monkeypatch):
    folder, run = mixed_run
    monkeypatch.chdir(folder)
    common = ["--max-images", "2", "--shifts", "2", "--flicker-frames", "0", "--layers", "none", "--noise", "none",
              "--no-tensorboard", "--no-progress"]
    assert evaluate_main([str(run), *common, "--out", str(tmp_path / "a")]) == 2
    err = capsys.readouterr().err
    assert "the evaluation images have 2 sizes (HxW: 64x64, 64x128)" in err and "--size N" in err
    assert "Traceback" not in err
    assert evaluate_main([str(run), *common, "--size", "64", "--out", str(tmp_path / "b")]) == 0
    # --size equal to the run's (unused) crop_size still resizes images it trained on at their own
    # sizes: recorded and said as a change (was: "overridden": [], as if scored as trained).
    data = json.loads((tmp_path / "b" / "results.json").read_text())["models"]["mixed/version_0/last"]["data"]
    assert data["overridden"] == ["--size"]
    assert data["trained_with"] == {"--size": "the images' own sizes (preprocess none)"}
    assert "not as the model was trained: --size 64 (trained: the images' own sizes (preprocess none))" \
        in (tmp_path / "b" / "results.md").read_text()
