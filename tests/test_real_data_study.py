"""studies/real_data_study.py and studies/noise_path.py: the training queue, the goal's
arithmetic and the ranking, and the attribution of input noise to the parts of G."""

from __future__ import annotations

import json

import pytest
import torch

from studies import bf16_training, noise_path, term_every
from studies import real_data_study as study


# --- the queue -----------------------------------------------------------------------------
def test_the_queue_trains_each_run_once_most_informative_first():
    order = study.queue([0, 1, 2], list(study.DATASETS))
    assert len(order) == len(set(order))
    # The facades' quick rows at the design study's seeds come from another CPU model: none is
    # trained here; the facades' own seeds are, their baseline with them, seed by seed.
    own = study.DATASETS["facades"]["own_seeds"]
    facades_quick = [(c, s) for d, r, c, s in order if d == "facades" and r == "quick"]
    assert facades_quick == [(c, s) for s in own for c in study.OWN_SEED_CANDIDATES]
    assert not set(own) & {0, 1, 2, 3, 4} and "baseline" in study.OWN_SEED_CANDIDATES
    assert order.index(("facades", "long", "baseline", 1)) < order.index(("facades", "quick", "baseline", own[0]))
    leading_s0 = [(d, "quick", c, 0) for d in ("photos", "colorize") for c in study.LEADING]
    assert order[:len(leading_s0)] == leading_s0
    # The closest design's long runs (seeds 0-1) come before the facades' long runs past seed 0.
    extra = order.index(("photos", "long", study.LONG_EXTRA[0], 0))
    assert extra < order.index(("facades", "long", "baseline", 1))
    assert all(c in study.LEADING + study.LONG_EXTRA for _, r, c, _ in order if r == "long")
    quick_real = {(d, c, s) for d, r, c, s in order if r == "quick" and d != "facades"}
    assert quick_real == {(d, c, s) for d in ("photos", "colorize") for c in study.CANDIDATE_NAMES for s in (0, 1, 2)}


# --- the goal and the ranking --------------------------------------------------------------
def _summary(gap_db=8.0, tv=1.0, hf=0.5, psnr=0.0, ssim=0.0, noise=0.0) -> dict:
    return {"gap_pooled_db": (gap_db, 0, 1), "tv_ratio": (tv, 0, 1), "hf_ratio": (hf, 0, 1),
            "gap_psnr": (psnr, 0, 1), "gap_ssim": (ssim, 0, 1), "gap_noise_db": (noise, 0, 1)}


def test_shortfall_is_each_missed_criterion_as_a_fraction_of_its_threshold():
    assert study.shortfall(_summary()) == 0.0  # every criterion met at its edge
    assert study.shortfall(_summary(gap_db=4.0)) == pytest.approx(0.5)  # half the 8 dB missing
    assert study.shortfall(_summary(tv=0.7)) == pytest.approx(2.0)  # 0.2 below the band, in units of 0.1
    assert study.shortfall(_summary(hf=0.1, noise=-1.5)) == pytest.approx(0.8 + 2.0)
    assert study.shortfall(_summary(hf=0.1, noise=-1.5), skip=("noise",)) == pytest.approx(0.8)


def test_the_closest_design_is_measured_everywhere_and_skip_can_change_it(monkeypatch):
    monkeypatch.setattr(study, "CANDIDATE_NAMES", ["baseline", "smooth", "faithful", "partial"])

    def entry(**kw):
        s = _summary(**kw)
        return {**s, "goal": study.goal_check(s, None, None)}

    summary = {"a": {"quick": {"smooth": entry(hf=0.1), "faithful": entry(noise=-2.0), "partial": entry()}},
               "b": {"quick": {"smooth": entry(), "faithful": entry()}}}
    best, scores = study.recommendation(summary)
    assert best == "smooth" and scores["smooth"].short == pytest.approx(0.8)
    assert scores["faithful"].short == pytest.approx(3.0)
    assert scores["partial"].missing == ["b"]  # never recommended: not measured on b
    assert study.recommendation(summary, skip=("noise",))[0] == "faithful"


