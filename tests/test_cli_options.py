"""train.py options that used to be accepted and then silently wrong: the LR schedule, resuming
with changed options, max_steps, configs reused after a resume, evaluation subcommands' data and
folders, options LightningCLI accepts but the GAN cannot honour, reference-style flags, and
start-up checks of the image size and channels against the networks."""

from __future__ import annotations

import re
import shutil
import warnings
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pix2pix_aa.cli import main as cli_main
from pix2pix_aa.module import Pix2PixModule, linear_decay_factor


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli_options")


@pytest.fixture
def fit(folder, monkeypatch, write_tiny_config):
    """fit(name, *flags, config=None, **overrides) in ``folder`` on one shared tiny data set."""
    monkeypatch.chdir(folder)

    def run(name: str, *flags: str, config: Path | None = None, subcommand: str = "fit", **overrides):
        shared = {"data__data_dir": str(folder / "data"), "data__generate_counts": {"train": 4, "val": 1, "test": 1}}
        cfg = config or write_tiny_config(folder, f"{name}.yaml", **{**shared, **overrides})
        return cli_main([subcommand, "--config", str(cfg), "--trainer.logger.init_args.name", name, *flags])

    return run


def _error(capsys, call) -> str:
    with pytest.raises(SystemExit) as info:
        call()
    assert info.value.code == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    return err


def _scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


# -- LR schedule ----------------------------------------------------------------------------------
def test_lr_multiplier_never_goes_negative():
    assert [linear_decay_factor(e, 1, 1) for e in range(5)] == pytest.approx([1.0, 0.5, 0.0, 0.0, 0.0])


def test_max_epochs_past_or_short_of_the_schedule_is_refused(fit, capsys):
    err = _error(capsys, lambda: fit("past", "--trainer.max_epochs", "5", "--model.n_epochs", "1",
                                     "--model.n_epochs_decay", "1"))
    assert "trainer.max_epochs=5" in err and "model.n_epochs + model.n_epochs_decay = 1 + 1 = 2" in err
    assert "--model.n_epochs_decay 4" in err  # the fix for "train 5 epochs"
    err = _error(capsys, lambda: fit("short", "--trainer.max_epochs", "1"))
    assert "would stop before the LR decay ends" in err
    # min_epochs past the schedule: recorded in config.yaml, and the run stopped at the schedule's end
    err = _error(capsys, lambda: fit("minep", "--trainer.min_epochs", "3"))
    assert ("trainer.min_epochs=3 but the LR schedule ends after model.n_epochs + model.n_epochs_decay = 1 + 1 = 2 "
            "epochs, where the run stops: pass --model.n_epochs_decay 2 to train 3 epochs") in err


def test_a_cosine_schedule_with_decay_epochs_says_the_lr_rises_again(fit, capsys):
    """cosine anneals to 0 over n_epochs (the reference's T_max) and climbs back over n_epochs_decay:
    logged 1e-3, 5e-4, 0, 5e-4 for 2 + 2 epochs, while the docs said "annealing to 0"."""
    fit("cosine_up", "--model.lr_policy", "cosine", "--trainer.limit_train_batches", "1",
        "--trainer.limit_val_batches", "0")
    assert ("model.lr_policy cosine: the LR anneals to 0 over model.n_epochs (1) and rises again over the "
            "model.n_epochs_decay (1) epochs after") in capsys.readouterr().err


