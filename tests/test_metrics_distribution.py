"""FID, KID and LPIPS (pix2pix_aa.metrics.distribution / pretrained) and their plumbing through
evaluation, reports and TensorBoard, offline, with known answers from a small feature network."""

from __future__ import annotations

import hashlib
import json
import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.evaluation import report
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator
from pix2pix_aa.metrics.distribution import (
    KID_MAX_SUBSET_SIZE,
    fid,
    fid_from_features,
    kid,
    kid_from_features,
    kid_subset_size,
    lpips,
)
from pix2pix_aa.metrics.pretrained import lpips_network, resolve_weights

#: Features of SmallFeatures: the mean colour of each cell of a 4x4 grid.
DIM = 3 * 4 * 4


class SmallFeatures(nn.Module):
    """uint8 (N, 3, H, W) -> (N, 48): mean colour per cell of a 4x4 grid, in [-1, 1] units. A colour
    offset c moves every feature by c and leaves the covariance as it was, so FID = 48 c^2."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.uint8  # the standard Inception's input type
        return F.adaptive_avg_pool2d(x.float() / 127.5 - 1, 4).flatten(1)


def mean_abs(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """A stand-in LPIPS with a known answer: mean |pred - target| per image."""
    return (pred - target).abs().mean((1, 2, 3))


def _images(n: int = 24, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Random smooth images in [-0.5, 0.5] (room for a colour offset without clipping)."""
    g = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, size // 4, size // 4, generator=g) - 0.5, size=size, mode="bilinear")


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.clone()


def test_identical_sets_score_zero_and_a_colour_offset_scores_48_c_squared():
    x, net = _images(), SmallFeatures()
    assert abs(fid(x, x, net)) < 1e-6
    values = []
    for c in (0.05, 0.1, 0.2):
        score = fid(x + c, x, net)
        assert score == pytest.approx(DIM * c * c, rel=0.01)  # the mean term; covariances equal
        values.append((score, kid(x + c, x, net)))
    fids, kids = zip(*values)
    assert list(fids) == sorted(fids) and [k["kid_mean"] for k in kids] == sorted(k["kid_mean"] for k in kids)
    assert kids[1]["kid_mean"] > 3 * kids[1]["kid_std"]  # an offset of 0.1 is well outside KID's spread
    # KID ~ 0: for the same images (slightly negative: the unbiased estimator pairs a subset's images
    # with themselves), and within its spread for a second draw from the same distribution.
    assert abs(kid(x, x, net)["kid_mean"]) < kids[1]["kid_mean"] / 5
    same = kid(_images(seed=1), x, net)
    assert abs(same["kid_mean"]) < 2 * same["kid_std"]


def test_kid_subset_size_adapts_to_small_sets():
    assert kid_subset_size(10, 7) == 3 and kid_subset_size(3, 3) == 2
    assert kid_subset_size(5000, 3000) == KID_MAX_SUBSET_SIZE
    g = torch.Generator().manual_seed(0)
    few, other = torch.randn(6, 8, generator=g), torch.randn(6, 8, generator=g) + 1
    out = kid_from_features(few, other, subsets=10)
    assert out["kid_subset_size"] == 3 and out["kid_mean"] > 0 and out["kid_std"] > 0  # torchmetrics' 1000 > 6
    assert kid_from_features(few, other, subsets=10) == out  # seeded: the same draw each time
    with pytest.raises(ValueError, match="at least 2 images"):
        fid_from_features(few[:1], other)


def test_kid_on_two_images_has_no_spread_rather_than_a_std_of_zero():
    """With 2 images every "random subset" is the whole set: the table printed ``± 0.0000`` beside
    the note that a difference smaller than the std is no difference."""
    from pix2pix_aa.evaluation.report import quality_metrics_note
    from pix2pix_aa.metrics.distribution import DistributionResult

    g = torch.Generator().manual_seed(0)
    fake, real = torch.randn(2, 8, generator=g), torch.randn(2, 8, generator=g) + 1
    two = DistributionResult.from_features([fake], [real])
    assert two.kid_mean is not None and two.kid_std is None and two.fid is not None
    three = DistributionResult.from_features([torch.randn(3, 8, generator=g)], [torch.randn(3, 8, generator=g)])
    assert three.kid_std is not None  # subsets of 2 of 3 images differ: a spread
    result = type("R", (), {"distribution": two, "quality": {}, "num_images": 2})()
    note = quality_metrics_note([result], {"quality_metrics": {}})
    assert "KID on the whole set of 2 images, too few for random subsets: no ± spread" in note


