"""Internal feature distance: pointwise layers ~0, aliasing layers high, BlurPool lower."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data
from torch import nn

from pix2pix_aa.layers import BlurPool
from pix2pix_aa.metrics import cosine_distance, feature_distance, shift_grid


def _images(size: int = 32) -> torch.Tensor:
    img = torch.from_numpy(data.chelsea()).permute(2, 0, 1).float() / 127.5 - 1
    x = F.interpolate(img[None], size=(size, size), mode="area")
    return torch.cat([x, x.flip(-2)])


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.pointwise = nn.Conv2d(3, 8, 1)
        self.conv = nn.Conv2d(8, 8, 3, padding=1, padding_mode="circular")
        self.blur = BlurPool(8, 5, stride=2, pad_type="circular")

    def features(self, x):
        p = torch.relu(self.pointwise(x))
        c = torch.relu(self.conv(p))
        return {"pointwise": (p, 1), "conv": (c, 1), "subsample": (c[..., ::2, ::2], 2),
                "blurpool": (self.blur(c), 2)}


def test_pointwise_and_circular_conv_layers_are_equivariant_and_aliasing_is_not():
    net = Net().eval()
    r = feature_distance(net.features, _images(), shift_grid(4), max_shift=4)
    assert r.layers == ["pointwise", "conv", "subsample", "blurpool"]
    assert r.strides == {"pointwise": 1, "conv": 1, "subsample": 2, "blurpool": 2}
    for name in ("pointwise", "conv"):
        assert np.nanmax(r.distance[name]) < 1e-10
    sub, blur = r.distance["subsample"], r.distance["blurpool"]
    # Even shifts are whole feature pixels (exact roll); odd ones need a half-pixel shift.
    assert sub[2, 2] < 1e-10 and sub[0, 2] < 1e-10
    # (ReLU maps share a large mean, which keeps every cosine distance small.)
    assert sub[1, 1] > 1e-3 and r.mean("subsample") > 1e-3
    assert r.mean("blurpool") < 0.1 * r.mean("subsample")
    assert np.all(blur[1::2, 1::2] < sub[1::2, 1::2])
    assert r.distance["conv"].shape == (4, 4) and r.distance["conv"][0, 0] == 0.0


def test_feature_distance_batch_size_independent_and_grid_nan_where_unsampled():
    net = Net().eval()
    shifts = [(0, 1), (1, 0), (3, 3)]
    a = feature_distance(net.features, _images(16), shifts, max_shift=8, batch_size=1)
    b = feature_distance(net.features, _images(16), shifts, max_shift=8, batch_size=50)
    for name in a.layers:
        assert np.allclose(a.distance[name], b.distance[name], equal_nan=True, atol=1e-9)
    grid = a.distance["subsample"]
    assert grid.shape == (8, 8) and np.isnan(grid[2, 2]) and np.isfinite(grid[3, 3])
    json.dumps(a.to_dict(), allow_nan=False)


def test_cosine_distance_definition():
    a = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0], [0.0, 0.0]])
    b = torch.tensor([[0.0, 1.0], [2.0, 2.0], [0.0, 0.0], [1.0, 0.0]])
    assert torch.allclose(cosine_distance(a, b), torch.tensor([1.0, 0.0, 0.0, 1.0], dtype=torch.float64))


@pytest.mark.parametrize("fn, match", [
    (lambda x: x, "dict"),
    (lambda x: {"a": x}, "pair"),
    (lambda x: {"a": (x, 0)}, "stride"),
    (lambda x: {"a": (x[0], 1)}, r"\(N=4"),  # batch = 2 images x (reference + 1 shift)
])
def test_bad_feature_fn_errors(fn, match):
    with pytest.raises(ValueError, match=match):
        feature_distance(fn, torch.zeros(2, 3, 8, 8), [(0, 1)])