def test_stability_gates_the_ranking_before_quality(monkeypatch):
    # "still" changes nothing (no stability, every quality criterion met); "stable" gains the goal
    # on both data sets at a cost in detail. The summed shortfall ranked "still" first (2 x 1.0
    # for stability against 2 x 1.6 for the detail); stability gates, so "stable" is closest.
    monkeypatch.setattr(study, "CANDIDATE_NAMES", ["baseline", "still", "stable"])

    def entry(gap_sd=0.0, n=1, **kw):
        s = _summary(**kw)
        s["gap_pooled_db"] = (s["gap_pooled_db"][0], gap_sd, n)
        return {**s, "goal": study.goal_check(s, None, None)}

    summary = {d: {"quick": {"still": entry(gap_db=0.0), "stable": entry(gap_db=9.0, tv=0.8, hf=0.2)}} for d in "ab"}
    assert study.shortfall(summary["a"]["quick"]["still"]) < study.shortfall(summary["a"]["quick"]["stable"])
    best, scores = study.recommendation(summary)
    assert best == "stable" and (scores["stable"].stable, scores["still"].stable) == (2, 0)
    assert scores["stable"].short == pytest.approx(3.2) and scores["still"].short == 0.0  # quality only
    # Within one standard error of the goal passes the gate (7.5 + 1.0 / sqrt(4)); beyond, or at
    # one seed (no spread to read), it does not.
    assert study.stability_gate(entry(gap_db=7.5, gap_sd=1.0, n=4))
    assert not study.stability_gate(entry(gap_db=7.4, gap_sd=1.0, n=4))
    assert not study.stability_gate(entry(gap_db=7.9, gap_sd=float("nan"), n=1))


# --- where the input noise goes ------------------------------------------------------------
@pytest.fixture
def path_unet():
    from pix2pix_aa.networks import UNetGenerator

    torch.manual_seed(0)
    return UNetGenerator(num_downs=3, ngf=4, antialias="tri3", fullres_channels=4).eval()


def test_split_forward_feeds_each_part_its_own_input(path_unet):
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    noisy = x + 0.1 * torch.randn_like(x)
    with torch.no_grad():
        assert torch.equal(noise_path.split_forward(path_unet, x, x), path_unet(x))
        assert torch.equal(noise_path.split_forward(path_unet, noisy, noisy), path_unet(noisy))
        mixed = noise_path.split_forward(path_unet, noisy, x)
        assert not torch.equal(mixed, path_unet(x)) and not torch.equal(mixed, path_unet(noisy))
        assert "run" not in vars(path_unet.fullres)  # the method is G's own again
        # A path whose first convolution is zero ignores its input: noise fed to it changes nothing.
        first = next(m for m in path_unet.fullres.modules() if isinstance(m, torch.nn.Conv2d))
        first.weight.zero_()
        assert torch.equal(noise_path.split_forward(path_unet, x, noisy), path_unet(x))


def test_split_forward_without_a_path_is_g():
    from pix2pix_aa.networks import UNetGenerator

    G = UNetGenerator(num_downs=3, ngf=4).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(noise_path.split_forward(G, x, torch.zeros_like(x)), G(x))


def test_the_ranking_table_leaves_out_a_design_without_a_run(monkeypatch, tmp_path):
    # A candidate added to the study before any of its runs: a 0/0 row with shortfall 0.0 would
    # read as the best score.
    monkeypatch.setattr(study, "CANDIDATE_NAMES", ["baseline", study.SHIPPED, "new"])
    monkeypatch.setattr(study, "LABELS", {**study.LABELS, "new": "a new design"})
    monkeypatch.setattr(study, "NOISE_PATH", tmp_path / "none.json")
    monkeypatch.setitem(study.ds.CANDIDATES, "new", study.ds.CANDIDATES["baseline"])
    s = _summary()
    summary = {"photos": {"quick": {study.SHIPPED: {**s, "goal": study.goal_check(s, None, None)}}}}
    text = "\n".join(study.recommendation_section(summary))
    assert f"| {study.LABELS[study.SHIPPED]} (closest) | 1 of 1 | 6/6 | 0.0 |" in text
    assert "| a new design |" not in text


