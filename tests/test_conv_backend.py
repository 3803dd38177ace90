"""studies/conv_backend.py: the native-path routing computes the same convolutions as PyTorch's own
choice (to float rounding) and routes exactly the layers over the threshold."""

from __future__ import annotations

import copy

import pytest
import torch

from pix2pix_aa.networks import UNetGenerator

cb = pytest.importorskip("studies.conv_backend")


def _grads(net: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    torch.manual_seed(0)  # the same dropout masks
    y = net(x)
    y.square().mean().backward()
    return y.detach(), [p.grad.clone() for p in net.parameters()]


@pytest.mark.parametrize("antialias", ["none", "bin5"])  # nn.Conv2d, and PaddedConv2d's own padding
def test_routed_generator_matches_pytorchs_choice_to_rounding(antialias, monkeypatch):
    torch.manual_seed(1)
    plain = UNetGenerator(num_downs=4, ngf=8, antialias=antialias).train()
    routed = cb.route(copy.deepcopy(plain), 0.0)  # every dense conv on the native path
    calls = []
    apply = cb._NativeConv.apply
    monkeypatch.setattr(cb._NativeConv, "apply", lambda *a: calls.append(a[5]) or apply(*a))
    x = torch.randn(2, 3, 32, 32)
    y0, g0 = _grads(plain, x)
    y1, g1 = _grads(routed, x)
    convs = [m for m in plain.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.groups == 1]
    assert len(calls) == len(convs) and calls.count(True) == sum(isinstance(m, torch.nn.ConvTranspose2d) for m in convs)
    torch.testing.assert_close(y1, y0, atol=1e-5, rtol=1e-4)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-3)


def test_only_layers_over_the_threshold_are_routed(monkeypatch):
    net = UNetGenerator(num_downs=4, ngf=8).train()
    x = torch.randn(1, 3, 32, 32)
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
    seen = []
    hooks = [m.register_forward_pre_hook(lambda m, a: seen.append(m.weight.numel() / cb._out_numel(m, a[0])))
             for m in convs]
    with torch.no_grad():
        expected_y = net(x)
    for h in hooks:
        h.remove()
    threshold = sorted(seen)[len(seen) // 2]
    calls = []
    apply = cb._NativeConv.apply
    monkeypatch.setattr(cb._NativeConv, "apply", lambda *a: calls.append(a[1].shape) or apply(*a))
    with torch.no_grad():
        y = cb.route(net, threshold)(x)
    assert len(calls) == sum(r >= threshold for r in seen) > 0
    torch.testing.assert_close(y, expected_y, atol=1e-5, rtol=1e-4)


def test_fpmath_bf16_computes_the_convolutions_in_bf16_and_restores_the_setting():
    conv = torch.nn.Conv2d(16, 16, 4, stride=2, padding=1)
    x = torch.randn(2, 16, 32, 32)
    before = torch.backends.mkldnn.conv.fp32_precision
    with torch.no_grad():
        y32 = conv(x)
        with cb.fpmath("bf16"):
            assert torch.backends.mkldnn.conv.fp32_precision == "bf16"
            y16 = conv(x)
        with cb.fpmath(None):
            assert torch.backends.mkldnn.conv.fp32_precision == before
    assert torch.backends.mkldnn.conv.fp32_precision == before
    assert torch.equal(conv(x).detach(), y32)
    torch.testing.assert_close(y16, y32, atol=0.05, rtol=0.02)  # bf16 has 8 bits of mantissa
    if _has_amx():  # oneDNN takes the bf16 hint on CPUs with AMX; an AVX512-BF16 one (AMD EPYC) ignores it
        assert not torch.equal(y16, y32)


def _has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return "amx_bf16" in f.read().split()
    except OSError:
        return False
