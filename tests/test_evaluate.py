"""evaluate.py end to end on tiny checkpoints, and its handling of bad checkpoints."""

from __future__ import annotations

import csv
import hashlib
import json

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pix2pix_aa.evaluation.checkpoints import (
    CheckpointError,
    filter_label,
    find_checkpoints,
    load_generator,
    objective_label,
)
from pix2pix_aa.evaluation.cli import main as evaluate_main
from pix2pix_aa.networks import ResNetGenerator, UNetGenerator

FAST = ["--max-images", "3", "--shifts", "4", "--noise", "0.05", "--no-progress"]


def test_evaluate_two_checkpoints_writes_every_output(trained_run, baseline_run, monkeypatch, tmp_path, capsys):
    folder, bin5_run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "eval"
    code = evaluate_main([str(bin5_run), str(baseline_run), "--out", str(out), *FAST])
    assert code == 0
    printed = capsys.readouterr().out
    # (2-epoch tiny models have near-constant outputs: they may carry the "(collapsed)" flag)
    assert "| tiny/version_0/last" in printed and "| tiny_baseline/version_0/last" in printed
    results = json.loads((out / "results.json").read_text())
    assert set(results["models"]) == {"tiny/version_0/last", "tiny_baseline/version_0/last"}
    # the progress count is over both models' images: each line says which model of how many
    assert "evaluating tiny_baseline/version_0/last (model 2 of 2): 4/4 images (100%)" in (
        out / "evaluate.log").read_text()
    model = results["models"]["tiny/version_0/last"]
    assert model["crop"]["num_shifts"] == 15 and model["circular"]["num_shifts"] == 15  # 4x4 grid minus (0, 0)
    assert set(model["features"]["layers"]) >= {"enc1", "enc6", "dec6", "dec2", "out"}
    assert model["row"]["stability_crop_pooled_db"] > 10
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2
    # which weights scored FID / KID / LPIPS, in every row (it was in results.json / .md only)
    status = results["options"]["quality_metrics"]
    assert {(r["fid_kid_weights"], r["lpips_weights"]) for r in rows} == {(status["fid"], status["lpips"])}
    assert (out / "results.md").read_text().count("\n| tiny") == 2
    pngs = {p.name for p in out.glob("*.png")}
    assert {"stability_crop_tiny_version_0_last.png", "stability_circular_tiny_version_0_last.png",
            "features_tiny_version_0_last.png", "features_tiny_baseline_version_0_last.png",
            "stability_spectrum.png", "samples_tiny_baseline_version_0_last.png"} <= pngs
    assert (out / "panning.gif").is_file() and "panning.gif" in (out / "index.html").read_text()
    assert model["flicker"]["num_frames"] == 32 and len(model["crop"]["spectrum"]["stability_db"]) == 5
    # One TensorBoard run per evaluation, named after its --out (other evaluations of the same
    # checkpoint, on other data or fewer images, logged the same tags at the same step beside it).
    name = f"eval-{hashlib.sha1(str(out.resolve()).encode()).hexdigest()[:8]}"  # two "eval" folders stay apart
    assert (bin5_run / "evaluation" / name).is_dir()
    events = EventAccumulator(str(bin5_run / "evaluation" / name), size_guidance={"images": 0})
    events.Reload()
    assert "eval/stability_crop_pooled_db" in events.Tags()["scalars"]
    # At the checkpoint's iteration, where the run's training curves put it (was its epoch: 2 here)
    (point,) = events.Scalars("eval/stability_crop_pooled_db")
    assert point.step == model["row"]["step"] == 8  # 2 epochs of 4 batches
    assert "eval/stability_crop_heatmap" in events.Tags()["images"]
    assert ("eval/stability_spectrum" in events.Tags()["images"]
            and "eval/spectrum_crop_band4_db" in events.Tags()["scalars"])
    assert "eval/table/text_summary" in events.Tags()["tensors"]
    # the lines under the table (shifts, precision, the quality metrics' weights) beside it
    (text,) = events.Tensors("eval/notes/text_summary")
    notes = text.tensor_proto.string_val[0].decode()
    assert "Shifts: 15 compared shifts" in notes and status["fid"].split(";")[0] in notes
    # HPARAMS dashboard: the generator's options with the headline numbers.
    from tensorboard.plugins.hparams import plugin_data_pb2

    assert "hparam/stability_crop_pooled_db" in events.Tags()["scalars"]
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["generator/antialias"].string_value == "bin5"
    assert start.hparams["generator/ngf"].number_value == 8
    assert start.hparams["evaluation"].string_value == str(out)
    assert start.hparams["images"].number_value == model["row"]["images"]