def _random_alexnet_weights(path: Path, monkeypatch) -> Path:
    """Random AlexNet weights, accepted in place of torchvision's published file (whose sha256
    they cannot have): no download, the real LPIPS code path."""
    import dataclasses

    import torchvision

    from pix2pix_aa.metrics import pretrained

    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet().state_dict(), path)
    monkeypatch.setitem(pretrained.WEIGHTS, "lpips", dataclasses.replace(pretrained.WEIGHTS["lpips"],
                                                                         checks_digest=False))
    return path


def test_lpips_is_zero_for_identical_images_with_the_torchmetrics_network_from_a_local_file(tmp_path, monkeypatch):
    path = _random_alexnet_weights(tmp_path / "alexnet.pth", monkeypatch)
    status = resolve_weights("lpips", str(path))
    assert status.path == str(path) and status.source == "option" and status.skipped is None
    assert status.describe().endswith(f"(option, sha256 {hashlib.sha256(path.read_bytes()).hexdigest()})")
    net = lpips_network(status.path)
    # The linear layers are the ones shipped in torchmetrics (read with strict=False there: checked here).
    import inspect
    import os

    import torchmetrics.functional.image.lpips as tm_lpips

    shipped = torch.load(os.path.join(os.path.dirname(inspect.getfile(tm_lpips)), "lpips_models", "alex.pth"),
                         map_location="cpu")
    assert len(shipped) == 5 and all(torch.equal(net.metric.net.state_dict()[k], v) for k, v in shipped.items())
    # and the backbone is the file's.
    assert torch.equal(net.metric.net.net.slice1[0].weight, torch.load(path)["features.0.weight"])
    x = _images(2, 64)
    assert float(lpips(x, x, net)) == pytest.approx(0, abs=1e-6)
    assert float(lpips(x, x + 0.3 * torch.randn_like(x), net)) > 0
    assert lpips(x, x, net, reduction="none").shape == (2,)


