"""Speed options keep results: bf16-mixed works with the manual optimisation of Pix2PixModule,
and channels-last memory format gives the same generator outputs (see docs/PERFORMANCE.md)."""

from __future__ import annotations

import shutil

import pytest
import torch

from pix2pix_aa.module import Pix2PixModule
from pix2pix_aa.networks import UNetGenerator


def _loader(n: int = 2, size: int = 16) -> torch.utils.data.DataLoader:
    gen = torch.Generator().manual_seed(0)
    items = [{"input": torch.rand(3, size, size, generator=gen) * 2 - 1,
              "target": torch.rand(3, size, size, generator=gen) * 2 - 1} for _ in range(n)]
    return torch.utils.data.DataLoader(items, batch_size=n)


def test_bf16_mixed_precision_trains_both_players_with_manual_optimisation(tmp_path, tiny_module, cpu_trainer):
    module = tiny_module({"antialias": "bin5"}, seed=0, log_images_every_n_batches=0, val_stability_images=0)
    start = {k: v.detach().clone() for k, v in module.state_dict().items()}
    trainer = cpu_trainer(max_epochs=2, precision="bf16-mixed", enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(module, _loader())
    end = module.state_dict()
    for prefix in ("generator.", "discriminator."):
        weights = [k for k in end if k.startswith(prefix) and k.endswith("weight")]
        assert any(not torch.equal(start[k], end[k]) for k in weights), f"{prefix} did not move"
        assert all(end[k].dtype == torch.float32 for k in weights)  # master weights stay float32
    for name in ("train/loss_G", "train/loss_D"):
        assert torch.isfinite(trainer.callback_metrics[name])


@pytest.mark.parametrize("antialias", ["none", "bin5", "aps"])
def test_channels_last_leaves_generator_outputs_unchanged(antialias):
    torch.manual_seed(0)
    g = UNetGenerator(num_downs=3, ngf=4, antialias=antialias).eval()
    x = torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        ref = g(x)
        g.to(memory_format=torch.channels_last)
        out = g(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)


def test_networks_passed_as_objects_stay_out_of_the_logged_hyperparameters(tiny_module):
    # Lightning logs hparams_initial to hparams.yaml at every fit: network objects there meant a
    # deep copy of G and D and a YAML dump of every weight.
    module = tiny_module()
    for hp in (module.hparams, module.hparams_initial):
        assert "generator" not in hp and "discriminator" not in hp
        assert hp["lambda_l1"] == 100.0


@pytest.fixture
def fit(tiny_module, cpu_trainer):
    """fit(tmp_path, precision="32-true", max_epochs=3, **module_kwargs): the tiny bin5 module after a fit."""

    def run(tmp_path, precision: str = "32-true", max_epochs: int = 3, **module_kwargs) -> Pix2PixModule:
        module = tiny_module({"antialias": "bin5"}, seed=0, log_images_every_n_batches=0, val_stability_images=0,
                             **module_kwargs)
        trainer = cpu_trainer(max_epochs=max_epochs, precision=precision, enable_checkpointing=False,
                              default_root_dir=tmp_path)
        trainer.fit(module, _loader())
        assert trainer.global_step > 0
        return module

    return run


def test_fused_adam_is_the_default_and_matches_the_default_adam_to_float_rounding(tmp_path, fit):
    fused = fit(tmp_path, fused_adam=True)
    plain = fit(tmp_path, fused_adam=False)
    assert [opt.optimizer.defaults["fused"] for opt in fused.optimizers()] == [True, True]
    assert [bool(opt.optimizer.defaults["fused"]) for opt in plain.optimizers()] == [False, False]
    assert Pix2PixModule(UNetGenerator(num_downs=3, ngf=4)).hparams.fused_adam is True
    ref = plain.state_dict()
    moved = 0
    for k, v in fused.state_dict().items():
        torch.testing.assert_close(v, ref[k], rtol=1e-4, atol=1e-6, msg=k)
        moved += int(not torch.equal(v, ref[k]))
    # Same update to float rounding, not bit-identical: the test would pass vacuously if the two
    # implementations were the same code path.
    assert moved > 0


@pytest.mark.parametrize("precision", ["32-true", "bf16-mixed"])
def test_channels_last_trains_in_that_layout_the_same_model_to_float_rounding(tmp_path, fit, precision):
    last = fit(tmp_path, precision=precision, channels_last=True)
    plain = fit(tmp_path, precision=precision)
    convs = [p for p in last.parameters() if p.dim() == 4]
    assert convs and all(p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous() for p in convs)
    assert all(p.is_contiguous() for p in plain.parameters())
    ref = plain.state_dict()
    for k, v in last.state_dict().items():  # bf16 rounds each product, so a looser bound there
        torch.testing.assert_close(v, ref[k], rtol=1e-4, atol=1e-6 if precision == "32-true" else 1e-3, msg=k)


def test_gradients_are_freed_after_each_optimiser_step(tmp_path, fit):
    # Holding G's gradients (218 MB for unet_256) through the next forward passes pushed the
    # batch-1 peak memory over 2 GB (docs/PERFORMANCE.md).
    module = fit(tmp_path)
    assert all(p.grad is None for p in module.parameters())


@pytest.mark.slow  # inductor builds C++ kernels for G's forward and backward: ~30 s on the shared 2-core machine
@pytest.mark.skipif(not (shutil.which("gcc") or shutil.which("cc")), reason="inductor needs a C compiler")
def test_torch_compile_trains_the_antialiased_generator_like_eager():
    # The blur's reflect padding falls back to replicate on the 2x2 maps at the bottom of the
    # U-Net, and inductor's replication_pad2d_backward failed its stride assertion there.
    torch.manual_seed(0)
    g = UNetGenerator(num_downs=3, ngf=4, antialias="bin5")
    x = torch.randn(1, 3, 8, 8)
    ref = g(x)
    ref.square().sum().backward()
    ref_grads = [p.grad.clone() for p in g.parameters()]
    g.zero_grad(set_to_none=True)
    compiled = torch.compile(g)
    out = compiled(x)
    out.square().sum().backward()
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
    for p, r in zip(g.parameters(), ref_grads):
        torch.testing.assert_close(p.grad, r, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("precision, fused", [("bf16-mixed", False), ("32-true", True)])
def test_gradient_clipping_works_with_mixed_precision_and_the_fused_default(tmp_path, precision, fused, fit):
    # Lightning's mixed precision refuses to clip a fused optimiser's gradients (RuntimeError at
    # the first step); the module then falls back to the default Adam.
    module = fit(tmp_path, precision=precision, max_epochs=1, grad_clip_norm=1.0)
    assert [bool(opt.optimizer.defaults["fused"]) for opt in module.optimizers()] == [fused, fused]


@pytest.mark.parametrize("flags, kept_before, expect_keep, expect_notice", [
    ([], False, True, False),                           # the default: keep freed memory
    (["--allocator", "keep"], False, True, False),
    (["--allocator", "system"], False, False, False),   # glibc's defaults: nothing changed
    (["--allocator", "system"], True, False, True),     # too late in this process: said, not ignored
])
def test_train_py_applies_the_allocator_option_at_start_up(tmp_path, monkeypatch, capsys, write_tiny_config,
                                                           flags, kept_before, expect_keep, expect_notice):
    from pix2pix_aa.cli import main as cli_main
    from pix2pix_aa.evaluation import speed

    calls = []
    monkeypatch.setattr(speed, "keep_freed_memory", lambda: calls.append(1) or True)
    monkeypatch.setattr(speed, "freed_memory_kept", lambda: kept_before)
    cfg = write_tiny_config(tmp_path)
    cli_main(["--config", str(cfg), "--trainer.logger", "false", *flags], run=False)
    assert calls == ([1] if expect_keep else [])
    assert ("--allocator system: this process already keeps freed memory" in capsys.readouterr().err) == expect_notice


def test_train_py_refuses_an_unknown_allocator_in_one_line(tmp_path, capsys, write_tiny_config):
    from pix2pix_aa.cli import main as cli_main

    with pytest.raises(SystemExit) as info:
        cli_main(["--config", str(write_tiny_config(tmp_path)), "--trainer.logger", "false", "--allocator", "fast"],
                 run=False)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "allocator" in err and "keep" in err


def _plain_pix2pix(generator, discriminator, loader, lambda_l1=100.0, lr=2e-4, betas=(0.5, 0.999)) -> None:
    """The pix2pix iteration written plainly (the reference's optimize_parameters, in the module's
    order): G forward; D step on real then fake pairs, loss halved; G step with D frozen. Fused
    Adam, gradients set to None, as the module."""
    import torch.nn.functional as F

    bce = F.binary_cross_entropy_with_logits
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas, fused=True)
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=betas, fused=True)
    generator.train(), discriminator.train()
    for batch in loader:
        a, b = batch["input"], batch["target"]
        fake = generator(a)
        real_logits = discriminator(torch.cat([a, b], 1))
        fake_logits = discriminator(torch.cat([a, fake.detach()], 1))
        loss_d = 0.5 * (bce(real_logits, torch.ones_like(real_logits))
                        + bce(fake_logits, torch.zeros_like(fake_logits)))
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        discriminator.requires_grad_(False)
        logits = discriminator(torch.cat([a, fake], 1))
        loss_g = bce(logits, torch.ones_like(logits)) + F.l1_loss(fake, b) * lambda_l1
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        discriminator.requires_grad_(True)


