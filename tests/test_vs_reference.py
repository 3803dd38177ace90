"""studies/vs_reference.py: its command line refuses what it cannot measure in one line, and its
tables divide by the right row (no training here: the tables are computed from given times)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    from studies import vs_reference

    return vs_reference


def test_a_folder_that_is_not_the_reference_is_one_line(bench, tmp_path, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(["--reference", str(tmp_path)])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"--reference {tmp_path}: not a checkout of junyanz/pytorch-CycleGAN-and-pix2pix" in err
    assert "models/pix2pix_model.py" in err


def test_a_contender_given_twice_is_one_line(bench, capsys):
    with pytest.raises(SystemExit) as info:
        bench.main(["--contenders", "bare", "baseline", "aa:bf16", "baseline"])
    assert info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1].endswith("--contenders: baseline given twice")


@pytest.mark.parametrize("contender, reference, problem", [
    ("ref", None, "needs --reference"),
    ("baseline:fast", None, "unknown contender"),
    ("ref:system", "x", "unknown contender"),
    ("resnet", None, "unknown contender"),
    ("aa:system", None, None),
    ("bin5:bf16", None, None),
    ("bare", None, None),
    ("baseline:halfpath", None, "only aa has a full-resolution path"),
    ("aa:halfpath", None, None),
    ("bin5:bf16+cl", None, None),
    ("aa:bf16+bf16", None, "an option given twice"),
    ("aa:bf16+", None, "unknown contender"),
    ("aa:", None, "unknown contender"),
    ("baseline:cl+halfpath", None, "only aa has a full-resolution path"),
])
def test_contenders_are_checked(bench, contender, reference, problem):
    found = bench.check_contender(contender, reference)
    assert (found is None) if problem is None else (problem in found)


def test_project_contenders_are_train_py_commands(bench):
    assert bench.project_args("128b4", "bin5") == ("configs/cpu_quick.yaml",
                                                   ["--model.generator.init_args.antialias", "bin5"])
    assert bench.project_args("256b1", "baseline-unfused:system") == (
        "configs/facades_baseline.yaml", ["--model.fused_adam", "false", "--allocator", "system"])
    assert bench.project_args("256b1", "aa") == ("configs/facades_aa.yaml", [])
    assert bench.project_args("128b4", "aa:bf16") == ("configs/cpu_quick_aa.yaml",
                                                      ["--trainer.precision", "bf16-mixed"])
    assert bench.project_args("128b4", "bin5:bf16+cl") == ("configs/cpu_quick.yaml", [
        "--model.generator.init_args.antialias", "bin5", "--trainer.precision", "bf16-mixed",
        "--model.channels_last", "true"])
    assert bench.project_args("256b1", "aa:noterm") == ("configs/facades_aa.yaml", ["--model.lambda_shift", "0"])
    # Half the config's path: c = 8 of cpu_quick_aa's 16, c = 16 of facades_aa's 32 (ngf / 4 either way).
    assert bench.project_args("128b4", "aa:halfpath") == ("configs/cpu_quick_aa.yaml",
                                                          ["--model.generator.init_args.fullres_channels", "8"])
    assert bench.project_args("256b1", "aa:halfpath") == ("configs/facades_aa.yaml",
                                                          ["--model.generator.init_args.fullres_channels", "16"])


def test_the_tables_divide_by_the_base_of_the_same_setting_and_threads(bench):
    def row(setting, threads, name, wall, cpu):
        return {"setting": setting, "threads": threads, "contender": name, "wall": wall, "cpu": cpu,
                "peak_mb": 1000.0, "ready_mb": 700.0}

    rows = [row("128b4", 1, "ref", [1.0, 2.0, 3.0], [1.0, 1.0, 1.0]), row("128b4", 1, "aa", [3.0, 3.0, 9.0], [2.0] * 3),
            row("128b4", 2, "ref", [4.0], [8.0]), row("128b4", 2, "aa", [2.0], [4.0])]
    text = bench.report(rows, "ref")
    # medians 3 / 2, 2 / 1; peak RSS = 700 MB at start + 300 MB training's own
    assert "| 128b4 | 1 | aa | 3000 | 2000 | 1.50 | 2.00 | 3 | 1000 | 700 | 300 |" in text
    assert "| 128b4 | 2 | aa | 2000 | 4000 | 0.50 | 0.50 | 1 | 1000 | 700 | 300 |" in text
    assert "| 128b4 | 1 | 1.50x |" in text and "| 128b4 | 2 | 0.50x |" in text


def test_the_recorded_command_names_no_path_of_this_machine(bench):
    argv = [str(bench.ROOT / "studies" / "vs_reference.py"), "--reference", "/somewhere/ref", "--settings", "128b4"]
    line = bench.command_line(argv, "/somewhere/ref")
    assert line.endswith("studies/vs_reference.py --reference PATH --settings 128b4")
    assert "/somewhere" not in line and str(bench.ROOT) not in line
    assert bench.command_line(["-m", "--rounds", "2"], None).endswith("-m --rounds 2")
    # python -m studies.vs_reference: argv[0] is the file, the header names the module
    line = bench.command_line(argv, "/somewhere/ref", "studies.vs_reference")
    assert line.endswith(" -m studies.vs_reference --reference PATH --settings 128b4") and ".py" not in line