def test_offline_without_weights_says_which_metric_is_skipped_and_how_to_supply_it(tmp_path, monkeypatch):
    for name, what, option, env in (("fid", "FID and KID", "--fid-weights", "PIX2PIX_AA_FID_WEIGHTS"),
                                    ("lpips", "LPIPS", "--lpips-weights", "PIX2PIX_AA_LPIPS_WEIGHTS")):
        status = resolve_weights(name)  # conftest: empty cache, downloads off
        assert status.path is None and status.skipped.startswith(f"{what} skipped:")
        assert option in status.skipped and env in status.skipped and "\n" not in status.skipped
    # Downloads allowed but the host unreachable: the library's error becomes the same one line.
    def unreachable(*args, **kwargs):
        raise OSError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", unreachable)
    said: list[str] = []
    status = resolve_weights("lpips", download=True, announce=said.append)
    assert said == []  # a failure at once (offline) prints the skip line alone
    assert status.skipped.startswith("LPIPS skipped: could not download the weights (Name or service not known)")
    # A download that lasts is announced in one line while it runs.
    import time

    monkeypatch.setattr("pix2pix_aa.metrics.pretrained.ANNOUNCE_AFTER_S", 0.05)

    def slow(*args, **kwargs):
        time.sleep(0.5)
        raise OSError("timed out")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", slow)
    assert resolve_weights("lpips", download=True, announce=said.append).skipped.startswith("LPIPS skipped: could "
                                                                                            "not download")
    assert len(said) == 1 and said[0].startswith("LPIPS: downloading the weights into ")
    with pytest.raises(ValueError, match="--fid-weights .*no such file"):
        resolve_weights("fid", str(tmp_path / "missing.pth"))
    wrong = tmp_path / "wrong.pth"
    torch.save({"features.0.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not the FID and KID network's weights"):
        resolve_weights("fid", str(wrong))
    monkeypatch.setenv("PIX2PIX_AA_LPIPS_WEIGHTS", str(wrong))  # the environment variable is read (and checked) too
    with pytest.raises(ValueError, match="PIX2PIX_AA_LPIPS_WEIGHTS .*wrong.pth: not the LPIPS network's published"):
        resolve_weights("lpips")
    monkeypatch.delenv("PIX2PIX_AA_LPIPS_WEIGHTS")
    # A damaged file in the cache: skipped in one line (not a failure per model later).
    damaged = Path(torch.hub.get_dir()) / "checkpoints" / "alexnet-owt-7be5be79.pth"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_bytes(b"truncated")
    try:
        skipped = resolve_weights("lpips").skipped
    finally:
        damaged.unlink()  # the cache folder is shared by the session's tests
    assert skipped.startswith("LPIPS skipped: cached file ") and "delete it to download it again" in skipped


OPTS = dict(max_shift=2, protocol="crop", layers=None, noise=(), flicker_frames=0, samples=0, lowpass=None,
            spectrum=False)


@pytest.fixture(scope="module")
def scored():
    """An identity generator scored against targets offset by c, with the small networks."""
    x = _images(12)
    opts = EvalOptions(**OPTS, chunk=5, fid_network=SmallFeatures(), lpips_network=mean_abs)
    return {c: evaluate_generator(Identity(), x, x + c, opts, label=f"offset {c}") for c in (0.0, 0.1, 0.2)}, x


def test_evaluation_scores_fid_kid_lpips_through_chunks_with_known_answers(scored):
    results, x = scored
    rows = {c: r.row() for c, r in results.items()}
    assert abs(rows[0.0]["fid"]) < 1e-3 and rows[0.0]["quality_lpips"] == 0
    assert abs(rows[0.0]["kid_mean"]) < rows[0.1]["kid_mean"] / 3
    for c in (0.1, 0.2):
        assert rows[c]["fid"] == pytest.approx(DIM * c * c, rel=0.01)
        assert rows[c]["quality_lpips"] == pytest.approx(c, abs=2e-3)  # merged over chunks 5 + 5 + 2
    assert rows[0.1]["kid_mean"] < rows[0.2]["kid_mean"] and rows[0.1]["kid_subset_size"] == 6
    # Chunks change nothing: FID / KID are scored once on the concatenated features.
    whole = evaluate_generator(Identity(), x, x + 0.2, EvalOptions(**OPTS, chunk=12, fid_network=SmallFeatures(),
                                                                   lpips_network=mean_abs))
    assert whole.row()["fid"] == rows[0.2]["fid"] and whole.row()["kid_mean"] == rows[0.2]["kid_mean"]
    # The targets' features are computed once for every model scored against them.
    class Counting(SmallFeatures):
        calls = 0

        def forward(self, x):
            Counting.calls += len(x)
            return super().forward(x)

    counting = EvalOptions(**OPTS, chunk=5, fid_network=Counting())
    first, second = (evaluate_generator(g, x, x + 0.2, counting).row() for g in (Identity(), nn.Identity()))
    assert Counting.calls == 3 * len(x) and first["fid"] == second["fid"] == rows[0.2]["fid"]
    # Off by default in the Python API: no columns filled, nothing built.
    plain = evaluate_generator(Identity(), x, x, EvalOptions(**OPTS)).row()
    assert plain["fid"] is None and plain["kid_mean"] is None and "quality_lpips" not in plain
    with pytest.raises(ValueError, match="fid_network must be None .off., a weights file path or a network"):
        EvalOptions(**OPTS, fid_network=2048)


def test_the_columns_reach_results_json_csv_md_html_and_tensorboard(scored, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    results, _ = scored
    models = [results[0.0], results[0.2]]
    status = {"fid": "FID and KID: weights test (option)", "lpips": "LPIPS: weights test (option)"}
    files = report.write_report(models, tmp_path, {"shifts": [[0, 1]], "max_shift": 2, "quality_metrics": status}, {})
    row = json.loads(files["json"].read_text())["models"]["offset 0.2"]["row"]
    assert row["fid"] == pytest.approx(DIM * 0.04, rel=0.03) and row["quality_lpips"] == pytest.approx(0.2, abs=2e-3)
    header = files["csv"].read_text().splitlines()[0].split(",")
    assert {"fid", "kid_mean", "kid_std", "quality_lpips"} <= set(header)
    md = files["md"].read_text()
    assert "| FID | KID (mean ± std) | LPIPS |" in md
    line = next(ln for ln in md.splitlines() if ln.startswith("| offset 0.2"))
    assert f"| {row['fid']:.2f} | {row['kid_mean']:.4f} ± {row['kid_std']:.4f} | {row['quality_lpips']:.4f} |" in line
    assert "Quality metrics on 12 images per model" in md and "read KID mean ± std" in md
    assert "<th>FID</th>" in files["html"].read_text()
    report.log_to_tensorboard(results[0.2], tmp_path / "tb", "table", hparams={"generator": {}})
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert events.Scalars("eval/fid")[0].value == pytest.approx(row["fid"], rel=1e-5)
    assert events.Scalars("eval/kid_mean")[0].value == pytest.approx(row["kid_mean"], rel=1e-4)
    assert events.Scalars("eval/quality_lpips")[0].value == pytest.approx(row["quality_lpips"], rel=1e-5)
    assert "hparam/fid" in events.Tags()["scalars"] and "eval/kid_subset_size" not in events.Tags()["scalars"]


def test_skipped_metrics_are_named_in_the_notes_instead_of_blank_columns(scored):
    results, _ = scored
    plain = evaluate_generator(Identity(), _images(4), _images(4), EvalOptions(**OPTS))
    skipped = {"fid": "FID and KID skipped: no weights; pass --fid-weights PATH", "lpips": "LPIPS: weights x (cache)"}
    note = report.quality_metrics_note([plain], {"quality_metrics": skipped})
    assert note == skipped["fid"] + "."
    both = {**skipped, "lpips": "LPIPS skipped: no weights; pass --lpips-weights a.pth"}
    assert report.quality_metrics_note([plain], {"quality_metrics": both}) == (  # two sentences, not one run-on
        "FID and KID skipped: no weights; pass --fid-weights PATH. "
        "LPIPS skipped: no weights; pass --lpips-weights a.pth.")
    assert "off (--no-quality-metrics)" in report.quality_metrics_note([plain], {"quality_metrics": {"off": "off "
                                                                                "(--no-quality-metrics)"}})
    assert report.quality_metrics_note([plain], {}) == ""  # Python API, metrics not asked for
    # --max-images 1 with the weights given: the columns read '-' and nothing said why.
    one = evaluate_generator(Identity(), _images(1), _images(1), EvalOptions(**OPTS, fid_network=SmallFeatures()))
    assert one.distribution.fid is None and one.num_images == 1
    note = report.quality_metrics_note([one], {"quality_metrics": {"fid": "FID and KID: weights f.pth (option, sha256 "
                                                                          "ab)"}})
    assert note.endswith("FID and KID not computed: they compare two sets of images and need at least 2 per model, "
                         "got 1.")


# --- evaluate.py, offline ----------------------------------------------------------------------
FAST = ["--max-images", "3", "--shifts", "2", "--noise", "none", "--layers", "none", "--protocol", "crop",
        "--flicker-frames", "0", "--samples", "0", "--no-progress", "--no-tensorboard"]


def _random_inception_weights(path, monkeypatch, he_init: bool = True, bn_moved: bool = True):
    """A state dict of the FID Inception with random weights, made without its download. As
    torch-fidelity builds it, its features are ~1e-8 and alike for every image, and its batch
    norms' running statistics are at their initial values; ``he_init`` draws the convolutions at
    He scale (the features then tell images apart), ``bn_moved`` moves those statistics as
    training would."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict", lambda self, *a, **k: None)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    state = net.state_dict()
    g = torch.Generator().manual_seed(0)
    for key, value in state.items():
        if he_init and value.dim() == 4:
            value.copy_(torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5)
        if bn_moved and key.endswith("running_mean"):
            value.copy_(torch.randn(value.shape, generator=g) * 0.01)
        if bn_moved and key.endswith("running_var"):
            value.copy_(1 + 0.1 * torch.rand(value.shape, generator=g))
    torch.save(state, path)
    return path


def test_fid_features_are_torch_fidelitys_own(tmp_path, monkeypatch):
    """The features FID and KID are computed from equal those of torch-fidelity's extractor (the
    reference for the TF FID) on the same weights. torchmetrics' default resize (PyTorch's
    antialiased bilinear) differed from them by up to a few tenths of a percent, so the figures
    were not comparable with torch-fidelity's or published ones."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    from pix2pix_aa.metrics.pretrained import inception_network

    path = _random_inception_weights(tmp_path / "inception.pth", monkeypatch)
    images = (torch.rand(3, 3, 64, 96, generator=torch.Generator().manual_seed(1)) * 255).round().to(torch.uint8)
    reference = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                               feature_extractor_weights_path=str(path)).eval()
    with torch.inference_mode():
        ours, theirs = inception_network(str(path))(images), reference(images)[0]
    assert ours.shape == theirs.shape == (3, 2048)
    assert float((ours - theirs).abs().max()) <= 1e-5 * float(theirs.abs().max())


