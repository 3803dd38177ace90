"""The evaluation's pictures and its offline results page: the panning animation (GIF, Pillow),
input | output | target samples (PNG) and ``index.html`` linking them with the table.

The page is self-contained: plain HTML with inline CSS, images referenced by relative file names
in the same folder, no scripts and nothing fetched from the network, so the output folder can be
copied anywhere and opened in any browser.
"""

from __future__ import annotations

import html
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from pix2pix_aa.evaluation.runner import ModelResult
from pix2pix_aa.evaluation.table import TABLE_COLUMNS, file_stems, table_cells, table_order

__all__ = ["write_index_html", "write_panning_gif", "write_samples"]

_GAP = 4  # white pixels between the columns / rows of a composite image


def _rgb(frames: np.ndarray) -> np.ndarray:
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def _data_key(r: ModelResult) -> tuple:
    d = r.data
    return (d.get("data_dir"), d.get("dataset"), d.get("split"), d.get("direction"), tuple(d.get("image_size") or ()))


def panning_columns(results: Sequence[ModelResult]) -> list[tuple[str, np.ndarray]]:
    """(caption, (F, H, W, 3) uint8 frames) of the animation's columns: for each data setting, its
    input, then the output of every model evaluated on it, in the order given."""
    columns: list[tuple[str, np.ndarray]] = []
    groups: dict[tuple, list[ModelResult]] = {}
    for r in results:
        if r.flicker is not None and r.flicker.output_frames is not None:
            groups.setdefault(_data_key(r), []).append(r)
    for key, members in groups.items():
        columns.append(("input" if len(groups) == 1 else f"input ({key[0]}, {key[3]})",
                        _rgb(members[0].flicker.input_frames)))
        columns += [(r.label, _rgb(r.flicker.output_frames)) for r in members]
    return columns


def write_panning_gif(results: Sequence[ModelResult], path: Path, frame_ms: int = 80) -> Optional[Path]:
    """An animated GIF of the panning path: input | each model side by side, looping.

    Args:
        results: models with flicker frames (the others are left out).
        path: where to write the GIF.
        frame_ms: display time of each frame (milliseconds).

    Returns:
        ``path``, or None when no model has frames (flicker off).
    """
    from PIL import Image

    columns = panning_columns(results)
    if not columns:
        return None
    num_frames = min(c.shape[0] for _, c in columns)
    height = max(c.shape[1] for _, c in columns)
    width = sum(c.shape[2] for _, c in columns) + _GAP * (len(columns) - 1)
    frames = []
    for f in range(num_frames):
        canvas = np.full((height, width, 3), 255, dtype=np.uint8)
        x = 0
        for _, c in columns:
            canvas[:c.shape[1], x:x + c.shape[2]] = c[f]
            x += c.shape[2] + _GAP
        frames.append(Image.fromarray(canvas))
    path.parent.mkdir(parents=True, exist_ok=True)
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=frame_ms, loop=0, optimize=False)
    return path


def write_samples(result: ModelResult, path: Path) -> Optional[Path]:
    """The model's kept samples as one PNG: one input | output | target strip per row."""
    from PIL import Image

    if result.samples is None or len(result.samples) == 0:
        return None
    strips = [_rgb(s) for s in result.samples]
    h, w = strips[0].shape[:2]
    canvas = np.full((len(strips) * h + _GAP * (len(strips) - 1), w, 3), 255, dtype=np.uint8)
    for k, s in enumerate(strips):
        canvas[k * (h + _GAP):k * (h + _GAP) + h] = s
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(canvas).save(path)
    return path


def _img(out_dir: Path, path: Optional[Path], alt: str) -> str:
    if path is None or not Path(path).is_file() or Path(path).parent.resolve() != out_dir.resolve():
        return ""  # link only what exists, in this folder
    return f'<img src="{html.escape(Path(path).name)}" alt="{html.escape(alt)}">'


def write_index_html(results: Sequence[ModelResult], out_dir: Path, files: dict, notes: str, code: dict,
                     errors: dict[str, str]) -> Path:
    """``out_dir/index.html``: the table, its notes, the stability spectrum, the panning animation,
    every model's heatmaps, feature distances and samples. Links only files that exist in
    ``out_dir`` (by relative name).

    Args:
        files: ``{key: path}`` as returned by ``write_report`` (spectrum, gif, heatmaps, ...).
        notes: the text under the table (paragraphs separated by blank lines).
        code: ``{"version", "git_commit"}`` of the code that computed the numbers.
    """
    head = "".join(f"<th>{html.escape(h)}</th>" for _, h in TABLE_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"
                   for cells in table_cells(results))
    parts = [
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Stability evaluation</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1400px}table{border-collapse:collapse;"
        "font-size:13px}td,th{border:1px solid #bbb;padding:3px 6px;text-align:right}th{background:#eee}"
        "td:first-child{text-align:left}img{max-width:100%;margin:4px}figure{display:inline-block;"
        "vertical-align:top;margin:6px}figcaption{font-size:12px}</style></head><body>",
        "<h1>Stability evaluation</h1>",
        f"<p>pix2pix-aa {html.escape(str(code.get('version')))}, commit {html.escape(str(code.get('git_commit')))}; "
        f"written {time.strftime('%Y-%m-%d %H:%M')}.</p>",
        f"<table><tr>{head}</tr>{body}</table>",
        *(f"<p>{html.escape(p)}</p>" for p in notes.split("\n\n")),
    ]
    spectrum = _img(out_dir, files.get("spectrum"), "stability spectrum")
    if spectrum:
        parts += ["<h2>Stability spectrum</h2>", "<p>Output / inconsistency energy per radial octave band: higher "
                  "is more stable in that band.</p>", spectrum]
    gif = _img(out_dir, files.get("gif"), "panning animation")
    if gif:
        captions = " | ".join(c for c, _ in panning_columns(results))
        parts += ["<h2>Panning</h2>", f"<p>A window moving 1 pixel per frame along a diagonal; columns: "
                  f"{html.escape(captions)}.</p>", gif]
    stems = file_stems([r.label for r in results])
    for r in table_order(results):
        figures = []
        for key, caption in ((f"stability_crop_{r.label}", "crop stability per shift"),
                             (f"stability_circular_{r.label}", "circular stability per shift"),
                             (f"features_{r.label}", "feature distance"),
                             (f"samples_{r.label}", "input | output | target")):
            img = _img(out_dir, files.get(key), f"{r.label}: {caption}")
            if img:
                figures.append(f"<figure>{img}<figcaption>{html.escape(caption)}</figcaption></figure>")
        source = ""
        if r.checkpoint:  # the file the figures are of: a run's last.ckpt moves on as training goes on
            digest = str(r.checkpoint.get("sha256") or "")
            source = (f"<p>checkpoint <code>{html.escape(str(r.checkpoint.get('path')))}</code>, sha256 "
                      f"<code title='{html.escape(digest)}'>{html.escape(digest[:12])}</code></p>")
        if figures or source:
            parts += [f"<h2 id='{html.escape(stems[r.label])}'>{html.escape(r.label)} [{html.escape(r.antialias)}]"
                      "</h2>", source, *figures]
    if errors:
        parts += ["<h2>Failed</h2><ul>", *(f"<li>{html.escape(k)}: {html.escape(v)}</li>" for k, v in errors.items()),
                  "</ul>"]
    parts.append("</body></html>")
    path = out_dir / "index.html"
    path.write_text("\n".join(parts), encoding="utf-8")
    return path
