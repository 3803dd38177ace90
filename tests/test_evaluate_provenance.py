"""evaluate.py says which file it scored, refuses a file named twice, keeps an --out folder to one
evaluation, checks the reference-named flags against every model, and names the flag of a bad value."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import pytest

from pix2pix_aa.evaluation import checkpoints
from pix2pix_aa.evaluation.checkpoints import CheckpointError, load_generator, load_recorded
from pix2pix_aa.evaluation.cli import main as evaluate_main

FAST = ["--max-images", "1", "--shifts", "2", "--noise", "none", "--layers", "none", "--protocol", "crop",
        "--flicker-frames", "0", "--samples", "0", "--no-progress", "--no-tensorboard", "--no-quality-metrics"]


def _copy_run(run: Path, root: Path, name: str = "tiny") -> Path:
    """``root/<name>/version_0/checkpoints/last.ckpt``: the run's weights in another file."""
    dst = root / name / run.name / "checkpoints" / "last.ckpt"
    dst.parent.mkdir(parents=True)
    shutil.copy(run / "checkpoints" / "last.ckpt", dst)
    return dst


def test_results_name_the_checkpoint_file_and_its_sha256(trained_run, monkeypatch, tmp_path):
    """A run folder's last.ckpt changes as training goes on: results named it only by its label."""
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "eval"
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 0
    ckpt = run / "checkpoints" / "last.ckpt"
    digest = hashlib.sha256(ckpt.read_bytes()).hexdigest()
    model = json.loads((out / "results.json").read_text())["models"]["tiny/version_0/last"]
    record = model["checkpoint"]
    assert (record["path"], record["path_resolved"], record["sha256"], record["bytes"]) == \
        (str(ckpt), str(ckpt.resolve()), digest, ckpt.stat().st_size)
    assert model["row"]["checkpoint_sha256"] == digest
    with (out / "results.csv").open() as f:
        (row,) = list(csv.DictReader(f))
    assert (row["checkpoint"], row["checkpoint_sha256"]) == (str(ckpt), digest)
    assert f"- tiny/version_0/last: {ckpt} (sha256 {digest[:12]})" in (out / "results.md").read_text()
    page = (out / "index.html").read_text(encoding="utf-8")
    assert f"<code>{ckpt}</code>" in page and f">{digest[:12]}</code>" in page
    assert f"tiny/version_0/last: {ckpt} (sha256 {digest}," in (out / "evaluate.log").read_text()


def test_a_partly_trained_run_is_named_beside_finished_ones(trained_run, monkeypatch, tmp_path):
    """A run interrupted (or still training) was scored beside finished ones without a word."""
    import torch

    folder, run = trained_run  # 2 of its 2 epochs
    monkeypatch.chdir(folder)
    partial = _copy_run(run, tmp_path / "runs", "partial")
    ckpt = torch.load(partial, weights_only=True)
    ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"] = 1  # as after its first epoch
    torch.save(ckpt, partial)
    out = tmp_path / "eval"
    assert evaluate_main([str(run), str(partial), "--out", str(out), *FAST]) == 0
    md = (out / "results.md").read_text()
    assert f"{partial} (sha256 " in md and ", trained 1 of its 2 epochs: a partly trained model" in md
    assert md.count("partly trained") == 1  # the finished run is not flagged
    # every column is defined under the table (L1 and seconds were not)
    assert "L1 = mean absolute difference between output and target" in md and "seconds = the wall time" in md
    models = json.loads((out / "results.json").read_text())["models"]
    assert [m["checkpoint"].get("trained_epochs") for m in models.values()].count(1) == 1