def test_a_relative_weights_path_is_recorded_resolved(tmp_path, monkeypatch):
    from pix2pix_aa.metrics.pretrained import resolve_weights

    _random_inception_weights(tmp_path / "inception.pth", monkeypatch)
    monkeypatch.chdir(tmp_path)
    # before: "weights inception.pth (option, ...)" in results.json, read from another folder later
    assert resolve_weights("fid", "inception.pth").path == str(tmp_path / "inception.pth")


def test_evaluate_offline_prints_one_line_per_skipped_network_and_the_rest(trained_run, monkeypatch, tmp_path,
                                                                            capsys):
    from pix2pix_aa.evaluation.cli import main as evaluate_main

    folder, run = trained_run
    monkeypatch.chdir(folder)
    assert evaluate_main([str(run), "--out", str(tmp_path / "off"), *FAST]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if "skipped" in ln]
    assert len(lines) == 2 and "Traceback" not in err, err
    assert lines[0].startswith("[pix2pix_aa] FID and KID skipped:") and "--fid-weights PATH" in lines[0]
    assert lines[1].startswith("[pix2pix_aa] LPIPS skipped:") and "PIX2PIX_AA_LPIPS_WEIGHTS" in lines[1]
    payload = json.loads((tmp_path / "off" / "results.json").read_text())
    row = next(iter(payload["models"].values()))["row"]
    assert row["fid"] is None and row["stability_crop_pooled_db"] is not None  # the rest is computed
    assert "FID and KID skipped" in (tmp_path / "off" / "results.md").read_text()
    # --offline alone (downloads otherwise allowed) never reaches the libraries' download.
    monkeypatch.delenv("PIX2PIX_AA_OFFLINE")
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("download attempted"))
    assert evaluate_main([str(run), "--out", str(tmp_path / "offline"), "--offline", *FAST]) == 0
    err = capsys.readouterr().err
    assert err.count("downloads are off (--offline or PIX2PIX_AA_OFFLINE)") == 2, err
    # Turned off: no line, and the notes say so.
    assert evaluate_main([str(run), "--out", str(tmp_path / "none"), "--no-quality-metrics", *FAST]) == 0
    assert "skipped" not in capsys.readouterr().err
    assert "off (--no-quality-metrics)" in (tmp_path / "none" / "results.md").read_text()
    # A weights file that is not there is a usage error, in one line, before any evaluation.
    missing = tmp_path / "inception.pth"
    assert evaluate_main([str(run), "--out", str(tmp_path / "bad"), "--fid-weights", str(missing), *FAST]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --fid-weights {missing}: no such file") and "Traceback" not in err


def test_evaluate_reads_both_networks_from_local_files(trained_run, monkeypatch, tmp_path):
    from pix2pix_aa.evaluation.cli import main as evaluate_main

    folder, run = trained_run
    monkeypatch.chdir(folder)
    inception = _random_inception_weights(tmp_path / "inception.pth", monkeypatch)
    alexnet = _random_alexnet_weights(tmp_path / "alexnet.pth", monkeypatch)
    monkeypatch.setenv("PIX2PIX_AA_LPIPS_WEIGHTS", str(alexnet))  # one by variable
    assert evaluate_main([str(run), "--out", str(tmp_path / "eval"), "--fid-weights", str(inception), *FAST]) == 0
    payload = json.loads((tmp_path / "eval" / "results.json").read_text())
    row = next(iter(payload["models"].values()))["row"]
    assert row["fid"] is not None and row["kid_mean"] is not None and row["quality_lpips"] > 0
    assert row["fid"] > 0  # the features tell the outputs from the targets
    assert row["kid_subset_size"] == 2  # 3 images: half the set, at least 2
    # Which files the scores come from: the full sha256 in results.json, 12 digits in results.md.
    digests = {name: hashlib.sha256(p.read_bytes()).hexdigest() for name, p in (("fid", inception),
                                                                                ("lpips", alexnet))}
    assert payload["options"]["quality_metrics"]["fid"].endswith(
        f"(option, sha256 {digests['fid']}), images resized to 299 x 299 by torch-fidelity's TF1-compatible bilinear "
        "(not antialiased)")
    assert payload["options"]["quality_metrics"]["lpips"].endswith(f"(environment, sha256 {digests['lpips']})")
    md = (tmp_path / "eval" / "results.md").read_text()
    assert (f"FID and KID: weights {inception} (option, sha256 {digests['fid'][:12]}), images resized to 299 x 299 "
            "by torch-fidelity's TF1-compatible bilinear (not antialiased).") in md
    assert f"LPIPS: weights {alexnet} (environment, sha256 {digests['lpips'][:12]})." in md


def test_a_weights_file_of_another_network_or_untrained_is_one_line_at_start_up(trained_run, run_cli, monkeypatch,
                                                                                 tmp_path, capsys):
    """torchvision's ImageNet Inception v3, an untrained FID Inception (FID 0.00 for every model),
    VGG16 or random AlexNet weights: the first crashed after the stability work with a state_dict
    traceback, in training at the first validation (the epochs trained lost); the second scored."""
    import torchvision

    from pix2pix_aa.evaluation.cli import main as evaluate_main

    folder, run = trained_run
    monkeypatch.chdir(folder)
    torch.save(torchvision.models.inception_v3(weights=None, init_weights=False, aux_logits=True).state_dict(),
               tmp_path / "tv_inception.pth")
    untrained = _random_inception_weights(tmp_path / "untrained.pth", monkeypatch, he_init=False, bn_moved=False)
    alike = _random_inception_weights(tmp_path / "alike.pth", monkeypatch, he_init=False)
    he_random = _random_inception_weights(tmp_path / "he_random.pth", monkeypatch, bn_moved=False)
    torch.save(torchvision.models.alexnet().state_dict(), tmp_path / "alexnet.pth")
    torch.save(nn.Linear(2, 2), tmp_path / "module.pth")  # a pickled module: torch's refusal is coloured, pages long
    (tmp_path / "cut.pth").write_bytes(he_random.read_bytes()[:100_000])
    (tmp_path / "script.py").write_text("import torch\n")  # it said "pickled objects ... (Unsupported operand 105)"
    (tmp_path / "empty.pth").write_bytes(b"")  # it said "starts with bytes b''"
    (tmp_path / "plain.pkl").write_bytes(pickle.dumps({"a": [1, 2]}, protocol=4))  # "Unsupported operand 149"
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:  # it showed torch's C++ "enforce fail" line
        archive.writestr("x.txt", "not weights")
    (tmp_path / "folder.pth").mkdir()  # it said "no such file"
    cases = [("--fid-weights", tmp_path / "empty.pth", "not a PyTorch weights file (the file is empty)"),
             ("--fid-weights", tmp_path / "plain.pkl", "not a PyTorch weights file (a pickle, but not one torch.save "
              "wrote (pickle.dump of other data?))"),
             ("--lpips-weights", tmp_path / "other.zip", "not a PyTorch weights file (a zip archive, but not one "
              "torch.save wrote (no data.pkl in it))"),
             ("--fid-weights", tmp_path / "folder.pth", "is a folder; give the FID"),
             ("--fid-weights", tmp_path / "script.py", "not a PyTorch weights file (it starts with bytes b'impo', "
              "not the zip archive or pickle that torch.save writes)"),
             ("--fid-weights", tmp_path / "module.pth", "not a PyTorch weights file (it holds pickled objects that "
              "are not plain weights (Unsupported global: GLOBAL torch.nn.modules.linear.Linear"),
             ("--fid-weights", tmp_path / "cut.pth", "not a PyTorch weights file (the file is truncated (its zip "
              "archive has no end record): an interrupted copy or download? copy it again)"),
             ("--fid-weights", tmp_path / "tv_inception.pth", "not the FID and KID network's weights (Unexpected "
              "key(s) in state_dict: "),
             ("--fid-weights", untrained, "untrained FID Inception weights (every batch norm's running statistics "
              "are still at their initial mean 0 and variance 1)"),
             ("--fid-weights", he_random, "untrained FID Inception weights"),  # scored FID 241.5 otherwise
             ("--fid-weights", alike, "the FID Inception built from it gives a noise image and a smooth ramp the "
              "same features (RMS difference "),
             ("--lpips-weights", tmp_path / "alexnet.pth", "not the LPIPS network's published weights (sha256 ")]
    for flag, path, message in cases:
        out = tmp_path / f"eval_{path.stem}"
        assert evaluate_main([str(run), "--out", str(out), flag, str(path), *FAST]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {flag} {path}: {message}") and "Traceback" not in err, err
        assert len(err.strip().splitlines()) == 1 and not out.exists()  # before anything is evaluated
        assert "\x1b" not in err and "two options" not in err  # before: torch's colours, its sentence cut in half
    # The Python API checks a path as evaluate.py does (before: FID 0 and KID 0 from the untrained file).
    from pix2pix_aa.evaluation.runner import quality_networks

    with pytest.raises(ValueError, match=f"^EvalOptions.fid_network {untrained}: untrained FID Inception weights"):
        quality_networks(EvalOptions(fid_network=str(untrained)))
    with pytest.raises(ValueError, match="^EvalOptions.lpips_network .*: not the LPIPS network's published weights"):
        quality_networks(EvalOptions(lpips_network=tmp_path / "alexnet.pth"))
    # The same in the cache (no option): skipped in one line, the rest scored.
    from pix2pix_aa.metrics import pretrained

    cached = Path(torch.hub.get_dir()) / "checkpoints" / "weights-inception-2015-12-05-6726825d.pth"
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes((tmp_path / "tv_inception.pth").read_bytes())
    try:
        status = pretrained.resolve_weights("fid")
    finally:
        cached.unlink()  # the cache folder is shared by the session's tests
    assert status.skipped.startswith("FID and KID skipped: cached file ") and "Unexpected key(s)" in status.skipped
    # In training, at start-up: nothing trained and lost.
    monkeypatch.setenv("PIX2PIX_AA_FID_WEIGHTS", str(untrained))
    with pytest.raises(SystemExit):
        run_cli(folder, ["fit", "--config", str(run / "config.yaml"), "--model.val_kid", "true",
                         "--trainer.logger.init_args.name", "kidbad"])
    err = capsys.readouterr().err
    assert "PIX2PIX_AA_FID_WEIGHTS " in err and "untrained FID Inception weights" in err and "Traceback" not in err
    assert not (folder / "runs" / "kidbad").exists()


# --- validation KID and the best checkpoint (train.py) ----------------------------------------
def _scalars(run, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run), size_guidance={"scalars": 0}).Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)] if tag in events.Tags()["scalars"] else []


