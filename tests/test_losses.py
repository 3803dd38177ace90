"""The training objectives (pix2pix_aa.losses): the shift-equivariance term against the crop
protocol it mirrors, and its wiring in Pix2PixModule.training_step."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from pix2pix_aa.losses import shift_equivariance_l1, shifted_window, training_shift
from pix2pix_aa.metrics import reflect_pad_source, stability_crop


@pytest.fixture
def images() -> torch.Tensor:
    return torch.rand(2, 3, 24, 24, generator=torch.Generator().manual_seed(0)) * 2 - 1


def test_the_shifted_window_is_the_crop_protocols(images):
    x = images
    source = reflect_pad_source(x, 7)
    for dy, dx in [(0, 0), (3, 5), (7, 7), (0, 6)]:
        assert torch.equal(shifted_window(x, (dy, dx)), source[..., dy:dy + 24, dx:dx + 24])


def test_the_term_is_zero_for_an_equivariant_generator_and_reads_a_known_offset(images):
    x = images
    pointwise = nn.Conv2d(3, 3, 1)  # commutes with any shift
    with torch.no_grad():
        for shift in [(1, 0), (4, 6), (7, 7)]:
            assert shift_equivariance_l1(pointwise(x), pointwise(shifted_window(x, shift)), shift).item() == 0.0
            # an output off by 0.25 everywhere on the common region: the term reads 0.25
            assert shift_equivariance_l1(x, shifted_window(x, shift) + 0.25, shift).item() == pytest.approx(0.25)


def test_the_term_squared_is_the_crop_protocols_error():
    # A generator that aliases (2x2 average pool, nearest x2): the term's L2 twin over the common
    # region is the MSE behind stability_crop's PSNR, shift by shift.
    x = torch.rand(1, 1, 16, 16, generator=torch.Generator().manual_seed(1))
    aliasing = nn.Sequential(nn.AvgPool2d(2), nn.Upsample(scale_factor=2)).eval()
    shift = (1, 3)
    with torch.no_grad():
        y, y_s = aliasing(x), aliasing(shifted_window(x, shift))
        result = stability_crop(aliasing, reflect_pad_source(x, 3), 16, [shift])
        mse = (y_s[..., :15, :13] - y[..., 1:, 3:]).pow(2).mean()
    assert shift_equivariance_l1(y, y_s, shift).item() > 0.01
    assert float(np.nansum(result.mse)) == pytest.approx(mse.item(), rel=1e-5)


def test_training_shifts_depend_on_the_step_only_and_cover_the_grid():
    shifts = [training_shift(step, 8) for step in range(2000)]
    assert shifts[:50] == [training_shift(step, 8) for step in range(50)]  # no state between calls
    assert (0, 0) not in shifts and set(shifts) == {(dy, dx) for dy in range(8) for dx in range(8)} - {(0, 0)}
    assert set(training_shift(s, 2) for s in range(100)) == {(0, 1), (1, 0), (1, 1)}
    with pytest.raises(ValueError, match="max_shift must be an int >= 2"):
        training_shift(0, 1)


def test_the_term_refuses_outputs_it_cannot_compare():
    with pytest.raises(ValueError, match="one shape"):
        shift_equivariance_l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 9), (1, 1))
    with pytest.raises(ValueError, match="no common region"):
        shift_equivariance_l1(torch.zeros(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), (8, 0))


@pytest.mark.parametrize("shift_images", [1, 2])
def test_training_step_adds_the_term_on_the_steps_shift(tmp_path, tiny_module, cpu_trainer, shift_images):
    """The logged term of the first step is lambda_shift x the L1 of G's outputs (one pass, train
    mode, no dropout) on the first shift_images inputs, shifted by training_shift(0)."""
    module = tiny_module({"dropout": 0.0}, seed=0, lambda_shift=7.0, shift_images=shift_images,
                         log_images_every_n_batches=0, val_stability_images=0)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2)) * 2 - 1
    shift = training_shift(0, 8)
    g = copy.deepcopy(module.generator).train()
    with torch.no_grad():
        out = g(torch.cat([x, shifted_window(x[:shift_images], shift)]))
        expected = 7.0 * shift_equivariance_l1(out[:shift_images], out[2:], shift).item()
    loader = torch.utils.data.DataLoader([{"input": x[i], "target": x[i]} for i in range(2)], batch_size=2)
    trainer = cpu_trainer(max_steps=2, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(module, loader)
    assert expected > 0
    assert trainer.callback_metrics["train/loss_G_shift_step"].item() == pytest.approx(expected, rel=1e-5)


def test_shift_every_applies_the_term_on_every_kth_iteration(tmp_path, tiny_module, cpu_trainer, capsys):
    """shift_every 2: G sees the extra shifted image at iterations 0 and 2 of 4, not at 1 and 3."""
    module = tiny_module(seed=0, lambda_shift=1.0, shift_every=2, log_images_every_n_batches=0,
                         val_stability_images=0)
    batch_sizes = []
    module.generator.register_forward_hook(lambda _m, args, _out: batch_sizes.append(args[0].shape[0]))
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    loader = torch.utils.data.DataLoader([{"input": x[i], "target": x[i]} for i in range(2)], batch_size=2)
    trainer = cpu_trainer(max_steps=8, enable_checkpointing=False, default_root_dir=tmp_path)
    trainer.fit(module, loader)
    assert batch_sizes == [3, 2, 3, 2]
    assert "applied on its first iteration only" not in capsys.readouterr().err
    # Per epoch only: a per-step curve repeated the last value at the iterations without the term.
    logged = trainer.logged_metrics
    assert "train/loss_G_shift_epoch" in logged and "train/loss_G_shift_step" not in logged
    with pytest.raises(ValueError, match="model.shift_every must be an int >= 1"):
        tiny_module(lambda_shift=1.0, shift_every=0)


def test_a_shift_every_past_the_runs_end_is_named_at_start(tmp_path, tiny_module, cpu_trainer, capsys):
    """shift_every 4 on a 4-iteration run (max_steps 8: G and D each step once an iteration) applies
    the term once: said at the start, not left to be found in the logs."""
    module = tiny_module(seed=0, lambda_shift=1.0, shift_every=4, log_images_every_n_batches=0,
                         val_stability_images=0)
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(4)) * 2 - 1
    loader = torch.utils.data.DataLoader([{"input": x[i], "target": x[i]} for i in range(2)], batch_size=2)
    cpu_trainer(max_steps=8, enable_checkpointing=False, default_root_dir=tmp_path).fit(module, loader)
    assert ("model.shift_every=4 is not below this run's 4 training iterations: the shift-equivariance term is "
            "applied on its first iteration only") in capsys.readouterr().err


def test_without_the_term_training_is_unchanged(tmp_path, tiny_module, cpu_trainer):
    """lambda_shift 0 runs pix2pix's objective: the same weights as a module without the option."""
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    loader = torch.utils.data.DataLoader([{"input": x[i], "target": x[i]} for i in range(2)], batch_size=2)
    states = []
    for kwargs in ({}, {"lambda_shift": 0.0, "shift_images": 2}):
        torch.manual_seed(0)
        module = tiny_module(seed=0, log_images_every_n_batches=0, val_stability_images=0, **kwargs)
        trainer = cpu_trainer(max_steps=2, enable_checkpointing=False, default_root_dir=tmp_path)
        trainer.fit(module, loader)
        assert "train/loss_G_shift_step" not in trainer.callback_metrics
        states.append(module.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])


def test_a_max_shift_the_batch_cannot_take_stops_at_the_first_batch(tmp_path, tiny_module, cpu_trainer):
    """Variable-size data (preprocess none) are not checked at start-up: the first batch is."""
    module = tiny_module(seed=0, lambda_shift=1.0, max_shift=20, log_images_every_n_batches=0,
                         val_stability_images=0)
    x = torch.zeros(2, 3, 16, 16)
    loader = torch.utils.data.DataLoader([{"input": x[i], "target": x[i]} for i in range(2)], batch_size=2)
    with pytest.raises(ValueError, match=r"model.max_shift=20 draws shifts up to 19 px, but this batch's images "
                                         r"are 16x16: use a max_shift of at most 16"):
        cpu_trainer(max_steps=2, enable_checkpointing=False, default_root_dir=tmp_path).fit(module, loader)