def test_max_epochs_unset_is_derived_from_the_schedule(fit, capsys):
    cli = fit("derived", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")
    assert cli.trainer.max_epochs == 1 and cli.trainer.current_epoch == 1
    assert "trainer.max_epochs = 1 (model.n_epochs 1 + model.n_epochs_decay 0)" in capsys.readouterr().err


def test_extending_a_finished_run_continues_with_the_new_schedule(fit, folder, capsys):
    """Train N more epochs: the command line's schedule wins over the checkpoint's, is printed,
    is written to config.yaml, and the logged LR follows it."""
    fit("extend")  # 2 epochs, n_epochs 1 + n_epochs_decay 1: LR 2e-4, 1e-4
    capsys.readouterr()
    cli = fit("extend", "--ckpt_path", "last", "--trainer.max_epochs", "4", "--model.n_epochs_decay", "3")
    err = capsys.readouterr().err
    assert "changed from the checkpoint by the command line: model.n_epochs_decay=3 (checkpoint: 1)" in err
    assert cli.model.hparams.n_epochs_decay == 3 and cli.trainer.current_epoch == 4
    run = folder / "runs" / "extend" / "version_0"
    lrs = [v for _, v in _scalars(run, "lr/G")]
    expected = [2e-4 * linear_decay_factor(e, 1, 1) for e in range(2)] + \
               [2e-4 * linear_decay_factor(e, 1, 3) for e in range(2, 4)]
    assert lrs == pytest.approx(expected)
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["n_epochs_decay"] == 3


def test_resuming_with_a_shorter_schedule_than_trained_is_one_line(fit, folder, capsys):
    """A finished 3-epoch run resumed with a 2-epoch schedule: one line with what was trained, what
    was asked and the fix (was: Lightning's 32-line "restored current_epoch=3, but max_epochs=2")."""
    fit("shorter", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2")
    capsys.readouterr()
    err = _error(capsys, lambda: fit("shorter", "--ckpt_path", "last", "--model.n_epochs_decay", "1"))
    assert "the run already trained 3 epochs (its schedule: model.n_epochs 1 + model.n_epochs_decay 2), but this " \
           "schedule ends after 2 (model.n_epochs 1 + model.n_epochs_decay 1)" in err
    assert "pass --model.n_epochs_decay 3 or more" in err
    assert "Traceback" not in err and "current_epoch" not in err
    assert sorted(p.name for p in (folder / "runs" / "shorter").iterdir()) == ["version_0"]


def test_resume_keeps_unflagged_checkpoint_options_and_says_so(fit, folder, capsys, write_tiny_config):
    fit("keep", "--model.lr", "0.001")
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli = fit("keep", "--ckpt_path", "last", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2")
    # Lightning's warning about the run's own folder, which the resume continues in on purpose
    assert not [w for w in caught if "exists and is not empty" in str(w.message)]
    assert cli.model.hparams.lr == pytest.approx(1e-3)  # the config file says 2e-4; the run was 1e-3
    assert "kept from the checkpoint" in capsys.readouterr().err
    opt_g, _ = cli.model.optimizers()
    assert opt_g.param_groups[0]["initial_lr"] == pytest.approx(1e-3)


def test_a_resume_under_a_config_of_other_networks_says_they_cannot_change(fit, folder, capsys, write_tiny_config):
    """The kept-options line advised "pass the flag on the command line" for the generator's options
    too, and the flag was then refused ("resuming cannot change the networks")."""
    fit("nets", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")  # the tiny config's bin5 generator
    cfg = write_tiny_config(folder, "other_nets.yaml", data__data_dir=str(folder / "data"),
                            data__generate_counts={"train": 4, "val": 1, "test": 1},
                            model__generator__init_args__antialias="none")
    capsys.readouterr()
    fit("nets", "--ckpt_path", "last", "--model.n_epochs_decay", "1", config=cfg)
    err = capsys.readouterr().err
    assert ("kept from the checkpoint (a resumed fit cannot change the networks; a new run (without --ckpt_path) "
            "trains the config's): model.generator.init_args.antialias='bin5' (config: 'none')") in err


def test_resume_keeps_the_precision_it_was_trained_in_unless_flagged(fit, capsys):
    # Lightning records no precision: a bf16 run resumed without the flag went on in float32, silently.
    fit("bf16", "--trainer.precision", "bf16-mixed")
    capsys.readouterr()
    cli = fit("bf16", "--ckpt_path", "last", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2")
    assert cli.trainer.precision == "bf16-mixed"
    assert "kept from the checkpoint (pass the flag on the command line to change it): trainer.precision=" \
           "'bf16-mixed' (config: '32-true')" in capsys.readouterr().err
    cli = fit("bf16", "--ckpt_path", "last", "--trainer.max_epochs", "4", "--model.n_epochs_decay", "3",
              "--trainer.precision", "32-true")
    assert cli.trainer.precision == "32-true"
    err = capsys.readouterr().err
    assert "changed from the checkpoint by the command line: " in err
    assert "trainer.precision='32-true' (checkpoint: 'bf16-mixed')" in err
    # A float32 run resumed as it was: nothing said of the precision, however it is spelt.
    fit("bf16", "--ckpt_path", "last", "--trainer.max_epochs", "5", "--model.n_epochs_decay", "4")
    fit("bf16", "--ckpt_path", "last", "--trainer.max_epochs", "6", "--model.n_epochs_decay", "5",
        "--trainer.precision", "32")
    assert "trainer.precision" not in capsys.readouterr().err


def test_resume_continues_on_the_checkpoints_data_unless_flagged(fit, capsys):
    # Resuming with the run's YAML but without the flags it was trained with must not move the
    # run to the YAML's data; a data flag given on the command line does change it (printed).
    fit("datakeep", "--data.no_flip", "true")
    capsys.readouterr()
    cli = fit("datakeep", "--ckpt_path", "last", "--trainer.max_epochs", "2", "--model.n_epochs_decay", "1")
    assert cli.datamodule.hparams.no_flip is True
    assert "data.no_flip=True (config: False)" in capsys.readouterr().err
    cli = fit("datakeep", "--ckpt_path", "last", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2",
              "--data.no_flip", "false")
    assert cli.datamodule.hparams.no_flip is False
    assert "data.no_flip=False (checkpoint: True)" in capsys.readouterr().err


def test_resume_with_a_changed_lr_uses_it(fit, capsys):
    fit("newlr")
    cli = fit("newlr", "--ckpt_path", "last", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2",
              "--model.lr", "0.001")
    opt_g, _ = cli.model.optimizers()
    # epoch 2 of n_epochs 1 + decay 2: factor 1 - 2/3, applied to the new base LR
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-3 * linear_decay_factor(3, 1, 2))


def test_a_resume_with_another_seed_is_refused(fit, capsys):
    """``--ckpt_path last --seed_everything 5 --data.seed 7``: the start-up lines said data.seed was
    changed and config.yaml recorded both, while the restored RNG states and data order made the
    weights bit-identical to a resume without them."""
    fit("reseed")
    capsys.readouterr()
    for flags, shown in ((("--seed_everything", "5"), "seed_everything=5 (checkpoint: 0)"),
                         (("--data.seed", "7"), "data.seed=7 (checkpoint: 0)")):
        err = _error(capsys, lambda flags=flags: fit("reseed", "--ckpt_path", "last", "--trainer.max_epochs", "3",
                                                     "--model.n_epochs_decay", "2", *flags))
        assert f"error: --ckpt_path: {shown}: a resumed fit goes on with the checkpoint's random streams" in err
    cli = fit("reseed", "--ckpt_path", "last", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2",
              "--seed_everything", "0")  # the run's own seed: nothing new
    assert cli.trainer.current_epoch == 3


def test_ckpt_path_best_is_the_runs_best_checkpoint(fit, folder, capsys):
    """Lightning knows ``best`` only in the process that ran the fit: ``test --ckpt_path best``
    beside a best-001.ckpt said that ModelCheckpoint "is not configured to save the best model"."""
    fit("bestrun", "--checkpoint.monitor", "val/l1")
    best = sorted((folder / "runs" / "bestrun" / "version_0" / "checkpoints").glob("best*.ckpt"))
    assert len(best) == 1
    capsys.readouterr()
    cli = fit("bestrun", "--ckpt_path", "best", subcommand="test")
    assert f"--ckpt_path best: {best[0].relative_to(folder)}" in capsys.readouterr().err
    assert cli.trainer.state.finished and cli.trainer.ckpt_path == str(best[0].relative_to(folder))
    err = _error(capsys, lambda: fit("bestrun", "--ckpt_path", "best"))
    assert "error: --ckpt_path best: a fit resumes from its last checkpoint (--ckpt_path last)" in err
    fit("nobest")  # last.ckpt only
    capsys.readouterr()
    err = _error(capsys, lambda: fit("nobest", "--ckpt_path", "best", subcommand="test"))
    assert "error: --ckpt_path best: no best*.ckpt under " in err and "runs/nobest/version_0/checkpoints" in err


def test_evaluating_no_batch_is_refused(fit, folder, capsys):
    """Before: exit 0, nothing scored or written, and an empty TensorBoard run left."""
    fit("limited", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")
    for subcommand, option in (("validate", "limit_val_batches"), ("test", "limit_test_batches"),
                               ("predict", "limit_predict_batches")):
        err = _error(capsys, lambda o=option, c=subcommand: fit("limited", "--ckpt_path", "last", f"--trainer.{o}",
                                                                "0", subcommand=c))
        assert f"error: trainer.{option}=0: {subcommand} would run on no batch; drop it" in err
    # A "true" half precision rounds the trained weights: refused for the reason that applies (it
    # said Adam's updates round away, where nothing is trained).
    err = _error(capsys, lambda: fit("limited", "--ckpt_path", "last", "--trainer.precision", "bf16-true",
                                     subcommand="test"))
    assert ("trainer.precision bf16-true: test would run the generator with its weights rounded to bfloat16, not the "
            "trained model") in err


def test_a_monitor_that_never_validates_is_said(fit, folder, capsys):
    fit("novalid", "--checkpoint.monitor", "val/l1", "--trainer.check_val_every_n_epoch", "5")
    err = capsys.readouterr().err
    assert ("trainer.check_val_every_n_epoch=5 > trainer.max_epochs=2: no validation runs, so no best checkpoint by "
            "val/l1, last.ckpt only") in err
    # the end of a fit says where the model is and the next step (it said nothing)
    assert err.splitlines()[-1] == ("[pix2pix_aa] fit done (2 epochs, 4 iterations): runs/novalid/version_0/"
                                    "checkpoints/last.ckpt; score it with: python evaluate.py runs/novalid/version_0")


def test_a_best_checkpoint_by_a_higher_is_better_metric_is_its_highest(fit, folder, capsys):
    """--checkpoint.monitor val/psnr kept the epoch with the lowest PSNR (mode min, the default),
    and test --ckpt_path best scored it."""
    fit("psnrbest", "--checkpoint.monitor", "val/psnr")
    assert "checkpoint.monitor val/psnr: higher is better, so checkpoint.mode max" in capsys.readouterr().err
    run = folder / "runs" / "psnrbest" / "version_0"
    psnr = [v for _, v in _scalars(run, "val/psnr")]
    assert len(psnr) == 2 and psnr[0] != psnr[1]
    best = [p.name for p in (run / "checkpoints").glob("best*.ckpt")]
    assert best == [f"best-{max(range(2), key=psnr.__getitem__):03d}.ckpt"]


def test_mid_epoch_snapshots_keep_last_ckpt_at_every_epoch_end(fit, folder, capsys):
    """With last_checkpoint.every_n_train_steps a finished fit's last.ckpt was its last mid-epoch
    snapshot (Lightning turns the epoch-end save off), short of the trained model."""
    fit("snapshots", "--last_checkpoint.every_n_train_steps", "3")  # 2 epochs x 2 iterations, 2 optimiser steps each
    assert ("last_checkpoint.every_n_train_steps=3 counts optimiser steps, two per training iteration: a checkpoint "
            "every 1.5 iterations") in capsys.readouterr().err
    fit("plain")
    last = {name: torch.load(folder / "runs" / name / "version_0" / "checkpoints" / "last.ckpt", weights_only=True)
            for name in ("snapshots", "plain")}
    assert last["snapshots"]["global_step"] == last["plain"]["global_step"] == 8  # before: 6
    assert last["snapshots"]["loops"]["fit_loop"] == last["plain"]["loops"]["fit_loop"]
    assert all(torch.equal(v, last["plain"]["state_dict"][k]) for k, v in last["snapshots"]["state_dict"].items())


def test_a_max_time_stop_inside_an_epoch_is_named(fit, capsys, monkeypatch):
    """Lightning said only "Time limit reached"; a resume then skipped the rest of the epoch."""
    from pytorch_lightning.callbacks import Timer

    calls = []  # the fit's start-up check finds time left; the 1 s are up at the first batch's end

    def elapsed(self, stage="train") -> float:
        calls.append(stage)
        return 0.0 if len(calls) == 1 else 10.0

    monkeypatch.setattr(Timer, "time_elapsed", elapsed)
    fit("timed", "--trainer.max_time", "00:00:00:01")
    assert ("stopped by trainer.max_time after 1 of epoch 0's 2 batches: last.ckpt counts epoch 0 as finished, so a "
            "resume (--ckpt_path last) goes on with epoch 1, and the other batch of epoch 0 is not trained"
            ) in capsys.readouterr().err


def test_a_slurm_requeue_checkpoint_resumes_its_own_run_only(fit, folder, capsys, monkeypatch):
    """Lightning resumed any fit on SLURM from runs/hpc_ckpt_N.ckpt, whichever run wrote it,
    past every check of this CLI's resume; a requeued job of the run itself goes on from it."""
    from pix2pix_aa import cli

    monkeypatch.setattr(cli, "_on_slurm", lambda: True)
    donor = fit("donor", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")
    hpc = Path(donor.trainer.default_root_dir) / "hpc_ckpt_1.ckpt"  # where Lightning saves it on SIGUSR1
    shutil.copy(folder / "runs" / "donor" / "version_0" / "checkpoints" / "last.ckpt", hpc)
    try:
        err = _error(capsys, lambda: fit("another", "--model.lr", "0.001"))
        assert "hpc_ckpt_1.ckpt: a SLURM requeue checkpoint of run donor, which Lightning would resume this fit " \
               "(another) from; move it away, or pass --ckpt_path" in err
        assert not list((folder / "runs" / "another").glob("version_*/checkpoints"))
        cli_run = fit("donor", "--model.n_epochs", "1", "--model.n_epochs_decay", "1")  # the requeued job
        assert "hpc_ckpt_1.ckpt: this run's SLURM requeue checkpoint, resumed as a requeued job does" in (
            capsys.readouterr().err)
        assert cli_run.trainer.current_epoch == 2
    finally:
        hpc.unlink()


def test_a_resume_in_another_number_of_processes_is_said(fit, folder, capsys):
    """The checkpoint records the processes it trained in; Lightning resumed in any number without a word."""
    from pix2pix_aa.cli import resume_process_notes

    fit("procs", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")
    last = folder / "runs" / "procs" / "version_0" / "checkpoints" / "last.ckpt"
    ckpt = torch.load(last, weights_only=True)
    assert ckpt["pix2pix_aa_trainer"]["world_size"] == 1
    ckpt["pix2pix_aa_trainer"]["world_size"] = 2  # as if trained in 2 processes
    torch.save(ckpt, last)
    capsys.readouterr()
    fit("procs", "--ckpt_path", "last", "--model.n_epochs", "1", "--model.n_epochs_decay", "1")  # one epoch more
    assert ("trainer: this resume runs 1 process, the checkpoint's fit 2: each epoch now has 2x the batches of its, "
            "and each optimiser step averages 0.5x the images") in capsys.readouterr().err
    assert resume_process_notes(1, 1) == [] and resume_process_notes(1, None) == []
    # A run trained with DataLoader workers, resumed without: its crops come from another stream now.
    ckpt["datamodule_hyper_parameters"]["num_workers"] = 2
    torch.save(ckpt, last)
    fit("procs", "--ckpt_path", "last", "--model.n_epochs", "1", "--model.n_epochs_decay", "2")
    assert "data.num_workers 0: the checkpoint's fit drew its crops and flips in 2 DataLoader workers" in (
        capsys.readouterr().err)
    two = resume_process_notes(2, None)  # DDP: each rank's crop and flip stream starts again
    assert len(two) == 1 and two[0].startswith("trainer: a resume in 2 processes goes on with other random crops")
    assert len(resume_process_notes(2, 1)) == 2


def _epoch_lrs(run_dir: Path) -> list[float]:
    """lr/G as logged, one value per epoch (the LR each epoch trained with)."""
    return [round(v, 12) for _, v in _scalars(run_dir, "lr/G")]


@pytest.mark.parametrize("first, flags, scratch", [
    # A finished linear schedule, resumed with another policy: the step and cosine schedulers scale
    # the restored LR, 0 at the end of a linear run, so the added epochs trained at LR 0.
    (("--model.lr_policy", "linear"), ("--model.lr_policy", "cosine"), ("--model.lr_policy", "cosine")),
    # The same policy with a new --model.lr: step and cosine went on with the old one.
    (("--model.lr_policy", "step", "--model.lr_decay_iters", "3"),
     ("--model.lr_policy", "step", "--model.lr_decay_iters", "3", "--model.lr", "0.001"),
     ("--model.lr_policy", "step", "--model.lr_decay_iters", "3", "--model.lr", "0.001")),
    # plateau has no closed form: a new LR scales the restored one (no reduction in 4 epochs here).
    (("--model.lr_policy", "plateau"), ("--model.lr_policy", "plateau", "--model.lr", "0.001"),
     ("--model.lr_policy", "plateau", "--model.lr", "0.001")),
    # From step to linear: LambdaLR could not load StepLR's state.
    (("--model.lr_policy", "step", "--model.lr_decay_iters", "1"), ("--model.lr_policy", "linear"),
     ("--model.lr_policy", "linear")),
])
def test_a_resume_with_another_schedule_trains_each_epoch_at_that_schedules_lr(fit, capsys, first, flags, scratch):
    """The resumed epochs get the LR the new schedule gives them from the start of a run."""
    name = f"sched_{first[1]}_{flags[1]}_{len(flags)}"
    fit(name, *first)
    resumed = fit(name, "--ckpt_path", "last", "--model.n_epochs_decay", "3", *flags)
    reference = fit(f"{name}_scratch", "--model.n_epochs_decay", "3", *scratch)
    assert "changed from the checkpoint by the command line" in capsys.readouterr().err
    run_dir, scratch_dir = Path(resumed.trainer.log_dir), Path(reference.trainer.log_dir)
    resumed_lrs = _epoch_lrs(run_dir)[2:]  # the events of the first fit are in the same folder
    assert resumed_lrs and resumed_lrs == _epoch_lrs(scratch_dir)[-len(resumed_lrs):], (
        resumed_lrs, _epoch_lrs(scratch_dir))
    assert any(resumed_lrs)  # the bug trained them all at 0


def test_resume_refuses_changed_networks_in_one_line(fit, capsys):
    fit("nets")
    err = _error(capsys, lambda: fit("nets", "--ckpt_path", "last", "--model.generator.init_args.antialias", "none"))
    assert "resuming cannot change the networks" in err and "model.generator.init_args.antialias='none'" in err


# -- max_steps ------------------------------------------------------------------------------------
def test_max_steps_counts_training_iterations(fit, capsys):
    cli = fit("steps", "--trainer.max_steps", "3", "--trainer.limit_val_batches", "0",
              data__batch_size=1)  # 4 batches per epoch: stops inside epoch 0
    assert cli.trainer.global_step == 6  # 3 batches x (D step + G step)
    err = capsys.readouterr().err
    assert "counts training iterations (batches)" in err
    assert "stopped after 3 training iterations (trainer.max_steps=3)" in err
    # Stopped inside an epoch, which last.ckpt records as finished: a resume skipped its rest unsaid.
    assert ("3 of epoch 0's 4 batches: last.ckpt counts epoch 0 as finished, so a resume (--ckpt_path last) goes on "
            "with epoch 1, and the other batch of epoch 0 is not trained") in err
    saved = yaml.safe_load((Path(cli.trainer.log_dir) / "config.yaml").read_text())
    assert saved["trainer"]["max_steps"] == 3  # the user's value, not the -1 handed to Lightning


# -- configs reused after a resume; evaluation subcommands leave training runs alone --------------
def test_a_resumed_runs_config_starts_a_new_run(fit, folder):
    fit("base")
    fit("base", "--ckpt_path", "last", "--trainer.max_epochs", "3", "--model.n_epochs_decay", "2")
    saved_path = folder / "runs" / "base" / "version_0" / "config.yaml"
    saved = yaml.safe_load(saved_path.read_text())
    assert saved["ckpt_path"] is None
    assert saved["trainer"]["logger"]["init_args"].get("version") is None
    assert saved["trainer"]["logger"]["init_args"].get("purge_step") is None
    cli = fit("variant_none", "--model.generator.init_args.antialias", "none", config=saved_path)
    new_run = folder / "runs" / "variant_none" / "version_0"
    saved_new = yaml.safe_load((new_run / "config.yaml").read_text())
    assert saved_new["model"]["generator"]["init_args"]["antialias"] == "none"
    assert not any("Blur" in type(m).__name__ for m in cli.model.generator.modules())
    assert cli.trainer.current_epoch == 3 and cli.trainer.global_step == 3 * 2 * 2  # from scratch: 3 epochs x 2 batches
    assert (new_run / "checkpoints" / "last.ckpt").is_file()


def test_test_and_predict_leave_the_training_run_alone(fit, folder, tmp_path):
    fit("evalme")
    run = folder / "runs" / "evalme" / "version_0"
    config_before = (run / "config.yaml").read_text()
    events_before = sorted(p.name for p in run.glob("events.out.tfevents.*"))
    ckpt = str(run / "checkpoints" / "last.ckpt")
    cli = fit("evalme", "--ckpt_path", ckpt, subcommand="test")
    assert "test/psnr" in cli.trainer.callback_metrics
    fit("evalme", "--ckpt_path", ckpt, "--predict_output_dir", str(tmp_path / "pred"), subcommand="predict")
    assert (run / "config.yaml").read_text() == config_before
    assert sorted(p.name for p in run.glob("events.out.tfevents.*")) == events_before
    assert list((run / "test").glob("version_*/events.out.tfevents.*"))  # test events beside, not inside
    assert sorted(p.name for p in (folder / "runs" / "evalme").iterdir()) == ["version_0"]  # no empty version_1


def test_test_uses_the_checkpoints_data_unless_overridden(fit, folder, capsys, write_tiny_config):
    fit("dataof")
    ckpt = str(folder / "runs" / "dataof" / "version_0" / "checkpoints" / "last.ckpt")
    other = write_tiny_config(folder, "other.yaml", data__data_dir=str(folder / "never_generated"),
                              data__direction="AtoB")
    capsys.readouterr()
    cli = fit("dataof", "--ckpt_path", ckpt, config=other, subcommand="test")
    assert cli.datamodule.data_dir == folder / "data" and cli.datamodule.direction == "BtoA"
    assert not (folder / "never_generated").exists()
    err = capsys.readouterr().err
    assert f"test data: facades at {folder / 'data'}, direction BtoA, crop_size 64, preprocess resize_and_crop" in err
    assert "kept from the checkpoint" in err and "data.direction='BtoA' (config: 'AtoB')" in err
    # beside figures over every test image, the quick stability figure is said to be one (it was not)
    assert "test/stability_psnr: the training curve's quick figure, on the first 2 images x 4 shifts" in err
    cli = fit("dataof", "--ckpt_path", ckpt, "--data.direction", "AtoB", config=other, subcommand="test")
    assert cli.datamodule.direction == "AtoB"  # explicit flag wins


# -- options refused at start-up, with the option to use --------------------------------------------
@pytest.mark.parametrize("flags,expected", [
    (["--optimizer", "torch.optim.SGD"], "--model.lr"),
    (["--lr_scheduler", "torch.optim.lr_scheduler.StepLR"], "--model.lr_policy"),
    (["--trainer.gradient_clip_val", "1.0"], "--model.grad_clip_norm"),
    (["--trainer.gradient_clip_algorithm", "norm"], "--model.grad_clip_norm"),  # Lightning ignored it
    # A misspelt monitor failed at the first validation, an epoch or two in, with no last.ckpt.
    (["--checkpoint.monitor", "val/psrn"], "checkpoint.monitor 'val/psrn': not a metric this module logs (did you "
                                           "mean val/psnr?)"),
    (["--checkpoint.monitor", "val/tv_ratio"], "checkpoint.monitor val/tv_ratio: has no better direction"),
    # before: 1 batch trained and no validation, without a word
    (["--trainer.fast_dev_run", "3"], "trainer.fast_dev_run=3 would train 1 batches and skip validation"),
    (["--trainer.min_steps", "1000"], "trainer.min_steps=1000: counted in optimiser steps"),  # before: ignored
    (["--trainer.precision", "16-true"], "trainer.precision 16-true: float16 weights and Adam state cannot train"),
    # before: trained, exit 0, with every batch-norm scale frozen at its start (updates rounded away)
    (["--trainer.precision", "bf16-true"], "trainer.precision bf16-true: bfloat16 weights round Adam's small updates"),
    (["--trainer.max_steps", "0"], "trainer.max_steps=0: fit would train nothing"),  # before: exit 0, nothing
    (["--trainer.max_epochs", "0"], "trainer.max_epochs=0: fit would train nothing; leave trainer.max_epochs unset"),
    # before: the epoch's tracebacks, a misspelt EarlyStopping monitor only after training an epoch
    (["--trainer.callbacks+", "{class_path: pytorch_lightning.callbacks.EarlyStopping, init_args: "
      "{monitor: val/psrn}}"],
     "trainer.callbacks: EarlyStopping monitor 'val/psrn': not a metric this module logs (did you mean val/psnr?)"),
    (["--trainer.callbacks+", "{class_path: pytorch_lightning.callbacks.GradientAccumulationScheduler, init_args: "
      "{scheduling: {0: 2}}}"], "GradientAccumulationScheduler is not supported by the GAN's manual optimisation"),
    # before: no last.ckpt, and --ckpt_path last trained a new run from scratch
    (["--last_checkpoint.filename", "snap"], "last_checkpoint.filename 'snap': the newest checkpoint must be "
                                             "last.ckpt"),
    (["--trainer.check_val_every_n_epoch", "0"], "trainer.check_val_every_n_epoch=0: must be >= 1"),  # a traceback
    # before: refused at the first validation naming max_shift / an image grid every batch / a traceback
    (["--model.val_stability_shifts", "100"], "model.val_stability_shifts must be an int in 1..64 (shifts from the "
                                              "validation's 8 x 8 grid), got 100"),
    (["--model.log_images_every_n_batches", "-1"], "model.log_images_every_n_batches must be an int >= 0 (0 = off)"),
    (["--model.num_log_images", "-2"], "model.num_log_images must be an int >= 1 (images per grid), got -2"),
    (["--model.init_gain", "-1"], "model.init_gain must be >= 0"),
    (["--model.discriminator.init_args.ndf", "0"], "ndf and in_channels must be positive, got ndf 0"),
    # spawned processes get the trainer pickled, and the CLI's config holds jsonargparse lambdas
    (["--trainer.strategy", "ddp_spawn"], "use --trainer.strategy ddp"),
    (["--trainer.strategy", "{class_path: pytorch_lightning.strategies.DDPStrategy, init_args: {start_method: spawn}}"],
     "spawn-started processes"),
    (["--trainer.strategy", "{class_path: pytorch_lightning.strategies.DDPStrategy, init_args: {start_method: "
      "forkserver, find_unused_parameters: true}}"], "spawn-started processes"),
    (["--direction", "AtoB"], "--data.direction"),
    (["--netG", "unet_128"], "--model.generator.init_args.num_downs"),
    (["--no_flip"], "--data.no_flip"),
    # before: "did you mean (not supported: ...)?" / no hint at all
    (["--data.serial_batches", "true"], "serial_batches is the reference pix2pix's option (not supported: the "
                                        "training loader always shuffles"),
    (["--pool_size", "0"], "--pool_size is the reference pix2pix's option (not needed: pix2pix trains with "
                           "pool_size 0"),
    (["--max_dataset_size", "10"], "here: --trainer.limit_train_batches N"),
    (["configs/cpu_quick.yaml"], "did you mean --config configs/cpu_quick.yaml?"),  # before: no hint
    (["--model.use_dropout", "false"], "did you mean --model.generator.init_args.dropout 0.5 (0: none)?"),
    (["--model.ngf", "8"], "--model.generator.init_args.ngf"),
    (["--model.generator.init_args.nfg", "8"], "Option 'nfg' is not accepted"),
    (["--model.generator.init_args.nfg", "8"], "did you mean --model.generator.init_args.ngf?"),
    # a prefix of an option is a typo, not the option (argparse's abbreviations are off)
    (["--trainer.max_step", "3"], "did you mean --trainer.max_steps?"),
    (["--model.generator.init_args.ngf", "abc"], "Parser key \"ngf\": Expected a <class 'int'>. Got value: abc"),
    (["--data.direction", "AB"], "Parser key \"data.direction\": Expected a typing.Literal['AtoB', 'BtoA']"),
    (["--data.dataset", "facade"], "Parser key \"data.dataset\": Expected a typing.Literal['facades', 'aligned'"),
    (["--data.preprocess", "resize"], "Parser key \"data.preprocess\": Expected a typing.Literal['resize_and_crop'"),
    (["--data.generate_counts", "train=4"], "error: --data.generate_counts expects dict[str, int] or null, got "
                                            "'train=4'"),
    (["--data.generate_counts", "train=4"], "--data.generate_counts '{train: 400, val: 100, test: 106}'"),
])
def test_unsupported_and_reference_flags_get_one_line_and_the_option_to_use(fit, capsys, flags, expected):
    err = _error(capsys, lambda: fit("refused", *flags))
    assert expected in err
    assert len(err.splitlines()) <= 4, err  # no usage dump


@pytest.mark.parametrize("key,expected", [("lambda_l2", "did you mean --model.lambda_l1?"),
                                          ("lambda_L1", "did you mean --model.lambda_l1")])
def test_a_typo_in_a_yaml_config_gets_the_option_it_meant(fit, capsys, key, expected):
    err = _error(capsys, lambda: fit("yamltypo", **{f"model__{key}": 50.0}))
    assert "does not accept option" in err and key in err and expected in err


def test_fit_help_is_short(capsys, monkeypatch):
    """``fit --help``: the common options, one line each (was 945 lines); ``--help_all`` gives every
    option, with subclass lists cut to this project's classes."""
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help"])
    text = capsys.readouterr().out
    assert len(text.splitlines()) < 60
    for flag in ("--config", "--ckpt_path", "--model.lr ", "--model.lr_policy", "--data.direction", "--data.data_dir"):
        assert f"\n  {flag}" in text, flag
    assert " fit --help_all" in text
    with pytest.raises(SystemExit):
        cli_main(["fit", "--help_all"])
    full = capsys.readouterr().out
    assert len(full.splitlines()) > 500
    assert "--trainer.gradient_clip_algorithm" in full and "--checkpoint.every_n_epochs" in full
    assert "torch.nn.modules" not in full


def test_a_refused_option_and_its_sub_option_get_one_hint(fit, capsys):
    err = _error(capsys, lambda: fit("refused", "--optimizer", "torch.optim.SGD", "--optimizer.lr", "0.1"))
    assert err.count("--optimizer (LightningCLI's) is not used by this GAN") == 1


@pytest.mark.parametrize("policy,cls", [("linear", "LambdaLR"), ("step", "StepLR"),
                                        ("plateau", "ReduceLROnPlateau"), ("cosine", "CosineAnnealingLR")])
def test_lr_policies_are_the_references(policy, cls):
    module = Pix2PixModule(lr_policy=policy, n_epochs=4)
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=2e-4)
    assert type(module._scheduler(opt)).__name__ == cls


def test_lr_policy_step_trains_end_to_end(fit, folder):
    cli = fit("steplr", "--model.lr_policy", "step", "--model.lr_decay_iters", "1")
    lrs = [v for _, v in _scalars(folder / "runs" / "steplr" / "version_0", "lr/G")]
    assert lrs == pytest.approx([2e-4, 2e-5])
    assert cli.trainer.current_epoch == 2


def test_lr_policy_plateau_steps_once_per_validation(fit, folder):
    """Validation every 2nd of 6 epochs: 3 fresh val/l1 values, 3 plateau steps (was 5: one per
    epoch from the first validation on, re-reading a stale val/l1)."""
    cli = fit("plateau", "--model.lr_policy", "plateau", "--trainer.check_val_every_n_epoch", "2",
              "--trainer.max_epochs", "6", "--model.n_epochs", "6", "--model.n_epochs_decay", "0",
              "--model.log_images_every_n_batches", "0", data__data_dir=str(folder / "data_plateau"),
              data__generate_counts={"train": 2, "val": 1, "test": 1}, data__batch_size=1)
    schedulers = cli.model.lr_schedulers()
    assert [type(s).__name__ for s in schedulers] == ["ReduceLROnPlateau"] * 2
    assert [s.last_epoch for s in schedulers] == [3, 3]
    assert len(_scalars(folder / "runs" / "plateau" / "version_0", "val/l1")) == 3


def test_lr_policy_plateau_logs_each_epoch_with_the_lr_it_trained_at(fit, folder):
    """The plateau steps at the epoch's validation, which Lightning runs before on_train_epoch_end,
    where lr/* were read: a reduction was logged on the epoch before the one it took effect in."""
    cli = fit("plateau_lr", "--model.lr_policy", "plateau", "--model.lr", "1e-6", "--trainer.max_epochs", "8",
        "--model.n_epochs", "8", "--model.n_epochs_decay", "0", "--model.log_images_every_n_batches", "0",
        "--model.generator.init_args.norm", "instance",  # no running statistics: val/l1 stays where it is
        data__data_dir=str(folder / "data_plateau"), data__generate_counts={"train": 2, "val": 1, "test": 1},
        data__batch_size=2)
    # val/l1 does not move by 1% at LR 1e-6: best at epoch 0, the 6th validation without improvement
    # (epoch 6) reduces the LR x0.2, which epoch 7 is the first to train with.
    assert cli.model.optimizers()[0].param_groups[0]["lr"] == pytest.approx(2e-7)
    assert _epoch_lrs(folder / "runs" / "plateau_lr" / "version_0") == pytest.approx([1e-6] * 7 + [2e-7])


@pytest.mark.parametrize("flags,expected", [
    (("--trainer.limit_val_batches", "0"), "validation is off (trainer.limit_val_batches=0)"),
    (("--trainer.check_val_every_n_epoch", "3"), "(trainer.check_val_every_n_epoch=3 > trainer.max_epochs=2)"),
])
def test_lr_policy_plateau_without_validation_is_refused(fit, capsys, flags, expected):
    err = _error(capsys, lambda: fit("plateau_noval", "--model.lr_policy", "plateau", *flags))
    assert "model.lr_policy=plateau steps on each validation's val/l1" in err and expected in err
    assert not Path("runs/plateau_noval").exists()


def test_norm_sets_both_networks(fit):
    cli = fit("norm", "--norm", "instance", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    kinds = {type(m).__name__ for m in cli.model.modules()}
    assert "InstanceNorm2d" in kinds and "BatchNorm2d" not in kinds


def test_default_root_dir_moves_the_run_and_its_resume(fit, folder, capsys):
    # Every config names a logger with save_dir: runs, under which Lightning writes everything:
    # the flag used to be accepted and change nothing.
    fit("rooted", "--trainer.default_root_dir", "elsewhere", "--trainer.max_epochs", "1",
        "--model.n_epochs_decay", "0")
    assert "trainer.default_root_dir elsewhere: the logger's save_dir (was runs)" in capsys.readouterr().err
    run = folder / "elsewhere" / "rooted" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "config.yaml").is_file()
    assert not (folder / "runs" / "rooted").exists()
    cli = fit("rooted", "--trainer.default_root_dir", "elsewhere", "--ckpt_path", "last", "--trainer.max_epochs", "2",
              "--model.n_epochs", "2", "--model.n_epochs_decay", "0")
    assert Path(cli.config.fit.ckpt_path).resolve() == (run / "checkpoints" / "last.ckpt").resolve()
    assert not (folder / "runs" / "rooted").exists()


def test_a_fit_without_logger_never_overwrites_a_config_yaml_in_its_folder(folder, write_tiny_config, monkeypatch,
                                                                           capsys):
    # Without a logger the run's folder is the working directory: the user's own config.yaml
    # (here the --config file itself) used to be overwritten with the resolved config.
    work = folder / "nologger"
    work.mkdir()
    monkeypatch.chdir(work)
    cfg = write_tiny_config(work, "config.yaml", data__data_dir=str(folder / "data"),
                            data__generate_counts={"train": 4, "val": 1, "test": 1})
    cfg.write_text(cfg.read_text() + "# my notes\n")
    before = cfg.read_text()
    cli_main(["fit", "--config", str(cfg), "--trainer.logger", "false", "--trainer.max_epochs", "1",
              "--model.n_epochs_decay", "0"])
    assert cfg.read_text() == before and (work / "checkpoints" / "last.ckpt").is_file()
    assert f"config.yaml not saved: {cfg} exists and is kept" in capsys.readouterr().err
    cli_main(["fit", "--config", str(cfg), "--trainer.logger", "false", "--trainer.default_root_dir", "own",
              "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0"])
    assert yaml.safe_load((work / "own" / "config.yaml").read_text())["trainer"]["logger"] is False
    # Without version folders a second fit wrote over the first's last.ckpt (Lightning only warned).
    last = (work / "checkpoints" / "last.ckpt").read_bytes()
    err = _error(capsys, lambda: cli_main(["fit", "--config", str(cfg), "--trainer.logger", "false"]))
    assert f"{Path('checkpoints') / 'last.ckpt'} exists (an earlier run without version folders" in err
    assert (work / "checkpoints" / "last.ckpt").read_bytes() == last


def test_a_new_fit_into_a_named_version_of_a_trained_run_is_refused(fit, folder, capsys):
    """``--trainer.logger.init_args.version 0`` of an existing run replaced its trained last.ckpt,
    config.yaml and hparams.yaml, and mixed two event files in one TensorBoard run, with only
    Lightning's "exists and is not empty" warning."""
    fit("pinned", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    last = folder / "runs" / "pinned" / "version_0" / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    for version in ("0", "version_0"):
        err = _error(capsys, lambda version=version: fit("pinned", "--trainer.logger.init_args.version", version,
                                                         "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0"))
        assert f"trainer.logger.init_args.version {version}: runs/pinned/version_0 holds a trained run" in err
        assert "resume it with --ckpt_path last, or leave the version out for a new version_N" in err
    assert last.read_bytes() == before
    assert len(list(last.parent.parent.glob("events.out.tfevents.*"))) == 1
    cli = fit("pinned", "--trainer.logger.init_args.version", "3", "--trainer.max_epochs", "1",
              "--model.n_epochs_decay", "0")  # a version of its own: trains
    assert Path(cli.trainer.log_dir).name == "version_3"


def test_a_second_fit_of_a_run_being_trained_is_refused(fit, folder, capsys, monkeypatch):
    """A job relaunched with ``--ckpt_path last`` while the first still trained (or two new fits
    into one version) each rewrote the other's last.ckpt, config.yaml and events without a word."""
    from pix2pix_aa.locking import exclusive

    fit("busy", "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0")
    run = folder / "runs" / "busy" / "version_0"
    last = (run / "checkpoints" / "last.ckpt").read_bytes()
    with exclusive(run / ".fit.lock"):  # as the first fit, still training, holds it
        err = _error(capsys, lambda: fit("busy", "--ckpt_path", "last", "--trainer.limit_val_batches", "0"))
        assert "another fit (pid " in err and "is training this run, runs/busy/version_0" in err
        assert ("Wait for it to end (or stop it) and then resume with --ckpt_path last, or train in another "
                "--trainer.logger.init_args.version") in err
        assert (run / "checkpoints" / "last.ckpt").read_bytes() == last
        # A new fit into a version another fit has just made: refused, and that folder left alone,
        # also when it was made after this fit's start-up listed the folders it would create (the
        # failed start-up's clean-up removes those).
        import pix2pix_aa.cli as cli_module

        made = cli_module._new_log_dirs
        monkeypatch.setattr(cli_module, "_new_log_dirs", lambda trainer: [
            (folder / "runs" / "busy" / "version_5", folder / "runs" / "busy" / "version_5")] + made(trainer))
        with exclusive(folder / "runs" / "busy" / "version_5" / ".fit.lock"):
            err = _error(capsys, lambda: fit("busy", "--trainer.logger.init_args.version", "5"))
            assert "is training this run, runs/busy/version_5" in err
        assert (folder / "runs" / "busy" / "version_5" / ".fit.lock").is_file()
        monkeypatch.setattr(cli_module, "_new_log_dirs", made)
        # Without a logger the run folder is default_root_dir: another of those is the way out.
        with exclusive(folder / "nolog" / ".fit.lock"):
            err = _error(capsys, lambda: fit("busy", "--trainer.logger", "false",
                                             "--trainer.default_root_dir", "nolog"))
            assert "Wait for it to end (or stop it), or train in another --trainer.default_root_dir" in err
    cli = fit("busy", "--ckpt_path", "last", "--trainer.max_steps", "2", "--trainer.limit_val_batches", "0")
    assert cli.trainer.global_step == 4  # released with its holder: the resume trains
    capsys.readouterr()
    fit("busy", "--trainer.logger", "false", "--trainer.default_root_dir", "nolog", "--trainer.max_steps", "1",
        "--trainer.limit_val_batches", "0")  # now free; and its closing hint names the file, not the folder
    assert "score it with: python evaluate.py nolog/checkpoints/last.ckpt" in capsys.readouterr().err


def test_a_fixed_last_checkpoint_folder_is_resumed_and_never_overwritten(fit, folder, capsys):
    # --ckpt_path last looked under checkpoint.dirpath (the best checkpoints' folder), so a run whose
    # last.ckpt went to last_checkpoint.dirpath never resumed; a second fit wrote over it.
    fixed = folder / "fixed_last"
    fit("fixedlast", "--last_checkpoint.dirpath", str(fixed), "--trainer.max_epochs", "1", "--model.n_epochs", "1",
        "--model.n_epochs_decay", "0")
    last = (fixed / "last.ckpt").read_bytes()
    err = _error(capsys, lambda: fit("fixedlast", "--last_checkpoint.dirpath", str(fixed)))
    assert f"{fixed / 'last.ckpt'} exists (an earlier run without version folders" in err
    assert (fixed / "last.ckpt").read_bytes() == last
    cli = fit("fixedlast", "--last_checkpoint.dirpath", str(fixed), "--ckpt_path", "last", "--model.n_epochs", "1",
              "--model.n_epochs_decay", "1")
    assert Path(cli.config.fit.ckpt_path) == fixed / "last.ckpt" and cli.trainer.current_epoch == 2


def test_default_root_dir_and_a_different_logger_save_dir_are_refused(fit, folder, capsys):
    err = _error(capsys, lambda: fit("rootclash", "--trainer.default_root_dir", "a",
                                     "--trainer.logger.init_args.save_dir", "b"))
    assert "--trainer.default_root_dir a and --trainer.logger.init_args.save_dir b disagree" in err
    # one folder written two ways is no clash; a config file's default_root_dir moves the run too
    cli = fit("rootsame", "--trainer.default_root_dir", "./same/", "--trainer.logger.init_args.save_dir", "same",
              "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    assert Path(cli.trainer.logger.log_dir).resolve() == (folder / "same" / "rootsame" / "version_0").resolve()
    cli = fit("rootyaml", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0",
              trainer__default_root_dir="fromyaml")
    assert Path(cli.trainer.logger.log_dir).resolve() == (folder / "fromyaml" / "rootyaml" / "version_0").resolve()


# -- networks against data, at start-up ---------------------------------------------------------------
def test_an_antialiased_discriminator_trains(fit, folder):
    """Its start-up size check ran the blur on meta tensors, where the autocast query raised:
    every anti-aliased discriminator was refused as "too small" at any crop size."""
    cli = fit("aa_disc", "--model.discriminator.init_args.antialias", "bin5", "--model.n_epochs", "1",
              "--model.n_epochs_decay", "0")
    assert cli.trainer.state.finished and cli.model.hparams.discriminator["init_args"]["antialias"] == "bin5"


def test_image_too_small_for_the_discriminator_is_caught_at_start_up(fit, capsys):
    err = _error(capsys, lambda: fit("small", "--data.crop_size", "16", "--data.load_size", "16",
                                     "--model.generator.init_args.num_downs", "4",
                                     "--model.discriminator.init_args.n_layers", "3", "--data.batch_size", "1"))
    # 24 (what the discriminator alone takes) was then refused by the generator, whose size multiple is 16
    assert "data.crop_size=16 is too small for the discriminator" in err
    assert "use data.crop_size 32 (or a larger multiple of 16, the generator's)" in err


def test_the_two_size_checks_suggest_a_crop_both_take():
    """Following each check's suggestion led back to the other: crop 64 -> "use >= 96" (for the
    discriminator) -> "a multiple of 64 (e.g. 64)" (for the generator). 128 passes both."""
    from types import SimpleNamespace

    from pix2pix_aa.networks import PatchGANDiscriminator, UNetGenerator
    from pix2pix_aa.options import check_model_and_data

    g, d = UNetGenerator(num_downs=6, ngf=4), PatchGANDiscriminator(ndf=4, n_layers=5, norm="instance")

    def check(crop):
        check_model_and_data(g, d, SimpleNamespace(input_nc=3, output_nc=3, crop_size=crop))

    with pytest.raises(ValueError, match=r"use data.crop_size 128 \(or a larger multiple of 64"):
        check(64)
    with pytest.raises(ValueError, match=r"not a multiple of 2\*\*num_downs = 64 .*\(e\.g\. 128\)"):
        check(96)
    check(128)
    # A batch-norm discriminator whose conv meets a map smaller than its kernel: that is the cause
    # named (the batch norm at 1x1 it passed before was reported instead).
    with pytest.raises(ValueError,
                       match=r"a layer.s input would be smaller than its kernel \(padded input 3x3, kernel 4x4\); use"):
        check_model_and_data(UNetGenerator(num_downs=5, ngf=4), PatchGANDiscriminator(ndf=4, n_layers=5),
                             SimpleNamespace(input_nc=3, output_nc=3, crop_size=32))


def test_instance_norm_at_1x1_in_the_discriminator_is_caught_at_start_up():
    """Only BatchNorm was watched: instance norm on a 1x1 map stopped the first step with PyTorch's
    "Expected more than 1 spatial element when training"."""
    import re

    from pix2pix_aa.networks import PatchGANDiscriminator
    from pix2pix_aa.options import _check_discriminator_size

    d = PatchGANDiscriminator(ndf=4, n_layers=5, norm="instance")
    with pytest.raises(ValueError, match=r"data.crop_size=32 is too small for the discriminator: its InstanceNorm2d "
                                         r"at 1x1 would normalise a single value per channel; use data.crop_size "
                                         r">= \d+") as info:
        _check_discriminator_size(d, 6, 32)
    smallest = int(re.search(r">= (\d+)", str(info.value)).group(1))
    d.train()(torch.zeros(2, 6, smallest, smallest))  # the size it names trains
    with pytest.raises(ValueError, match="Expected more than 1 spatial element"):
        d(torch.zeros(2, 6, smallest - 1, smallest - 1))  # and one less is what PyTorch refuses


def test_a_data_folder_without_val_is_refused_before_training(fit, folder, tmp_path, capsys):
    from pix2pix_aa.data.facades import generate_facades

    data = tmp_path / "noval"
    generate_facades(data, seed=0, splits={"train": 4, "val": 1, "test": 1}, size=64)
    shutil.rmtree(data / "val")
    err = _error(capsys, lambda: fit("noval", "--data.data_dir", str(data), "--data.dataset", "aligned"))
    assert f"no validation data: {data} has no val/ folder" in err and "--trainer.limit_val_batches 0" in err
    assert "Sanity Checking" not in err and not (folder / "runs" / "noval").exists()
    cli = fit("noval", "--data.data_dir", str(data), "--data.dataset", "aligned", "--trainer.limit_val_batches", "0",
              "--trainer.max_epochs", "1", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")
    assert cli.trainer.current_epoch == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="float16 autocast runs on a GPU")
@pytest.mark.parametrize("flag", ["16-mixed", "16"])
def test_float16_autocast_on_the_cpu_is_refused_not_swapped_for_bf16(fit, folder, capsys, flag):
    """Lightning trained ``--trainer.precision 16-mixed`` on the CPU in bf16 (one warning among the
    start-up lines), while the run's config.yaml went on saying 16-mixed."""
    import logging

    class Lines(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    lightning_log, said = logging.getLogger("pytorch_lightning.utilities.rank_zero"), Lines()
    lightning_log.addHandler(said)
    try:
        err = _error(capsys, lambda: fit(f"fp16_{flag}", "--trainer.precision", flag))
    finally:
        lightning_log.removeHandler(said)
    assert f"trainer.precision {flag}: float16 autocast needs a GPU" in err
    assert "Pass --trainer.precision bf16-mixed (CPUs with AMX) or 32-true" in err
    assert "Traceback" not in err and "You passed `Trainer(" not in err
    # nor Lightning's "Using bfloat16 Automatic Mixed Precision (AMP)" before the refusal
    assert not [line for line in said.lines if "Automatic Mixed Precision" in line], said.lines
    assert not (folder / "runs" / f"fp16_{flag}").exists()


def test_a_failed_start_up_leaves_no_run_folder(fit, folder, tmp_path, capsys):
    """Corrupt training images stop the first training batch (after the logger made
    runs/<name>/version_N): the folder is removed, so TensorBoard lists no empty run; a failure
    in an existing run name removes only its own version_N, also when resuming a checkpoint
    into a new version_N (nothing trained in this process)."""
    from pix2pix_aa.data.facades import generate_facades

    data = tmp_path / "corrupt"
    generate_facades(data, seed=0, splits={"train": 4, "val": 1, "test": 1}, size=64)
    for path in (data / "train").iterdir():  # every one, so that the first batch fails whatever the order
        path.write_bytes(path.read_bytes()[:200])  # header intact, pixels cut off
    flags = ("--data.data_dir", str(data), "--data.dataset", "aligned")
    err = _error(capsys, lambda: fit("corrupt", *flags))
    assert "truncated or corrupt" in err
    assert not (folder / "runs" / "corrupt").exists()
    fit("corrupt", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")  # a good run: version_0
    _error(capsys, lambda: fit("corrupt", *flags))
    assert sorted(p.name for p in (folder / "runs" / "corrupt").iterdir()) == ["version_0"]
    # resumed from a checkpoint path (a new version_N) on the corrupt data: nothing trained here either
    last = folder / "runs" / "corrupt" / "version_0" / "checkpoints" / "last.ckpt"
    _error(capsys, lambda: fit("corrupt", *flags, "--ckpt_path", str(last), "--model.n_epochs_decay", "1"))
    assert sorted(p.name for p in (folder / "runs" / "corrupt").iterdir()) == ["version_0"]


def test_a_folder_without_the_layout_names_the_missing_train_split_first(fit, tmp_path, capsys):
    (tmp_path / "mine" / "images").mkdir(parents=True)  # photos, but not in train/ val/ test/
    flags = ["--data.data_dir", str(tmp_path / "mine"), "--data.dataset", "aligned"]
    err = _error(capsys, lambda: fit("nolayout", *flags))
    assert f"split folder {tmp_path / 'mine' / 'train'} does not exist (found folders: ['images'])" in err
    assert "no validation data" not in err


def test_channels_must_match_the_networks(fit, capsys):
    err = _error(capsys, lambda: fit("chan", "--model.generator.init_args.in_channels", "1"))
    assert "model.generator.init_args.in_channels=1 but data.input_nc=3" in err
    err = _error(capsys, lambda: fit("chan", "--model.discriminator.init_args.in_channels", "4"))
    assert "data.input_nc + data.output_nc = 3 + 3 = 6" in err


def test_progress_bar_shows_no_version_number(fit):
    from pix2pix_aa.cli import QuietProgressBar

    cli = fit("bar", "--trainer.enable_progress_bar", "true", "--trainer.max_epochs", "1",
              "--model.n_epochs_decay", "0")
    bar = cli.trainer.progress_bar_callback
    assert isinstance(bar, QuietProgressBar)
    assert "v_num" not in bar.get_metrics(cli.trainer, cli.model)


def test_one_channel_data_trains_end_to_end(folder, run_cli, write_tiny_config, tmp_path):
    """Grayscale A|B pairs, 1 -> 1 channels: G in_channels 1, D in_channels 2, fit + predict."""
    import numpy as np
    from PIL import Image

    root = tmp_path / "gray"
    rng = np.random.default_rng(0)
    for split, n in (("train", 2), ("val", 1), ("test", 1)):
        (root / split).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (64, 128), dtype=np.uint8), mode="L").save(root / split / f"{i}.png")
    cfg = write_tiny_config(tmp_path, "gray.yaml", data__data_dir=str(root), data__dataset="aligned",
                            trainer__max_epochs=1)
    flags = ["--data.input_nc", "1", "--data.output_nc", "1", "--model.generator.init_args.in_channels", "1",
             "--model.generator.init_args.out_channels", "1", "--model.discriminator.init_args.in_channels", "2",
             "--trainer.logger.init_args.name", "gray"]
    cli = run_cli(tmp_path, ["fit", "--config", str(cfg), *flags])
    assert cli.trainer.current_epoch == 1
    ckpt = tmp_path / "runs" / "gray" / "version_0" / "checkpoints" / "last.ckpt"
    run_cli(tmp_path, ["predict", "--config", str(cfg), "--ckpt_path", str(ckpt),
                       "--predict_output_dir", str(tmp_path / "out")])
    written = list((tmp_path / "out").glob("*.png"))
    assert written and Image.open(written[0]).mode == "L"


# -- initialising a new fit from other weights ---------------------------------------------------------
class GeneratorAtTrainStart(pl.Callback):
    """Keeps the generator's weights as the fit starts training (after any initialisation)."""

    state: dict = {}

    def on_train_start(self, trainer, pl_module):
        GeneratorAtTrainStart.state = {k: v.clone() for k, v in pl_module.generator.state_dict().items()}


def test_generator_weights_initialise_an_antialiased_fit_from_a_baseline(fit, folder, tmp_path, capsys):
    """Anti-aliasing adds no parameters: a baseline's weights (a .ckpt, or a bare state_dict) load
    into a Bin-5 generator; the first logged L1 is the baseline's, not a fresh init's."""
    base = fit("ft_base", "--model.generator.init_args.antialias", "none")
    ckpt = folder / "runs" / "ft_base" / "version_0" / "checkpoints" / "last.ckpt"
    bare = tmp_path / "latest_net_G.pth"
    torch.save(base.model.generator.state_dict(), bare)
    capsys.readouterr()
    for source, name in ((ckpt, "ft_ckpt"), (bare, "ft_pth")):
        # With the progress bar (the default): the line went to the bar, which printed nothing yet.
        fit(name, "--model.generator_weights", str(source), "--trainer.max_steps", "1",
            "--trainer.enable_progress_bar", "true", "--trainer.callbacks+=test_cli_options.GeneratorAtTrainStart")
        err = capsys.readouterr().err
        assert f"[pix2pix_aa] model.generator_weights: initialised the generator from {source}" in err
        for key, value in base.model.generator.state_dict().items():
            assert torch.equal(GeneratorAtTrainStart.state[key], value), key


def test_generator_weights_that_do_not_fit_are_one_line(fit, folder, tmp_path, capsys):
    torch.save({"encoder.0.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    err = _error(capsys, lambda: fit("ft_bad", "--model.generator_weights", str(tmp_path / "bad.pth")))
    assert "model.generator_weights:" in err and "does not fit model.generator" in err


def test_validation_off_keeps_last_ckpt_only_and_says_so(fit, folder, capsys):
    cli = fit("noval", "--trainer.limit_val_batches", "0", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    assert "validation is off" in capsys.readouterr().err
    ckpts = sorted(p.name for p in (folder / "runs" / "noval" / "version_0" / "checkpoints").iterdir())
    assert ckpts == ["last.ckpt"] and cli.trainer.current_epoch == 1


def test_predict_and_test_take_a_reference_generator_file(fit, folder, tmp_path, capsys):
    """``--ckpt_path latest_net_G.pth``: the reference pix2pix's generator file, its architecture
    read from its keys; predictions equal the reference network's outputs."""
    from test_reference import RefUnet, randomise


    ref = randomise(RefUnet(3, 3, 6, 8, "batch")).eval()
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    fit("refdata", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")  # makes the data set
    capsys.readouterr()
    cli = fit("refdata", "--ckpt_path", str(path), "--predict_output_dir", str(tmp_path / "out"),
              "--data.predict_resize", "true", subcommand="predict")
    assert "a reference pix2pix generator (unet_" in capsys.readouterr().err
    x = cli.datamodule.predict_set[0]["input"][None]
    with torch.inference_mode():
        expected = ref(x)
        assert torch.allclose(cli.model.generator.eval()(x), expected, atol=1e-5)
    written = sorted((tmp_path / "out").glob("*.png"))
    assert written
    cli = fit("refdata", "--ckpt_path", str(path), subcommand="test")
    assert "test/psnr" in cli.trainer.callback_metrics
    # The events beside the file (the config's logger made runs/refdata/version_1, a "training run"
    # without checkpoints).
    assert list((tmp_path / "test").glob("version_0/events.out.tfevents.*"))
    assert sorted(p.name for p in (folder / "runs" / "refdata").iterdir()) == ["version_0"]
    # A config's own generator options (anti-aliasing, a full-resolution path) were merged into the
    # file's architecture: other outputs without a word, or a state_dict traceback.
    cli = fit("refdata", "--ckpt_path", str(path), "--predict_output_dir", str(tmp_path / "out2"),
              "--data.predict_resize", "true", subcommand="predict", model__generator__init_args__antialias="bin5",
              model__generator__init_args__fullres_channels=4, model__generator__init_args__pad_type="reflect")
    with torch.inference_mode():
        assert torch.allclose(cli.model.generator.eval()(x), expected, atol=1e-5)
    # The file's architecture replaces model.generator: generator flags beside it were ignored.
    err = _error(capsys, lambda: fit("refdata", "--ckpt_path", str(path), "--model.generator.init_args.antialias",
                                     "bin5", "--model.generator.init_args.ngf", "16", subcommand="test"))
    assert (f"--ckpt_path {path} is a reference pix2pix generator: the file gives the generator's architecture, "
            "so --model.generator.antialias, --model.generator.ngf would be ignored") in err


def test_generator_weights_are_loaded_by_predict_test_and_validate(fit, folder, tmp_path, capsys):
    """``--model.generator_weights W`` without ``--ckpt_path``: validate / test / predict use W (was: a
    randomly initialised generator, exit 0). W in the reference's format: predictions equal the
    reference network's outputs."""
    from test_reference import RefUnet, randomise

    ref = randomise(RefUnet(3, 3, 6, 8, "batch")).eval()
    path = tmp_path / "latest_net_G.pth"
    torch.save(ref.state_dict(), path)
    fit("gwdata", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")  # makes the data set
    capsys.readouterr()
    flags = ("--model.generator_weights", str(path), "--model.generator.init_args.antialias", "none")
    cli = fit("gwdata", *flags, "--predict_output_dir", str(tmp_path / "out"), "--data.predict_resize", "true",
              subcommand="predict")
    assert f"the generator from {path}" in capsys.readouterr().err
    x = cli.datamodule.predict_set[0]["input"][None]
    with torch.inference_mode():
        assert torch.allclose(cli.model.generator.eval()(x), ref(x), atol=1e-5)
    for subcommand in ("test", "validate"):
        cli = fit("gwdata", *flags, subcommand=subcommand)
        for key, value in ref.state_dict().items():
            if key.endswith("running_var"):  # one mapped tensor per kind is enough: the statistics
                assert any(torch.equal(value, v) for v in cli.model.generator.state_dict().values()), key


def test_generator_weights_of_a_run_trained_as_another_generator_are_refused_outside_a_fit(fit, folder, tmp_path,
                                                                                           capsys):
    """``predict --model.generator_weights RUN.ckpt`` built the config's generator and loaded the
    run's weights into it: anti-aliasing adds no weights, so a Bin-5 run's weights ran through the
    baseline network without a word (USAGE's Bin-5 run is the baseline config plus a flag)."""
    fit("gwbin5", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")  # the tiny config: bin5
    ckpt = folder / "runs" / "gwbin5" / "version_0" / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    for subcommand, extra in (("predict", ("--predict_output_dir", str(tmp_path / "out"))), ("test", ())):
        err = _error(capsys, lambda subcommand=subcommand, extra=extra: fit(
            "gwbin5", "--model.generator_weights", str(ckpt), "--model.generator.init_args.antialias", "none", *extra,
            subcommand=subcommand))
        assert (f"error: model.generator_weights: {ckpt} was trained with another generator than the config builds: "
                "model.generator.init_args.antialias='none' (checkpoint: 'bin5')") in err
        assert f"Pass --ckpt_path {ckpt} instead" in err
    assert not (tmp_path / "out").exists()
    cli = fit("gwbin5", "--model.generator_weights", str(ckpt), "--predict_output_dir", str(tmp_path / "out"),
              subcommand="predict")  # the same generator: loaded
    assert f"the generator from {ckpt}" in capsys.readouterr().err and cli.trainer.state.finished


@pytest.mark.parametrize("subcommand", ["predict", "test", "validate"])
def test_evaluating_without_trained_weights_is_refused_unless_asked(fit, folder, tmp_path, capsys, subcommand):
    fit("gwnone", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")  # makes the data set
    capsys.readouterr()
    out = ("--predict_output_dir", str(tmp_path / "out")) if subcommand == "predict" else ()
    err = _error(capsys, lambda: fit("gwnone", *out, subcommand=subcommand))
    assert f"error: {subcommand} needs trained weights: pass --ckpt_path" in err and "--model.generator_weights" in err
    assert not (tmp_path / "out").exists()
    cli = fit("gwnone", *out, "--untrained", "true", subcommand=subcommand)
    assert "the generator is randomly initialised" in capsys.readouterr().err
    assert cli.trainer.state.finished


def test_ckpt_path_and_generator_weights_together_are_refused(fit, folder, tmp_path, capsys):
    fit("gwboth", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    ckpt = folder / "runs" / "gwboth" / "version_0" / "checkpoints" / "last.ckpt"
    err = _error(capsys, lambda: fit("gwboth", "--ckpt_path", str(ckpt), "--model.generator_weights", str(ckpt),
                                     subcommand="test"))
    assert "--ckpt_path and --model.generator_weights both give the generator's weights" in err
    err = _error(capsys, lambda: fit("gwboth", "--untrained", "true"))
    assert "--untrained is for validate / test / predict" in err
    # --untrained beside trained weights was ignored: test scored the checkpoint without a word.
    for flag in ("--ckpt_path", "--model.generator_weights"):
        err = _error(capsys, lambda flag=flag: fit("gwboth", flag, str(ckpt), "--untrained", "true", subcommand="test"))
        assert f"--untrained true and {flag} disagree" in err
    # fit: printed as "changed from the checkpoint", never loaded, and recorded as the run's weights.
    before = ckpt.read_bytes()
    for flags in (("--ckpt_path", str(ckpt)), ("--ckpt_path", "last")):
        err = _error(capsys, lambda flags=flags: fit("gwboth", *flags, "--model.generator_weights", str(ckpt),
                                                     "--model.discriminator_weights", str(ckpt)))
        assert ("--ckpt_path and --model.generator_weights and --model.discriminator_weights both give weights: a "
                "resumed fit goes on from the checkpoint's, so these would be ignored") in err
    assert ckpt.read_bytes() == before


def test_every_metric_a_fit_logs_is_one_checkpoint_monitor_takes(fit):
    """checkpoint.monitor is checked at start-up against MONITORABLE: a metric logged but not listed
    there would be refused although it exists."""
    from pix2pix_aa.module import MONITORABLE

    cli = fit("logged", "--model.lambda_shift", "1", "--model.max_shift", "2", "--trainer.max_epochs", "1",
              "--model.n_epochs_decay", "0", "--trainer.check_val_every_n_epoch", "1")
    logged = set(cli.trainer.callback_metrics)
    assert {"val/l1", "train/loss_G_shift_step", "lr/G"} <= logged
    assert logged <= set(MONITORABLE), logged - set(MONITORABLE)


def test_options_a_fit_does_not_use_are_named(fit, folder, capsys):
    """``--model.lr_decay_iters`` without the step policy and ``--data.generate_size`` (or counts)
    with files of the user's were accepted and recorded in config.yaml without a word."""
    fit("unused", "--model.lr_policy", "step", "--model.lr_decay_iters", "7", "--trainer.max_epochs", "1",
        "--model.n_epochs_decay", "0")  # (it generates the shared facades the next fit reads as aligned files)
    assert "not used" not in capsys.readouterr().err
    fit("unused", "--model.lr_decay_iters", "7", "--data.dataset", "aligned", "--data.generate_size", "128",
        "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    err = capsys.readouterr().err
    assert "model.lr_decay_iters=7: not used (the step of model.lr_policy step; this run's policy is linear)" in err
    assert "data.generate_size=128, data.generate_counts={" in err
    assert ("}: not used (data.dataset aligned reads the files in data_dir; facades, photos, colorize are the sets "
            "made on first use)") in err


def test_predict_only_options_are_refused_elsewhere_and_never_inherited(fit, folder, tmp_path, capsys):
    # Given to fit they did nothing, were saved into the checkpoint, and predict then applied them
    # without a word (tiles with hard seams, outputs resized).
    err = _error(capsys, lambda: fit("predonly", "--data.tile", "32", "--predict_output_dir", str(tmp_path)))
    assert "--data.tile, --predict_output_dir: predict only (fit would ignore them)" in err
    err = _error(capsys, lambda: fit("predonly", "--data.predict_resize", "true", subcommand="test"))
    assert "--data.predict_resize: predict only (test would ignore it)" in err
    # jsonargparse reads --data '{tile: 32}' as --data.tile 32: it was not noticed.
    err = _error(capsys, lambda: fit("predonly", "--data", "{tile: 32}"))
    assert "--data.tile: predict only (fit would ignore it)" in err
    fit("predonly", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0", data__predict_resize=True)
    assert "data.predict_resize=True: predict only, not used by fit" in capsys.readouterr().err  # from the YAML
    ckpt = folder / "runs" / "predonly" / "version_0" / "checkpoints" / "last.ckpt"
    fit("predonly", "--ckpt_path", str(ckpt), predict_output_dir="mine", subcommand="validate")
    assert "predict_output_dir='mine': predict only, not used by validate" in capsys.readouterr().err
    assert torch.load(ckpt, weights_only=False)["datamodule_hyper_parameters"]["predict_resize"] is True
    cli = fit("predonly", "--ckpt_path", str(ckpt), "--predict_output_dir", str(tmp_path / "out"),
              subcommand="predict")
    assert cli.config.predict.data.predict_resize is False


def test_resuming_a_finished_run_trains_nothing_and_writes_nothing(fit, folder, capsys):
    # It started, stopped at once, and rewrote config.yaml with options no epoch was trained with
    # (and added an empty event file).
    fit("finished", "--trainer.max_epochs", "1", "--model.n_epochs", "1", "--model.n_epochs_decay", "0")
    run = folder / "runs" / "finished" / "version_0"
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    capsys.readouterr()
    cli = fit("finished", "--ckpt_path", "last", "--model.n_epochs", "1", "--model.n_epochs_decay", "0",
              "--data.direction", "AtoB")
    assert "the run already trained all 1 epochs of its schedule" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert not cli.trainer.state.finished and sorted(p.name for p in run.parent.iterdir()) == ["version_0"]
    fit("finished", "--ckpt_path", "last", "--model.n_epochs", "1", "--model.n_epochs_decay", "1")  # trains on
    assert yaml.safe_load((run / "config.yaml").read_text())["model"]["n_epochs_decay"] == 1


def test_fits_that_train_less_than_they_say_are_named(fit, folder, capsys):
    # limit_train_batches 0 exited 0 having trained nothing; a batch larger than the data set
    # trained at the data set's size; a resume with DataLoader workers is not exact.
    err = _error(capsys, lambda: fit("trainless", "--trainer.limit_train_batches", "0"))
    assert "trainer.limit_train_batches=0: fit would train nothing" in err
    assert not (folder / "runs" / "trainless").exists()
    fit("trainless", "--data.batch_size", "64", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    err = capsys.readouterr().err
    assert "data.batch_size 64 > the 4 training images: each epoch is one batch of 4" in err
    fit("trainless", "--ckpt_path", "last", "--model.n_epochs_decay", "1", "--data.num_workers", "1")
    assert "data.num_workers 1: this resume goes on with other random crops and flips" in capsys.readouterr().err


def test_test_metrics_do_not_depend_on_the_batch_size(fit, folder):
    """The quick stability figure pools the first val_stability_images images of the epoch,
    whatever the batch size (it took batch 0's only: 1 image at batch 1, 2 at batch 2)."""
    fit("bsz", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0", data__data_dir=str(folder / "data2"),
        data__generate_counts={"train": 4, "val": 2, "test": 2})
    ckpt = str(folder / "runs" / "bsz" / "version_0" / "checkpoints" / "last.ckpt")
    scores = [fit("bsz", "--ckpt_path", ckpt, "--data.batch_size", b, subcommand="test").trainer.callback_metrics
              for b in ("1", "2")]
    for key in ("test/stability_psnr", "test/psnr", "test/l1"):
        assert float(scores[0][key]) == pytest.approx(float(scores[1][key]), rel=1e-5), key


def test_a_saved_norm_config_takes_later_per_network_flags(fit, folder):
    """--norm is written into both networks; the saved config holds no top-level norm that would
    override a later --model.generator.init_args.norm, and no max_epochs that would clash with
    a later schedule."""
    fit("inst", "--norm", "instance", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    saved = folder / "runs" / "inst" / "version_0" / "config.yaml"
    raw = yaml.safe_load(saved.read_text())
    assert raw["norm"] is None and raw["trainer"]["max_epochs"] is None
    assert raw["model"]["generator"]["init_args"]["norm"] == "instance"
    cli = fit("inst_to_batch", "--model.generator.init_args.norm", "batch",
              "--model.discriminator.init_args.norm", "batch", "--model.n_epochs_decay", "1", config=saved)
    assert any(type(m).__name__ == "BatchNorm2d" for m in cli.model.generator.modules())
    assert cli.trainer.max_epochs == 2


def test_norm_and_a_different_per_network_norm_are_refused(fit, capsys):
    err = _error(capsys, lambda: fit("normclash", "--norm", "instance", "--model.generator.init_args.norm", "batch"))
    assert "disagree" in err


def test_term_options_without_the_term_are_named_at_start_up(fit, capsys):
    # Not refused: a run trained with the term may be resumed with it off (lambda_shift 0), its
    # other term options kept from the checkpoint.
    fit("noterm", "--model.shift_every", "2", "--model.shift_images", "2")
    assert ("model.shift_images=2, model.shift_every=2: no effect, the shift-equivariance term is off "
            "(model.lambda_shift 0)") in capsys.readouterr().err


@pytest.mark.parametrize("flags,expected", [
    (["--model.lr", "0"], "lr must be > 0"),
    (["--model.lambda_l1", "-5"], "lambda_l1 must be >= 0"),
    (["--model.lambda_shift", "-1"], "model.lambda_shift must be >= 0"),
    (["--model.lambda_shift", "10", "--model.shift_images", "3"], "exceeds data.batch_size=2"),
    (["--model.lambda_shift", "10", "--model.max_shift", "65"], "use a max_shift of at most 64"),
    (["--model.lambda_shift", "10", "--model.max_shift", "1"], "model.max_shift must be an int >= 2"),
    (["--model.n_epochs", "0", "--model.n_epochs_decay", "0"], "nothing would be trained"),
    (["--model.beta1", "1.5"], "model.beta1 must be in [0, 1)"),
    (["--model.beta2", "-0.1"], "model.beta2 must be in [0, 1)"),
    (["--model.grad_clip_norm", "-1"], "model.grad_clip_norm must be > 0"),
    (["--seed_everything", "-1"], "seed_everything=-1: a seed is an integer from 0 to 4294967295"),
])
def test_values_that_train_nothing_or_the_wrong_way_are_refused(fit, capsys, flags, expected):
    assert expected in _error(capsys, lambda: fit("badvalue", *flags))


def test_checkpointing_off_trains_without_checkpoints_and_says_so(fit, folder, capsys):
    # The CLI's own checkpoint callbacks made Lightning refuse the flag with a traceback.
    cli = fit("nockpt", "--trainer.enable_checkpointing", "false")
    assert cli.trainer.global_step > 0
    assert not list((folder / "runs" / "nockpt").rglob("*.ckpt"))
    err = capsys.readouterr().err
    assert "trainer.enable_checkpointing=false: no last.ckpt and no best checkpoint" in err
    assert "checkpoints: last.ckpt only" not in err  # the usual checkpoint line would contradict it


def test_an_error_starts_its_own_line_after_a_progress_bar_it_stopped(capsys):
    import io

    from tqdm import tqdm

    from pix2pix_aa import cli

    cli._end_progress_line()  # no bar: nothing written
    assert capsys.readouterr().out == ""
    bar = tqdm(total=3, file=io.StringIO())
    try:
        cli._end_progress_line()  # a bar left mid-line: end its line
        assert capsys.readouterr().out == "\n"
    finally:
        bar.close()


def test_an_accelerator_this_machine_lacks_is_one_line(fit, capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    err = _error(capsys, lambda: fit("nogpu", "--trainer.accelerator", "gpu"))
    assert "the trainer options (--trainer.*) were refused by Lightning: No supported gpu backend found" in err


def test_a_shift_every_past_train_pys_max_steps_is_named_at_start(fit, capsys):
    # train.py counts --trainer.max_steps in iterations (StopAfterIterations; Lightning's own
    # max_steps is -1 then): the bound the notice compares shift_every with.
    fit("every_past_steps", "--trainer.max_steps", "3", "--model.lambda_shift", "1", "--model.shift_every", "5")
    assert "model.shift_every=5 is not below this run's 3 training iterations" in capsys.readouterr().err


def test_an_inline_mapping_counts_as_the_flags_it_holds():
    from pix2pix_aa.resume import explicit_keys

    keys = explicit_keys(["fit", "--data", "{tile: 64}", "--model.generator={class_path: a.B, init_args: {ngf: 8}}",
                          "--data.generate_counts", "{train: 4}", "--config", "c.yaml", "--model.channels_last",
                          "true", "--trainer", "t.yaml"])
    assert {"data.tile", "model.generator.ngf", "model.generator.class_path", "data.generate_counts"} <= keys
    assert not any(k.startswith(("config.", "trainer.", "model.channels_last.")) for k in keys)  # files, plain values
    # Only what the mapping holds: the bare section would count every option under it as given
    # (a resume would take the config's values over the checkpoint's for all of them).
    assert "data" not in keys


@pytest.mark.parametrize("raised", ["lightning", "workers"])
def test_sigterm_is_one_line_and_a_failing_exit_status(fit, monkeypatch, capsys, raised):
    """Lightning stops on SIGTERM with a SystemExit of code None: exit status 0, as if finished; when
    the signal also reached the DataLoader workers, two pages of traceback from torch's handler."""
    from pytorch_lightning import Trainer
    from pytorch_lightning.utilities.exceptions import SIGTERMException

    def stopped(*args, **kwargs):
        if raised == "lightning":
            raise SIGTERMException
        raise RuntimeError("DataLoader worker (pid 4242) is killed by signal: Terminated. ")

    monkeypatch.setattr(Trainer, "fit", stopped)
    with pytest.raises(SystemExit) as info:
        fit("sigterm")
    assert info.value.code == 143
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: stopped by SIGTERM (a scheduler's preemption or a kill): the steps "
                                           "since the last checkpoint are lost") and "Traceback" not in err


@pytest.mark.parametrize("where", ["in the fit", "at start-up"])
def test_ctrl_c_is_one_line_and_the_shells_status(fit, monkeypatch, capsys, where):
    """Ctrl-C in a fit ended with Lightning's "Detected KeyboardInterrupt" and exit status 1 (a
    crash's); at start-up, Python's traceback."""
    from pytorch_lightning import Trainer

    from pix2pix_aa import cli

    def interrupted(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise SystemExit(1)  # noqa: B904 - what Lightning does once it has shut down (its __context__)

    def at_start_up(*args, **kwargs):
        raise KeyboardInterrupt

    if where == "in the fit":
        monkeypatch.setattr(Trainer, "fit", interrupted)
    else:
        monkeypatch.setattr(cli, "check_seed", at_start_up)
    with pytest.raises(SystemExit) as info:
        fit("ctrl_c")
    assert info.value.code == 130
    err = capsys.readouterr().err
    assert err.splitlines()[-1].startswith("error: interrupted (Ctrl-C): the steps since the last checkpoint are lost")
    assert "Traceback" not in err


def test_resuming_another_runs_checkpoint_under_a_config_of_another_name_is_refused(fit, folder, capsys):
    """`fit --config cpu_quick_aa.yaml --ckpt_path runs/cpu_quick_baseline/.../last.ckpt` trained the
    baseline's networks (kept from the checkpoint) into runs/cpu_quick_aa, where every later
    `--ckpt_path last` then found them."""
    fit("theirs", "--trainer.max_epochs", "1", "--model.n_epochs_decay", "0")
    ckpt = folder / "runs" / "theirs" / "version_0" / "checkpoints" / "last.ckpt"
    config = folder / "theirs.yaml"  # the same recipe, but its logger names the run "tiny"
    args = ["fit", "--config", str(config), "--ckpt_path", str(ckpt), "--model.n_epochs_decay", "1"]
    err = _error(capsys, lambda: cli_main(args))
    assert (f"--ckpt_path {ckpt} is a checkpoint of run 'theirs', and this fit would go on training its networks in "
            "a run named 'tiny' (from the config)") in err
    assert not (folder / "runs" / "tiny").exists()
    # Another spelling of the path, or a copy: the run is the one the checkpoint recorded writing into.
    copy = folder / "copied.ckpt"
    shutil.copyfile(ckpt, copy)
    for other in (ckpt.parent / ".." / "checkpoints" / "last.ckpt", copy):
        err = _error(capsys, lambda other=other: cli_main([*args[:4], str(other), *args[5:]]))
        assert "is a checkpoint of run 'theirs'" in err
    cli_main([*args, "--trainer.logger.init_args.name", "theirs_more"])  # a name given: a new run, as asked
    assert (folder / "runs" / "theirs_more" / "version_0" / "checkpoints" / "last.ckpt").is_file()


def test_the_model_summary_counts_the_generators_flops(fit, capsys):
    """Lightning's summary said "0 Total Flops" for every run (no example input)."""
    from pytorch_lightning.utilities.model_summary.model_summary import get_human_readable_count
    from torch.utils.flop_counter import FlopCounterMode

    cli = fit("summary", "--trainer.enable_model_summary", "true", "--trainer.max_steps", "1",
              "--trainer.limit_val_batches", "0")
    out = capsys.readouterr()
    text = out.out + out.err
    crop = cli.datamodule.crop_size
    generator = cli.model.generator.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        generator(torch.zeros(1, 3, crop, crop))
    flops = counter.get_total_flops()
    assert flops > 0
    line = next(ln for ln in text.splitlines() if "Total Flops" in ln or "Total FLOPs" in ln)
    assert get_human_readable_count(flops) in line, line
    assert f"model summary: sizes and FLOPs of the generator's forward pass on one {crop}x{crop} image" in text
    # Images at their own sizes: no one input stands for them, and the zeros are said to be no figure.
    fit("summary_none", "--trainer.enable_model_summary", "true", "--trainer.max_steps", "1",
        "--trainer.limit_val_batches", "0", "--data.preprocess", "none")
    out = capsys.readouterr()
    assert ("model summary: no sizes or FLOPs (they read 0): data.preprocess=none keeps each image's own size"
            in out.out + out.err)


def test_the_fit_writes_its_progress_to_train_log(fit, folder, monkeypatch):
    """Progress went to the terminal's progress bar only: a batch job's log held its carriage
    returns, or nothing when the job was killed before its output was flushed."""
    from pix2pix_aa.callbacks import TrainingLog

    monkeypatch.setattr(TrainingLog, "EVERY_S", 0.0)  # a line at every batch
    cli = fit("trainlog", "--model.n_epochs", "1", "--model.n_epochs_decay", "1")
    run = Path(cli.trainer.log_dir)
    lines = (run / "train.log").read_text().splitlines()
    assert "fit started at iteration 0, epoch 0 (epochs 0 to 1): " in lines[0]
    batches = cli.trainer.num_training_batches
    assert sum(", iteration " in ln and " it/s" in ln for ln in lines) == 2 * batches
    ends = [ln for ln in lines if " done (" in ln]
    assert len(ends) == 2 and "epoch 1 done (2 of 2) at iteration " + str(2 * batches) in ends[1]
    # the figures are TensorBoard's of that epoch, to the 4 digits written (trailing zeros kept)
    for tag in ("val/l1", "train/loss_G_epoch"):
        (_, value), = [p for p in _scalars(run, tag) if p[0] == 2 * batches - 1]
        assert f"{tag} {value:#.4g}" in ends[1]
    assert lines[-1].split(" ", 1)[1].startswith(f"fit done: {2 * batches} iterations, 2 epochs, ")
    # a resume appends, and starts where the checkpoint left off (it said iteration 0, epoch 0)
    fit("trainlog", "--ckpt_path", "last", "--model.n_epochs_decay", "2")
    more = (run / "train.log").read_text().splitlines()[len(lines):]
    assert f"fit started at iteration {2 * batches}, epoch 2 (epochs 0 to 2), resumed from " in more[0]


def test_train_log_names_a_max_steps_stop_and_counts_the_time_left_to_it(fit, monkeypatch, capsys):
    """A max_steps stop inside an epoch was logged as "epoch N done" with a time left, the time
    left counted max_epochs alone (49 epochs left of a fit stopping in 1), and the end said
    "done" when the stop came in the last epoch."""
    from pix2pix_aa.callbacks import training

    class Clock:  # 10 s between two readings of the callback's clock (Lightning's own is not touched)
        now = 0.0

        @classmethod
        def monotonic(cls) -> float:
            cls.now += 10.0
            return cls.now

    monkeypatch.setattr(training, "time", Clock)
    batches = 4  # of the shared data set at batch 1
    cli = fit("trainlog_steps", "--model.n_epochs", "50", "--data.batch_size", "1", "--trainer.max_steps",
              str(batches + 2), "--trainer.limit_val_batches", "0")
    assert cli.trainer.num_training_batches == batches
    lines = (Path(cli.trainer.log_dir) / "train.log").read_text().splitlines()
    epoch_0, = [ln for ln in lines if "epoch 0 done (1 of 51)" in ln]  # n_epochs + n_epochs_decay
    # an epoch reads the clock at its start, each batch and its end: 50 s for 4 iterations; 2 left
    assert f"at iteration {batches}: " in epoch_0 and "; 50.0 s, about 25 s left" in epoch_0, epoch_0
    cut, = [ln for ln in lines if "epoch 1 " in ln and "batch 2/" not in ln and "it/s" not in ln]
    assert f"epoch 1 stopped after 2 of its {batches} batches at iteration {batches + 2}: " in cut, cut
    assert "left" not in cut
    assert lines[-1].split(" ", 1)[1].startswith(f"fit stopped by trainer.max_steps={batches + 2}: "
                                                  f"{batches + 2} iterations, 2 epochs, ")
    # the console's last line says the same (it said "fit done (2 epochs, 6 iterations)")
    err = capsys.readouterr().err
    assert f"[pix2pix_aa] fit stopped by trainer.max_steps={batches + 2} (2 epochs, {batches + 2} iterations): " in err
    assert "fit done" not in err
    assert f"and the other {batches - 2} batches of epoch 1 are not trained" in err


def test_train_log_figures_keep_their_digits_and_counts_their_nouns():
    """39.9953 dB was written "40", read as exact; one epoch was "1 epochs"."""
    from pix2pix_aa.callbacks.training import _figure
    from pix2pix_aa.console import count

    assert [_figure(v) for v in (39.9953, 0.70514, 41.3249, 1.5e-5)] == ["40.00", "0.7051", "41.32", "1.500e-05"]
    from pix2pix_aa.callbacks.training import _cut_epoch  # "the other 1 batches of epoch 1 are"
    assert _cut_epoch(1, 3, 4).endswith("and the other batch of epoch 1 is not trained")
    assert (count(1, "epoch"), count(0, "epoch"), count(4, "iteration")) == ("1 epoch", "0 epochs", "4 iterations")


def test_train_log_tells_a_worker_error_by_its_own_message(tmp_path):
    """A DataLoader worker's error was logged as torch's wrapper line ("Caught ValueError in
    DataLoader worker process 0."), where the console shows the data error itself."""
    from types import SimpleNamespace

    from pix2pix_aa.callbacks import TrainingLog

    log = TrainingLog()
    log.path = tmp_path / "train.log"
    trainer = SimpleNamespace(fit_loop=SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=7)),
                              validating=False, sanity_checking=False)
    error = ValueError("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent call "
                       "last):\n  File \"x.py\", line 1, in f\nValueError: data/train/3.jpg: is 1 pixel wide")
    log.on_exception(trainer, None, error)
    line = log.path.read_text().strip().split(" ", 1)[1]
    assert line == "fit stopped at iteration 7 by ValueError: data/train/3.jpg: is 1 pixel wide"
    # In a validation inside the fit Lightning has not counted the batch it follows yet: 8 were done
    # (it said 7, one fewer than the max_steps lines count).
    trainer.validating = True
    log.on_exception(trainer, None, ValueError("data/val/1.png: truncated"))
    assert log.path.read_text().strip().splitlines()[-1].endswith("fit stopped at iteration 8 by ValueError: "
                                                                   "data/val/1.png: truncated")


def test_a_fast_dev_run_never_names_an_earlier_runs_checkpoint_as_its_own(fit, capsys):
    """`fit --trainer.fast_dev_run true` into a folder holding an earlier fit's last.ckpt ended with
    "fit done (1 epoch, 1 iteration): .../last.ckpt; score it with ...": that file was the earlier
    fit's (fast_dev_run saves nothing)."""
    args = ["--trainer.logger", "false", "--trainer.default_root_dir", "devrun", "--trainer.limit_val_batches", "0"]
    fit("dev", *args, "--trainer.max_steps", "1")
    last = Path("devrun") / "checkpoints" / "last.ckpt"
    before = last.stat().st_mtime_ns
    capsys.readouterr()
    # (with its logger on: fast_dev_run swaps it for a dummy, so the checkpoint folder is that one)
    fit("dev", *args[2:], "--trainer.fast_dev_run", "true")
    err = capsys.readouterr().err
    assert last.stat().st_mtime_ns == before  # the earlier fit's file, untouched
    assert "fit done" not in err and "score it with" not in err
    assert ("[pix2pix_aa] fast_dev_run done (1 iteration): a check of the loop; Lightning writes no checkpoint or "
            "log in it") in err
    # without version folders too: not refused as "would overwrite last.ckpt" (it writes none)
    fit("dev", *args, "--trainer.fast_dev_run", "true")
    assert "fast_dev_run done (1 iteration)" in capsys.readouterr().err
    assert last.stat().st_mtime_ns == before


def test_generate_counts_without_val_are_refused_before_the_set_is_made(fit, folder, capsys):
    """`--data.generate_counts '{train: 4}'` wrote the set, then stopped: "has no val/ folder ... or
    add data/x/val", where a generated set is never regenerated in place."""
    args = ["--data.data_dir", "data/noval", "--data.generate_counts", "{train: 2}"]
    err = _error(capsys, lambda: fit("noval", *args))
    assert ("no validation data: data.generate_counts={'train': 2} makes no val split in data/noval; add val (e.g. "
            "{train: 2, val: 2}), or train without validation with --trainer.limit_val_batches 0") in err
    assert not (folder / "data" / "noval").exists()
    fit("noval", *args, "--trainer.limit_val_batches", "0", "--trainer.max_steps", "1")  # as said: trains
    err = _error(capsys, lambda: fit("noval0", "--data.data_dir", "data/noval0", "--data.generate_counts",
                                     "{train: 2, val: 0}"))
    assert "add val (e.g. {train: 2, val: 2})" in err  # it suggested {train: 2, val: 0, val: 2}
    err = _error(capsys, lambda: fit("noval", *args[:2]))  # the set made so: its own way out
    assert "data/noval was generated without a val split, and a set is never regenerated in place" in err


def test_an_empty_val_folder_names_the_ways_out_as_a_missing_one_does(fit, folder, capsys):
    """An empty val/ stopped with "no image files ... (it is empty)" and no fix; a missing val/
    named both (--trainer.limit_val_batches 0, or add it)."""
    fit("made", "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0")
    own = folder / "own"
    shutil.copytree(folder / "data" / "train", own / "train")
    (own / "val").mkdir()
    err = _error(capsys, lambda: fit("emptyval", "--data.dataset", "aligned", "--data.data_dir", "own"))
    assert ("no validation data: own/val holds no image files; train without validation with "
            "--trainer.limit_val_batches 0, or put the validation pairs there") in err


def test_more_stability_images_than_the_validation_scores_is_said(fit, capsys):
    """`--model.val_stability_images 5` with 1 validation image was accepted and used 1, without
    a word (val/stability_psnr read as over 5)."""
    fit("stab", "--model.val_stability_images", "5", "--trainer.max_steps", "1")
    err = capsys.readouterr().err
    assert ("[pix2pix_aa] model.val_stability_images=5: a validation epoch scores 1 image(s), so val/stability_psnr "
            "is over 1") in err
    fit("stab1", "--model.val_stability_images", "1", "--trainer.max_steps", "1")
    assert "model.val_stability_images" not in capsys.readouterr().err


def test_a_discriminator_too_deep_for_images_at_their_own_size_is_refused_at_start_up(fit, capsys):
    """With `--data.preprocess none` (or scale_width) the crop-size check is skipped, and a
    discriminator too deep for the 64 px images stopped the first step with PyTorch's traceback
    ("Calculated padded input size per channel: (3 x 3). Kernel size: (4 x 4) ...")."""
    err = _error(capsys, lambda: fit("deepd", "--data.preprocess", "none",
                                     "--model.discriminator.init_args.n_layers", "5"))
    assert re.search(r"error: data\.preprocess=none: \S+\.png reaches the discriminator as 64x64 \(WxH\), too small "
                     r"for it: a layer's input would be smaller than its kernel \(padded input 3x3, kernel 4x4\); use "
                     r"larger images, --data\.preprocess resize_and_crop, or fewer model\.discriminator", err), err
    assert "Traceback" not in err


def test_a_val_folder_in_the_paired_layout_gets_the_data_sets_own_error(fit, folder, capsys):
    """An aligned set whose val/ holds A/ and B/ folders: the start-up count of validation images
    raised list_images' bare "validation: no image files ... (it holds 2 other entries)"."""
    fit("made2", "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0")
    own = folder / "own_paired_val"
    shutil.copytree(folder / "data" / "train", own / "train")
    for side in ("A", "B"):
        shutil.copytree(folder / "data" / "val", own / "val" / side)
    err = _error(capsys, lambda: fit("pairedval", "--data.dataset", "aligned", "--data.data_dir", "own_paired_val"))
    assert "holds A/ and B/ folders, not A|B image files: that is the paired layout; pass --data.dataset paired" in err


def test_fit_only_options_outside_a_fit_and_a_missing_test_split_say_what_they_would_do(fit, folder, capsys,
                                                                                      tmp_path):
    """predict's refusal of a fit-only option said it "scores the generator's outputs" (it writes
    them); evaluate.py's hint for a set with train/ alone suggested `--split train` without saying
    that those are the training images."""
    from pix2pix_aa.data import Pix2PixDataModule

    fit("fitonly", "--trainer.max_steps", "1", "--trainer.limit_val_batches", "0")
    (tmp_path / "in").mkdir()
    args = ["--ckpt_path", "last", "--model.lambda_l1", "10", "--data.predict_dir", str(tmp_path / "in")]
    err = _error(capsys, lambda: fit("fitonly", *args, subcommand="predict"))
    assert "--model.lambda_l1: used by fit only (predict writes the generator's outputs without it); drop it" in err
    err = _error(capsys, lambda: fit("fitonly", *args[:4], subcommand="test"))
    assert "(test scores the generator's outputs without it)" in err
    only_train = tmp_path / "only_train"
    shutil.copytree(folder / "data" / "train", only_train / "train")
    with pytest.raises(FileNotFoundError, match=r"choose a split that exists \(evaluate\.py --split train\), though "
                                                r"scores on the training images measure fitting, not generalisation"):
        Pix2PixDataModule(data_dir=str(only_train), dataset="aligned", load_size=64, crop_size=64).eval_dataset("test")
