"""Checkpoint compatibility of the networks: for a set of configurations (the shipped configs'
generator options included, per-level lists and all), the state_dict keys and shapes, and the
output for fixed weights and a fixed input, equal a record taken from the implementation
before the anti-aliasing options were resolved into one spec (tests/data/network_layouts.json).

A checkpoint saved by any earlier version loads only while the keys and shapes stay the same,
and it computes the same function only while the outputs do: the record is the known answer.
Regenerate it (``python tests/test_network_layout.py``) only for a deliberate change of
architecture, and say so in the commit.

The outputs are computed in float64: float32 convolution kernels differ between CPUs (AVX2 and
AVX-512 builds of oneDNN sum in other orders), by 1e-6 relative, and an adaptive polyphase
sampling layer (``aps_*``) whose two best polyphase components are that close picks another one
on another CPU (``unet_aps_l1_noup``: output sums 278.954 on an AVX-512 CPU, 278.891 on an AVX2
one, 278.921 in float64). The float64 record agrees with the earlier float32 one to 2e-6 relative
in every other case.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pix2pix_aa.networks import PatchGANDiscriminator, ResNetGenerator, UNetGenerator

ROOT = Path(__file__).resolve().parents[1]
RECORD = Path(__file__).with_name("data") / "network_layouts.json"


def _config_generator(name: str, **small: object) -> dict:
    """The generator options of ``configs/<name>.yaml`` with the widths made small."""
    args = yaml.safe_load((ROOT / "configs" / f"{name}.yaml").read_text())["model"]["generator"]["init_args"]
    return {**args, **small}


#: name -> (class, options, input size). Widths are small so the test runs in seconds.
CASES = {
    "unet_none": (UNetGenerator, dict(num_downs=5, ngf=4), 32),
    "unet_facades_bin5": (UNetGenerator, _config_generator("facades_bin5", ngf=4), 256),
    "unet_cpu_quick_aa": (UNetGenerator, _config_generator("cpu_quick_aa", ngf=4, fullres_channels=4), 128),
    "unet_per_level": (UNetGenerator, dict(
        num_downs=4, ngf=4, antialias=["none", "bin5", "kaiser7", "tri3"],
        antialias_mode=["conv_blur", "blur_conv", "conv_blur", "blur_conv"],
        upsample=["transpose", "nearest", "bilinear", "transpose"],
        upsample_antialias=[False, True, "bin4", None], pad_type="reflect", blur_pad_type="replicate"), 32),
    "unet_head": (UNetGenerator, dict(num_downs=4, ngf=4, antialias="bin4", fullres_channels=4, head_layers=3,
                                      norm="instance", pad_type="replicate"), 32),
    "unet_aps_bin5": (UNetGenerator, dict(num_downs=4, ngf=4, antialias="aps_bin5"), 32),
    "unet_aps_l1_noup": (UNetGenerator, dict(num_downs=4, ngf=4, antialias="aps_tri3", aps_norm="l1",
                                             upsample_antialias=False, norm="none"), 32),
    "unet_aps_plain": (UNetGenerator, dict(num_downs=3, ngf=4, antialias="aps"), 16),
    "resnet_none": (ResNetGenerator, dict(n_blocks=2, ngf=4), 16),
    "resnet_bin5": (ResNetGenerator, dict(n_blocks=2, ngf=4, antialias="bin5", norm="instance"), 16),
    "resnet_per_level": (ResNetGenerator, dict(
        n_blocks=1, ngf=4, antialias=["none", "kaiser7"], antialias_mode=["conv_blur", "blur_conv"],
        upsample=["bilinear", "transpose"], upsample_antialias=["tri3", True]), 16),
    "resnet_reflect_nearest": (ResNetGenerator, dict(n_blocks=1, ngf=4, antialias="bin4", pad_type="reflect",
                                                     upsample="nearest", dropout=0.0), 16),
    "resnet_aps": (ResNetGenerator, dict(n_blocks=1, ngf=4, antialias="aps_bin5"), 16),
    "resnet_aps_noup": (ResNetGenerator, dict(n_blocks=1, ngf=4, antialias="aps", upsample_antialias=False), 16),
    "patchgan_bin5": (PatchGANDiscriminator, dict(ndf=4, antialias="bin5"), 64),
    "patchgan_blur_conv": (PatchGANDiscriminator, dict(ndf=4, n_layers=2, antialias="kaiser7",
                                                       antialias_mode="blur_conv", pad_type="reflect"), 32),
}


def fingerprint(cls: type, options: dict, size: int) -> dict:
    """State_dict keys and shapes, and the eval-mode output in float64 for weights and an input
    drawn from fixed seeds (in state_dict order, so the record does not depend on construction
    order; drawn in float32, as before, then converted)."""
    net = cls(**options)
    state = net.state_dict()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for key, value in state.items():
            if not value.is_floating_point():
                continue
            if value.dim() == 1 and key.endswith(("weight", "running_var")):  # norm scales near 1
                value.copy_(torch.rand(value.shape, generator=gen) * 0.2 + 0.9)
            else:
                value.copy_(torch.randn(value.shape, generator=gen) * 0.1)
        net.load_state_dict(state)
        x = torch.randn(2, getattr(net, "in_channels", 6), size, size, generator=gen)
        out = net.double().eval()(x.double())
    return {"keys": [[k, list(v.shape)] for k, v in state.items()],
            "out_shape": list(out.shape), "out_sum": out.sum().item(), "out_sq": (out ** 2).sum().item(),
            "out_samples": out[:, :, ::7, ::5].flatten()[:64].tolist()}


@pytest.mark.parametrize("name", sorted(CASES))
def test_layout_and_outputs_match_the_record(name: str) -> None:
    record = json.loads(RECORD.read_text())[name]
    got = fingerprint(*CASES[name])
    assert got["keys"] == record["keys"]
    assert got["out_shape"] == record["out_shape"]
    for key in ("out_sum", "out_sq"):  # float64: CPUs differ by ~1e-15
        assert got[key] == pytest.approx(record[key], rel=1e-9, abs=1e-12), key
    assert got["out_samples"] == pytest.approx(record["out_samples"], rel=1e-9, abs=1e-12)


if __name__ == "__main__":
    torch.set_num_threads(1)
    RECORD.parent.mkdir(exist_ok=True)
    record = {n: fingerprint(*c) for n, c in sorted(CASES.items())}
    RECORD.write_text("{\n" + ",\n".join(f"{json.dumps(n)}: {json.dumps(v)}" for n, v in record.items()) + "\n}\n")
    print(f"wrote {RECORD}", file=sys.stderr)