def test_val_kid_is_logged_per_validation_and_ranks_the_best_checkpoint(tmp_path, run_cli, write_tiny_config,
                                                                        monkeypatch, capsys):
    from pix2pix_aa.metrics import pretrained

    real_resolve = pretrained.resolve_weights
    monkeypatch.setattr(pretrained, "resolve_weights", lambda name, *a, **k: pretrained.WeightsStatus(name, "small",
                                                                                                     "test"))
    monkeypatch.setattr(pretrained, "inception_network", lambda path: SmallFeatures())
    cfg = write_tiny_config(tmp_path, trainer__max_epochs=3, data__data_dir=str(tmp_path / "data"),
                            data__generate_counts={"train": 2, "val": 4, "test": 1})
    run_cli(tmp_path, ["fit", "--config", str(cfg), "--model.val_kid", "true"])
    run = tmp_path / "runs" / "tiny" / "version_0"
    kids = _scalars(run, "val/kid")
    assert len(kids) == 3 and len(_scalars(run, "val/kid_std")) == 3  # one per validation (4 images, 2 batches)
    best = min(range(3), key=lambda e: kids[e][1])
    assert [p.name for p in (run / "checkpoints").glob("best-*.ckpt")] == [f"best-{best:03d}.ckpt"]
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert not any("inception" in k or "kid" in k for k in ckpt["state_dict"])  # the feature network stays out
    # Which weights scored val/kid: said at start-up and kept in each checkpoint (before: nowhere).
    described = pretrained.WeightsStatus("fid", "small", "test").describe()
    assert f"model.val_kid: {described}" in capsys.readouterr().err
    assert ckpt["pix2pix_aa_val_kid_weights"] == described
    state = next(v for k, v in ckpt["callbacks"].items() if k.startswith("FiniteModelCheckpoint"))
    assert state["monitor"] == "val/kid" and float(state["best_model_score"]) == pytest.approx(kids[best][1])
    # Its config.yaml (monitor val/kid) reused where no weights are: last.ckpt only, said once, no crash.
    monkeypatch.setattr(pretrained, "resolve_weights", real_resolve)  # offline, empty cache (conftest)
    run_cli(tmp_path, ["fit", "--config", str(run / "config.yaml"), "--trainer.logger.init_args.name", "again",
                       "--model.n_epochs", "1", "--model.n_epochs_decay", "0"])
    err = capsys.readouterr().err
    assert "checkpoint.monitor val/kid: this run logs no val/kid (no FID Inception weights): last.ckpt only" in err
    again = tmp_path / "runs" / "again" / "version_0" / "checkpoints"
    assert [p.name for p in again.glob("*.ckpt")] == ["last.ckpt"]


