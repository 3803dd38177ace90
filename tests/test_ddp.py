"""Scale-out: Lightning DDP training with 2 CPU processes (gloo), per-rank augmentation seeds,
sync_batchnorm conversion, and data-parallel stability evaluation.

One real 2-process ``train.py fit`` run (a subprocess, as Lightning's ``ddp`` launcher re-runs the
script per rank) is shared by the tests below; ``tests/ddp_probe.py`` records each rank's view.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from pix2pix_aa.data import Pix2PixDataModule
from pix2pix_aa.data.datamodule import RankSeededDataset, rank_seed

REPO = Path(__file__).resolve().parents[1]
TESTS = Path(__file__).resolve().parent
#: Plain ``ddp`` (find_unused_parameters=False) cannot train this module: the D backward never
#: reaches G's parameters (fake.detach()) and the G backward skips D's (toggled off), so DDP's
#: reducer would wait for gradients that never come. Lightning's registered variant enables
#: unused-parameter detection; see docs/SCALING.md.
DDP_STRATEGY = "ddp"  # the CLI turns it into ddp_find_unused_parameters_true (cli.gan_strategy)


#: The tests on the 2-process fit below share it (46 s of set-up on the shared 2-core machine):
#: all of them are slow, so that ``-m "not slow"`` never pays for it.
SLOW_DDP = pytest.mark.slow


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, write_tiny_config) -> Path:
    """One epoch of the tiny config on 2 CPU processes: 8 train images -> 2 batches of 2 per rank;
    2 val images (even, so the DistributedSampler pads nothing) -> 1 per rank."""
    folder = tmp_path_factory.mktemp("ddp")
    config = write_tiny_config(folder, "tiny.yaml", trainer__max_epochs=1, data__data_dir=str(folder / "data"))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(TESTS), str(REPO)]),
           "PYTHONWARNINGS": "ignore"}
    cmd = [sys.executable, str(REPO / "train.py"), "fit", "--config", str(config),
           "--trainer.strategy", DDP_STRATEGY, "--trainer.devices", "2", "--trainer.num_nodes", "1",
           "--trainer.callbacks+=ddp_probe.RankProbe"]
    proc = subprocess.run(cmd, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"DDP fit failed:\n{proc.stderr[-4000:]}"
    return folder


def _probe(folder: Path, rank: int) -> dict:
    return json.loads((folder / "rank_probe" / f"rank{rank}.json").read_text())


@SLOW_DDP
def test_both_ranks_step_on_disjoint_data_and_end_with_identical_weights(ddp_run):
    ranks = [_probe(ddp_run, r) for r in (0, 1)]
    for r, rec in enumerate(ranks):
        assert rec["rank"] == r and rec["world_size"] == 2 and rec["strategy"] == "DDPStrategy"
        assert rec["train_sampler"] == "DistributedSampler"
        assert len(rec["step_seconds"]) == 2  # 8 images / 2 ranks / batch 2
        assert rec["global_step"] == 4  # two optimiser steps (D, G) per batch
        assert rec["end"]["G"] != rec["start"]["G"] and rec["end"]["D"] != rec["start"]["D"], "no update"
    # Each rank saw its own half of the training set...
    names0, names1 = set(ranks[0]["names"]), set(ranks[1]["names"])
    assert not names0 & names1 and len(names0 | names1) == 8
    # ...yet both players' weights are bitwise identical: gradients of G and D were all-reduced.
    assert ranks[0]["start"] == ranks[1]["start"]
    assert ranks[0]["end"] == ranks[1]["end"]
    # Validation metrics are reduced across ranks (sync_dist): every rank holds the same value.
    for key in ("val/l1", "val/psnr", "val/ssim", "val/stability_psnr"):
        assert ranks[0]["metrics"][key] == ranks[1]["metrics"][key], key


@SLOW_DDP
def test_rank_zero_alone_writes_one_checkpoint_folder_and_one_event_file(ddp_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = ddp_run / "runs" / "tiny"
    assert [p.name for p in runs.iterdir()] == ["version_0"]
    run = runs / "version_0"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt"]  # the default keeps no best-*.ckpt (validation L1 rewards blur)
    assert {p.parent for p in ddp_run.rglob("*.ckpt")} == {run / "checkpoints"}  # none from rank 1
    # One progress file, rank 0's (its log folder is a broadcast, so every rank takes part in it:
    # asked on rank 0 alone, the fit hung)
    assert [p.relative_to(ddp_run) for p in ddp_run.rglob("train.log")] == [Path("runs/tiny/version_0/train.log")]
    assert (run / "train.log").read_text().count(" done (1 of 1) at iteration 2: ") == 1
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    # One image per logging step (from rank 0 only): batch 0 of the epoch, and one validation grid.
    assert [e.step for e in events.Images("train/images")] == [0]
    assert len(events.Images("val/images")) == 1


@SLOW_DDP
def test_validation_metric_equals_single_process_run_on_the_same_weights(ddp_run, run_cli):
    ddp = _probe(ddp_run, 0)["metrics"]
    cli = run_cli(ddp_run, ["validate", "--config", "tiny.yaml", "--trainer.logger", "false",
                            "--ckpt_path", str(ddp_run / "runs/tiny/version_0/checkpoints/last.ckpt")])
    single = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    # Same weights, BatchNorm running statistics (rank 0's, broadcast by DDP) and images; only
    # the order of float reductions differs.
    for key in ("val/l1", "val/psnr", "val/ssim"):
        assert ddp[key] == pytest.approx(single[key], rel=1e-4), key
    assert ddp["val/stability_psnr"] == pytest.approx(single["val/stability_psnr"], abs=0.05)  # ~70 dB


@SLOW_DDP
def test_parallel_evaluation_gives_the_single_process_numbers(ddp_run, monkeypatch, tmp_path):
    from pix2pix_aa.evaluation.cli import main as evaluate_main

    monkeypatch.chdir(ddp_run)
    common = [str(ddp_run / "runs/tiny/version_0"), "--max-images", "2", "--chunk", "1", "--shifts", "2",
              "--layers", "enc1,out", "--noise", "0.05", "--no-progress", "--no-tensorboard"]
    torch.set_num_threads(1)  # as each pool worker: conv results may depend on the thread count
    assert evaluate_main(common + ["--out", str(tmp_path / "one")]) == 0
    assert evaluate_main(common + ["--out", str(tmp_path / "two"), "--num-processes", "2"]) == 0

    def numbers(folder: Path) -> dict:
        model = json.loads((folder / "results.json").read_text())["models"]["tiny/version_0/last"]
        model["row"].pop("seconds")
        return model

    assert numbers(tmp_path / "two") == numbers(tmp_path / "one")


@SLOW_DDP
def test_distributed_evaluation_path_merges_gathered_chunks(ddp_run, tmp_path):
    """The torchrun code path (init, shard, all_gather_object, merge) in a 1-rank gloo group."""
    import torch.distributed as dist

    from pix2pix_aa.evaluation.checkpoints import load_generator
    from pix2pix_aa.evaluation.parallel import evaluate_distributed
    from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator, merge_chunks

    gen = load_generator(ddp_run / "runs/tiny/version_0/checkpoints/last.ckpt").generator
    x = torch.rand(3, 3, 64, 64) * 2 - 1
    opts = EvalOptions(max_shift=2, layers=None, noise=(0.05,), chunk=2)
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        (outcome,) = evaluate_distributed([gen], x, x, opts)
    finally:
        dist.destroy_process_group()
    assert outcome.error is None and [p.start for p in outcome.parts] == [0, 2]
    merged, single = merge_chunks(outcome.parts).to_dict(), evaluate_generator(gen, x, x, opts).to_dict()
    assert merged["row"].pop("seconds") >= 0 and single["row"].pop("seconds") >= 0
    assert json.dumps(merged, default=str) == json.dumps(single, default=str)


# --- per-rank augmentation seeds (no processes needed) -----------------------------------
def _train_loader(data_dir: Path, rank: int, world: int, num_workers: int = 0):
    dm = Pix2PixDataModule(data_dir=str(data_dir), load_size=72, crop_size=64, batch_size=1,
                           num_workers=num_workers, generate_size=64)
    dm.trainer = SimpleNamespace(global_rank=rank, world_size=world)  # what Lightning attaches
    dm.setup("fit")
    return dm.train_dataloader()


def test_ranks_draw_different_crops_of_the_same_image(tiny_facades):
    loaders, first = [], []
    for rank in (0, 1):  # as two processes: seed_everything gives each the same global RNG state
        torch.manual_seed(0)
        loaders.append(_train_loader(tiny_facades, rank, 2))
        first.append([loaders[-1].dataset[0]["input"] for _ in range(3)])
    assert all(isinstance(dl.dataset, RankSeededDataset) for dl in loaders)
    # Same image, same position in each rank's sequence: the crops / flips must differ.
    assert not any(torch.equal(a, b) for a, b in zip(*first))
    # Deterministic per rank, and the global RNG (dropout's) is left alone.
    state = torch.get_rng_state()
    again = _train_loader(tiny_facades, 1, 2).dataset[0]["input"]
    assert torch.equal(again, first[1][0]) and torch.equal(torch.get_rng_state(), state)
    # Single process and worker processes keep the plain dataset (workers are seeded per rank).
    assert not isinstance(_train_loader(tiny_facades, 0, 1).dataset, RankSeededDataset)
    seeds = [_train_loader(tiny_facades, r, 2, num_workers=1).generator.initial_seed() for r in (0, 1)]
    assert seeds[0] == 0 == rank_seed(0, 0) and seeds[1] == rank_seed(0, 1) != 0


def test_sync_batchnorm_converts_generator_and_checkpoints_stay_loadable():
    """``Trainer(sync_batchnorm=True)`` applies this plugin; the state dict keeps BatchNorm's keys,
    so a checkpoint trained with it loads into the plain generator (evaluate.py, 1 device)."""
    from pytorch_lightning.plugins import TorchSyncBatchNorm

    from pix2pix_aa.module import Pix2PixModule
    from pix2pix_aa.networks import PatchGANDiscriminator, UNetGenerator

    def tiny() -> Pix2PixModule:
        return Pix2PixModule(UNetGenerator(num_downs=5, ngf=8, norm="batch"), PatchGANDiscriminator(ndf=8, n_layers=2))

    synced = TorchSyncBatchNorm().apply(tiny())
    kinds = {type(m).__name__ for m in synced.generator.modules()}
    assert "SyncBatchNorm" in kinds and "BatchNorm2d" not in kinds
    plain = tiny().generator
    plain.load_state_dict(synced.generator.state_dict())  # strict: same keys and shapes
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    assert torch.equal(plain.eval()(x), synced.generator.eval()(x))  # eval needs no process group


def test_plain_ddp_names_get_find_unused_parameters():
    from pix2pix_aa.cli import gan_strategy

    assert gan_strategy("ddp") == "ddp_find_unused_parameters_true"
    assert gan_strategy("ddp_spawn") == "ddp_spawn_find_unused_parameters_true"
    assert gan_strategy("auto") == "auto"
    # explicit choice kept
    assert gan_strategy("ddp_find_unused_parameters_false") == "ddp_find_unused_parameters_false"


def test_the_ddp_lightning_picks_itself_gets_find_unused_parameters_too():
    # strategy auto on 2 devices is DDP without a name gan_strategy could rewrite: the first G step
    # failed with DDP's unused-parameters error.
    from pytorch_lightning import Trainer

    from pix2pix_aa.compat import ddp_allow_unused_parameters

    trainer = Trainer(accelerator="cpu", devices=2, strategy="auto", logger=False, enable_checkpointing=False)
    assert ddp_allow_unused_parameters(trainer.strategy)
    assert trainer.strategy._ddp_kwargs["find_unused_parameters"] is True
    explicit = Trainer(accelerator="cpu", devices=2, strategy="ddp_find_unused_parameters_false", logger=False,
                       enable_checkpointing=False)
    ddp_allow_unused_parameters(explicit.strategy)
    assert explicit.strategy._ddp_kwargs["find_unused_parameters"] is False  # an explicit choice is kept
    assert not ddp_allow_unused_parameters(Trainer(accelerator="cpu", devices=1, logger=False).strategy)


@pytest.mark.parametrize("strategy, expected", [
    ("auto", True),
    ("{class_path: pytorch_lightning.strategies.DDPStrategy, init_args: {find_unused_parameters: true}}", True),
    # jsonargparse fills a class_path's options with DDP's default (False): refused like an explicit false.
    ("{class_path: pytorch_lightning.strategies.DDPStrategy}", None),
    ("ddp_find_unused_parameters_false", None),
])
def test_every_ddp_strategy_the_cli_builds_allows_unused_parameters_or_is_refused(tmp_path, capsys, write_tiny_config,
                                                                                 strategy, expected):
    # A DDPStrategy given as a class_path reached neither the name rewrite nor the auto case, and
    # an explicit false was kept: either way the first G step failed with DDP's error in each process.
    from pix2pix_aa.cli import main as cli_main

    cfg = write_tiny_config(tmp_path, data__data_dir=str(tmp_path / "data"))
    args = ["--config", str(cfg), "--trainer.logger", "false", "--trainer.accelerator", "cpu", "--trainer.devices", "2",
            "--trainer.strategy", strategy]
    if expected is None:
        with pytest.raises(SystemExit):
            cli_main(args, run=False)
        err = capsys.readouterr().err.strip().splitlines()
        assert err[0].startswith("error: trainer.strategy: DDP with find_unused_parameters false cannot train")
        assert "Traceback" not in "\n".join(err)
    else:
        assert cli_main(args, run=False).trainer.strategy._ddp_kwargs["find_unused_parameters"] is expected
