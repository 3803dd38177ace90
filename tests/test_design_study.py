"""studies/design_study.py: its bookkeeping on known inputs (no training here)."""

import math
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def study():
    from studies import design_study

    return design_study


def test_every_candidate_builds_within_the_parameter_budget(study):
    from pix2pix_aa.networks import UNetGenerator

    with torch.device("meta"):
        base = sum(p.numel() for p in UNetGenerator(num_downs=7, ngf=32).parameters())
        for name, cand in study.CANDIDATES.items():
            g = UNetGenerator(num_downs=7, ngf=32, **cand.init_args)
            assert sum(p.numel() for p in g.parameters()) <= 1.02 * base, name
    assert set(study.DEFAULT_CANDIDATES) <= set(study.CANDIDATES)
    assert all(a in study.CANDIDATES and b in study.CANDIDATES for _, a, b in study.EFFECTS)


def test_train_args_are_cli_values(study):
    cand = study.Candidate("x", {"antialias": "bin5", "fullres_channels": 16, "upsample_antialias": ["tri3", False],
                                 "antialias_mode": "blur_conv"})
    assert cand.antialias == "bin5"
    assert cand.train_args() == ["--model.generator.init_args.fullres_channels", "16",
                                 "--model.generator.init_args.upsample_antialias", '["tri3", false]',
                                 "--model.generator.init_args.antialias_mode", "blur_conv"]


def test_module_options_are_passed_and_define_the_candidate(study):
    plain = study.Candidate("x", {"antialias": "bin5"})
    tuned = study.Candidate("y", {"antialias": "bin5"}, {"lambda_l1": 70.0})
    assert tuned.train_args() == ["--model.lambda_l1", "70.0"]
    assert plain.options == {"antialias": "bin5"}  # the form older records hold
    assert tuned.options == {"antialias": "bin5", "model": {"lambda_l1": 70.0}} != plain.options


def test_trainer_options_are_passed_and_define_the_candidate(study):
    bf16 = study.Candidate("z", {"antialias": "bin5"}, {"lambda_l1": 70.0}, {"precision": "bf16-mixed"})
    assert bf16.train_args() == ["--model.lambda_l1", "70.0", "--trainer.precision", "bf16-mixed"]
    assert bf16.options == {"antialias": "bin5", "model": {"lambda_l1": 70.0}, "trainer": {"precision": "bf16-mixed"}}


def test_extract_row_reads_old_and_new_results(study):
    old = {"models": {"m": {"row": {"stability_crop_db": 20.0, "stability_crop_pooled_db": 19.0, "quality_psnr": 15.0,
                                    "quality_ssim": 0.5, "quality_tv": 0.3, "quality_tv_target": 0.25},
                            "crop": {"num_images": 20}}}}
    row = study.extract_row(old)
    assert row["mean_db"] == 20.0 and row["pooled_db"] == 19.0 and row["eb_pooled_db"] is None
    assert math.isclose(row["tv_ratio"], 1.2) and row["num_images"] == 20
    new = {"models": {"m": {"row": {"stability_crop_mean_db": 21.0, "stability_crop_eb_pooled_db": 25.0,
                                    "tv_ratio": 0.9, "hf_ratio": 0.5, "quality_tv": 1.0, "quality_tv_target": 2.0}}}}
    row = study.extract_row(new)
    assert (row["mean_db"], row["eb_pooled_db"], row["tv_ratio"], row["hf_ratio"]) == (21.0, 25.0, 0.9, 0.5)
    assert study.extract_row({}) == {}
    assert (row["fid"], row["kid"], row["lpips"]) == (None, None, None)  # evaluated without their weights
    quality = {"models": {"m": {"row": {"fid": 80.5, "kid_mean": 0.012, "kid_std": 0.003, "quality_lpips": 0.31}}}}
    row = study.extract_row(quality)
    assert (row["fid"], row["kid"], row["kid_std"], row["lpips"]) == (80.5, 0.012, 0.003, 0.31)