@pytest.mark.parametrize("flags, why", [
    (["--data.generate_counts", "{train: 2, val: 1, test: 1}"], "1 in {val}"),
    (["--trainer.limit_val_batches", "1", "--data.batch_size", "1"], "2 in {val}, --trainer.limit_val_batches 1 of "
                                                                      "batch size 1"),
], ids=["one-val-image", "limited"])
def test_val_kid_with_fewer_than_two_validation_images_is_refused_at_start_up(tmp_path, run_cli, write_tiny_config,
                                                                              monkeypatch, capsys, flags, why):
    """Before: the first epoch trained, no val/kid was logged, and the fit stopped at the best
    checkpoint's monitor with a message about --trainer.* options, without writing any checkpoint."""
    from pix2pix_aa.metrics import pretrained

    monkeypatch.setattr(pretrained, "resolve_weights", lambda name, *a, **k: pretrained.WeightsStatus(name, "small",
                                                                                                     "test"))
    monkeypatch.setattr(pretrained, "inception_network", lambda path: SmallFeatures())
    data = tmp_path / "data"
    cfg = write_tiny_config(tmp_path, trainer__max_epochs=1, data__data_dir=str(data),
                            data__generate_counts={"train": 2, "val": 2, "test": 1})
    with pytest.raises(SystemExit) as exit_:
        run_cli(tmp_path, ["fit", "--config", str(cfg), "--model.val_kid", "true", *flags])
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == ["error: model.val_kid: KID needs at least 2 validation images, and this fit's validation scores "
                      f"1 ({why.format(val=data / 'val')}); add validation images, raise the limit, or drop "
                      "--model.val_kid"]
    assert not list((tmp_path / "runs").glob("tiny/version_*/checkpoints"))


