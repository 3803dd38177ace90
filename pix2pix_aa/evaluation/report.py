"""Writing evaluation results: JSON, CSV, a Markdown table, heatmaps, and TensorBoard."""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from pix2pix_aa.evaluation.runner import ModelResult
from pix2pix_aa.metrics.plots import plot_feature_distance, plot_stability_heatmap

__all__ = ["data_note", "markdown_table", "write_report", "log_to_tensorboard", "TABLE_COLUMNS"]

#: (row key, header) of the Markdown table, one row per checkpoint.
TABLE_COLUMNS = [
    ("model", "model"),
    ("filter", "filter"),
    ("stability_crop_db", "stability crop (dB)"),
    ("stability_crop_pooled_db", "crop pooled (dB)"),
    ("stability_circular_db", "stability circular (dB)"),
    ("quality_psnr", "PSNR to target (dB)"),
    ("quality_ssim", "SSIM"),
    ("quality_l1", "L1"),
    ("quality_tv", "TV (target TV)"),
    ("seconds", "seconds"),
]


def _fmt(value, key: str, row: dict) -> str:
    if value is None:
        return "-"
    if key == "quality_tv":
        return f"{value:.4f} ({row['quality_tv_target']:.4f})"
    if isinstance(value, float):
        return f"{value:.2f}" if key.endswith("_db") or key in ("quality_psnr", "seconds") else f"{value:.4f}"
    return str(value)


def markdown_table(results: Sequence[ModelResult]) -> str:
    rows = [r.row() for r in results]
    head = "| " + " | ".join(h for _, h in TABLE_COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"
    body = ["| " + " | ".join(_fmt(row.get(k), k, row) for k, _ in TABLE_COLUMNS) + " |" for row in rows]
    return "\n".join([head, rule, *body])


def markdown_report(results: Sequence[ModelResult], options: dict, errors: dict[str, str]) -> str:
    """results.md: the table, its footnotes (data, definitions) and the checkpoints that failed."""
    parts = ["# Stability evaluation", markdown_table(results)]
    note = data_note(results)
    if note:
        parts.append(note)
    parts.append(f"Shifts: {len(options['shifts'])} of the {options['max_shift']}x{options['max_shift']} grid; "
                 f"crop protocol margin {options['margin']}; PSNR data range 2 ([-1, 1] images).")
    if errors:
        parts.append("Failed:\n" + "\n".join(f"- {label}: {msg}" for label, msg in errors.items()))
    return "\n\n".join(parts) + "\n"


def data_note(results: Sequence[ModelResult]) -> str:
    """A footnote when the rows were measured on different data (empty when they share it)."""
    described = {r.label: _describe_data(r.data) for r in results}
    if len(set(described.values())) <= 1:
        return ""
    lines = [f"- {label}: {text}" for label, text in described.items()]
    return ("Note: the rows were measured on different data (each checkpoint on its own data settings), "
            "so their numbers are not directly comparable:\n" + "\n".join(lines))


def _describe_data(data: dict) -> str:
    if not data:
        return "data not recorded"
    size = data.get("image_size") or ["?", "?"]
    return (f"{data.get('data_dir')} ({data.get('dataset')}), split {data.get('split')}, {data.get('direction')}, "
            f"{size[0]}x{size[1]} px, {data.get('images')} images")


def slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("_") or "model"


def _shared_range(results: Sequence[ModelResult], attr: str) -> tuple[Optional[float], Optional[float]]:
    grids = [getattr(r, attr).per_shift_psnr for r in results if getattr(r, attr) is not None]
    finite = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    return (float(finite.min()), float(finite.max())) if finite.size else (None, None)


def write_report(results: Sequence[ModelResult], out_dir: Path, options: dict, errors: dict[str, str]) -> dict:
    """Write results.json / results.csv / results.md and PNG heatmaps into ``out_dir``.

    Heatmaps of all models share one colour scale per protocol, so they can be compared by eye.
    Returns ``{name: path}`` of the written files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    payload = {"options": options, "models": {r.label: r.to_dict() for r in results}, "errors": errors}
    files["json"] = out_dir / "results.json"
    files["json"].write_text(json.dumps(payload, indent=2, allow_nan=False, default=_json_default))
    rows = [r.row() for r in results]
    files["csv"] = out_dir / "results.csv"
    with files["csv"].open("w", newline="") as f:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    files["md"] = out_dir / "results.md"
    files["md"].write_text(markdown_report(results, options, errors))
    for attr in ("crop", "circular"):
        vmin, vmax = _shared_range(results, attr)
        for r in results:
            res = getattr(r, attr)
            if res is not None:
                path = out_dir / f"stability_{attr}_{slug(r.label)}.png"
                _close(plot_stability_heatmap(res, path, vmin=vmin, vmax=vmax,
                                              title=f"{r.label} [{r.antialias}]: {attr} {res.mean_psnr:.2f} dB"))
                files[f"stability_{attr}_{r.label}"] = path
    tops = [max(float(np.nanmax(g)) for g in r.features.distance.values()) for r in results if r.features]
    for r in results:
        if r.features is not None:
            path = out_dir / f"features_{slug(r.label)}.png"
            _close(plot_feature_distance(r.features, path, title=f"{r.label} [{r.antialias}]: feature distance",
                                         vmax=max(tops) if tops else None))
            files[f"features_{r.label}"] = path
    return files


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def log_to_tensorboard(result: ModelResult, log_dir: Path, table: str, step: int = 0) -> None:
    """Scalars, heatmap images and the comparison table under ``log_dir`` (a run's folder)."""
    from torch.utils.tensorboard import SummaryWriter

    with SummaryWriter(log_dir=str(log_dir)) as writer:
        for key, value in result.row().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("epoch", "images") \
                    and math.isfinite(value):
                writer.add_scalar(f"eval/{key}", value, step)
        for attr in ("crop", "circular"):
            res = getattr(result, attr)
            if res is not None:
                fig = plot_stability_heatmap(res)
                writer.add_figure(f"eval/stability_{attr}_heatmap", fig, step)  # closes the figure
        if result.features is not None:
            fig = plot_feature_distance(result.features)
            writer.add_figure("eval/feature_distance", fig, step)
        writer.add_text("eval/table", table, step)