def test_bad_checkpoint_is_one_line_and_the_others_still_run(trained_run, monkeypatch, tmp_path, capsys):
    folder, run = trained_run
    monkeypatch.chdir(folder)
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"this is not a checkpoint")
    failed_start = tmp_path / "runs" / "tiny" / "version_1"  # a fit that failed before its first checkpoint
    failed_start.mkdir(parents=True)
    code = evaluate_main([str(run / "checkpoints" / "last.ckpt"), str(junk), str(tmp_path / "missing.ckpt"),
                          str(failed_start), "--out", str(tmp_path / "eval"), "--no-tensorboard", "--layers", "none",
                          *FAST])
    assert code == 2  # some failed
    err = capsys.readouterr().err
    assert f"error: {junk}: not a readable PyTorch checkpoint" in err
    assert f"error: {tmp_path / 'missing.ckpt'}: file not found" in err
    assert f"error: no .ckpt files under folder {failed_start}" in err
    assert "Traceback" not in err
    assert (tmp_path / "eval" / "results.md").read_text().count("\n| tiny") == 1


def _save_variant(src, dst, mutate):
    ckpt = torch.load(src, weights_only=True)
    mutate(ckpt)
    torch.save(ckpt, dst)
    return dst


def test_checkpoint_errors_name_the_problem(trained_run, tmp_path):
    _, run = trained_run
    last = run / "checkpoints" / "last.ckpt"
    loaded = load_generator(last)
    assert loaded.antialias == "bin5" and not loaded.generator.training

    def wrong_arch(c):
        c["hyper_parameters"]["generator"]["init_args"]["ngf"] = 16

    def no_config(c):
        del c["hyper_parameters"]["generator"]

    def other_class(c):
        c["hyper_parameters"]["_class_path"] = "some.other.Model"

    def foreign_generator(c):
        c["hyper_parameters"]["generator"]["class_path"] = "os.system"

    cases = {wrong_arch: "generator config does not match the weights", no_config: r"config \(class_path/init_args\)",
             other_class: "a checkpoint of some.other.Model", foreign_generator: "outside pix2pix_aa"}
    for mutate, message in cases.items():
        path = _save_variant(last, tmp_path / f"{mutate.__name__}.ckpt", mutate)
        with pytest.raises(CheckpointError, match=message):
            load_generator(path)
    torch.save({"state_dict": {}}, tmp_path / "empty.ckpt")
    with pytest.raises(CheckpointError, match="no generator weights"):
        load_generator(tmp_path / "empty.ckpt")


class Payload:
    """Stands for any pickled object that is not plain weights."""


def test_untrusted_pickles_are_refused(tmp_path):
    path = tmp_path / "pickled.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": Payload()}, path)
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_generator(path)


def test_run_folders_expand_to_last_checkpoints(trained_run):
    folder, run = trained_run
    assert find_checkpoints([str(run)]) == [run / "checkpoints" / "last.ckpt"]
    with pytest.raises(CheckpointError, match="no .ckpt files"):
        find_checkpoints([str(folder / "data")])