def test_the_verdict_names_what_decides_between_the_rankings(monkeypatch, tmp_path):
    monkeypatch.setattr(study, "CANDIDATE_NAMES", ["baseline", study.SHIPPED, "smooth"])
    monkeypatch.setattr(study, "LABELS", {**study.LABELS, "smooth": "a smooth design"})
    monkeypatch.setattr(study, "NOISE_PATH", tmp_path / "none.json")

    def entry(**kw):
        s = _summary(**kw)
        return {**s, "goal": study.goal_check(s, None, None)}

    # The shipped design misses only noise (3.0); the smooth one only detail on photos (0.9).
    summary = {"photos": {"quick": {study.SHIPPED: entry(), "smooth": entry(hf=0.05)}},
               "colorize": {"quick": {study.SHIPPED: entry(noise=-2.0), "smooth": entry()}}}
    text = study.verdict(summary)
    assert ("**a smooth design** is closest (stable on 2 of 2, quality shortfall 0.9; the shipped design stable "
            "on 2 of 2, quality shortfall 3.0)") in text
    assert ("Without the noise criterion the shipped design is closest (stable on 2 of 2, quality shortfall 0.0; "
            "a smooth design stable on 2 of 2, quality shortfall 0.9)") in text
    assert "A smooth design keeps a TV ratio of 1.00 and an HF ratio of 0.05 on photos" in text
    summary["colorize"]["quick"][study.SHIPPED] = entry()
    assert study.verdict(summary).endswith("The shipped configurations carry it.")


def test_the_scale_note_gives_the_baseline_its_quality_shortfall_and_last_place():
    # The baseline gains nothing: it fails the gate everywhere; on "b" it misses the TV band by 0.2
    # (2.0), its only quality shortfall. "c" has no quick run.
    summary = {"a": {"quick": {"baseline": _summary(gap_db=0.0)}},
               "b": {"quick": {"baseline": _summary(gap_db=0.0, tv=1.3, noise=0.0)}},
               "c": {"long": {"baseline": _summary(gap_db=0.0)}}}
    note = study.baseline_scale_note(summary)
    assert note.startswith("For scale: the baseline itself passes the stability gate on none of the 2 data sets, "
                           "so it would rank after every design that passes it anywhere")
    assert "its own quality shortfall is 2.0 (2.0 without noise)" in note
    assert study.baseline_scale_note({}) == ""


def test_the_detail_note_names_where_the_baseline_itself_misses_the_hf_criterion():
    def cand(hf):
        return {**_summary(hf=hf), "seeds": ["0"]}

    summary = {"photos": {"long": {"baseline": cand(0.42), study.SHIPPED: cand(0.2), "bin5": cand(float("nan"))}},
               "colorize": {"long": {"baseline": cand(0.21), study.SHIPPED: cand(0.36)}},
               "facades": {"long": {"baseline": cand(1.05), study.SHIPPED: cand(1.01)}}}
    note = study.baseline_detail_note(summary)
    assert "photos long 0.42 (the most of any design)" in note
    assert f"colorize long 0.21 (the most: {study.LABELS[study.SHIPPED]}, 0.36)" in note
    assert "facades" not in note
    assert study.baseline_detail_note({"facades": summary["facades"]}) == ""


# --- studies/term_every.py -----------------------------------------------------------------
@pytest.fixture(autouse=True)
def _candidates(monkeypatch):
    """term_every registers its references and k-variants as design study candidates: keep them
    out of the other tests' registry (one shipped config <-> one candidate)."""
    monkeypatch.setattr(term_every.ds, "CANDIDATES", dict(term_every.ds.CANDIDATES))


def test_term_every_references_are_this_machines_runs_at_every_seed():
    # At a seed the design study's record has (another CPU), a copy under a name of its own; at
    # the facades' own seeds, the real-data study's run of the candidate itself.
    assert term_every.reference("baseline", 0) == "ref_baseline"
    own = study.DATASETS["facades"]["own_seeds"][0]
    assert term_every.reference("shipped", own) == study.SHIPPED
    assert all(term_every.ROLES[r] in study.OWN_SEED_CANDIDATES for r in term_every.ROLES)


def test_term_every_table_is_seed_matched_to_this_machines_baseline():
    every2 = term_every.candidate(2)
    row = lambda db: {"pooled_db": db, "psnr": 15.0, "tv_ratio": 1.0, "hf_ratio": 0.8}  # noqa: E731
    quick = {"ref_baseline": {"0": row(20.0)}, "baseline": {"10": row(22.0), "1": row(99.0)},
             every2: {"0": row(27.0), "10": row(30.0), "1": row(0.0)}, "ref_shipped": {"0": row(28.0)}}
    lines = term_every.table({"facades": {"quick": quick}}, [every2], [0, 1, 10])
    cells = next(line for line in lines if line.startswith(f"| {every2} ")).split(" | ")
    # Seed 1's baseline is the design study's (another CPU): no reference there, so not compared.
    assert cells[1] == "0,10" and float(cells[3]) == pytest.approx(((27 - 20) + (30 - 22)) / 2)
    assert cells[7] == "-1.00 (0) |"  # against the shipped design on the seed both have