def test_summary_gaps_are_seed_matched_and_goal_is_checked(study):
    def row(pooled, psnr, ssim, tv):
        return {"pooled_db": pooled, "psnr": psnr, "ssim": ssim, "tv_ratio": tv}

    data = {"train": {}, "eval": {
        "baseline": {s: {0: row(20, 15, 0.5, 1.2), 1: row(22, 15, 0.5, 1.2), 2: row(21, 15, 0.5, 1.2)}
                     for s in study.EVAL_SETS},
        "good": {s: {0: row(29, 14.9, 0.5, 1.05), 1: row(30, 15.0, 0.52, 0.95), 2: row(29.5, 14.8, 0.51, 1.0)}
                 for s in study.EVAL_SETS}}}
    cost = {"baseline": {"params": 100, "step_seconds": 1.0}, "good": {"params": 101, "step_seconds": 1.5}}
    summary = study.summarise(data, ["baseline", "good"], cost)
    m = summary["good"]["sets"]["facades"]
    assert m["gap_pooled_db"][0] == pytest.approx(8.5) and m["gap_pooled_db"][2] == [9, 8, 8.5]
    assert m["gap_psnr"][0] == pytest.approx(-0.1)
    assert all(ok for ok, _ in summary["good"]["goal"].values()), summary["good"]["goal"]
    cost["good"]["step_seconds"] = 1.7
    goal = study.summarise(data, ["baseline", "good"], cost)["good"]["goal"]
    assert [k for k, (ok, _) in goal.items() if not ok] == ["time <= 1.6x"]


def test_training_times_compare_only_within_one_invocation(study):
    data = {"eval": {}, "train": {
        # Seed 0: one invocation; seed 1: both from the committed record but timed apart
        # (a loaded and an idle session); seed 2: one record predates the invocation field.
        "baseline": {0: {"seconds_per_step": 0.4, "invocation": "A"},
                     1: {"seconds_per_step": 0.24, "invocation": "B", "from_record": True},
                     2: {"seconds_per_step": 0.3, "from_record": True}},
        "x": {0: {"seconds_per_step": 0.6, "invocation": "A"},
              1: {"seconds_per_step": 0.75, "invocation": "C", "from_record": True},
              2: {"seconds_per_step": 0.45, "from_record": True}}}}
    ratio = study.summarise(data, ["baseline", "x"], {})["x"]["train_time_ratio"]
    assert ratio[0] == pytest.approx(1.5) and math.isnan(ratio[1])  # seed 0 alone
    del data["train"]["x"][0]
    assert math.isnan(study.summarise(data, ["baseline", "x"], {})["x"]["train_time_ratio"][0])


def test_finished_epochs_reads_the_fit_loop(study, tmp_path, monkeypatch):
    folder = tmp_path / "runs" / "cpu_quick_x" / "main" / "checkpoints"
    folder.mkdir(parents=True)
    monkeypatch.setattr(study, "run_dir", lambda name: tmp_path / "runs" / f"cpu_quick_{name}" / "main")
    assert study.finished_epochs("x") is None
    progress = {"ready": 12, "started": 12, "processed": 12, "completed": 11}  # what last.ckpt holds at the end
    torch.save({"epoch": 11, "loops": {"fit_loop": {"epoch_progress": {"current": progress}}}}, folder / "last.ckpt")
    assert study.finished_epochs("x") == 12 and study.is_finished("x")
    progress.update(processed=5)
    torch.save({"epoch": 5, "loops": {"fit_loop": {"epoch_progress": {"current": progress}}}}, folder / "last.ckpt")
    assert not study.is_finished("x")


def test_runs_missing_on_disk_come_from_the_committed_record(study, tmp_path, monkeypatch):
    """A fresh clone has no outputs/: the committed JSON stands in for its runs, only for
    candidates whose options are unchanged, and a run on disk wins over the record."""
    import json

    row = {"pooled_db": 30.0, "psnr": 15.0}
    record = {"candidates": {"baseline": {}, "bin5": {"antialias": "bin5"}, "bin5_fr16": {"antialias": "bin5"}},
              "runs": {"eval": {c: {s: {"0": {**row, "pooled_db": 20.0 + i}} for s in study.EVAL_SETS}
                                for i, c in enumerate(("baseline", "bin5", "bin5_fr16"))},
                       "train": {"bin5": {"0": {"seconds_per_step": 0.5}}}}}
    (tmp_path / "record.json").write_text(json.dumps(record))
    monkeypatch.setattr(study, "RECORD", tmp_path / "record.json")
    monkeypatch.setattr(study, "OUT", tmp_path / "out")
    for set_name in study.EVAL_SETS:  # the baseline's seed 0 is on disk
        (tmp_path / "out" / "eval" / set_name / "design_baseline_s0").mkdir(parents=True)
        (tmp_path / "out" / "eval" / set_name / "design_baseline_s0" / "results.json").write_text(
            json.dumps({"models": {"m": {"row": {"stability_crop_pooled_db": 25.0}}}}))
    recorded = study.recorded_runs()
    assert study.is_recorded("bin5", 0, recorded) and not study.is_recorded("bin5", 1, recorded)
    assert "bin5_fr16" not in recorded["eval"]  # its options differ from the recorded ones
    data = study.collect(["baseline", "bin5", "bin5_fr16"], [0, 1])
    assert data["from_record"] == ["design_bin5_s0"]
    assert data["eval"]["baseline"]["facades"][0]["pooled_db"] == 25.0  # disk wins
    assert data["eval"]["bin5"]["facades"][0]["pooled_db"] == 21.0
    assert data["train"]["bin5"][0]["from_record"] is True
    assert "bin5_fr16" not in data["eval"]