def test_a_folder_of_several_checkpoints_without_last_is_refused_not_one_picked(tmp_path):
    """A folder of several .ckpt files and no last.ckpt gave one of them, the last by name (and
    epoch=9 sorts after epoch=10, so the older one), and dropped the others without a word."""
    models = tmp_path / "mymodels"
    models.mkdir()
    for name in ("epoch=9-step=10.ckpt", "epoch=10-step=11.ckpt"):
        (models / name).write_bytes(b"")
    with pytest.raises(CheckpointError, match=r"holds 2 checkpoints and no last.ckpt \(epoch=10-step=11.ckpt, "
                                              r"epoch=9-step=10.ckpt\): pass the file\(s\) you mean"):
        find_checkpoints([str(models)])
    (models / "last.ckpt").write_bytes(b"")
    assert find_checkpoints([str(models)]) == [models / "last.ckpt"]
    only = tmp_path / "only"
    only.mkdir()
    (only / "best-002.ckpt").write_bytes(b"")
    assert find_checkpoints([str(tmp_path / "only")]) == [only / "best-002.ckpt"]


def test_no_spectrum_drops_only_the_spectrum(trained_run, monkeypatch, tmp_path):
    import json

    folder, run = trained_run
    monkeypatch.chdir(folder)
    common = [str(run), "--no-tensorboard", "--layers", "none", "--protocol", "crop", "--flicker-frames", "0", *FAST]
    assert evaluate_main(common + ["--out", str(tmp_path / "with")]) == 0
    assert evaluate_main(common + ["--out", str(tmp_path / "without"), "--no-spectrum"]) == 0
    (a,), (b,) = (json.loads((tmp_path / d / "results.json").read_text())["models"].values()
                  for d in ("with", "without"))
    assert a["crop"].get("spectrum") and not b["crop"].get("spectrum")
    drop = {"seconds"}
    assert {k: v for k, v in a["row"].items() if k not in drop} == {k: v for k, v in b["row"].items() if k not in drop}
    assert not (tmp_path / "without" / "stability_spectrum.png").exists()


@pytest.mark.parametrize("value", ["-1", "0"])
def test_a_max_images_below_one_is_refused_by_the_parser(value, capsys):
    from pix2pix_aa.evaluation.cli import main as evaluate_main

    with pytest.raises(SystemExit) as exit_info:  # -1 used to fail deep inside torch.stack
        evaluate_main(["runs/none", "--max-images", value])
    assert exit_info.value.code == 2
    assert f"--max-images: expected a whole number >= 1, got {value}" in capsys.readouterr().err


def test_the_filter_label_tells_designs_with_one_encoder_filter_apart():
    """Tables and titles named only the encoder filter, so the shipped design and its variant with
    a blur after every upsampling both read 'kaiser9_c0.17_w0.16'."""
    import yaml

    shipped = yaml.safe_load(open("configs/cpu_quick_aa.yaml"))["model"]["generator"]["init_args"]
    assert filter_label(UNetGenerator, shipped) == (
        "kaiser9_c0.17_w0.16 (antialias_mode blur_conv, upsample_antialias [false, kaiser13_c0.19_w0.12 x6], "
        "fullres_channels 16)")
    variant = {**shipped, "upsample_antialias": ["kaiser9_c0.36_w0.18"] + ["kaiser13_c0.19_w0.12"] * 6}
    assert filter_label(UNetGenerator, variant) != filter_label(UNetGenerator, shipped)
    # The paper's Bin-5 and the baseline keep their short names; an option at its default is not listed.
    assert filter_label(UNetGenerator, {"antialias": "bin5", "upsample_antialias": True, "ngf": 8}) == "bin5"
    assert filter_label(UNetGenerator, {"antialias": "bin5", "upsample_antialias": False}) == \
        "bin5 (upsample_antialias false)"
    assert filter_label(UNetGenerator, {}) == "none"
    assert filter_label(ResNetGenerator, {"antialias": "tri3", "n_blocks": 3}) == "tri3"


def test_the_design_label_names_the_shift_term_a_generator_was_trained_with():
    assert objective_label({"lambda_shift": 3.0, "shift_images": 1}) == "trained with lambda_shift 3 (1 image a batch)"
    assert objective_label({"lambda_shift": 100.0, "shift_images": 4}) == \
        "trained with lambda_shift 100 (4 images a batch)"
    assert objective_label({"lambda_shift": 3.0, "shift_images": 1, "shift_every": 2}) == \
        "trained with lambda_shift 3 (1 image a batch, every 2 batches)"
    assert objective_label({"lambda_shift": 0.0}) == "" == objective_label({})


