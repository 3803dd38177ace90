"""Where a generator's total variation lives: the TV ratio to the targets with both outputs and
targets first passed through one common low-pass, for several filters.

    python -m studies.tv_bands runs/cpu_quick_design_<a>_s0/main runs/cpu_quick_design_<b>_s0/main
    python -m studies.tv_bands RUN ... --data-dir data/facades_seed1 --dataset aligned

The design study's goal judges sharpness by the TV ratio (TV of the outputs / TV of the targets,
docs/DESIGN.md section 5b). A transposed conv's checkerboard images sit next to 0.5 cycles/px,
where the facades' own detail is weak, and an alternating pattern carries much TV for little
energy, so a design can gain TV ratio from that artefact. Filtering outputs and targets alike
with a filter that stops only the band next to 0.5 (``kaiser13_c0.45_w0.08``: flat to 0.4,
0.18 at 0.47, 0 from 0.49) removes the artefact's share and keeps the detail's: two designs whose
unfiltered TV ratios differ but whose filtered ones agree differ only in that band.

What sits next to 0.5 is then described by an exact spectral band, the bins with
max(|fy|, |fx|) > ``--band`` cycles/px (default 0.45: the cross-shaped region a separable filter's
stopband covers, holding the checkerboard at (0.5, 0.5) and the stripes at fy or fx = 0.5): its
energy in the outputs over that in the targets, and the correlation of the two (Re sum O T* /
(|O| |T|) over the band's bins, the band-passed images' correlation by Parseval; Hann-windowed,
so the border's discontinuity does not leak into the band). A checkerboard adds energy there
without correlation; detail at the targets' pixels adds both. The top band is sensitive to
sub-pixel misplacement, so a low correlation says "not at the targets' pixels", not "no detail".

The filters are the project's anti-aliasing filters (:mod:`pix2pix_aa.layers.filters`), applied
at full resolution with reflect borders (kornia ``filter2d``); TV is
:func:`pix2pix_aa.metrics.total_variation`; ratios are of the means over images. Each
checkpoint is run on its own recorded data settings (as evaluate.py), first ``--max-images``
images of the split, in float32 on the CPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import kornia
import torch

from pix2pix_aa.evaluation.checkpoints import find_checkpoints, load_generator
from pix2pix_aa.evaluation.data import data_settings, load_data
from pix2pix_aa.layers.filters import lowpass_filter
from pix2pix_aa.metrics import (
    COLLAPSE_IMAGE_FRACTION,
    COLLAPSE_TV_RATIO,
    content_lost,
    total_variation,
)
from pix2pix_aa.metrics.bandwidth import hann_window2d

ROOT = Path(__file__).resolve().parent.parent


#: none, the filter stopping only the band next to 0.5, a steeper one from 0.43, Bin-5.
DEFAULT_FILTERS = ["none", "kaiser13_c0.45_w0.08", "kaiser13_c0.38_w0.1", "bin5"]


def filtered(x: torch.Tensor, name: str) -> torch.Tensor:
    """``x`` (N, C, H, W) through the full-resolution low-pass ``name`` (reflect borders);
    ``none``: unchanged."""
    if name == "none":
        return x
    return kornia.filters.filter2d(x, lowpass_filter(name, x.dtype, x.device)[None], border_type="reflect")


def tv_ratios(outputs: torch.Tensor, targets: torch.Tensor, filters: Sequence[str]) -> dict[str, float]:
    """filter -> mean TV(filter(outputs)) / mean TV(filter(targets)).

    Shape: outputs, targets (N, C, H, W), same shape.
    """
    return {f: float(total_variation(filtered(outputs, f)).mean() / total_variation(filtered(targets, f)).mean())
            for f in filters}


def check_band(lo: float) -> None:
    """Raises ValueError unless ``lo`` (cycles/px) can be the top band's lower edge, in [0, 0.5)."""
    if not 0 <= lo < 0.5:
        raise ValueError(f"the band's lower edge must be in [0, 0.5) cycles/px, got {lo:g}")