def test_closest_means_nearest_to_the_goal_not_most_stable(study):
    """Two candidates that both miss only the TV criterion: the one nearer to it is closer."""
    def summary(tv, gap):
        m = {"gap_pooled_db": (gap, 0.0), "gap_psnr": (0.0, 0.0), "gap_ssim": (0.01, 0.0), "tv_ratio": (tv, 0.0)}
        return {"sets": {"facades": m}}

    near, far = summary(tv=0.88, gap=9.0), summary(tv=0.85, gap=10.0)
    assert study.shortfall(near) == pytest.approx(0.2) and study.shortfall(far) == pytest.approx(0.5)
    assert study.shortfall(summary(tv=0.95, gap=9.0)) == 0.0


def test_a_shipped_config_carries_one_candidate_with_its_module_options(study):
    model = study.shipped_config("configs/cpu_quick_aa.yaml")
    carried = [c for c in study.CANDIDATES if study.matches(model, c)]
    assert len(carried) == 1
    big = study.shipped_config("configs/facades_aa.yaml")  # ngf 64: the path width scales with it
    assert [c for c in study.CANDIDATES if study.matches(big, c)] == carried
    shipped = study.CANDIDATES[carried[0]]
    tuned = study.Candidate("t", shipped.init_args, {**shipped.model_args, "lambda_l1": 70.0})
    study.CANDIDATES["_tuned"] = tuned
    try:
        assert study.matches({**model, "lambda_l1": 70.0}, "_tuned")
        assert not study.matches({**model, "lambda_l1": 70.0}, carried[0])
        assert not study.matches(model, "_tuned")
    finally:
        del study.CANDIDATES["_tuned"]


def test_a_report_of_some_seeds_keeps_the_records_other_seeds(study):
    row = {"pooled_db": 30.0}
    previous = {"candidates": {"baseline": {}, "bin5": {"antialias": "bin5"}, "gone": {"antialias": "x"}},
                "runs": {"eval": {"baseline": {"facades": {"0": row, "1": row, "2": row}},
                                  "bin5": {"facades": {"1": row}}, "gone": {"facades": {"0": row}}},
                         "train": {"baseline": {"1": {"s": 1}, "2": {"s": 2}}}}}
    new = {**row, "pooled_db": 20.0}
    data = {"eval": {"baseline": {"facades": {0: new}}}, "train": {"baseline": {0: {"s": 0}}}}
    runs = study.merge_record(previous, data, ["baseline", "bin5"], [0])
    assert runs["eval"]["baseline"]["facades"] == {0: new, 1: row, 2: row}  # seeds 1, 2 not erased
    assert runs["train"]["baseline"] == {0: {"s": 0}, 1: {"s": 1}, 2: {"s": 2}}
    assert runs["eval"]["bin5"] == {"facades": {1: row}} and runs["eval"]["gone"] == {"facades": {"0": row}}
    previous["candidates"]["bin5"] = {"antialias": "bin4"}  # redefined since: its old runs are not its runs
    assert "bin5" not in study.merge_record(previous, data, ["baseline", "bin5"], [0])["eval"]
    # a seed this report covers but has no run for is dropped from the record, as before
    empty = study.merge_record(previous, {"eval": {}, "train": {}}, ["baseline"], [0])
    assert 0 not in empty["eval"]["baseline"]["facades"]