def test_progress_is_printed_in_lines_when_not_a_terminal_and_the_data_are_named(trained_run, monkeypatch, tmp_path,
                                                                                  capsys):
    """Output to a file or a pipe: rich's bar printed nothing for minutes; now plain progress lines
    on stderr and in evaluate.log, and index.html / results.md say which data were scored."""
    folder, bin5_run = trained_run
    monkeypatch.chdir(folder)
    out = tmp_path / "eval"
    fast = [a for a in FAST if a != "--no-progress"]
    assert evaluate_main([str(bin5_run), "--out", str(out), "--no-tensorboard", *fast]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("[evaluate] ")]
    assert lines and lines[-1].startswith("[evaluate] evaluating tiny/version_0/last: 2/2 images (100%), ")
    log = (out / "evaluate.log").read_text(encoding="utf-8")
    assert ("[evaluate] data data/tiny (facades, test, BtoA, 64 px): 2 images of 64x64 px (HxW), for "
            "tiny/version_0/last") in log
    assert "tiny/version_0/last: 2/2 images (100%)" in log and f"files to {out}" in log
    data = "Data: data/tiny (facades), split test, BtoA, 64x64 px (HxW), 2 images."
    assert data in (out / "results.md").read_text() and data in (out / "index.html").read_text()


def test_progress_lines_come_per_model_then_at_most_every_interval(monkeypatch):
    from pix2pix_aa.evaluation import cli as eval_cli

    clock = iter([0.0, 1.0, 2.0, 30.0, 31.0, 95.0])
    monkeypatch.setattr(eval_cli.time, "monotonic", lambda: next(clock))
    lines: list[str] = []
    progress = eval_cli._LineProgress(lines.append, interval=10.0)  # starts at t=0
    task = progress.add_task("evaluating", total=8)
    progress.update(task, description="evaluating a", advance=2)  # t=1: a new model -> a line
    progress.update(task, description="evaluating a", advance=2)  # t=2: within the interval -> none
    progress.update(task, description="evaluating a", advance=1)  # t=30: interval passed -> a line
    progress.update(task, description="evaluating b", advance=1)  # t=31: a new model -> a line
    progress.update(task, description="evaluating b", advance=2)  # t=95: the end -> a line
    assert lines == ["[evaluate] evaluating a: 2/8 images (25%), 1s elapsed, about 3s left",
                     "[evaluate] evaluating a: 5/8 images (62%), 30s elapsed, about 18s left",
                     "[evaluate] evaluating b: 6/8 images (75%), 31s elapsed, about 10s left",
                     "[evaluate] evaluating b: 8/8 images (100%), 1m35s elapsed"]


def test_a_bright_input_of_the_evaluated_data_is_no_scale_warning(trained_run, monkeypatch, tmp_path, recwarn):
    """An edge -> photo test image with no edge (a white input) made evaluate.py print three
    raw "source has no negative value: images in [0, 1]?" warnings with their source lines,
    though evaluate.py maps its data to [-1, 1] itself."""
    import numpy as np
    from PIL import Image

    folder, bin5_run = trained_run
    monkeypatch.chdir(folder)
    test = tmp_path / "white" / "test"
    test.mkdir(parents=True)
    photo = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    white = np.full((64, 64, 3), 255, np.uint8)
    Image.fromarray(np.concatenate([photo, white], axis=1)).save(test / "1.png")  # direction BtoA: B is the input
    code = evaluate_main([str(bin5_run), "--data-dir", str(tmp_path / "white"), "--dataset", "aligned",
                          "--split", "test", "--out", str(tmp_path / "eval"), *FAST, "--max-images", "1"])
    assert code == 0
    assert not [str(w.message) for w in recwarn if "no negative value" in str(w.message)]
