"""The demo resumes a finished run only when it holds the generator its config asks for."""

from __future__ import annotations

import pytest
import torch
import yaml

from pix2pix_aa import demo


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setattr(demo, "ROOT", tmp_path)
    (tmp_path / "aa.yaml").write_text(yaml.safe_dump({"model": {"generator": {"init_args": {
        "antialias": "kaiser9", "upsample_antialias": [False, "kaiser13_c0.19_w0.12"], "fullres_channels": 16}}}}))
    return tmp_path


def _run(root, module=None, **init_args):
    last = demo.run_dir("aa") / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True, exist_ok=True)
    hparams = {"generator": {"init_args": {"ngf": 32, **init_args}}, **(module or {})}
    torch.save({"state_dict": {}, "hyper_parameters": hparams}, last)
    return last


def test_a_run_of_the_configs_generator_is_resumed(root):
    last = _run(root, antialias="kaiser9", upsample_antialias=[False, "kaiser13_c0.19_w0.12"], fullres_channels=16)
    assert demo.train_command("aa", None, "aa.yaml")[-2:] == ["--ckpt_path", str(last)]
    # Flags count as the config does (the design study's candidates are flags on one recipe).
    cmd = demo.train_command("aa", "kaiser9", "aa.yaml", ["--model.generator.init_args.fullres_channels", "16"])
    assert cmd[-1] == str(last)


def test_a_run_of_another_generator_is_refused_with_what_differs(root):
    _run(root, antialias="kaiser9", upsample_antialias=[False, "kaiser9"], fullres_channels=16)
    with pytest.raises(SystemExit, match=r"upsample_antialias: run \[False, 'kaiser9'\], asked \[False, "
                                         r"'kaiser13_c0.19_w0.12'\]\)\. Move or delete runs/cpu_quick_aa/main"):
        demo.train_command("aa", None, "aa.yaml")
    with pytest.raises(SystemExit, match="fullres_channels: run 16, asked 8"):
        flags = ["--model.generator.init_args.fullres_channels", "8",
                 "--model.generator.init_args.upsample_antialias", "[false, kaiser9]"]
        demo.train_command("aa", None, "aa.yaml", flags)


def test_a_run_trained_with_another_objective_is_refused(root):
    """The shift-equivariance term changes the trained generator as much as a layer does."""
    design = {"antialias": "kaiser9", "upsample_antialias": [False, "kaiser13_c0.19_w0.12"], "fullres_channels": 16}
    config = yaml.safe_load((root / "aa.yaml").read_text())
    config["model"]["lambda_shift"] = 3.0
    (root / "aa.yaml").write_text(yaml.safe_dump(config))
    _run(root, **design)  # trained without the term
    with pytest.raises(SystemExit, match=r"model.lambda_shift: run 0.0, asked 3.0"):
        demo.train_command("aa", None, "aa.yaml")
    last = _run(root, module={"lambda_shift": 3.0, "shift_images": 1}, **design)
    assert demo.train_command("aa", None, "aa.yaml")[-1] == str(last)


def test_a_damaged_last_checkpoint_is_one_line(root):
    last = _run(root)
    last.write_bytes(b"truncated")
    with pytest.raises(SystemExit, match=r"error: .*last\.ckpt: not a readable PyTorch checkpoint"):
        demo.train_command("aa", None, "aa.yaml")


def test_an_objective_given_by_flags_is_compared_as_the_flags_set_it(root):
    """The design study sets a candidate's term by flags on one recipe: resuming such a run was
    refused ("run 3.0, config 0.0") because the flags were not read."""
    design = {"antialias": "kaiser9", "upsample_antialias": [False, "kaiser13_c0.19_w0.12"], "fullres_channels": 16}
    last = _run(root, module={"lambda_shift": 3.0, "shift_images": 1}, **design)
    flags = ["--model.lambda_shift", "3.0", "--model.shift_images", "1"]
    assert demo.train_command("aa", None, "aa.yaml", flags)[-1] == str(last)
    with pytest.raises(SystemExit, match=r"model.lambda_shift: run 3.0, asked 20.0"):
        demo.train_command("aa", None, "aa.yaml", ["--model.lambda_shift", "20.0"])


_CHILD = ("import os, sys, time; start = time.time(); time.sleep(1.5); "
          "print(os.environ['OMP_NUM_THREADS'], start, time.time()); sys.exit(int(sys.argv[1]))")