def test_a_report_of_a_subset_covers_the_whole_study(study, tmp_path, monkeypatch):
    # A run of one new candidate and two more seeds once rewrote the page and record over that
    # subset alone (the other candidates' summaries and step times gone).
    record = tmp_path / "record.json"
    study.write_json(record, {"candidates": {"bin5": study.CANDIDATES["bin5"].options,
                                             "aps_bin5": study.CANDIDATES["aps_bin5"].options,
                                             "bilinear_bin5": {"antialias": "redefined"}},
                              "seeds": [0, 1, 2, 3]})
    monkeypatch.setattr(study, "RECORD", record)
    names, seeds = study.report_scope(["baseline", "bin5_fr32"], [1, 2])
    assert names[:len(study.DEFAULT_CANDIDATES)] == study.DEFAULT_CANDIDATES
    assert "aps_bin5" in names and "bilinear_bin5" not in names  # recorded, unless redefined since
    assert seeds == [0, 1, 2, 3]
    assert study.report_scope(["baseline"], [5])[1] == [0, 1, 2, 3, 5]


def test_a_report_names_only_seeds_that_were_trained(study, tmp_path, monkeypatch):
    record = tmp_path / "record.json"
    study.write_json(record, {"seeds": [0, 1, 2, 3]})
    monkeypatch.setattr(study, "RECORD", record)
    monkeypatch.setattr(study, "run_dir", lambda name: tmp_path / "runs" / name)
    (tmp_path / "runs" / study.run_name("bin5", 7)).mkdir(parents=True)  # a run of this machine's
    assert study.report_scope(["baseline", "bin5"], [0, 1, 2, 3, 7, 99], trained_only=True)[1] == [0, 1, 2, 3, 7]


def test_filter_table_lists_the_candidates_filters_once_in_order(study):
    assert study.candidate_filters(["baseline", "bin5", "bc_kaiser9n_lastk9c36_fr16", "bc_kaiser9n_lastk7_fr16",
                                    "bin5_enc", "aps_bin5"]) == ["bin5", "kaiser9_c0.17_w0.16",
                                                                 "kaiser9_c0.36_w0.18", "kaiser7"]


def test_spectrum_is_the_band_energy_ratio_of_outputs_to_targets(study, trained_run, monkeypatch):
    """Known answers: an identity 'generator' gives the inputs' energy over the targets' per band,
    and halving the trained generator's outputs quarters every band's ratio."""
    from pix2pix_aa.evaluation import checkpoints
    from pix2pix_aa.evaluation.data import data_settings, load_data
    from pix2pix_aa.metrics.bandwidth import band_energy

    folder, run = trained_run
    monkeypatch.chdir(folder)
    monkeypatch.setattr(study, "run_dir", lambda name: run)
    real = checkpoints.load_generator
    wrap = {"fn": None}

    def load(path, *args, **kwargs):
        item = real(path, *args, **kwargs)
        if wrap["fn"] is not None:
            item.generator = wrap["fn"](item.generator)
        return item

    monkeypatch.setattr(checkpoints, "load_generator", load)
    trained = study.measure_spectrum("x", "facades", 2, 1)
    wrap["fn"] = lambda g: (lambda x: 0.5 * g(x))
    halved = study.measure_spectrum("x", "facades", 2, 1)
    wrap["fn"] = lambda g: (lambda x: x)
    identity = study.measure_spectrum("x", "facades", 2, 1)

    x, t = load_data(data_settings(real(run / "checkpoints" / "last.ckpt")), 2)
    expected = band_energy(x, study.SPECTRUM_BANDS).mean(0) / band_energy(t, study.SPECTRUM_BANDS).mean(0)
    assert identity["images"] == 2 and len(identity["ratio"]) == study.SPECTRUM_BANDS == len(identity["edges"]) - 1
    torch.testing.assert_close(torch.tensor(identity["ratio"], dtype=torch.float64), expected)
    torch.testing.assert_close(torch.tensor(halved["ratio"]), torch.tensor(trained["ratio"]) / 4)
    assert trained["target"] == identity["target"]


def test_spectrum_record_keeps_runs_not_on_disk(study, tmp_path, monkeypatch):
    monkeypatch.setattr(study, "OUT", tmp_path)
    opts = json_options(study, "bc_kaiser9n_lastk9c36_fr16")
    previous = {"candidates": {"bc_kaiser9n_lastk9c36_fr16": opts, "bin5": {"antialias": "changed"}},
                "spectrum": {"bc_kaiser9n_lastk9c36_fr16": {"facades": {"0": [1.0] * 6, "1": [2.0] * 6}},
                             "bin5": {"facades": {"0": [3.0] * 6}}}}
    study.write_json(tmp_path / "spectrum" / "facades" / "design_bc_kaiser9n_lastk9c36_fr16_s1.json",
                     {"ratio": [0.5] * 6})
    got = study.collect_spectrum(["bc_kaiser9n_lastk9c36_fr16", "bin5"], [1], previous)
    # seed 0 from the record, seed 1 measured here; bin5 was redefined, so its old rows are not its own
    assert got == {"bc_kaiser9n_lastk9c36_fr16": {"facades": {0: [1.0] * 6, 1: [0.5] * 6}}}