@pytest.mark.parametrize("antialias", ["none", "bin5"])
def test_training_step_gives_the_plain_loops_weights_bit_for_bit(tiny_module, cpu_trainer, tmp_path, antialias):
    # The module's per-step bookkeeping (logging, finiteness checks, which player's weights take
    # gradients) must not change a single bit of the update: same seed, same weights as the plain loop.
    import copy

    module = tiny_module({"antialias": antialias, "dropout": 0.5}, seed=0, log_images_every_n_batches=0,
                         val_stability_images=0)
    generator, discriminator = copy.deepcopy(module.generator), copy.deepcopy(module.discriminator)
    gen = torch.Generator().manual_seed(0)
    items = [{"input": torch.rand(3, 16, 16, generator=gen) * 2 - 1,
              "target": torch.rand(3, 16, 16, generator=gen) * 2 - 1} for _ in range(8)]
    torch.manual_seed(1)
    trainer = cpu_trainer(enable_checkpointing=False, default_root_dir=tmp_path, max_epochs=1)
    trainer.fit(module, torch.utils.data.DataLoader(items, batch_size=2))  # 4 iterations
    assert trainer.fit_loop.epoch_loop._batches_that_stepped == 4
    torch.manual_seed(1)
    _plain_pix2pix(generator, discriminator, torch.utils.data.DataLoader(items, batch_size=2))
    for name, net in (("generator", generator), ("discriminator", discriminator)):
        theirs = getattr(module, name).state_dict()
        for key, value in net.state_dict().items():
            assert torch.equal(theirs[key], value), f"{name}.{key} differs"
        assert all(p.requires_grad for p in getattr(module, name).parameters())