def top_band(outputs: torch.Tensor, targets: torch.Tensor, lo: float = 0.45) -> tuple[float, float]:
    """(energy ratio, correlation) of outputs and targets in the spectral band
    max(|fy|, |fx|) > ``lo`` cycles/px (module docstring), Hann-windowed, float64.

    Shape: outputs, targets (N, C, H, W), same shape.
    Raises: ValueError if ``lo`` is not in [0, 0.5).
    """
    check_band(lo)
    h, w = outputs.shape[-2:]
    window = hann_window2d(h, w)
    fy, fx = torch.fft.fftfreq(h, dtype=torch.float64).abs(), torch.fft.fftfreq(w, dtype=torch.float64).abs()
    band = torch.maximum(fy[:, None], fx[None, :]) > lo
    o, t = (torch.fft.fft2(x.detach().to(torch.float64) * window)[..., band] for x in (outputs, targets))
    return float(o.abs().square().sum() / t.abs().square().sum()), \
        float((o * t.conj()).real.sum() / (o.abs().square().sum() * t.abs().square().sum()).sqrt())


def marked(label: str, tv_ratio: float, lost: float = float("nan")) -> str:
    """``label``, marked when the generator collapsed as evaluate.py decides it: the unfiltered TV
    ratio below ``COLLAPSE_TV_RATIO``, or the outputs' content lost on at least
    ``COLLAPSE_IMAGE_FRACTION`` of the images (``lost``, :func:`pix2pix_aa.metrics.content_lost`'s
    mean). Its band figures then describe collapsed outputs, not a design."""
    if tv_ratio < COLLAPSE_TV_RATIO:
        return f"{label} (collapsed: TV ratio {tv_ratio:.3f} < {COLLAPSE_TV_RATIO:g})"
    if lost >= COLLAPSE_IMAGE_FRACTION:
        return f"{label} (collapsed: content lost on {lost:.0%} of the images)"
    return label


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoints", nargs="+", help="checkpoints or run folders (their last.ckpt)")
    p.add_argument("--filters", nargs="+", default=DEFAULT_FILTERS)
    p.add_argument("--max-images", type=int, default=20)
    p.add_argument("--split", default="test")
    p.add_argument("--data-dir")
    p.add_argument("--dataset")
    p.add_argument("--band", type=float, default=0.45, help="lower edge of the top band, cycles/px (default 0.45)")
    args = p.parse_args(argv)
    # Options are checked before any model runs: a typo fails in a second, with one line.
    for name in args.filters:
        if name != "none":
            try:
                lowpass_filter(name)
            except ValueError as e:
                p.error(f"--filters {name}: {e}")
    try:
        check_band(args.band)
    except ValueError as e:
        p.error(f"--band {args.band:g}: {e}")
    if args.max_images < 1:
        p.error(f"--max-images {args.max_images}: needs at least 1 image")
    rows = []
    try:
        paths = find_checkpoints(args.checkpoints)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    for path in paths:
        try:
            item = load_generator(path)
            settings = data_settings(item, split=args.split, data_dir=args.data_dir, dataset=args.dataset)
            inputs, targets = load_data(settings, args.max_images)
        except (FileNotFoundError, ValueError) as e:
            p.error(f"{path}: {e}")
        outputs = item.outputs(inputs)
        ratios = tv_ratios(outputs, targets, list(dict.fromkeys(["none", *args.filters])))  # none: collapse check
        lost = float(content_lost(outputs, targets).float().mean())
        rows.append((marked(item.label, ratios["none"], lost), settings.describe(), inputs.shape[0], ratios,
                     top_band(outputs, targets, args.band)))
    print("TV ratio (outputs / targets, means over images) after one common full-resolution low-pass "
          "(reflect borders):")
    print("| checkpoint | data | images | " + " | ".join(args.filters) + " |")
    print("|---|---|---|" + "---|" * len(args.filters))
    for label, data, n, ratios, _ in rows:
        print(f"| {label} | {data} | {n} | " + " | ".join(f"{ratios[f]:.3f}" for f in args.filters) + " |")
    print(f"\nThe band max(|fy|, |fx|) > {args.band:g} cycles/px (Hann window): energy of the outputs over "
          "the targets', and the correlation of the two (1 = the targets' band at the targets' pixels, "
          "0 = unrelated):")
    print("| checkpoint | data | energy ratio | correlation |")
    print("|---|---|---|---|")
    for label, data, _, _, (energy, corr) in rows:
        print(f"| {label} | {data} | {energy:.3f} | {corr:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
