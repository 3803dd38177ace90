"""An output path that is a file (or under one) is one error line at start-up, in every command
that writes: train.py predict, evaluate.py and pix2pix-aa-export."""

from __future__ import annotations

import pytest

from pix2pix_aa.console import output_path_problem


@pytest.fixture
def a_file(tmp_path):
    path = tmp_path / "afile"
    path.write_text("not a folder")
    return path


def test_output_path_problem_knows_files_folders_and_new_paths(tmp_path, a_file):
    expected = f"--out {a_file}: is a file, not a folder; pass a new or existing folder"
    assert output_path_problem(a_file, "--out") == expected
    assert f"{a_file} is a file, not a folder;" in output_path_problem(a_file / "sub", "--out")
    assert f"{a_file} is a file, not a folder to write into" in output_path_problem(a_file / "x.pt", "--out", file=True)
    assert "is a folder; pass the path of the file to write" in output_path_problem(tmp_path, "--out", file=True)
    assert output_path_problem(tmp_path / "new" / "deeper", "--out") is None
    assert output_path_problem(tmp_path, "--out") is None
    assert output_path_problem(tmp_path / "x.pt", "--out", file=True) is None


def test_evaluate_refuses_an_out_that_is_a_file_before_loading_anything(a_file, capsys):
    from pix2pix_aa.evaluation.cli import main

    assert main(["no/such/run", "--out", str(a_file)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: --out {a_file}: is a file, not a folder; pass a new or existing folder"


def test_export_refuses_an_out_under_a_file(a_file, capsys):
    from pix2pix_aa.export import main

    assert main(["no/such/run", "--format", "torchscript", "--out", str(a_file / "x.pt")]) == 2
    err = capsys.readouterr().err  # one line, without argparse's usage block
    assert err.startswith("error: --out ") and f"{a_file} is a file, not a folder to write into" in err
    assert len(err.strip().splitlines()) == 1


def test_predict_refuses_an_output_dir_that_is_a_file(trained_run, a_file, capsys, run_cli):
    folder, run = trained_run
    with pytest.raises(SystemExit) as info:
        run_cli(folder, ["predict", "--config", str(folder / "tiny.yaml"), "--ckpt_path",
                         str(run / "checkpoints" / "last.ckpt"), "--predict_output_dir", str(a_file)])
    assert info.value.code == 2
    assert f"error: --predict_output_dir {a_file}: is a file, not a folder" in capsys.readouterr().err