def test_without_val_kid_a_fit_keeps_last_only_and_says_why(trained_run, tmp_path, run_cli, write_tiny_config,
                                                             capsys):
    _, run = trained_run  # the default: no best-*.ckpt by val/l1
    assert [p.name for p in (run / "checkpoints").glob("*.ckpt")] == ["last.ckpt"]
    # val_kid asked for, offline without weights: one line, training goes on, last.ckpt only.
    cfg = write_tiny_config(tmp_path, trainer__max_epochs=1, data__data_dir=str(tmp_path / "data"),
                            data__generate_counts={"train": 2, "val": 2, "test": 1})
    run_cli(tmp_path, ["fit", "--config", str(cfg), "--model.val_kid", "true"])
    out = capsys.readouterr()
    printed = out.out + out.err
    assert printed.count("FID and KID skipped") == 1 and "model.val_kid" in printed and "Traceback" not in printed
    # The way train.py takes (it has no --fid-weights), said at start-up, before any epoch trains.
    assert "set PIX2PIX_AA_FID_WEIGHTS to a copy of" in printed and "--fid-weights" not in printed
    assert "downloads are off (PIX2PIX_AA_OFFLINE)" in printed and "--offline" not in printed  # evaluate.py's flag
    assert "model.val_kid: FID and KID skipped" in out.err and "warning: model.val_kid" not in out.out  # the module's
    assert out.err.index("model.val_kid: FID and KID skipped") < out.err.index("checkpoints: last.ckpt only")
    assert "checkpoints: last.ckpt only; no best-*.ckpt by validation L1" in printed
    # Not "--model.val_kid true keeps the best", which the user had just passed:
    assert "model.val_kid would keep the best by validation KID once the FID weights are reachable" in printed
    assert "--model.val_kid true keeps" not in printed
    ckpts = tmp_path / "runs" / "tiny" / "version_0" / "checkpoints"
    assert [p.name for p in ckpts.glob("*.ckpt")] == ["last.ckpt"]
    # The L1 ranking is still there for whoever asks for it.
    run_cli(tmp_path, ["fit", "--config", str(cfg), "--checkpoint.monitor", "val/l1"])
    ckpts = tmp_path / "runs" / "tiny" / "version_1" / "checkpoints"
    assert [p.name for p in ckpts.glob("best-*.ckpt")] == ["best-000.ckpt"]
    # Such a run (as every run trained before this default) resumes under the new default.
    run_cli(tmp_path, ["fit", "--config", str(cfg), "--ckpt_path", "last", "--model.n_epochs_decay", "1",
                       "--trainer.max_epochs", "2"])
    assert torch.load(ckpts / "last.ckpt", weights_only=True)["epoch"] == 1
    assert (ckpts / "best-000.ckpt").is_file()
