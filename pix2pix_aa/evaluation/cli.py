"""``evaluate.py`` / ``pix2pix-aa-evaluate``: shift stability of one or many checkpoints.

    python evaluate.py runs/cpu_quick_baseline runs/cpu_quick_bin5 --max-images 20

writes ``results.json``, ``results.csv``, ``results.md`` (one row per checkpoint), heatmaps as PNG,
and logs the same to TensorBoard beside each run. A checkpoint that does not load is reported
in one line and the others still run; the exit code is then 2.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Optional

import torch

from pix2pix_aa.evaluation.checkpoints import CheckpointError, LoadedGenerator, find_checkpoints, load_generator
from pix2pix_aa.evaluation.report import log_to_tensorboard, markdown_table, write_report
from pix2pix_aa.evaluation.runner import EvalOptions, evaluate_generator, load_eval_images, options_dict

EXIT_USAGE = 2


def _floats(text: str) -> list[float]:
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="evaluate.py", description="Measure generation stability (DESIGN.md section 5) of pix2pix checkpoints.")
    p.add_argument("checkpoints", nargs="+", help=".ckpt files, or run folders (their last.ckpt is used)")
    d = p.add_argument_group("data (default: what the first checkpoint was trained on)")
    d.add_argument("--data-dir", help="data set root (default: the checkpoint's data.data_dir)")
    d.add_argument("--dataset", choices=["facades", "aligned", "paired", "photos"], help="data set kind")
    d.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    d.add_argument("--direction", choices=["AtoB", "BtoA"], help="default: the checkpoint's")
    d.add_argument("--size", type=int, help="image size (default: the checkpoint's crop_size)")
    d.add_argument("--max-images", type=int, default=None, help="evaluate the first N images only")
    m = p.add_argument_group("metrics")
    m.add_argument("--shifts", type=int, default=8, help="S: shifts (dy, dx) in [0, S)^2 (default 8)")
    m.add_argument("--num-shifts", type=int, default=None, help="a seeded sample of the S*S shifts (default: all)")
    m.add_argument("--protocol", choices=["crop", "circular", "both"], default="both")
    m.add_argument("--layers", default="all",
                   help="feature-distance layers: 'all', 'none' or names such as enc1,enc3,dec2")
    m.add_argument("--noise", type=_floats, default=[0.01, 0.05, 0.1], help="noise sigmas, e.g. 0.01,0.05 ('none')")
    m.add_argument("--margin", type=int, default=0, help="crop protocol: border excluded from the comparison")
    m.add_argument("--batch-size", type=int, default=None, help="max images per forward pass (default: auto)")
    m.add_argument("--seed", type=int, default=0)
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, default=None, help="output folder (default outputs/eval-<time>)")
    o.add_argument("--no-tensorboard", action="store_true", help="do not log to each run's TensorBoard folder")
    o.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    o.add_argument("--trust-checkpoint", action="store_true",
                   help="allow full unpickling of checkpoints (runs code from the file: only for files you trust)")
    o.add_argument("--no-progress", action="store_true")
    o.add_argument("--debug", action="store_true", help="show full tracebacks")
    return p


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"--device: unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available; use --device cpu")
    return device


def _dataset(args: argparse.Namespace, dm_hp: dict):
    from pix2pix_aa.data import Pix2PixDataModule

    size = args.size or dm_hp.get("crop_size", 256)
    dm = Pix2PixDataModule(
        data_dir=args.data_dir or dm_hp.get("data_dir", "data/facades"),
        dataset=args.dataset or dm_hp.get("dataset", "facades"),
        direction=args.direction or dm_hp.get("direction", "BtoA"),
        load_size=size, crop_size=size, batch_size=1, num_workers=0,
        generate_size=dm_hp.get("generate_size", 256), generate_counts=dm_hp.get("generate_counts"),
    )
    dm.prepare_data()
    return dm.eval_dataset(args.split)


def _progress(total: int, enabled: bool):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    disable=not enabled, transient=False)


def run(args: argparse.Namespace) -> int:
    opts = EvalOptions(max_shift=args.shifts, num_shifts=args.num_shifts, protocol=args.protocol,
                       layers=None if args.layers == "none" else args.layers.split(","), noise=tuple(args.noise),
                       margin=args.margin, batch_size=args.batch_size, seed=args.seed)
    device = _device(args.device)
    loaded: list[LoadedGenerator] = []
    errors: dict[str, str] = {}
    for path in find_checkpoints(args.checkpoints):
        try:
            loaded.append(load_generator(path, trust=args.trust_checkpoint))
        except CheckpointError as e:
            errors[str(path)] = str(e)
            print(f"error: {e}", file=sys.stderr)
    if not loaded:
        print("error: no checkpoint could be loaded", file=sys.stderr)
        return EXIT_USAGE
    dataset = _dataset(args, loaded[0].datamodule_hparams)
    inputs, targets = load_eval_images(dataset, args.max_images)
    out_dir = args.out or Path("outputs") / time.strftime("eval-%Y%m%d-%H%M%S")
    results = []
    with _progress(len(loaded) * inputs.shape[0], not args.no_progress) as progress:
        task = progress.add_task("evaluating", total=len(loaded) * inputs.shape[0])
        for item in loaded:
            progress.update(task, description=f"evaluating {item.label}")
            try:
                results.append(evaluate_generator(
                    item.generator, inputs, targets, opts, label=item.label, antialias=item.antialias,
                    epoch=item.epoch, device=device, on_images_done=lambda k: progress.advance(task, k)))
            except ValueError as e:  # e.g. an image size the generator does not take
                errors[item.label] = str(e)
                print(f"error: {item.label}: {e}", file=sys.stderr)
    if not results:
        return EXIT_USAGE
    files = write_report(results, out_dir, options_dict(opts), errors)
    table = markdown_table(results)
    if not args.no_tensorboard:
        for item, result in zip([i for i in loaded if i.label in {r.label for r in results}], results):
            log_to_tensorboard(result, item.run_dir / "evaluation", table, step=item.epoch or 0)
    print(table)
    print(f"\nwrote {', '.join(sorted({str(p.name) for p in files.values()})[:6])} ... to {out_dir}")
    return EXIT_USAGE if errors else 0


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (CheckpointError, ValueError, FileNotFoundError) as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
