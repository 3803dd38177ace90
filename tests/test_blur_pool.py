"""BlurPool & friends: parity with the references, the paper's invariants, shift behaviour.

``antialiased_cnns`` (the paper authors' package) and kornia are test-only references here.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_aa.layers import (
    FILTER_SIZES,
    Blur,
    BlurConv2d,
    BlurPool,
    ConvBlurPool,
    MaxBlurPool,
    binomial_filter,
    blur2d,
    blur_pool2d,
    blur_pool_from_avg_pool,
    conv_blur_pool2d,
    create_blur_pool,
    filter_size,
    max_blur_pool2d,
    max_blur_pool_from_max_pool,
)
from pix2pix_aa.layers.padding import pad_amounts as _pad_amounts
from pix2pix_aa.layers.padding import safe_pad as _safe_pad

antialiased_cnns = pytest.importorskip("antialiased_cnns")
kornia = pytest.importorskip("kornia")

SIZES = range(1, 8)
STRIDES = (1, 2, 3)
SHAPES = ((9, 8), (16, 13), (6, 7), (12, 12))  # odd and even H and W



def _padded_reference(x: torch.Tensor, k: int, stride: int, mode: str) -> torch.Tensor:
    """The textbook route: explicit pad, then a strided depthwise conv (float64 gradients)."""
    w = binomial_filter(k, dtype=x.dtype).expand(x.shape[1], 1, k, k)
    return F.conv2d(_safe_pad(x, _pad_amounts(k), mode), w, stride=stride, groups=x.shape[1])


# --- parity with antialiased_cnns.BlurPool ------------------------------------------------------------

@pytest.mark.parametrize("pad_type", ["reflect", "replicate", "zero"])
@pytest.mark.parametrize("k", SIZES)
def test_matches_antialiased_cnns(k: int, pad_type: str) -> None:
    worst_y = worst_g = 0.0
    for stride, (h, w) in itertools.product(STRIDES, SHAPES):
        torch.manual_seed(k * 100 + stride)
        x = torch.randn(2, 5, h, w)
        ref = antialiased_cnns.BlurPool(5, pad_type=pad_type, filt_size=k, stride=stride)
        ours = BlurPool(5, k, stride=stride, pad_type=pad_type)
        xr, xo = x.clone().requires_grad_(), x.clone().requires_grad_()
        yr, yo = ref(xr), ours(xo)
        assert yo.shape == yr.shape == (2, 5, math.ceil(h / stride), math.ceil(w / stride))
        g = torch.randn_like(yr)
        yr.backward(g)
        yo.backward(g)
        worst_y = max(worst_y, (yo - yr).abs().max().item())
        worst_g = max(worst_g, (xo.grad - xr.grad).abs().max().item())
    assert worst_y < 1e-6, f"forward max abs diff {worst_y:.3g} for k={k}, {pad_type}"
    assert worst_g < 1e-6, f"gradient max abs diff {worst_g:.3g} for k={k}, {pad_type}"


def test_filter_is_the_reference_filter() -> None:
    rows = {1: [1], 2: [1, 1], 3: [1, 2, 1], 4: [1, 3, 3, 1], 5: [1, 4, 6, 4, 1],
            6: [1, 5, 10, 10, 5, 1], 7: [1, 6, 15, 20, 15, 6, 1]}
    for k, row in rows.items():
        a = torch.tensor(row, dtype=torch.float64)
        expected = torch.outer(a, a) / torch.outer(a, a).sum()
        torch.testing.assert_close(binomial_filter(k, dtype=torch.float64), expected, rtol=0, atol=0)
        assert binomial_filter(k).sum().item() == pytest.approx(1.0, abs=1e-7)
        ref = antialiased_cnns.BlurPool(3, filt_size=k).filt[0, 0]
        assert torch.equal(binomial_filter(k), ref)


# --- parity with kornia ---------------------------------------------------------------------------

@pytest.mark.parametrize("k", SIZES)
def test_matches_kornia_blur_pool_with_zero_padding(k: int) -> None:
    # kornia >= 0.8 pads with zeros, (k-1)//2 before and k//2 after, with the normalised Pascal
    # kernel: our pad_type="zero" is the same operator for every size, even ones included.
    for stride, (h, w) in itertools.product(STRIDES, SHAPES):
        x = torch.randn(2, 3, h, w)
        ref = kornia.filters.BlurPool2D(k, stride=stride)(x)
        ours = blur_pool2d(x, k, stride=stride, pad_type="zero")
        assert ours.shape == ref.shape
        assert (ours - ref).abs().max().item() < 1e-6


def test_max_blur_pool_matches_kornia_and_the_sequential_definition() -> None:
    x = torch.randn(2, 4, 15, 12)
    for k in (3, 4, 5):
        ours = MaxBlurPool(4, k, stride=2, kernel_size=2, pad_type="zero")(x)
        ref = kornia.filters.MaxBlurPool2D(k, stride=2, max_pool_size=2)(x)
        assert (ours - ref).abs().max().item() < 1e-6
        seq = nn.Sequential(nn.MaxPool2d(2, stride=1), antialiased_cnns.BlurPool(4, filt_size=k))(x)
        assert (MaxBlurPool(4, k)(x) - seq).abs().max().item() < 1e-6
        assert torch.equal(max_blur_pool2d(x, k), MaxBlurPool(4, k)(x))


# --- invariants ------------------------------------------------------------------------------------

@pytest.mark.parametrize("pad_type", ["reflect", "replicate", "circular"])
def test_constant_image_stays_constant(pad_type: str) -> None:
    for k, stride, (h, w) in itertools.product(SIZES, STRIDES, SHAPES):
        x = torch.full((1, 2, h, w), 0.7)
        y = BlurPool(2, k, stride=stride, pad_type=pad_type)(x)
        assert (y - 0.7).abs().max().item() < 1e-6, (k, stride, h, w)


def test_zero_padding_darkens_the_border_only() -> None:
    y = BlurPool(1, 5, stride=1, pad_type="zero")(torch.ones(1, 1, 9, 9))
    assert y[0, 0, 4, 4].item() == pytest.approx(1.0)
    assert y[0, 0, 0, 0].item() < 0.6  # documented: zero padding is not constant-preserving


@pytest.mark.parametrize("pad_type", ["reflect", "replicate", "circular"])
def test_gradcheck_float64(pad_type: str) -> None:
    for k, stride, (h, w) in ((2, 2, (7, 8)), (3, 1, (6, 7)), (4, 2, (7, 8)), (5, 3, (8, 7)), (7, 2, (9, 9))):
        x = torch.randn(1, 1, h, w, dtype=torch.float64, requires_grad=True)
        layer = BlurPool(1, k, stride=stride, pad_type=pad_type)
        assert torch.autograd.gradcheck(layer, (x,)), (k, stride, h, w)
    # twice differentiable (WGAN-GP / R1 penalties take gradients of gradients)
    x = torch.randn(1, 1, 6, 7, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(BlurPool(1, 4, pad_type=pad_type), (x,))


def test_blur_equals_explicit_padding_everywhere() -> None:
    """Every size from 1x1 up, including the tiny maps where reflect falls back to replicate and
    circular padding wraps more than once, forward and backward, against pad-then-conv."""
    for k, mode, stride, h, w in itertools.product((2, 3, 4, 5, 7), ("reflect", "replicate", "circular"),
                                                   STRIDES, (1, 2, 5, 8, 11), (2, 7, 12)):
        if mode == "reflect" and max(k // 2, (k - 1) // 2) >= min(h, w):
            mode = "replicate"  # the documented fallback
        x = torch.randn(1, 2, h, w, dtype=torch.float64, requires_grad=True)
        y = BlurPool(2, k, stride=stride, pad_type=mode)(x)
        ref = _padded_reference(x, k, stride, mode)
        g = torch.randn_like(ref)
        (gx,) = torch.autograd.grad(y, x, g)
        (gr,) = torch.autograd.grad(ref, x, g)
        assert (y - ref).abs().max().item() < 1e-12, (k, mode, stride, h, w)
        assert (gx - gr).abs().max().item() < 1e-12, (k, mode, stride, h, w)


@pytest.mark.parametrize("pad_type", ["reflect", "zero", "circular"])
def test_an_image_blurs_alike_whatever_else_is_in_its_batch(pad_type: str) -> None:
    # One route for every input size: batching shifted copies (evaluation) or not gives the same bits.
    x = torch.randn(6, 64, 64, 64)
    layer = BlurPool(64, 5, pad_type=pad_type)
    whole = layer(x)
    assert all(torch.equal(layer(x[i:i + 1]), whole[i:i + 1]) for i in range(6))


def test_filters_are_non_persistent_buffers() -> None:
    layer = BlurPool(8, 5)
    assert dict(layer.state_dict()) == {}
    assert list(layer.parameters()) == []
    assert [name for name, _ in layer.named_buffers()] == ["filt"]
    block = ConvBlurPool(3, 8, norm=nn.BatchNorm2d(8), activation=nn.ReLU())
    assert set(block.state_dict()) == {"conv.weight", "conv.bias", "norm.weight", "norm.bias",
                                       "norm.running_mean", "norm.running_var", "norm.num_batches_tracked"}


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_any_dtype(dtype: torch.dtype) -> None:
    x = torch.randn(1, 3, 10, 10)
    ref = BlurPool(3, 4)(x)
    y = BlurPool(3, 4).to(dtype)(x.to(dtype))
    assert y.dtype == dtype
    assert (y.float() - ref).abs().max().item() < (1e-2 if dtype != torch.float64 else 1e-6)


def test_autocast_cpu_bfloat16_forward_and_backward() -> None:
    layer = BlurPool(4, 4)
    x = torch.randn(2, 4, 12, 12, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = layer(x)
        z = F.conv2d(y, torch.randn(4, 4, 1, 1))  # a downstream autocast op
    assert y.dtype == torch.bfloat16
    z.float().sum().backward()
    assert x.grad is not None and x.grad.dtype == torch.float32
    assert (y.float() - layer(x.detach())).abs().max().item() < 5e-2


def test_channels_last_input() -> None:
    x = torch.randn(2, 6, 14, 14)
    ref = BlurPool(6, 5)(x)
    y = BlurPool(6, 5)(x.contiguous(memory_format=torch.channels_last))
    assert (y - ref).abs().max().item() < 1e-6


# --- shift behaviour -------------------------------------------------------------------------------

@pytest.mark.parametrize("stride", [2, 3])
@pytest.mark.parametrize("k", [2, 3, 4, 5, 7])
def test_circular_shift_by_stride_shifts_output_by_one(k: int, stride: int) -> None:
    x = torch.randn(2, 3, 6 * stride, 4 * stride)
    layer = BlurPool(3, k, stride=stride, pad_type="circular")
    for dims in ((2,), (3,), (2, 3)):
        shifted = layer(torch.roll(x, [stride] * len(dims), dims))
        assert (shifted - torch.roll(layer(x), [1] * len(dims), dims)).abs().max().item() < 1e-6


def test_blurred_subsampling_changes_far_less_under_one_pixel_shift() -> None:
    """Low-frequency content plus a component between the output and the input Nyquist rate
    (0.25 < f = 0.4 < 0.5 cycles/px: band-limited for the input grid, but it aliases when
    subsampled by 2). Under a 1-pixel input shift plain striding flips the aliased component,
    the binomial blur removes it first: the output changes ~15x less (measured 0.066 for
    bin5). The low-frequency part is kept (correlation with the plain output's low band)."""
    n = torch.arange(68, dtype=torch.float64)
    low = torch.cos(2 * math.pi * 0.03 * n)
    high = torch.cos(2 * math.pi * 0.4 * n + 0.3)
    sig = low + high
    img = (sig[:, None] + sig[None, :])[None, None]  # (1, 1, 68, 68)
    x0, x1 = img[..., 2:66, 2:66], img[..., 3:67, 3:67]  # 1-pixel diagonal shift
    plain = lambda t: t[..., ::2, ::2]  # noqa: E731
    aa = BlurPool(1, 5, pad_type="reflect").double()
    crop = (slice(None), slice(None), slice(3, -3), slice(3, -3))  # away from the padding
    change_plain = (plain(x1) - plain(x0))[crop].norm().item()
    change_aa = (aa(x1) - aa(x0))[crop].norm().item()
    ratio = change_aa / change_plain
    assert ratio < 0.2, f"anti-aliased/plain change ratio {ratio:.3f}"
    low_img = (low[:, None] + low[None, :])[None, None][..., 2:66, 2:66]
    kept = F.cosine_similarity(aa(x0)[crop].flatten(), plain(low_img)[crop].flatten(), dim=0)
    assert kept.item() > 0.99


# --- small maps, errors, names -----------------------------------------------------------------------

@pytest.mark.parametrize("hw", [(1, 1), (2, 2), (2, 3), (3, 2)])
def test_reflect_on_tiny_maps_falls_back_to_replicate(hw: tuple[int, int]) -> None:
    x = torch.randn(1, 4, *hw)
    for k in (4, 5, 7):
        y = BlurPool(4, k, stride=2, pad_type="reflect")(x)
        assert torch.equal(y, BlurPool(4, k, stride=2, pad_type="replicate")(x))
        assert y.shape[-2:] == (math.ceil(hw[0] / 2), math.ceil(hw[1] / 2))
    with pytest.raises(RuntimeError):  # the reference crashes here; we must not
        antialiased_cnns.BlurPool(4, filt_size=5)(x)


def test_circular_padding_wider_than_the_map_wraps() -> None:
    x = torch.randn(1, 2, 2, 2)
    y = BlurPool(2, 7, stride=1, pad_type="circular")(x)
    # every output is a weighted mean over whole periods: all four pixels weighted by 1D sums
    assert y.shape == x.shape
    torch.testing.assert_close(y.mean(), x.mean(), rtol=0, atol=1e-6)


def test_named_filters() -> None:
    assert {name: filter_size(name) for name in ("rect2", "tri3", "bin4", "bin5")} == \
        {"rect2": 2, "tri3": 3, "bin4": 4, "bin5": 5}
    assert filter_size("none") == 0 and filter_size(None) == 0 and filter_size("BIN5") == 5
    assert set(FILTER_SIZES) >= {"none", "rect2", "tri3", "bin4", "bin5", "bin6", "bin7"}
    assert isinstance(create_blur_pool("none", 8), nn.Identity)
    assert create_blur_pool("bin5", 8).filt_size == 5


@pytest.mark.parametrize("bad", ["bin9", "gauss", 8, -1, True, "box2", "kaiser7_c0.2.5"])  # the last: float()'s error
def test_unknown_filter_raises_listing_valid_ones(bad: object) -> None:
    with pytest.raises(ValueError) as err:
        BlurPool(3, bad)  # type: ignore[arg-type]
    msg = str(err.value)
    assert repr(bad) in msg or str(bad) in msg
    if isinstance(bad, str):
        assert "'bin5'" in msg and "'rect2'" in msg


def test_other_bad_input_raises_clear_errors() -> None:
    with pytest.raises(ValueError, match="valid: circular, reflect, replicate, zero"):
        BlurPool(3, 4, pad_type="mirror")
    for stride in (0, 2.5, (2, 1)):  # 2.5 and (2, 1) were TypeErrors from deep inside torch
        with pytest.raises(ValueError, match=r"stride must be an int >= 1 \(the same along both axes\), got"):
            BlurPool(3, 4, stride=stride)
    with pytest.raises(ValueError, match=r"built for 3 channels got input of shape \(1, 4, 8, 8\)"):
        BlurPool(3, 4)(torch.zeros(1, 4, 8, 8))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        blur_pool2d(torch.zeros(4, 8, 8))
    with pytest.raises(ValueError, match="'none' has no blur"):
        blur_pool2d(torch.zeros(1, 1, 4, 4), "none")
    assert BlurPool(None, 3)(torch.zeros(1, 7, 4, 4)).shape == (1, 7, 2, 2)  # any channel count
    # The filter cast to uint8 was all zeros: a black image of the right shape, without a word.
    with pytest.raises(ValueError, match=r"blur expects a floating-point tensor, got torch.uint8"):
        BlurPool(None, 4)(torch.full((1, 3, 8, 8), 200, dtype=torch.uint8))


# --- the other layer families -------------------------------------------------------------------------

def test_blur_keeps_shape_and_is_stride_one_blur_pool() -> None:
    x = torch.randn(1, 3, 9, 10)
    for k in (2, 3, 4, 5):
        y = Blur(3, k)(x)
        assert y.shape == x.shape
        assert torch.equal(y, blur2d(x, k))
        ref = antialiased_cnns.BlurPool(3, filt_size=k, stride=1)(x)
        assert (y - ref).abs().max().item() < 1e-6


def test_conv_blur_pool_is_conv_act_blur_in_that_order() -> None:
    torch.manual_seed(0)
    block = ConvBlurPool(3, 6, kernel_size=3, stride=2, padding=1, norm=nn.BatchNorm2d(6),
                         activation=nn.ReLU(), filt_size=4).eval()
    x = torch.randn(2, 3, 16, 16)
    expected = BlurPool(6, 4)(F.relu(block.norm(F.conv2d(x, block.conv.weight, block.conv.bias, padding=1))))
    assert torch.equal(block(x), expected)
    assert block(x).shape == (2, 6, 8, 8)
    strided = nn.Conv2d(3, 6, 3, stride=2, padding=1)
    assert sum(p.numel() for p in block.conv.parameters()) == sum(p.numel() for p in strided.parameters())
    functional = conv_blur_pool2d(x, block.conv.weight, block.conv.bias, stride=2, padding=1, filt_size=4)
    assert torch.equal(functional, BlurPool(6, 4)(F.relu(block.conv(x))))


def test_blur_conv_shares_parameters_and_blurs_first() -> None:
    conv = nn.Conv2d(4, 8, 1, stride=2, bias=False)
    blur_conv = BlurConv2d.from_conv(conv, filt_size=3)
    assert blur_conv.weight is conv.weight and blur_conv.stride == (1, 1)
    assert set(blur_conv.state_dict()) == {"weight"}
    x = torch.randn(2, 4, 10, 10)
    assert torch.equal(blur_conv(x), F.conv2d(BlurPool(4, 3)(x), conv.weight))
    with pytest.raises(ValueError, match="blur_stride"):
        BlurConv2d(4, 8, 3, stride=2)


def test_pool_replacements() -> None:
    maxp = max_blur_pool_from_max_pool(nn.MaxPool2d(3, 2, 1), channels=5, filt_size=4)
    assert isinstance(maxp, MaxBlurPool) and (maxp.kernel_size, maxp.padding, maxp.blur.stride) == (3, 1, 2)
    x = torch.randn(1, 5, 16, 16)
    assert maxp(x).shape == nn.MaxPool2d(3, 2, 1)(x).shape
    avg = blur_pool_from_avg_pool(nn.AvgPool2d(2), channels=5, filt_size=2, pad_type="zero")
    assert isinstance(avg, BlurPool) and avg(x).shape == (1, 5, 8, 8)
    # Rect-2 BlurPool with stride 2 on an even map is exactly 2x2 average pooling
    assert (avg(x) - F.avg_pool2d(x, 2)).abs().max().item() < 1e-6
    stride_one = nn.MaxPool2d(3, 1, 1)
    assert max_blur_pool_from_max_pool(stride_one, 5) is stride_one
