"""Writing evaluation results: JSON, CSV, the Markdown report, heatmaps, and TensorBoard.

The results table itself (columns, cell format, order) is :mod:`pix2pix_aa.evaluation.table`,
shared with the HTML page (:mod:`pix2pix_aa.evaluation.page`); ``TABLE_COLUMNS`` and
``markdown_table`` are re-exported here, where callers have always found them."""

from __future__ import annotations

import csv
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Optional

import numpy as np

from pix2pix_aa.evaluation.page import write_index_html, write_panning_gif, write_samples
from pix2pix_aa.evaluation.runner import COLLAPSE_CONTENT_RATIO, COLLAPSE_IMAGE_FRACTION, COLLAPSE_TV_RATIO, ModelResult
from pix2pix_aa.evaluation.table import TABLE_COLUMNS, file_stems, markdown_table, ratio_text
from pix2pix_aa.metrics.distribution import KID_SUBSETS
from pix2pix_aa.metrics.plots import plot_feature_distance, plot_stability_heatmap, plot_stability_spectrum

__all__ = ["DEFINITIONS", "HPARAM_METRICS", "MODEL_FILES", "SHARED_FILES", "TABLE_COLUMNS", "checkpoint_note",
           "checkpoints_of", "data_note", "earlier_models", "file_stems", "foreign_outputs", "generator_hparams",
           "heatmap_ranges", "log_to_tensorboard", "markdown_report", "markdown_table", "outputs_of",
           "quality_metrics_note", "short_hash", "table_notes", "unowned_outputs", "write_report"]

#: The images written per model (``{}``: the model's :func:`file_stems` part) and once per
#: evaluation, beside results.json / .csv / .md, index.html and evaluate.log.
MODEL_FILES = {"stability_crop": "stability_crop_{}.png", "stability_circular": "stability_circular_{}.png",
               "features": "features_{}.png", "samples": "samples_{}.png"}
SHARED_FILES = ("stability_spectrum.png", "panning.gif")

#: What the table's words mean: printed under every table and in ``evaluate.py --help``.
DEFINITIONS = (
    "Stability: PSNR (dB, data range 2) between the generator's outputs for an input and its shifted "
    "copies, on the region both outputs show (crop) or after undoing a circular roll (circular). "
    "pooled = squared error pooled over every compared pixel, shift and image, then converted to dB once "
    "(the headline; StyleGAN3's EQ-T convention). mean = mean over images and shifts of each pair's PSNR, "
    "capped at 200 dB (secondary: a few exact shifts inflate it). equal bandwidth = pooled, with both "
    "compared outputs low-passed by one common filter first, so a blurrier model gains nothing from its "
    "blur alone. panning flicker = pooled PSNR between consecutive outputs of a window moving 1 pixel "
    "per frame along a diagonal, after undoing the known motion (higher = steadier). "
    "TV ratio = total variation of the outputs / that of the targets; HF ratio = spectral "
    "energy above half Nyquist of the outputs / that of the targets (below 1: smoother than the targets). "
    "L1 = mean absolute difference between output and target, in [-1, 1] units (what pix2pix's L1 term "
    "minimises). seconds = the wall time this model's evaluation took. "
    "epoch = the checkpoint's 0-based epoch index (1 after two full epochs); step = training batches "
    "seen (one G and one D update each). filter = the encoder's anti-aliasing filter, then in brackets the "
    "generator's design options set away from their defaults (decoder filters, mode, full-resolution path), and "
    "after a semicolon the shift-equivariance term it was trained with, if any. "
    "FID = Frechet distance between Gaussians fitted to the FID Inception v3 features of the outputs and of the "
    "targets (lower = closer distributions; biased upwards on small sets); KID = unbiased squared MMD with a cubic "
    "polynomial kernel on the same features, mean ± std over random subsets (the figure to read below a few "
    "thousand images); LPIPS = learned perceptual distance (AlexNet) from each output to its target, mean over "
    "images (0 = identical). '-' = not computed (see the line on quality metrics).")