def test_a_checkpoint_rewritten_while_it_is_read_is_refused(trained_run, monkeypatch, tmp_path):
    _, run = trained_run
    path = _copy_run(run, tmp_path)
    assert load_recorded(path).checkpoint["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()

    def load_then_training_saves(p, **kw):  # a training replacing last.ckpt mid-evaluation
        item = load_generator(p, **kw)
        p.write_bytes(p.read_bytes() + b"\0")
        return item

    monkeypatch.setattr(checkpoints, "load_generator", load_then_training_saves)
    with pytest.raises(CheckpointError, match="the file changed while it was read"):
        load_recorded(path)


def test_the_same_file_given_twice_is_refused_in_one_line(trained_run, monkeypatch, tmp_path, capsys):
    """It gave two rows of one label whose image files overwrote each other."""
    folder, run = trained_run
    monkeypatch.chdir(folder)
    ckpt = run / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval"
    assert evaluate_main([str(run), str(ckpt), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {ckpt} is given as {str(run)!r} and as {str(ckpt)!r}: name each checkpoint once\n"
    assert not out.exists()


def test_two_files_sharing_a_label_are_rows_of_their_own(trained_run, monkeypatch, tmp_path):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    ckpt, copy = run / "checkpoints" / "last.ckpt", _copy_run(run, tmp_path / "copies")
    out = tmp_path / "eval"
    assert evaluate_main([str(ckpt), str(copy), "--out", str(out), *FAST]) == 0
    models = json.loads((out / "results.json").read_text())["models"]
    assert set(models) == {str(ckpt), str(copy)}  # both were "tiny/version_0/last"
    # Same bytes, so the same hash: the record shows that the two rows are one set of weights.
    assert models[str(ckpt)]["checkpoint"]["sha256"] == models[str(copy)]["checkpoint"]["sha256"]
    assert len(list(out.glob("stability_crop_*.png"))) == 2


def test_reusing_an_out_folder_removes_only_the_earlier_evaluations_images(trained_run, monkeypatch, tmp_path,
                                                                          capsys):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "eval"
    # Later flags win: every per-model image and the spectrum, no panning GIF.
    assert evaluate_main([str(run), "--out", str(out), *FAST, "--protocol", "both", "--layers", "enc1",
                          "--samples", "1"]) == 0
    earlier = {p.name for p in out.glob("*.png")}
    assert earlier == {"stability_crop_tiny_version_0_last.png", "stability_circular_tiny_version_0_last.png",
                       "features_tiny_version_0_last.png", "samples_tiny_version_0_last.png",
                       "stability_spectrum.png"}
    mine = [out / "notes.txt", out / "features_mine.png"]  # the user's: one looks like an output name
    for p in mine:
        p.write_text("mine")
    capsys.readouterr()
    other = _copy_run(run, tmp_path, "other")
    assert evaluate_main([str(other.parent.parent), "--out", str(out), *FAST, "--no-spectrum"]) == 0
    err = capsys.readouterr().err
    notes = [ln for ln in err.splitlines() if "earlier evaluation" in ln]
    assert notes == [f"note: --out {out} held an earlier evaluation: removed its 5 images this one did not rewrite "
                     "(stability_spectrum.png, stability_crop_tiny_version_0_last.png, "
                     "stability_circular_tiny_version_0_last.png, features_tiny_version_0_last.png and 1 more)"]
    assert {p.name for p in out.glob("*.png")} == {"stability_crop_other_version_0_last.png", "features_mine.png"}
    assert all(p.read_text() == "mine" for p in mine)
    assert "removed its 5 images" in (out / "evaluate.log").read_text()
    # The same evaluation again: nothing stale, nothing said.
    assert evaluate_main([str(other.parent.parent), "--out", str(out), *FAST, "--no-spectrum"]) == 0
    assert "earlier evaluation" not in capsys.readouterr().err


def test_an_out_folder_with_the_users_own_results_files_is_refused(trained_run, monkeypatch, tmp_path, capsys):
    # index.html / results.md of the user's own, with no evaluation's results.json beside them,
    # were overwritten without a word.
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "site"
    out.mkdir()
    for name in ("index.html", "results.md"):
        (out / name).write_text("mine")
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 2
    assert (f"error: --out {out} holds results.md, index.html that no evaluation wrote (no results.json of "
            "evaluate.py beside them) and this one would overwrite") in capsys.readouterr().err
    assert all((out / n).read_text() == "mine" for n in ("index.html", "results.md"))


@pytest.mark.parametrize("names, listed", [(("evaluate.log",), "evaluate.log"),
                                           (("panning.gif", "stability_spectrum.png"),
                                            "stability_spectrum.png, panning.gif"),
                                           (("samples_tiny_version_0_last.png",), "samples_tiny_version_0_last.png")])
def test_an_out_folder_with_the_users_own_log_or_pictures_is_refused(names, listed, trained_run, monkeypatch,
                                                                     tmp_path, capsys):
    # A user's own evaluate.log, panning.gif or stability_spectrum.png in --out, with no
    # evaluation's results.json there, was overwritten without a word.
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "site"
    out.mkdir()
    for name in names:
        (out / name).write_text("mine")
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 2
    assert f"error: --out {out} holds {listed} that no evaluation wrote" in capsys.readouterr().err
    assert all((out / n).read_text() == "mine" for n in names)


def test_another_tools_results_json_is_not_taken_for_an_evaluation(trained_run, monkeypatch, tmp_path, capsys):
    # Any results.json with a "models" mapping counted as an earlier evaluation: the user's
    # results.json, results.md and index.html were replaced without a word.
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "site"
    out.mkdir()
    (out / "results.json").write_text('{"models": {"resnet": {"acc": 0.9}}, "note": "my other tool"}')
    (out / "index.html").write_text("mine")
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 2
    assert f"error: --out {out} holds results.json, index.html that no evaluation wrote" in capsys.readouterr().err
    assert (out / "index.html").read_text() == "mine"


def test_an_evaluation_into_the_same_out_replaces_its_tensorboard_run(trained_run, monkeypatch, tmp_path, capsys):
    # The same --out twice appended a second event file: two values at one step, one of them stale.
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "again"
    flags = [a for a in FAST if a != "--no-tensorboard"]
    for given in (run, run.relative_to(folder)):  # the second time as a relative path
        assert evaluate_main([str(given), "--out", str(out), *flags]) == 0
    # before: the run, recorded resolved and given relative, was said to be "no longer scored"
    assert "no longer scores" not in capsys.readouterr().err
    logs = [p for p in (run / "evaluation").iterdir() if p.name.startswith("again-")]
    assert len(logs) == 1 and len(list(logs[0].glob("events.out.tfevents.*"))) == 1
    # Two checkpoints of one run, in one evaluation: each keeps its events (the replacement is of
    # the earlier evaluation's, not of this one's first model).
    last = _copy_run(run, tmp_path / "runs")
    shutil.copy(last, last.with_name("best-000.ckpt"))
    assert evaluate_main([str(last), str(last.with_name("best-000.ckpt")), "--out", str(out), *flags]) == 0
    logs = list((last.parent.parent / "evaluation").iterdir())
    assert len(logs) == 1 and len(list(logs[0].glob("events.out.tfevents.*"))) == 2
    # A later evaluation into the same --out without that run: its run no longer lists this
    # evaluation (it kept it, while the folder's results held only the other model).
    assert evaluate_main([str(run), "--out", str(out), *flags]) == 0
    assert not logs[0].exists()
    assert len(list(next(p for p in (run / "evaluation").iterdir() if p.name.startswith("again-")).glob(
        "events.out.tfevents.*"))) == 1


def test_an_out_folder_inside_the_data_is_refused(trained_run, monkeypatch, tmp_path, capsys):
    # The report's PNGs landed in the test split, and the next evaluation read them as test images.
    folder, run = trained_run
    monkeypatch.chdir(folder)
    import yaml

    data_dir = Path(yaml.safe_load((run / "config.yaml").read_text())["data"]["data_dir"])
    out = data_dir / "test" / "eval"
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 2
    assert f"error: --out {out} is inside the data folder" in capsys.readouterr().err
    assert not out.exists()


def test_an_evaluation_that_stopped_before_its_results_leaves_a_log_that_is_not_refused(trained_run, monkeypatch,
                                                                                       tmp_path, capsys):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "eval"
    out.mkdir()
    (out / "evaluate.log").write_text("2026-01-02 03:04:05 [evaluate] data ...: 2 images of 64x64 px (HxW), for t\n")
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 0
    assert (out / "results.json").is_file()
    assert "[evaluate] data" in (out / "evaluate.log").read_text()


def test_reference_flags_check_a_train_py_checkpoint_too(trained_run, monkeypatch, tmp_path, capsys):
    """``--ngf 999`` on a train.py checkpoint was accepted and ignored: the ngf-8 net was scored."""
    folder, run = trained_run
    monkeypatch.chdir(folder)
    ckpt = run / "checkpoints" / "last.ckpt"
    out = tmp_path / "eval"
    assert evaluate_main([str(run), "--ngf", "999", "--norm", "instance", "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == [f"error: {ckpt}: --norm instance, --ngf 999 given, but the checkpoint's generator is "
                   "UNetGenerator (netG=unet_64, norm=batch, ngf=8, input_nc=3, output_nc=3); these flags check "
                   "the architecture of every model given, and a train.py checkpoint records its own: drop them, "
                   "or correct them"]  # one line (a summary "no checkpoint could be loaded" under it said nothing new)
    assert not (out / "results.json").exists()
    held = {"netG": "unet_64", "norm": "batch", "ngf": 8, "input_nc": 3, "output_nc": 3}
    assert load_generator(ckpt, reference=held).antialias == "bin5"  # values that match pass
    with pytest.raises(CheckpointError, match="--netG resnet_9blocks given"):
        load_generator(ckpt, reference={**held, "netG": "resnet_9blocks"})


@pytest.mark.parametrize("flags, message", [
    (["--chunk", "0"], "--chunk must be >= 1, got 0"),
    (["--num-shifts", "0"], "--num-shifts must be in 1..4 for --shifts 2, got 0"),
    # before: "... Give nonzero shifts, e.g. shift_grid(8)", a Python function, not a flag
    (["--shifts", "8", "--num-shifts", "1", "--seed", "139"], "--num-shifts 1 --seed 139 draws only the shift (0, 0), "
                                                             "which compares an output with itself: pass another "
                                                             "--seed or more --num-shifts"),
    (["--margin", "-1"], "--margin must be >= 0, got -1"),
    (["--batch-size", "0"], "--batch-size must be >= 1 (max images per forward pass), got 0"),
    (["--flicker-frames", "1"], "--flicker-frames must be 0 (off) or >= 2, got 1"),
    (["--flicker-images", "-1"], "--flicker-images must be >= 0, got -1"),
    (["--samples", "-1"], "--samples must be >= 0, got -1"),
    (["--noise=-0.1"], "--noise: every sigma must be a finite number > 0 ('none' turns it off), got -0.1"),
    (["--noise", "inf"], "--noise: every sigma must be a finite number > 0 ('none' turns it off), got inf"),  # was null
    (["--noise", "0"], "--noise: every sigma must be a finite number > 0 ('none' turns it off), got 0"),  # the cap
])
def test_a_bad_metric_option_is_one_line_naming_its_flag_before_anything_loads(flags, message, capsys):
    assert evaluate_main(["runs/none", "--shifts", "2", "--no-progress", *flags]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"


@pytest.mark.parametrize("device", ["mps", "meta", "cpu:3", "gpu"])
def test_a_device_the_evaluation_cannot_run_on_is_one_line(trained_run, monkeypatch, tmp_path, capsys, device):
    # mps / meta / xpu parsed as torch devices, then died deep in generator.to(device).
    folder, run = trained_run
    monkeypatch.chdir(folder)
    assert evaluate_main([str(run), "--device", device, "--out", str(tmp_path / "eval"), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device") and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_flicker_images_0_is_recorded_as_no_flicker(trained_run, monkeypatch, tmp_path):
    # --flicker-images 0 alone turned the flicker off, and results.json recorded 32 frames.
    folder, run = trained_run
    monkeypatch.chdir(folder)
    at = FAST.index("--flicker-frames")
    flags = [*FAST[:at], *FAST[at + 2:], "--flicker-images", "0"]
    assert evaluate_main([str(run), "--out", str(tmp_path / "eval"), *flags]) == 0
    options = json.loads((tmp_path / "eval" / "results.json").read_text())["options"]
    assert options["flicker_frames"] == 0 and options["flicker_images"] == 0


def test_an_unknown_layer_names_the_layers_flag(trained_run, monkeypatch, tmp_path, capsys):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    assert evaluate_main([str(run), "--out", str(tmp_path), *FAST, "--layers", "enc1,foo"]) == 2  # the last wins
    err = capsys.readouterr().err
    assert "error: tiny/version_0/last: unknown --layers ['foo']; this generator has ['enc1'," in err


@pytest.mark.parametrize("flags, expected", [
    # argparse printed its 20-line usage block before the line
    (["--noise", "foo"], "error: argument --noise: expected comma-separated numbers, got 'foo'"),
    # an explicit --flicker-frames was ignored: flicker shown as '-'
    (["--flicker-images", "0", "--flicker-frames", "8"], "error: --flicker-frames 8 with --flicker-images 0: no "
                                                          "flicker would be measured"),
    # recorded in results.json as margin 5, and not used
    (["--protocol", "circular", "--margin", "5"], "error: --margin 5 with --protocol circular: the margin is the "
                                                  "crop protocol's border"),
    # the file was neither checked nor used, without a word
    (["--fid-weights", "junk.pth", "--no-quality-metrics"], "error: --fid-weights with --no-quality-metrics: no "
                                                            "quality metric would use it; drop one of them"),
])
def test_a_bad_flag_is_one_line_without_the_usage_block(flags, expected, capsys):
    try:
        code = evaluate_main(["runs/none", *flags])
    except SystemExit as e:  # argparse's own errors exit
        code = e.code
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[0].startswith(expected) and "usage:" not in err, err


def test_ctrl_c_is_one_line_and_exit_status_130(trained_run, monkeypatch, tmp_path, capsys):
    """Ctrl-C printed a ~50-line traceback from wherever it landed (a TensorBoard figure, a deepcopy)."""
    from pix2pix_aa.evaluation import cli as evaluation_cli

    folder, run = trained_run
    monkeypatch.chdir(folder)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(evaluation_cli, "log_to_tensorboard", interrupted)
    out = tmp_path / "eval"
    assert evaluate_main([str(run), "--out", str(out), *[a for a in FAST if a != "--no-tensorboard"]]) == 130
    err = capsys.readouterr().err
    assert err.strip() == (f"error: interrupted; {out} may hold part of this evaluation (files and TensorBoard "
                           "events); run the same command again to evaluate anew"), err


def test_a_users_image_beside_an_earlier_evaluation_is_refused(trained_run, monkeypatch, tmp_path, capsys):
    """In an --out holding an evaluation of one model, the user's own file under a name the next
    evaluation (of another model) writes was overwritten without a word; in a fresh folder it was
    refused."""
    folder, run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "eval"
    assert evaluate_main([str(run), "--out", str(out), *FAST]) == 0
    other = _copy_run(run, tmp_path, "other").parent.parent
    mine = out / "stability_crop_other_version_0_last.png"
    mine.write_text("mine")
    capsys.readouterr()
    assert evaluate_main([str(other), "--out", str(out), *FAST]) == 2
    assert (f"error: --out {out} holds stability_crop_other_version_0_last.png that no evaluation wrote (the earlier "
            "evaluation's results.json does not name them)") in capsys.readouterr().err
    assert mine.read_text() == "mine"
    mine.unlink()
    assert evaluate_main([str(other), "--out", str(out), *FAST]) == 0
    assert evaluate_main([str(other), "--out", str(out), *FAST]) == 0  # its own images are replaced as before


def test_train_pys_last_keyword_is_named_as_such(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert evaluate_main(["last", *FAST]) == 2  # before: "last: file not found"
    assert "error: last: train.py's --ckpt_path last names a run's checkpoint; evaluate.py takes the run's folder" in (
        capsys.readouterr().err)


def test_an_option_with_underscores_gets_its_name(capsys):
    """--max_images (train.py's spelling habit) was a bare "unrecognized arguments"."""
    with pytest.raises(SystemExit) as exit_:
        evaluate_main(["runs/x", "--max_images", "2", "--protcol", "crop"])
    assert exit_.value.code == 2
    assert ("error: unrecognized arguments: --max_images 2 --protcol crop (--max_images: did you mean --max-images?; "
            "--protcol: did you mean --protocol?)") in capsys.readouterr().err