def test_a_term_every_report_of_fewer_seeds_keeps_the_records_other_runs(monkeypatch, tmp_path, capsys):
    """``--stage report --seeds 0`` rewrote the record with seed 0's rows only: the rows of seeds
    10-12 (nowhere else on a fresh clone) were gone, and every later report showed fewer seeds."""
    every2 = term_every.candidate(2)
    row = {"pooled_db": 27.0, "psnr": 15.0, "tv_ratio": 1.0, "hf_ratio": 0.8}
    record = tmp_path / "term_every.json"
    rows = {every2: {"0": row, "10": row}, "ref_baseline": {"0": row}}
    record.write_text(json.dumps({"every": [2], "seeds": [0, 10], "rows": rows}))
    monkeypatch.setattr(term_every, "RECORD", record)
    monkeypatch.setattr(term_every.rds, "collect", lambda: {})  # no run on disk: a fresh clone
    for flags in (["--seeds", "0"], ["--seeds", "99", "--every", "7"]):
        assert term_every.main(["--stage", "report", *flags]) == 0
        saved = json.loads(record.read_text())
        assert saved["rows"] == rows and saved["seeds"] == [0, 10] and saved["every"] == [2]
    # k = 7 at seed 99 has no run: said, not only a table of n/a cells (was: exit 0 and the table alone)
    assert f"note: no run of k=7 seed 99 on disk or in {record}: their cells read n/a" in capsys.readouterr().err


def test_a_real_data_study_report_refuses_the_options_it_would_ignore(capsys):
    """``--stage report --seeds 99`` (or ``--datasets``) was accepted and the page written from every
    recorded run, as without them."""
    for flags in (["--seeds", "99"], ["--datasets", "facades"]):
        with pytest.raises(SystemExit) as info:
            study.main(["--stage", "report", *flags])
        assert info.value.code == 2
        assert "--seeds and --datasets choose what --stage all trains" in capsys.readouterr().err


def test_a_variant_is_read_against_the_shipped_design_seed_by_seed(monkeypatch):
    monkeypatch.setattr(study, "VARIANTS", {"half": "half the path"})
    monkeypatch.setattr(study, "LABELS", {**study.LABELS, "half": "half path"})

    def run(db, noise=None):
        return {"pooled_db": db, "tv_ratio": 1.0, "hf_ratio": 0.5, "psnr": 20.0, "noise_db": noise}

    # Per seed 1.0 and 3.0 dB less stable than the shipped design: -2.00 ± 1.41; the noise figure
    # on one seed only, said; seed 2 has no shipped run to pair with and is left out.
    rows = {"photos": {"quick": {study.SHIPPED: {"0": run(30.0, 40.0), "1": run(32.0)},
                                 "half": {"0": run(29.0, 41.5), "1": run(29.0), "2": run(10.0)}}}}
    text = "\n".join(study.variants_section(rows))
    assert "**Half path**: half the path; minus the shipped design at the same seeds" in text
    assert "| photos | 0,1 | -2.00 ± 1.41 | +0.00 ± 0.00 | +0.00 ± 0.00 | +0.00 ± 0.00 | +1.50 (1 seed) |" in text
    assert study.variants_section({"photos": {"quick": {study.SHIPPED: {"0": run(1.0)}}}}) == []


def test_the_goal_met_on_one_data_set_is_said_with_its_seeds(monkeypatch):
    def entry(seeds, **kw):
        s = _summary(**kw)
        return {**s, "seeds": seeds, "goal": study.goal_check(s, None, None)}

    summary = {"facades": {"long": {"baseline": entry(["0", "1"], gap_db=0.0),
                                    study.SHIPPED: entry(["0", "1"], gap_db=9.0),
                                    "bin5": entry(["0", "1"], hf=0.1)},
                           "quick": {study.SHIPPED: entry(["0"])}}}  # one seed: not said
    note = study.goal_met_note(summary)
    assert note.startswith(f"Where a design meets every criterion measured: **{study.LABELS[study.SHIPPED]}** on "
                           "facades at the long recipe (seeds 0,1: 6/6, stability +9.00 dB")
    assert "Bin-5" not in note and "quick" not in note and "baseline U-Net" not in note
    summary["facades"]["long"][study.SHIPPED] = entry(["0", "1"], gap_db=7.0)
    assert study.goal_met_note(summary) == ""


