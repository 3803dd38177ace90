"""Training: Pix2PixModule + LightningCLI end to end on a tiny generated facades set."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pix2pix_aa.losses import gan_loss
from pix2pix_aa.module import VAL_STABILITY_GRID, Pix2PixModule, linear_decay_factor
from pix2pix_aa.networks import PatchGANDiscriminator, UNetGenerator


def test_fit_writes_checkpoints_config_and_tensorboard(trained_run):
    folder, run = trained_run
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert not list((run / "checkpoints").glob("best-*.ckpt")), "no best checkpoint by default (val/l1 rewards blur)"
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["generator"]["init_args"]["antialias"] == "bin5"
    events = EventAccumulator(str(run), size_guidance={"images": 0})
    events.Reload()
    scalars, images = set(events.Tags()["scalars"]), set(events.Tags()["images"])
    for tag in ("train/loss_G_GAN_step", "train/loss_G_L1_step", "train/loss_D_real_step", "train/loss_D_fake_step",
                "lr/G", "lr/D", "val/l1", "val/psnr", "val/ssim", "val/stability_psnr"):
        assert tag in scalars, tag
    assert {"train/images", "val/images"} <= images
    # Images are logged on the scalars' x-axis (batches), not on global_step (2 per batch).
    scalar_steps = {e.step for e in events.Scalars("train/loss_G_step")}
    assert scalar_steps == set(range(8))  # 2 epochs x 4 batches
    assert {e.step for e in events.Images("train/images")} <= scalar_steps
    val_steps = {e.step for e in events.Scalars("val/l1")}
    assert {e.step for e in events.Images("val/images")} == val_steps
    # the LR of each epoch follows the schedule (n_epochs=1, n_epochs_decay=1)
    lrs = [e.value for e in events.Scalars("lr/G")]
    assert lrs == pytest.approx([2e-4 * linear_decay_factor(e, 1, 1) for e in range(2)])


def test_a_training_run_has_its_row_in_the_hparams_dashboard(trained_run):
    """fit end: one HPARAMS session with the generator's options and, as metrics, the last
    validation's val/l1 (was: only evaluations had a row); no best-checkpoint figure, since by
    default a fit keeps last.ckpt only."""
    from tensorboard.plugins.hparams import plugin_data_pb2

    folder, run = trained_run
    events = EventAccumulator(str(run))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    assert set(content) == {"_hparams_/experiment", "_hparams_/session_start_info", "_hparams_/session_end_info"}
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    hp = {k: v.string_value or v.number_value or v.bool_value for k, v in start.hparams.items()}
    assert hp["generator/antialias"] == "bin5" and hp["model/lambda_l1"] == 100.0
    assert hp["data/direction"] == "BtoA" and hp["epochs"] == 2
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    tags = {m.name.tag for m in experiment.metric_infos}
    assert "hparam/val_l1" in tags and not any(t.startswith("hparam/best_") for t in tags)
    val_l1 = [e.value for e in events.Scalars("val/l1")]
    assert [e.value for e in events.Scalars("hparam/val_l1")] == pytest.approx([val_l1[-1]])
    assert events.Scalars("hparam/val_l1")[0].step == events.Scalars("train/loss_G_step")[-1].step + 1


@pytest.mark.parametrize("subcommand", ["validate", "test", "predict"])
def test_subcommands_run_from_checkpoint(trained_run, subcommand, run_cli, tmp_path):
    folder, run = trained_run
    args = [subcommand, "--config", str(folder / "tiny.yaml"), "--ckpt_path", str(run / "checkpoints" / "last.ckpt"),
            "--trainer.logger", "false"]
    if subcommand == "predict":
        args += ["--predict_output_dir", str(tmp_path / "pred")]
    cli = run_cli(folder, args)
    if subcommand == "predict":
        written = sorted(p.name for p in (tmp_path / "pred").glob("*.png"))
        assert len(written) == 2
    else:
        metrics = cli.trainer.callback_metrics
        assert f"{'val' if subcommand == 'validate' else 'test'}/psnr" in metrics


@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_a_collapsed_generators_stability_is_flagged(trained_run, subcommand, run_cli, capsys):
    """The tiny 2-epoch run collapses to near-constant outputs (TV ratio ~0.002): its stability
    figure (~70 dB) must come with a warning, as evaluate.py marks it; an untrained Kaiming-initialised
    generator's (noisy outputs) must not (pix2pix's normal(0, 0.02) init gives near-constant ones)."""
    folder, run = trained_run
    stage = "val" if subcommand == "validate" else "test"
    base = [subcommand, "--config", str(folder / "tiny.yaml"), "--trainer.logger", "false"]
    metrics = run_cli(folder, base + ["--ckpt_path", str(run / "checkpoints" / "last.ckpt")]).trainer.callback_metrics
    out = capsys.readouterr().out
    ratio = float(metrics[f"{stage}/tv_ratio"])
    # One batch of 2 images: the epoch's ratio of sums equals the ratio of the logged means.
    assert ratio == pytest.approx(float(metrics[f"{stage}/tv"]) / float(metrics[f"{stage}/tv_target"]), rel=1e-5)
    assert ratio < 0.1
    assert f"warning: {stage}: the outputs are near-constant (TV ratio {ratio:.3f} < 0.1" in out
    assert f"{stage}/stability_psnr is no result" in out
    fresh = run_cli(folder, base + ["--model.init_type", "kaiming", "--untrained", "true"]).trainer.callback_metrics
    assert float(fresh[f"{stage}/tv_ratio"]) > 0.1
    assert "near-constant" not in capsys.readouterr().out


def test_resume_restores_epoch_optimizer_and_scheduler(trained_run, run_cli):
    folder, run = trained_run
    last = run / "checkpoints" / "last.ckpt"
    before = torch.load(last, weights_only=True)
    assert before["epoch"] == 1 and before["global_step"] == 16  # 8 batches x 2 optimiser steps
    cli = run_cli(folder, ["fit", "--config", str(folder / "tiny.yaml"), "--trainer.max_epochs", "3",
                           "--model.n_epochs_decay", "2", "--ckpt_path", str(last),
                           "--trainer.logger.init_args.name", "resumed"])
    assert cli.trainer.current_epoch == 3
    assert cli.trainer.global_step == 24  # continued: 16 + 4 batches x 2 steps
    sched_g, _ = cli.model.lr_schedulers()
    assert sched_g.last_epoch == 3
    # after epoch index 2 the LR has reached the decay's end: 1 - (3 + 1 - 1) / 3 = 0
    opt_g, _ = cli.model.optimizers()
    assert opt_g.param_groups[0]["lr"] == pytest.approx(2e-4 * linear_decay_factor(3, 1, 2))
    # Adam state was restored (step count continues, not restarted)
    state = next(iter(opt_g.optimizer.state.values()))
    assert int(state["step"]) == 12


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
@pytest.mark.parametrize("epoch,expected", [(0, 1.0), (99, 1.0), (100, 1 - 1 / 101), (150, 1 - 51 / 101),
                                            (199, 1 - 100 / 101), (200, 0.0)])
def test_lr_schedule_matches_the_pix2pix_formula(epoch, expected):
    assert linear_decay_factor(epoch, 100, 100) == pytest.approx(expected)
    module = Pix2PixModule(UNetGenerator(num_downs=2, ngf=2), PatchGANDiscriminator(ndf=2, n_layers=1))
    (_, _), (sched_g, sched_d) = module.configure_optimizers()
    for _ in range(epoch):
        sched_g.step()
    assert sched_g.get_last_lr()[0] == pytest.approx(2e-4 * expected)


def test_the_validation_stability_grid_is_the_evaluation_default_whatever_the_training_grid():
    # max_shift is the training shift term's grid; val/stability_psnr is a measurement on
    # evaluate.py's default 8 x 8 grid, so runs trained with different grids compare.
    assert VAL_STABILITY_GRID == 8
    module = Pix2PixModule(UNetGenerator(num_downs=2, ngf=2), PatchGANDiscriminator(ndf=2, n_layers=1),
                           lambda_shift=1.0, max_shift=2, val_stability_images=1, val_stability_shifts=63).eval()
    assert module._stability_parts is None and module._tv_sums is None  # no epoch started yet
    module.on_validation_epoch_start()
    with torch.no_grad():
        module._stability_on(torch.rand(2, 3, 16, 16) * 2 - 1)
    (part,) = module._stability_parts
    assert part.grid_size == 8 and part.mse.shape[0] == 1  # val_stability_images=1 of the batch's 2
    grid = {(dy, dx) for dy in range(8) for dx in range(8)} - {(0, 0)}
    assert set(part.shifts) <= grid and len(part.shifts) >= 60
    assert max(max(s) for s in part.shifts) == 7  # shifts of up to 7 px: not the [0, 2)^2 training grid


class _StepRecorder(pl.Callback):
    """Snapshots G and D right before each optimiser step of the first batch."""

    def __init__(self):
        self.snapshots = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        if len(self.snapshots) < 2:
            self.snapshots.append({k: v.detach().clone() for k, v in pl_module.state_dict().items()})


def test_one_step_updates_both_players_and_the_d_step_leaves_g_alone(tmp_path, tiny_module, cpu_trainer):
    module = tiny_module(seed=0, log_images_every_n_batches=0, val_stability_images=0)
    start = {k: v.detach().clone() for k, v in module.state_dict().items()}
    batch = {"input": torch.rand(2, 3, 16, 16) * 2 - 1, "target": torch.rand(2, 3, 16, 16) * 2 - 1}
    loader = torch.utils.data.DataLoader([{k: v[i] for k, v in batch.items()} for i in range(2)], batch_size=2)
    recorder = _StepRecorder()
    trainer = cpu_trainer(max_steps=2, enable_checkpointing=False, callbacks=[recorder], default_root_dir=tmp_path)
    trainer.fit(module, loader)
    before_d, before_g = recorder.snapshots  # D steps first, then G
    end = module.state_dict()

    def changed(a, b, prefix):
        return any(not torch.equal(a[k], b[k]) for k in a if k.startswith(prefix) and a[k].is_floating_point()
                   and "running" not in k)

    assert not changed(start, before_d, "discriminator.")  # nothing moved before D's step
    assert changed(before_d, before_g, "discriminator.")  # the D step moved D ...
    assert not changed(before_d, before_g, "generator.")  # ... and not G
    assert changed(before_g, end, "generator.")  # the G step moved G ...
    assert not changed(before_g, end, "discriminator.")  # ... and not D


@pytest.mark.parametrize("mode", ["vanilla", "lsgan", "hinge"])
def test_gan_losses_prefer_the_right_label(mode):
    confident_real = torch.full((1, 1, 4, 4), 3.0)
    assert gan_loss(confident_real, True, mode) < gan_loss(confident_real, False, mode)
    assert gan_loss(-confident_real, False, mode) < gan_loss(-confident_real, True, mode)
    g_good, g_bad = gan_loss(confident_real, True, mode, False), gan_loss(-confident_real, True, mode, False)
    assert g_good < g_bad
    with pytest.raises(ValueError, match="unknown gan_mode"):
        gan_loss(confident_real, True, "wgan")


def test_last_checkpoint_follows_training_when_the_best_stops_improving(tmp_path, run_cli, write_tiny_config):
    """Regression: Lightning 2.6 writes save_last only when the monitored checkpoint is saved, so
    last.ckpt went stale once val/l1 stopped improving. A monitor that can never improve after
    epoch 0 (min of 'epoch') must still leave last.ckpt at the final epoch."""
    cfg = write_tiny_config(tmp_path, trainer__max_epochs=3, data__generate_counts={"train": 2, "val": 1, "test": 1},
                            data__data_dir=str(tmp_path / "data"))
    run_cli(tmp_path, ["fit", "--config", str(cfg), "--checkpoint.monitor", "epoch", "--checkpoint.mode", "min"])
    ckpts = tmp_path / "runs" / "tiny" / "version_0" / "checkpoints"
    assert torch.load(ckpts / "best-000.ckpt", weights_only=True)["epoch"] == 0
    last = torch.load(ckpts / "last.ckpt", weights_only=True)
    assert last["epoch"] == 2 and last["global_step"] == 3 * 2 * 1  # 3 epochs x 1 batch x 2 optimiser steps


def test_validate_flags_near_black_outputs_on_dark_sparse_data(tmp_path, cpu_trainer, capsys):
    """Near-black outputs on dark, sparse data keep a TV ratio above 0.1 (the faint noise has as
    much TV as the targets' few edges); the per-image content test flags them, as evaluate.py does."""
    import numpy as np
    from PIL import Image
    from torch import nn

    from pix2pix_aa.data import Pix2PixDataModule
    from pix2pix_aa.module import Pix2PixModule
    from pix2pix_aa.networks import PatchGANDiscriminator

    class NearBlack(nn.Module):
        def forward(self, x):
            noise = torch.randn(x.shape[-2:], generator=torch.Generator().manual_seed(2))
            return -1 + 0.003 * noise.expand_as(x) + 0 * x

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        (tmp_path / split).mkdir()
        for i in range(4):
            a, b = np.zeros((64, 64, 3), np.uint8), np.zeros((64, 64, 3), np.uint8)
            y, x = rng.integers(4, 52, 2)
            a[y:y + 8, x:x + 8, 2], b[y:y + 8, x:x + 8] = 255, 204
            Image.fromarray(np.concatenate([a, b], 1)).save(tmp_path / split / f"{i}.png")
    dm = Pix2PixDataModule(data_dir=str(tmp_path), dataset="aligned", direction="AtoB", load_size=64, crop_size=64,
                           batch_size=2, num_workers=0)
    model = Pix2PixModule(generator=NearBlack(), discriminator=PatchGANDiscriminator(ndf=4, n_layers=1),
                          val_stability_images=0, log_images_every_n_batches=0)
    metrics = cpu_trainer().validate(model, datamodule=dm, verbose=False)[0]
    out = capsys.readouterr().out
    assert metrics["val/tv_ratio"] > 0.1 and metrics["val/content_lost"] == 1.0
    assert "warning: val: the outputs lost their targets' content on 100% of the images" in out
    assert "val/stability_psnr is no result" in out


def test_a_bright_validation_batch_is_no_scale_warning(tmp_path, cpu_trainer, tiny_module, recwarn):
    """A validation batch of white inputs and targets (edge maps with no edge, snow) made every
    validation warn "images in [0, 1]?", though the data module maps its images to [-1, 1]."""
    import numpy as np
    from PIL import Image

    from pix2pix_aa.data import Pix2PixDataModule

    (tmp_path / "val").mkdir()
    white = np.full((32, 64, 3), 255, np.uint8)
    for i in range(2):
        Image.fromarray(white).save(tmp_path / "val" / f"{i}.png")
    dm = Pix2PixDataModule(data_dir=str(tmp_path), dataset="aligned", direction="AtoB", load_size=32, crop_size=32,
                           batch_size=2, num_workers=0)
    model = tiny_module(seed=0, log_images_every_n_batches=0)
    cpu_trainer().validate(model, datamodule=dm, verbose=False)
    assert not [str(w.message) for w in recwarn if "no negative value" in str(w.message)]