def test_trainings_run_side_by_side_each_with_its_own_threads(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(demo, "ROOT", tmp_path)
    trainings = [(name, [sys.executable, "-c", _CHILD, "0"]) for name in ("baseline", "bin5", "aa")]
    demo.train_all(trainings, threads=1, jobs=3, logs=tmp_path / "logs")
    spans = []
    for name, _ in trainings:
        threads, start, end = (tmp_path / "logs" / f"{name}.log").read_text().split()
        assert threads == "1"
        spans.append((float(start), float(end)))
    assert max(s for s, _ in spans) < min(e for _, e in spans)  # all three were running at once


def test_a_failed_training_stops_the_demo_with_its_log_after_the_others_finish(tmp_path, monkeypatch):
    import sys

    monkeypatch.setattr(demo, "ROOT", tmp_path)
    trainings = [("baseline", [sys.executable, "-c", _CHILD, "0"]), ("bin5", [sys.executable, "-c", _CHILD, "3"])]
    with pytest.raises(SystemExit, match=r"exit code 3 .*logs/bin5\.log"):
        demo.train_all(trainings, threads=2, jobs=2, logs=tmp_path / "logs")
    assert (tmp_path / "logs" / "baseline.log").read_text().startswith("2 ")  # finished, with its threads


def test_default_jobs_run_one_thread_trainings_all_at_once_and_others_as_the_cores_hold(monkeypatch):
    from pix2pix_aa.evaluation import speed

    monkeypatch.setattr(speed, "available_cores", lambda: 2)
    assert demo.default_jobs(3, threads=1) == 3  # past the cores: one-thread processes share them
    assert demo.default_jobs(3, threads=2) == 1
    assert demo.default_jobs(1, threads=1) == 1
    monkeypatch.setattr(speed, "available_cores", lambda: 8)
    assert demo.default_jobs(3, threads=1) == 3
    assert demo.default_jobs(3, threads=4) == 2


def test_a_run_of_another_length_or_data_is_refused_and_run_names_stay_the_demos(root, capsys):
    """After a tiny demo (--train-args --model.n_epochs 1 ...), a plain demo took up the finished
    1-epoch run and printed its table as the 12-epoch result; --train-args naming the run trained
    elsewhere while the demo evaluated the old run."""
    design = {"antialias": "kaiser9", "upsample_antialias": [False, "kaiser13_c0.19_w0.12"], "fullres_channels": 16}
    _run(root, module={"n_epochs": 1, "n_epochs_decay": 0}, **design)
    with pytest.raises(SystemExit, match=r"model.n_epochs: run 1, asked 100; model.n_epochs_decay: run 0, asked 100"):
        demo.train_command("aa", None, "aa.yaml")
    tiny = ["--model.n_epochs", "1", "--model.n_epochs_decay", "0"]
    last = demo.run_dir("aa") / "checkpoints" / "last.ckpt"
    assert demo.train_command("aa", None, "aa.yaml", tiny)[-1] == str(last)  # the same tiny demo again: resumed
    torch.save({"state_dict": {}, "hyper_parameters": {"generator": {"init_args": {"ngf": 32, **design}},
                                                        "n_epochs": 1, "n_epochs_decay": 0},
                "datamodule_hyper_parameters": {"generate_counts": {"train": 4, "val": 2, "test": 2}}}, last)
    with pytest.raises(SystemExit, match=r"data.generate_counts: run \{'train': 4, 'val': 2, 'test': 2\}, asked None"):
        demo.train_command("aa", None, "aa.yaml", tiny)
    for bad, message in ((["--max-images", "0"], "--max-images must be >= 1, got 0"),
                         (["--train-args", "--trainer.logger.init_args.name", "mine"],
                          "--train-args --trainer.logger.init_args.name: the demo names its runs")):
        with pytest.raises(SystemExit):
            demo.main(bad)
        assert message in capsys.readouterr().err


def test_a_data_folder_of_other_counts_is_refused(root):
    """A tiny demo's 4-image data/facades was trained and scored on by the next plain demo."""
    folder = root / "data" / "facades"
    folder.mkdir(parents=True)
    (folder / "generation.json").write_text('{"generator": "pix2pix_aa.data.facades", "splits": '
                                            '{"train": 4, "val": 2, "test": 2}}')
    with pytest.raises(SystemExit, match=r"data/facades holds facades generated with counts \{'train': 4, 'val': 2, "
                                         r"'test': 2\}, and the demo asks for \{'train': 400, 'val': 100, "
                                         r"'test': 106\}"):
        demo.check_data_folder("aa.yaml")
    demo.check_data_folder("aa.yaml", ["--data.generate_counts", "{train: 4, val: 2, test: 2}"])  # as asked