def json_options(study, name: str) -> dict:
    import json

    return json.loads(json.dumps(study.CANDIDATES[name].options))


def test_a_record_is_rewritten_only_when_its_data_change(study, tmp_path):
    path = tmp_path / "record.json"
    assert study.write_record(path, {"rows": {"a": 1}})
    first = study.read_json(path)
    assert first["rows"] == {"a": 1} and "commit" in first and "cpu" in first
    path.write_text(path.read_text().replace(first["commit"], "elsewhere"))
    assert not study.write_record(path, {"rows": {"a": 1}})  # same data: provenance left as it was
    assert study.read_json(path)["commit"] == "elsewhere"
    assert study.write_record(path, {"rows": {"a": 2}}) and study.read_json(path)["commit"] == first["commit"]


def test_a_report_never_times_the_candidates_and_says_when_their_times_are_stale(study, tmp_path, monkeypatch,
                                                                                  capsys):
    """`--stage report` on a checkout whose network code had changed re-timed every candidate
    (2 min of CPU) and wrote this machine's step ratios into the committed page and record."""
    monkeypatch.setattr(study, "OUT", tmp_path)
    study.write_json(tmp_path / "cost.json", {"code": "an older fingerprint", "candidates": {"baseline": 1.0}})
    monkeypatch.setattr(study, "measure_cost", lambda names: pytest.fail("a report timed the candidates"))
    reported = []
    monkeypatch.setattr(study, "write_report", lambda names, seeds, args: reported.append(names))
    assert study.main(["--stage", "report", "--candidates", "baseline"]) == 0
    assert reported and "the page keeps them: run --stage cost" in capsys.readouterr().out
    summary = {"baseline": {"params": None, "params_ratio": None, "step_ratio": None, "train_time_ratio": (None, None)}}
    text = study._page_cost(summary, ["baseline"], [], stale_cost=True)
    assert "measured with earlier code of the networks, layers or losses than this page's" in text
    # Options that only the computing stages use would be printed as the page's regenerate command.
    with pytest.raises(SystemExit):
        study.main(["--stage", "report", "--max-images", "5"])
    assert "--stage report redraws the page from the recorded results" in capsys.readouterr().err
    for bad in (["--jobs", "0"], ["--max-images", "0"]):
        with pytest.raises(SystemExit):
            study.main(["--stage", "report", *bad])
        assert "must be >= 1, got 0" in capsys.readouterr().err


def test_a_run_folder_of_another_training_is_never_taken_for_the_candidates(study, trained_run, monkeypatch, capsys):
    """A finished run of other settings under a candidate's run name (a user's fit, an older
    study's) was taken as the candidate's: not retrained, then scored under its name."""
    folder, run = trained_run  # bin5, seed 0, on data/tiny
    monkeypatch.setattr(study, "run_dir", lambda name: run)
    assert study.run_mismatch("x", "bin5", 0, "data/tiny") is None
    assert study.run_mismatch("x", "baseline", 0, "data/tiny") == "antialias 'bin5', not 'none'"
    assert study.run_mismatch("x", "bin5", 3, "data/tiny") == "seed 0, not 3"
    assert "data_dir " in study.run_mismatch("x", "bin5", 0, "data/facades")

    def no_training(*args, **kwargs):
        raise AssertionError("trained over another run")

    monkeypatch.setattr(study.subprocess, "run", no_training)
    assert study._train("baseline", 0, threads=1) is False
    assert "holds another run (antialias 'bin5', not 'none'; data_dir " in capsys.readouterr().out


def test_an_evaluation_of_another_checkpoint_is_redone(study, trained_run, tmp_path, monkeypatch):
    """A run trained again under its name kept the old checkpoint's figures (the evaluation was
    reused because its files existed)."""
    import json

    from pix2pix_aa.download import sha256_of

    _, run = trained_run
    monkeypatch.setattr(study, "run_dir", lambda name: run)
    results = tmp_path / "results.json"
    for digest, stale in ((sha256_of(run / "checkpoints" / "last.ckpt"), False), ("0" * 64, True)):
        results.write_text(json.dumps({"models": {"x": {"row": {"checkpoint_sha256": digest}}}}))
        assert study.stale_evaluation(results, "x") is stale
