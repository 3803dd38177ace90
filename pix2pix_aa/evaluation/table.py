"""The results table of an evaluation, one row per checkpoint: its columns, the text of its
cells and the order of its rows, shared by the Markdown report (:mod:`~pix2pix_aa.evaluation.report`)
and the HTML page (:mod:`~pix2pix_aa.evaluation.page`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from pix2pix_aa.evaluation.runner import ModelResult

__all__ = ["TABLE_COLUMNS", "format_cell", "markdown_table", "ratio_text", "slug", "table_cells", "table_order"]

#: (row key, header) of the Markdown table, one row per checkpoint. Stability headline: pooled.
TABLE_COLUMNS = [
    ("model", "model"),
    ("filter", "filter"),
    ("epoch", "epoch"),
    ("step", "step"),
    ("stability_crop_pooled_db", "crop pooled (dB)"),
    ("stability_crop_eb_pooled_db", "crop pooled, equal bandwidth (dB)"),
    ("stability_crop_mean_db", "crop mean (dB)"),
    ("stability_circular_pooled_db", "circular pooled (dB)"),
    ("stability_circular_eb_pooled_db", "circular pooled, equal bandwidth (dB)"),
    ("flicker_pooled_db", "panning flicker (dB)"),
    ("quality_psnr", "PSNR to target (dB)"),
    ("quality_ssim", "SSIM"),
    ("quality_l1", "L1"),
    ("tv_ratio", "TV ratio"),
    ("hf_ratio", "HF ratio"),
    ("fid", "FID"),
    ("kid_mean", "KID (mean ± std)"),
    ("quality_lpips", "LPIPS"),
    ("seconds", "seconds"),
]

def ratio_text(value: float, decimals: int = 4) -> str:
    """A ratio to ``decimals`` decimals, or to 3 significant digits below 0.001 (a detail-less
    model's 1.75e-5 read 0.0000, as if it had none at all)."""
    return f"{value:.3g}" if 0 < abs(value) < 1e-3 else f"{value:.{decimals}f}"


def format_cell(value: object, key: str, row: dict) -> str:
    """The text of one table cell: dB, FID and seconds to 2 decimals, KID as mean ± std, other floats to 4 (a
    ratio under 0.001 to 3 significant digits), ``-`` for a
    missing value; a collapsed model's stability figures and name are marked ``(collapsed)``."""
    if value is None:
        return "-"
    if key == "kid_mean" and isinstance(value, float):
        std = row.get("kid_std")
        return f"{value:.4f}" + ("" if std is None else f" ± {std:.4f}")
    if key == "fid" and isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, float):
        text = (f"{value:.2f}" if key.endswith("_db") or key in ("quality_psnr", "seconds")
                else ratio_text(value) if key.endswith("_ratio") else f"{value:.4f}")
        if row.get("collapsed") and (key.startswith("stability_") or key.startswith("flicker_")):
            text += " (collapsed)"
        return text
    if key == "model" and row.get("collapsed"):
        return f"{value} (collapsed)"
    return str(value)


def table_order(results: Sequence[ModelResult]) -> list[ModelResult]:
    """The given order, with collapsed models last: a near-constant output must not top a table."""
    return [r for r in results if not r.collapsed] + [r for r in results if r.collapsed]


def table_cells(results: Sequence[ModelResult]) -> list[list[str]]:
    """The cells of every row, one per :data:`TABLE_COLUMNS` entry; collapsed models last."""
    rows = [r.row() for r in table_order(results)]
    return [[format_cell(row.get(k), k, row) for k, _ in TABLE_COLUMNS] for row in rows]


def markdown_table(results: Sequence[ModelResult]) -> str:
    """One row per checkpoint (:data:`TABLE_COLUMNS`); collapsed models last and marked."""
    head = "| " + " | ".join(h for _, h in TABLE_COLUMNS) + " |"
    rule = "|" + "|".join("---" for _ in TABLE_COLUMNS) + "|"
    body = ["| " + " | ".join(cells) + " |" for cells in table_cells(results)]
    return "\n".join([head, rule, *body])


def slug(label: str) -> str:
    """``label`` as a file-name and HTML-id part: letters and digits of any script kept (a run
    named in Chinese keeps its name), every other run of characters (``/``, spaces, ...) one ``_``."""
    return re.sub(r"[^\w.-]+", "_", label).strip("_") or "model"


def file_stems(labels: Sequence[str]) -> dict[str, str]:
    """{label: file-name part} for the models of one report, distinct for distinct labels.

    :func:`slug` of each label; labels whose slugs coincide (``a/b`` and ``a_b``) each get the
    first 8 hex digits of their label's SHA-1 appended, so no model's files overwrite another's.
    """
    slugs = {label: slug(label) for label in dict.fromkeys(labels)}
    counts: dict[str, int] = {}
    for s in slugs.values():
        counts[s] = counts.get(s, 0) + 1
    return {label: s if counts[s] == 1 else f"{s}-{hashlib.sha1(label.encode()).hexdigest()[:8]}"
            for label, s in slugs.items()}