def table_notes(results: Sequence[ModelResult], options: dict) -> str:
    """The lines printed under the table: data, collapsed models, shifts, definitions."""
    notes = []
    note = data_note(results)
    if note:
        notes.append(note)
    elif results:  # which data the numbers are on, always said (one line when the rows share them)
        notes.append(f"Data: {_describe_data(results[0].data)}.")
    checkpoints = checkpoint_note(results)
    if checkpoints:
        notes.append(checkpoints)
    collapsed = [r for r in results if r.collapsed]
    if collapsed:
        named = ", ".join(f"{r.label} (TV ratio {ratio_text(r.tv_ratio, 3)}"
                          + (f", content lost on {r.content_lost:.0%} of the images"
                             if math.isfinite(r.content_lost) else "") + ")" for r in collapsed)
        notes.append(f"Collapsed (listed last): {named}"
                     + f". A model is collapsed when its TV ratio is below {COLLAPSE_TV_RATIO} (near-constant "
                     f"outputs), or when on at least {COLLAPSE_IMAGE_FRACTION:.0%} of the images the output lost "
                     f"its target's content (coarse contrast, the standard deviation after 4x4 average pooling, below "
                     f"{COLLAPSE_CONTENT_RATIO:.0%} of the target's): such a model translates nothing, so its "
                     "stability numbers are no result (near-constant outputs are trivially stable; noise that lost "
                     "the content is unstable for no reason the design explains).")
    flat = [r.label for r in results if r.targets_flat]
    if flat:
        notes.append(f"Flat targets: {', '.join(flat)} (constant images, total variation at most 1e-6): the TV and "
                     "HF ratios are not defined, and PSNR and SSIM compare the outputs with a constant image; check "
                     "the data (black targets come from images that were not read right).")
    compared = next((len(res.shifts) for r in results for res in (r.crop, r.circular) if res is not None),
                    len([s for s in options.get("shifts", []) if tuple(s) != (0, 0)]))
    s = options.get("max_shift")
    lowpass = options.get("lowpass") or "none (not computed)"
    quality_note = quality_metrics_note(results, options)
    if quality_note:
        notes.append(quality_note)
    noisy = [r for r in results if r.noise]
    if noisy:  # measured by default, and shown only in results.csv / .json before
        # A collapsed model's figures are marked as its stability columns are (they were left out unsaid).
        figures = [f"{r.label}{' (collapsed)' if r.collapsed else ''} "
                   + ", ".join(f"sigma {s:g}: {db:.2f}" for s, db in sorted(r.noise.items())) for r in noisy]
        notes.append("Robustness to input noise (mean PSNR in dB between G(x) and G(x + sigma z), z ~ N(0, 1), "
                     "sigma in [-1, 1] units; higher = the output moves less): " + "; ".join(figures) + ".")
    protocol = options.get("protocol", "both")
    margin = "" if protocol == "circular" else f"; crop protocol margin {options.get('margin', 0)}"
    # The images a flicker figure is on: the first --flicker-images of each model's data, fewer on a smaller set.
    panning = sorted({(r.flicker.num_frames, r.flicker.num_images) for r in results if r.flicker is not None})
    flicker = ("panning flicker over " + ", ".join(f"{f} frames on the first {n} images" for f, n in panning)
               if panning else "no panning flicker")
    precision = options.get("precision", "32")
    computed = "" if precision == "32" else f"; generator computed in {precision} (autocast), not float32"
    notes.append(f"Shifts: {compared} compared shifts (dy, dx) of the {s}x{s} grid, (0, 0) excluded; protocol "
                 f"{protocol}{margin}; equal-bandwidth filter: {lowpass}; {flicker}{computed}.")
    notes.append(DEFINITIONS)
    return "\n\n".join(notes)


