"""Heatmaps of the stability metrics (matplotlib, headless).

* :func:`plot_stability_heatmap`: per-shift PSNR over (dy, dx) for one StabilityResult.
* :func:`plot_stability_spectrum`: the stability spectrum (dB per radial octave band) of several
  models, one curve each, one panel per protocol.
* :func:`plot_feature_distance`: a grid of per-layer cosine-distance heatmaps, like the figure
  in Zhang (2019), on one shared colour scale so layers can be compared.

Both return the Figure and save a PNG when ``path`` is given. matplotlib is imported lazily
(with the Agg backend when none is set) so the metrics themselves do not need it.
"""

from __future__ import annotations

import math
import textwrap
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Optional, Union

import numpy as np

from pix2pix_aa.metrics.features import FeatureDistanceResult
from pix2pix_aa.metrics.stability import StabilityResult

__all__ = ["plot_stability_heatmap", "plot_feature_distance", "plot_stability_spectrum"]

PathLike = Union[str, Path]


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "pdf", "svg", "ps", "cairo"):
        try:
            matplotlib.use("Agg")
        except Exception:  # a backend is already in use interactively: keep it
            pass
    import matplotlib.pyplot as plt

    # A label in a script the font lacks (a run named in Chinese) draws boxes and warned once per
    # character and figure, with its source line; the full label is in index.html and the tables.
    warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font", category=UserWarning)
    return plt


def _wrap(text: str, width_in: float, fontsize: float) -> str:
    """``text`` broken into lines that fit ``width_in`` inches at ``fontsize`` points (about 0.55
    em per character), so a long model label (a design with many options) does not run past its
    figure; explicit line breaks are kept."""
    chars = max(20, int(width_in * 72 / (0.55 * fontsize)))
    return "\n".join(textwrap.fill(line, chars, break_long_words=True, break_on_hyphens=False) or line
                     for line in text.splitlines())


def _save(fig, path: Optional[PathLike]):
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    return fig


def _heatmap(ax, grid: np.ndarray, vmin: float, vmax: float, cmap: str, annotate: bool, fmt: str,
             xlabel: bool = True, ylabel: bool = True):
    masked = np.ma.masked_invalid(grid)
    im = ax.imshow(masked, cmap=cmap, vmin=vmin, vmax=vmax, origin="upper", interpolation="nearest")
    side = grid.shape[0]
    ticks = range(0, side, max(1, side // 8))
    ax.set_xticks(ticks)
    ax.set_yticks(ticks)
    if xlabel:
        ax.set_xlabel("dx")
    if ylabel:
        ax.set_ylabel("dy")
    if annotate and side <= 12:
        for (r, c), v in np.ndenumerate(grid):
            ax.text(c, r, "-" if not np.isfinite(v) else format(v, fmt), ha="center", va="center", fontsize=6)
    return im


def plot_stability_heatmap(result: StabilityResult, path: Optional[PathLike] = None, title: Optional[str] = None,
                           vmin: Optional[float] = None, vmax: Optional[float] = None, annotate: bool = True):
    """Per-shift PSNR (dB) over (dy, dx); brighter = more stable. (0, 0) and unsampled shifts are blank.

    Args:
        result: from ``stability_crop`` / ``stability_circular``.
        path: save a PNG there if given.
        vmin, vmax: colour range in dB (default: the finite data range), to put several
            models on one scale.
    """
    plt = _pyplot()
    grid = result.per_shift_psnr
    finite = grid[np.isfinite(grid)]
    lo = vmin if vmin is not None else (float(finite.min()) if finite.size else 0.0)
    hi = vmax if vmax is not None else (float(finite.max()) if finite.size else 1.0)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = _heatmap(ax, grid, lo, max(hi, lo + 1e-6), "viridis", annotate, ".1f")
    fig.colorbar(im, ax=ax, label="PSNR (dB)")
    ax.set_title(_wrap(title or f"{result.protocol} stability: mean {result.mean_psnr:.2f} dB, "
                                f"pooled {result.pooled_psnr:.2f} dB", 3.6, 9), fontsize=9)
    return _save(fig, path)


def plot_feature_distance(result: FeatureDistanceResult, path: Optional[PathLike] = None,
                          layers: Optional[Sequence[str]] = None, title: Optional[str] = None,
                          vmax: Optional[float] = None, ncols: int = 4, annotate: bool = False):
    """A grid of per-layer heatmaps of the cosine distance over (dy, dx) (darker = more equivariant).

    Args:
        result: from ``feature_distance``.
        layers: subset / order of layers (default: all).
        vmax: top of the shared colour scale (default: the largest distance).
    """
    plt = _pyplot()
    names = list(layers) if layers is not None else result.layers
    unknown = [n for n in names if n not in result.distance]
    if unknown or not names:
        raise ValueError(f"unknown layers {unknown}; available: {result.layers}")
    top = vmax if vmax is not None else max(float(np.nanmax(result.distance[n])) for n in names)
    top = max(top, 1e-6)
    ncols = max(1, min(ncols, len(names)))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.8 * ncols, 2.8 * nrows), squeeze=False)
    im = None
    for k, (ax, name) in enumerate(zip(axes.flat, names)):
        # Axis labels only on the outer panels, so they do not run into the neighbours.
        im = _heatmap(ax, result.distance[name], 0.0, top, "magma", annotate, ".2f",
                      xlabel=k + ncols >= len(names), ylabel=k % ncols == 0)
        ax.set_title(f"{name} (s={result.strides[name]})\nmean {result.mean(name):.3g}", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.colorbar(im, ax=axes.ravel().tolist(), label="cosine distance", shrink=0.8)
    if title:
        fig.suptitle(_wrap(title, 2.8 * ncols, 12))
    return _save(fig, path)


def plot_stability_spectrum(curves: Mapping[str, Mapping[str, StabilityResult]], path: Optional[PathLike] = None,
                            title: Optional[str] = None):
    """Stability spectrum of every model: dB of output / inconsistency energy per radial octave
    band (higher = more stable in that band), one curve per model, one panel per protocol.

    Args:
        curves: {protocol: {model label: StabilityResult with a spectrum}}; results without a
            spectrum are skipped.
        path: save a PNG there if given.

    Raises:
        ValueError: no result has a spectrum.
    """
    plt = _pyplot()
    panels = {p: {k: r for k, r in models.items() if r is not None and r.spectrum_db is not None}
              for p, models in curves.items()}
    panels = {p: m for p, m in panels.items() if m}
    if not panels:
        raise ValueError("no stability spectrum to plot (evaluate with the spectrum on)")
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.8), squeeze=False)
    for ax, (protocol, models) in zip(axes.flat, panels.items()):
        for label, res in models.items():
            edges = res.band_edges
            centres = np.arange(len(edges) - 1)
            ax.plot(centres, res.spectrum_db, marker="o", label=_wrap(label, 3.5, 7))
        ax.set_xticks(centres)
        ax.set_xticklabels([f"{lo:.3f}-{hi:.3f}" for lo, hi in zip(edges[:-1], edges[1:])], fontsize=7)
        ax.set_xlabel("radial frequency band (cycles/pixel; Nyquist 0.5)")
        ax.set_ylabel("output / inconsistency energy (dB)")
        ax.set_title(f"{protocol} protocol", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    if title:
        fig.suptitle(_wrap(title, 5.2 * len(panels), 10), fontsize=10)
    fig.tight_layout()
    return _save(fig, path)