def test_a_recorded_run_fills_only_what_the_disk_lacks():
    on_disk = {"facades": {"quick": {"a": {"0": {"pooled_db": 1.0}}}}}
    recorded = {"facades": {"quick": {"a": {"0": {"pooled_db": 9.0}, "1": {"pooled_db": 2.0}}}},
                "photos": {"long": {"b": {"0": {"pooled_db": 3.0}}}}}
    rows = study.merge_missing(on_disk, recorded)
    assert rows["facades"]["quick"]["a"] == {"0": {"pooled_db": 1.0}, "1": {"pooled_db": 2.0}}
    assert rows["photos"]["long"]["b"]["0"]["pooled_db"] == 3.0


def test_term_every_report_reads_its_own_record_when_the_runs_are_not_on_disk(monkeypatch, tmp_path, capsys):
    # A fresh clone: no run on disk, the real-data study's record without the k > 1 runs.
    every2 = term_every.candidate(2)
    row = {"pooled_db": 27.0, "psnr": 15.0, "tv_ratio": 1.0, "hf_ratio": 0.8}
    base = {**row, "pooled_db": 20.0}
    record = tmp_path / "term_every.json"
    term_every.ds.write_json(record, {"rows": {every2: {"10": row}, "baseline": {"10": base}}})
    monkeypatch.setattr(term_every, "RECORD", record)
    monkeypatch.setattr(study, "collect", lambda: {})
    assert term_every.main(["--stage", "report", "--every", "2", "--seeds", "10"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith(f"| {every2} "))
    assert line.split(" | ")[1:3] == ["10", "27.00"]
    assert term_every.ds.read_json(record)["rows"][every2]["10"]["pooled_db"] == 27.0  # kept, not emptied


# --- studies/bf16_training.py ---------------------------------------------------------------
def test_bf16_candidates_add_the_precision_and_the_layout_and_nothing_else():
    name = bf16_training.candidate(study.SHIPPED)
    shipped, bf16 = bf16_training.ds.CANDIDATES[study.SHIPPED], bf16_training.ds.CANDIDATES[name]
    assert set(bf16.train_args()) - set(shipped.train_args()) == {"--model.channels_last", "true",
                                                                  "--trainer.precision", "bf16-mixed"}
    assert bf16.init_args == shipped.init_args
    assert bf16.model_args == {**shipped.model_args, "channels_last": True}
    # Seed by seed: every data set's first seed before any second seed; Bin-5 only where its
    # float32 runs are on this CPU.
    order = bf16_training.queue()
    assert len(order) == len(set(order)) == 3 * (3 + 3 + 2) + 3 * 2
    assert {s for *_, s in order[:8]} == {0, 10} and ("facades", "quick", "bin5", 10) not in order
    assert {r for _, r, *_ in order[:24]} == {"quick"} and order[24:] == [
        ("facades", "long", d, s) for s in (0, 1, 2) for d in ("baseline", study.SHIPPED)]


def test_bf16_table_pairs_each_run_with_the_float32_run_of_its_seed():
    shipped, bf16, base, base16 = (study.SHIPPED, bf16_training.candidate(study.SHIPPED), "baseline",
                                   bf16_training.candidate("baseline"))

    def run(db):
        return {"pooled_db": db, "tv_ratio": 1.0, "hf_ratio": 0.5, "psnr": 20.0, "noise_db": 30.0}

    # bf16 costs the shipped design 1 and 3 dB at seeds 0 and 1 (-2.00 ± 1.41); seed 2 has no
    # float32 run and is left out, and so is seed 3 from the float32 gain (no bf16 run there).
    quick = {shipped: {"0": run(30.0), "1": run(32.0), "3": run(99.0)},
             bf16: {"0": run(29.0), "1": run(29.0), "2": run(0.0)},
             base: {"0": run(20.0), "1": run(22.0), "3": run(0.0)}, base16: {"0": run(21.0), "1": run(21.0)}}
    lines = bf16_training.table({"photos": {"quick": quick}})
    cells = next(x for x in lines if x.startswith("| photos | quick | recommended")).split(" | ")
    assert cells[3:5] == ["0,1", "-2.00 ± 1.41"] and cells[8] == "+0.00 ± 0.00"
    assert cells[9:11] == ["+8.00 ± 0.00", "+10.00 ± 0.00 |"]  # gain over the baseline, bf16 / float32
    assert not any(x.startswith("| colorize") for x in lines)