def quality_metrics_note(results: Sequence[ModelResult], options: dict) -> str:
    """The line on FID / KID / LPIPS: on how many images, the small-set bias, the weights files
    scored with (path, source, first 12 hex digits of the sha256), and which metric was skipped
    and why (``options["quality_metrics"]``: ``{name: status line}``, as evaluate.py records it)."""
    status = options.get("quality_metrics") or {}
    skipped = [line for line in status.values() if "skipped" in str(line)]
    # Which files the scores come from (results.json holds the full sha256).
    used = [re.sub(r"(sha256 [0-9a-f]{12})[0-9a-f]+", r"\1", str(line)) for line in status.values()
            if ": weights " in str(line)]
    scored = [r for r in results if r.distribution is not None or "lpips" in r.quality]
    parts = []
    if scored:
        counts = sorted({r.num_images for r in scored})
        subset = next((r.distribution.kid_subset_size for r in scored if r.distribution is not None), None)
        whole = any(r.distribution is not None and r.distribution.kid_mean is not None and r.distribution.kid_std
                    is None for r in scored)
        kid = (f"; KID on the whole set of {subset} images, too few for random subsets: no ± spread" if whole
               else f"; KID over {KID_SUBSETS} random subsets of {subset} images" if subset else "")
        parts.append(f"Quality metrics on {', '.join(map(str, counts))} images per model (outputs against the "
                     "targets of the same images)" + kid
                     + ". FID is biased upwards on small sets (the same model scores higher with fewer images), so "
                     "below a few thousand images read KID mean ± std, which is unbiased: a difference smaller "
                     "than the std is no difference. FID is comparable only between rows with the same image count.")
        parts += used
    elif status.get("off"):
        parts.append(f"Quality metrics (FID, KID, LPIPS): {status['off']}.")
    few = sorted({r.num_images for r in results if (r.distribution is None or r.distribution.fid is None)
                  and r.num_images < 2})
    if few and ": weights " in str(status.get("fid", "")):  # the weights were there; the images were not
        parts.append(f"FID and KID not computed: they compare two sets of images and need at least 2 per model, "
                     f"got {', '.join(map(str, few))}")
    parts += skipped
    # The skip lines are sentences without a full stop (they also print alone, as notices).
    return " ".join(part if part.endswith(".") else part + "." for part in parts)


def markdown_report(results: Sequence[ModelResult], options: dict, errors: dict[str, str]) -> str:
    """results.md: the table, its footnotes (data, definitions) and the checkpoints that failed."""
    parts = ["# Stability evaluation", markdown_table(results), table_notes(results, options)]
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


def short_hash(checkpoint: Optional[dict]) -> str:
    """The first 12 hex digits of a checkpoint record's sha256 (the full digest is in results.json)."""
    return str((checkpoint or {}).get("sha256") or "")[:12]


def checkpoint_note(results: Sequence[ModelResult]) -> str:
    """Which file each row was read from, with a short sha256 (empty when none was recorded): a
    run's last.ckpt changes as training goes on, its label does not."""
    lines = [f"- {r.label}: {r.checkpoint.get('path')} (sha256 {short_hash(r.checkpoint)})" + (
        f", trained {r.checkpoint['trained_epochs']} of its {r.checkpoint['schedule_epochs']} epochs: a partly trained "
        "model (a fit stopped or still running)" if "trained_epochs" in r.checkpoint else "")
        for r in results if r.checkpoint]
    return "Checkpoints (first 12 hex digits of the sha256; the full digest in results.json):\n" + "\n".join(lines) \
        if lines else ""


def earlier_models(out_dir: Path) -> Optional[dict]:
    """The ``models`` of an evaluation's results.json in ``out_dir``, or None (no file, or not one
    evaluate.py wrote: :func:`write_report` writes exactly ``options``, ``models`` and ``errors``,
    the options as a mapping; another tool's results.json with a "models" key is not one)."""
    try:
        payload = json.loads((Path(out_dir) / "results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(payload, dict) or set(payload) != {"options", "models", "errors"} \
            or not isinstance(payload["options"], dict) or not isinstance(payload["models"], dict):
        return None
    return payload["models"]


#: The first line evaluate.py writes to evaluate.log: a timestamp, then ``[evaluate]``.
_LOG_LINE = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \[evaluate\] ")


def _log_is_evaluations(path: Path) -> bool:
    """Whether ``path`` (an existing evaluate.log) is empty or starts as evaluate.py's log does."""
    try:
        with path.open("rb") as f:
            head = f.read(64).decode("utf-8", errors="replace")
    except OSError:
        return False
    return not head or _LOG_LINE.match(head) is not None


def foreign_outputs(out_dir: Path) -> list[str]:
    """The files in ``out_dir`` that an evaluation would overwrite although no evaluation wrote
    them: results.csv / results.md / index.html, stability_spectrum.png / panning.gif, the per-model
    images (``samples_*.png``, ...; or a results.json) without a results.json of evaluate.py's
    beside them, and an evaluate.log that is not evaluate.py's; [] when ``out_dir`` is new or holds
    an earlier evaluation.

    An evaluation writes its results.json before any other result, so an evaluation that stopped
    earlier leaves only its own evaluate.log, which is recognised by its first line.
    """
    out_dir = Path(out_dir)
    if earlier_models(out_dir) is not None:
        return []
    names = ("results.json", "results.csv", "results.md", "index.html", *SHARED_FILES)
    present = [n for n in names if (out_dir / n).is_file()]
    # The per-model images' names depend on labels not known before loading: any file of their form.
    present += sorted({p.name for pattern in MODEL_FILES.values() for p in out_dir.glob(pattern.format("*"))
                       if p.is_file()})
    log = out_dir / "evaluate.log"
    return present + (["evaluate.log"] if log.is_file() and not _log_is_evaluations(log) else [])


def unowned_outputs(out_dir: Path, labels: Sequence[str]) -> list[str]:
    """The per-model images an evaluation of ``labels`` would write into ``out_dir`` over files no
    evaluation wrote: beside an earlier evaluation's results.json, the names it does not give (the
    user's ``samples_<label>.png`` was overwritten there). A new folder is :func:`foreign_outputs`'."""
    models = earlier_models(out_dir)
    if models is None:
        return []
    ours = set(outputs_of(models))
    planned = outputs_of(dict.fromkeys(labels))  # its shared images are the earlier evaluation's names too
    return [name for name in planned if (Path(out_dir) / name).is_file() and name not in ours]


def outputs_of(models: Optional[dict]) -> list[str]:
    """The image names :func:`write_report` gives an evaluation of ``models`` (its labels; an
    earlier evaluation's from :func:`earlier_models`, [] for None). Only these names of an earlier
    evaluation are ever removed: nothing else in its folder is touched."""
    if models is None:
        return []
    stems = file_stems([str(label) for label in models])
    return [*SHARED_FILES, *(pattern.format(stem) for stem in stems.values() for pattern in MODEL_FILES.values())]


def checkpoints_of(models: Optional[dict]) -> list[Path]:
    """The checkpoint files (resolved paths) an earlier evaluation scored, from its ``models``
    (:func:`earlier_models`); [] for None."""
    found = []
    for entry in (models or {}).values():
        checkpoint = entry.get("checkpoint") if isinstance(entry, dict) else None
        path = checkpoint.get("path_resolved") if isinstance(checkpoint, dict) else None
        if isinstance(path, str) and path:
            found.append(Path(path))
    return found


def _describe_data(data: dict) -> str:
    if not data:
        return "data not recorded"
    size = data.get("image_size") or ["?", "?"]
    text = (f"{data.get('data_dir')} ({data.get('dataset')}), split {data.get('split')}, {data.get('direction')}, "
            f"{size[0]}x{size[1]} px (HxW), {data.get('images')} images")
    trained = data.get("trained_with") or {}
    if trained:  # a flag set the data away from the checkpoint's: its row is not its own held-out score
        given = {"--data-dir": data.get("data_dir"), "--dataset": data.get("dataset"),
                 "--direction": data.get("direction"), "--size": size[0]}
        text += (" -- not as the model was trained: "
                 + ", ".join(f"{flag} {given.get(flag, '?')} (trained: {value})" for flag, value in trained.items()))
    return text


def _shared_range(results: Sequence[ModelResult], attr: str) -> tuple[Optional[float], Optional[float]]:
    grids = [getattr(r, attr).per_shift_psnr for r in results if getattr(r, attr) is not None]
    finite = np.concatenate([g[np.isfinite(g)] for g in grids]) if grids else np.array([])
    return (float(finite.min()), float(finite.max())) if finite.size else (None, None)


def heatmap_ranges(results: Sequence[ModelResult]) -> dict[str, tuple[Optional[float], Optional[float]]]:
    """{protocol: (vmin, vmax)} in dB over every model's per-shift grid: one colour scale per
    protocol for all heatmaps of an evaluation (PNG and TensorBoard alike)."""
    return {attr: _shared_range(results, attr) for attr in ("crop", "circular")}


def _heatmap_title(r: ModelResult, attr: str) -> str:
    res = getattr(r, attr)
    return f"{r.label} [{r.antialias}]: {attr} pooled {res.pooled_psnr:.2f} dB (mean {res.mean_psnr:.2f})"


def spectrum_curves(results: Sequence[ModelResult]) -> dict:
    """{protocol: {label: StabilityResult}} of the results that have a stability spectrum."""
    # A collapsed model (near-constant output) is labelled so in the legend too: its curve would
    # otherwise read as the most stable one.
    curves = {attr: {r.label + (" (collapsed)" if r.collapsed else ""): getattr(r, attr) for r in results
                     if getattr(r, attr) is not None and getattr(r, attr).band_output is not None}
              for attr in ("crop", "circular")}
    return {k: v for k, v in curves.items() if v}


def write_report(results: Sequence[ModelResult], out_dir: Path, options: dict, errors: dict[str, str]) -> dict:
    """Write results.json / results.csv / results.md, PNG heatmaps, the stability spectrum, the
    panning animation (panning.gif), samples and the offline page index.html into ``out_dir``.

    Heatmaps of all models share one colour scale per protocol, so they can be compared by eye.
    Returns ``{name: path}`` of the written files.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    payload = _finite({"options": options, "models": {r.label: r.to_dict() for r in results}, "errors": errors})
    files["json"] = out_dir / "results.json"
    files["json"].write_text(json.dumps(payload, indent=2, allow_nan=False, default=_json_default))
    # The precision changes the figures (docs/PERFORMANCE.md section 5c), and FID / KID / LPIPS
    # depend on the weights that scored them: each row carries both.
    weights = options.get("quality_metrics") or {}
    provenance = {"precision": options.get("precision", "32"),
                  "fid_kid_weights": weights.get("fid", weights.get("off")),
                  "lpips_weights": weights.get("lpips", weights.get("off"))}
    rows = [{**r.row(), **provenance} for r in results]
    files["csv"] = out_dir / "results.csv"
    with files["csv"].open("w", newline="") as f:
        keys = list(dict.fromkeys(k for row in rows for k in row))
        writer = csv.DictWriter(f, fieldnames=keys)
        writer.writeheader()
        writer.writerows(rows)
    files["md"] = out_dir / "results.md"
    files["md"].write_text(markdown_report(results, options, errors))
    ranges = heatmap_ranges(results)
    stems = file_stems([r.label for r in results])
    for attr in ("crop", "circular"):
        vmin, vmax = ranges[attr]
        for r in results:
            res = getattr(r, attr)
            if res is not None:
                path = out_dir / MODEL_FILES[f"stability_{attr}"].format(stems[r.label])
                _close(plot_stability_heatmap(res, path, vmin=vmin, vmax=vmax, title=_heatmap_title(r, attr)))
                files[f"stability_{attr}_{r.label}"] = path
    curves = spectrum_curves(results)
    if curves:
        files["spectrum"] = out_dir / SHARED_FILES[0]
        _close(plot_stability_spectrum(curves, files["spectrum"], title="Stability spectrum"))
    tops = [max(float(np.nanmax(g)) for g in r.features.distance.values()) for r in results if r.features]
    for r in results:
        if r.features is not None:
            path = out_dir / MODEL_FILES["features"].format(stems[r.label])
            _close(plot_feature_distance(r.features, path, title=f"{r.label} [{r.antialias}]: feature distance",
                                         vmax=max(tops) if tops else None))
            files[f"features_{r.label}"] = path

    gif = write_panning_gif(results, out_dir / SHARED_FILES[1])
    if gif is not None:
        files["gif"] = gif
    for r in results:
        samples = write_samples(r, out_dir / MODEL_FILES["samples"].format(stems[r.label]))
        if samples is not None:
            files[f"samples_{r.label}"] = samples
    files["html"] = write_index_html(results, out_dir, files, table_notes(results, options), options.get("code", {}),
                                     errors)
    return files


def _close(fig) -> None:
    import matplotlib.pyplot as plt

    plt.close(fig)


def _finite(obj):
    """Strict JSON has no inf / NaN (e.g. the PSNR of an output equal to its target): None instead."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not math.isfinite(float(obj)):
        return None
    return obj


def _json_default(obj):
    if isinstance(obj, (np.floating, np.integer)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


#: Row keys logged as the metrics of the HPARAMS dashboard (one row per evaluated run).
HPARAM_METRICS = ("stability_crop_pooled_db", "stability_crop_eb_pooled_db", "stability_circular_pooled_db",
                  "flicker_pooled_db", "quality_psnr", "quality_ssim", "tv_ratio", "hf_ratio", "fid", "kid_mean",
                  "quality_lpips")


def generator_hparams(hparams: dict) -> dict:
    """The generator's options (filter, mode, padding, upsampling, ...) as flat TensorBoard
    hyper-parameters ``generator/<name>``: scalars and strings only (others as their text)."""
    out = {}
    for k, v in sorted((hparams.get("generator") or {}).items()):
        out[f"generator/{k}"] = v if isinstance(v, (bool, int, float, str)) else str(v)
    return out


def log_to_tensorboard(result: ModelResult, log_dir: Path, table: str, step: int = 0,
                       ranges: Optional[dict] = None, all_results: Optional[Sequence[ModelResult]] = None,
                       hparams: Optional[dict] = None, evaluation: Optional[str] = None,
                       notes: Optional[str] = None) -> None:
    """Scalars, heatmap images, the spectrum plot and the comparison table under ``log_dir`` (a
    folder of the run's; evaluate.py: ``<run>/evaluation/<--out name>-<hash>``, named in the
    HPARAMS dashboard by ``evaluation``, beside the number of images scored).

    ``ranges``: :func:`heatmap_ranges` of the whole evaluation, so every run's heatmaps share the
    colour scale of the PNGs; ``all_results``: the models whose curves go on the spectrum plot
    (default: this one). Scalar names are the row keys (``eval/stability_crop_pooled_db``, ...) plus
    ``eval/spectrum_<protocol>_band<b>_db`` per band. ``hparams``: the checkpoint's module
    hyper-parameters; its generator options and the evaluation's headline numbers go to the
    HPARAMS dashboard (``torch.utils.tensorboard.summary.hparams``), so runs can be compared there.
    ``notes``: the lines under the table (:func:`table_notes`: shifts, precision, which FID / LPIPS
    weights scored), as the text ``eval/notes`` beside ``eval/table``.
    """
    from torch.utils.tensorboard import SummaryWriter

    ranges = ranges or heatmap_ranges([result])
    with SummaryWriter(log_dir=str(log_dir)) as writer:
        for key, value in result.row().items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) \
                    and key not in ("epoch", "step", "images", "kid_subset_size") and math.isfinite(value):
                writer.add_scalar(f"eval/{key}", value, step)
        for attr in ("crop", "circular"):
            res = getattr(result, attr)
            if res is not None:
                vmin, vmax = ranges.get(attr, (None, None))
                fig = plot_stability_heatmap(res, vmin=vmin, vmax=vmax, title=_heatmap_title(result, attr))
                writer.add_figure(f"eval/stability_{attr}_heatmap", fig, step)  # closes the figure
                if res.spectrum_db is not None:
                    for b, db in enumerate(res.spectrum_db):
                        writer.add_scalar(f"eval/spectrum_{attr}_band{b}_db", float(db), step)
        curves = spectrum_curves(all_results if all_results is not None else [result])
        if curves:
            writer.add_figure("eval/stability_spectrum", plot_stability_spectrum(curves), step)
        if result.features is not None:
            fig = plot_feature_distance(result.features)
            writer.add_figure("eval/feature_distance", fig, step)
        writer.add_text("eval/table", table, step)
        if notes:
            writer.add_text("eval/notes", notes, step)
        if hparams is not None:
            from torch.utils.tensorboard.summary import hparams as hparams_summary

            row = result.row()
            metrics = {f"hparam/{k}": float(row[k]) for k in HPARAM_METRICS
                       if isinstance(row.get(k), (int, float)) and math.isfinite(row[k])}
            hp = {"filter": result.antialias, **generator_hparams(hparams), "images": result.num_images,
                  **({"evaluation": evaluation} if evaluation else {})}
            for summary in hparams_summary(hp, metrics):  # the experiment, session start and end
                writer.file_writer.add_summary(summary)
            for k, v in metrics.items():
                writer.add_scalar(k, v, step)
