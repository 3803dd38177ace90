"""Continuing from a checkpoint: which file ``--ckpt_path last`` means, and which options win.

LightningCLI (2.6) merges the checkpoint's model hyper-parameters *over* the command line, so
``--ckpt_path last --model.n_epochs_decay 3`` silently kept the checkpoint's schedule, and
``test --config x.yaml --ckpt_path c.ckpt`` took the model from the checkpoint but the data
from the YAML. Here the rule is one and printed:

* An option given **on the command line** wins over the checkpoint's, except a network option
  (``model.generator``, ``model.discriminator``) on ``fit``: resuming cannot change the networks
  the optimiser state belongs to, so that is refused in one line naming the options.
* Every other option the checkpoint recorded comes from the checkpoint, model and data options
  alike (and, for ``fit``, ``trainer.precision``, which the module writes into its checkpoints),
  and each value that differs from the config is printed: ``fit`` continues the run it resumes (a
  config file trains a *new* run; resuming with the shipped YAML must not move a 64-px run on its
  own data to the YAML's 128-px crops of another folder), and ``validate`` / ``test`` /
  ``predict`` score a model on the data it was trained for. Training on other data is a flag away
  (``--data.data_dir ...``), and is printed as a change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional

import yaml

from pix2pix_aa.compat import batches_in_checkpoint, epochs_in_checkpoint
from pix2pix_aa.console import notice
from pix2pix_aa.locking import held

__all__ = ["FIT_LOCK", "PREDICT_DATA_KEYS", "OptionMerge", "check_resume_length", "explicit_keys",
           "merge_checkpoint_options", "resolve_last_checkpoint", "run_folders", "set_purge_step"]

#: The lock file a fit holds in its run folder (``Pix2PixCLI.fit``): one fit of a run at a time.
FIT_LOCK = ".fit.lock"
#: Model options that define the networks (and so the shapes and meaning of the weights).
NETWORK_KEYS = ("generator", "discriminator")
#: Data options never taken from a checkpoint: how this process loads (workers), what and how it
#: predicts (a training run's values were never used, and predict applied them without a word),
#: and, when evaluating, the batch size (it does not change the numbers).
PREDICT_DATA_KEYS = ("predict_dir", "predict_resize", "tile", "tile_overlap")
_DATA_KEYS_NOT_INHERITED = {"fit": ("num_workers", *PREDICT_DATA_KEYS),
                            "other": ("num_workers", *PREDICT_DATA_KEYS, "batch_size")}


# -- which checkpoint ---------------------------------------------------------------------------
def run_folders(config) -> tuple[list[Path], Optional[Path]]:
    """Folders that may hold this run's ``last.ckpt``, and the logger's ``save_dir/name`` (None
    when checkpoints do not follow the logger's ``version_N`` layout). ``last.ckpt`` is written by
    the ``last_checkpoint`` callback, so its ``dirpath`` counts (``checkpoint.dirpath`` moves only
    the best checkpoints)."""
    dirpath = config.get("last_checkpoint", {}).get("dirpath")
    if dirpath:
        return [Path(dirpath)], None
    logger = config.trainer.get("logger")
    root_dir = Path(config.trainer.get("default_root_dir") or ".")
    if logger is False or logger is None:
        return [root_dir / "checkpoints"], None
    if logger is True:  # Lightning's default TensorBoardLogger
        save_dir, name = root_dir, "lightning_logs"
    else:
        init = logger.get("init_args") or {}
        if "save_dir" not in init:
            return [], None
        save_dir, name = Path(init.get("save_dir") or root_dir), init.get("name")
    base = save_dir / name if name else save_dir
    return sorted(base.glob("version_*/checkpoints")) + sorted(p for p in base.glob("*/checkpoints")
                                                                 if not p.parent.name.startswith("version_")), base


def _looked_in(folders: list[Path], base: Optional[Path]) -> str:
    """Where a ``--ckpt_path last`` / ``best`` looked, for its message: the folders, or the run's
    ``version_*/checkpoints`` pattern when it has none yet."""
    return ", ".join(str(f) for f in folders[:3]) or (f"{base}/version_*/checkpoints" if base is not None
                                                      else "the logger's folder")


def resolve_last_checkpoint(config, subcommand: str) -> None:
    """Turn ``ckpt_path: last`` into the newest ``last*.ckpt`` of this run's folders.

    Lightning looks for ``last.ckpt`` only in the *new* run's folder (``version_{N+1}``), finds
    nothing, warns and trains from scratch (or predicts with random weights). Here: found -> the
    path, and for ``fit`` the logger is pinned to that run's version so checkpoints and logs
    continue in place (and ModelCheckpoint keeps its best score); :func:`set_purge_step` then
    sets ``purge_step`` from the checkpoint once it is read. Not
    found -> ``fit`` says so and starts fresh (so ``--ckpt_path last`` can be set once for every
    restart of a job); other subcommands raise ``FileNotFoundError``.
    """
    folders, base = run_folders(config)
    found = [p for folder in folders if folder.is_dir() for p in folder.glob("last*.ckpt")
             if re.fullmatch(r"last(-v?\d+)?\.ckpt", p.name)]
    where, others = _looked_in(folders, base), ""
    if not found and base is not None and base.parent.is_dir():
        # A mistyped run name (or a config naming another run) shows at once beside the runs there.
        runs = sorted(p.name for p in base.parent.iterdir() if p != base and any(p.glob("*/checkpoints/last*.ckpt")))
        if runs:
            others = f" (runs with a last.ckpt in {base.parent}: {', '.join(runs[:5])}" \
                     + (f" and {len(runs) - 5} more" if len(runs) > 5 else "") + ")"
    if not found:
        if subcommand != "fit":
            raise FileNotFoundError(f"--ckpt_path last: no last.ckpt found under {where}{others}; pass the checkpoint "
                                    "path")
        config.ckpt_path = None
        reused = _reuse_untrained_version(config, base)
        notice(f"--ckpt_path last: no last.ckpt under {where} yet{others}: training from scratch"
               + (f" in {reused} (the fit that made it stopped before its first checkpoint)" if reused else ""))
        return
    newest = max(found, key=lambda p: p.stat().st_mtime)
    config.ckpt_path = str(newest)
    notice(f"--ckpt_path last: {newest}")
    logger = config.trainer.get("logger")
    if subcommand == "fit" and base is not None and hasattr(logger, "get") and logger.get("init_args") is not None:
        run = newest.parent.parent.name
        match = re.fullmatch(r"version_(\d+)", run)
        logger.init_args.version = int(match.group(1)) if match else run


def _reuse_untrained_version(config, base: Optional[Path]) -> Optional[Path]:
    """The newest ``version_N`` of the run that holds no checkpoint (a fit killed before its first
    one), which the fit from scratch then trains in: each relaunch of a job killed that early
    started a ``version_{N+1}`` beside it, TensorBoard listed every one, and their orphaned
    temporary checkpoint files were never removed. Its earlier events are purged (step 0)."""
    init = config.trainer.get("logger")
    init = init.get("init_args") if hasattr(init, "get") else None
    if base is None or init is None or init.get("version") is not None or not base.is_dir():
        return None
    versions = [p for p in base.glob("version_*") if p.is_dir() and re.fullmatch(r"version_\d+", p.name)]
    if not versions:
        return None
    newest = max(versions, key=lambda p: int(p.name.split("_")[1]))
    if any(newest.rglob("*.ckpt")) or held(newest / FIT_LOCK):  # a fit still training towards its first one
        return None
    init.version = int(newest.name.split("_")[1])
    if "purge_step" in init:
        init.purge_step = 0
    return newest


def resolve_best_checkpoint(config, subcommand: str) -> None:
    """Turn ``ckpt_path: best`` into this run's ``best-*.ckpt`` (validate / test / predict).

    Lightning knows ``best`` only in the process that ran the fit, and otherwise says its
    ModelCheckpoint "is not configured to save the best model", even beside a best-002.ckpt.
    Here: the run's newest folder holding a ``best*.ckpt`` (``checkpoint.dirpath``, else the
    logger's ``version_N/checkpoints``) gives its one best file.

    Raises:
        ValueError: ``fit`` (a resume goes on from ``last``), no best file (the run kept last.ckpt
            only: no monitor), or several in that folder (``checkpoint.save_top_k`` > 1: which
            one is meant is the user's to say).
    """
    if subcommand == "fit":
        raise ValueError("--ckpt_path best: a fit resumes from its last checkpoint (--ckpt_path last); to start a new "
                         "run from the best weights pass --model.generator_weights BEST.ckpt")
    dirpath = (config.get("checkpoint") or {}).get("dirpath")
    folders, base = ([Path(dirpath)], None) if dirpath else run_folders(config)
    found = [p for folder in folders if folder.is_dir() for p in folder.glob("best*.ckpt")]
    where = _looked_in(folders, base)
    if not found:
        raise ValueError(f"--ckpt_path best: no best*.ckpt under {where} (a run keeps one only with a "
                         "checkpoint.monitor); pass the checkpoint path, or --ckpt_path last")
    folder = max(found, key=lambda p: p.stat().st_mtime).parent
    candidates = sorted(p for p in found if p.parent == folder)
    if len(candidates) > 1:
        raise ValueError(f"--ckpt_path best: {folder} holds {len(candidates)} best checkpoints "
                         f"({', '.join(p.name for p in candidates[:4])}); pass the one you mean")
    config.ckpt_path = str(candidates[0])
    notice(f"--ckpt_path best: {candidates[0]}")


def set_purge_step(config, ckpt: dict) -> None:
    """After :func:`resolve_last_checkpoint` pinned ``fit`` to the run's version: TensorBoard's
    ``purge_step`` = the checkpoint's logged step, so it hides only what the interrupted run
    logged after the checkpoint. Always this checkpoint's step: one inherited from an older
    resume would erase everything logged since that older resume. Without the counter (None),
    TensorBoard just shows the replayed steps twice."""
    logger = config.trainer.get("logger")
    if hasattr(logger, "get") and logger.get("init_args") is not None and "purge_step" in logger.init_args:
        logger.init_args.purge_step = batches_in_checkpoint(ckpt)


def check_resume_length(config, ckpt: dict, path: str) -> Optional[str]:
    """``fit --ckpt_path``: the schedule (``trainer.max_epochs``, derived from ``model.n_epochs +
    model.n_epochs_decay`` by :func:`pix2pix_aa.options.check_schedule`) must not end before the
    epochs the checkpoint already trained; Lightning would stop with a 32-line traceback
    ("restored current_epoch=3, but max_epochs=2"). One that ends where the checkpoint stopped
    (or ``trainer.max_steps`` iterations already done) leaves nothing to train: Lightning would
    start, stop at once, and rewrite the run's config.yaml with options no epoch was trained with.

    Returns:
        Why there is nothing left to train (one line), or None.

    Raises:
        ValueError: one line with what was trained, what was asked and how to train more.
    """
    if config.trainer.get("fast_dev_run"):
        return None
    trained, asked = epochs_in_checkpoint(ckpt), config.trainer.get("max_epochs")
    steps, done = config.trainer.get("max_steps"), batches_in_checkpoint(ckpt)
    epochs_known = trained is not None and asked is not None and asked >= 0
    model = config.model
    if epochs_known and trained > asked:
        saved = ckpt.get("hyper_parameters") or {}
        was = (f" (its schedule: model.n_epochs {saved['n_epochs']} + model.n_epochs_decay {saved['n_epochs_decay']})"
               if "n_epochs" in saved and "n_epochs_decay" in saved else "")
        raise ValueError(
            f"--ckpt_path {path}: the run already trained {trained} epochs{was}, but this schedule ends after {asked} "
            f"(model.n_epochs {model.n_epochs} + model.n_epochs_decay {model.n_epochs_decay}): a resume cannot train "
            f"fewer epochs. To train more, pass --model.n_epochs_decay {trained + 1 - int(model.n_epochs)} or more "
            f"(n_epochs + n_epochs_decay > {trained}); to start over, drop --ckpt_path")
    if steps is not None and steps > 0:  # counted in iterations, not epochs
        if done is not None and done >= steps:
            return (f"--ckpt_path {path}: the run already trained {done} iterations (trainer.max_steps {steps}); "
                    f"nothing to train: raise --trainer.max_steps to train more")
        return None
    if epochs_known and trained == asked:
        return (f"--ckpt_path {path}: the run already trained all {trained} epochs of its schedule (model.n_epochs "
                f"{model.n_epochs} + model.n_epochs_decay {model.n_epochs_decay}); nothing to train: raise "
                "--model.n_epochs_decay (or n_epochs) to train more")
    return None


# -- which options ------------------------------------------------------------------------------
def explicit_keys(argv: Iterable[str]) -> set[str]:
    """Dotted option names given as ``--a.b.c`` flags on the command line, with ``init_args``
    dropped (jsonargparse accepts ``--model.generator.antialias`` for
    ``--model.generator.init_args.antialias``). Config files do not count: a shipped YAML says
    what a *new* run should be, not what to change in an existing one."""
    argv = list(argv)
    keys = set()
    for i, token in enumerate(argv):
        if isinstance(token, str) and token.startswith("--") and len(token) > 2:
            name, eq, value = token[2:].partition("=")
            if not eq:
                following = argv[i + 1] if i + 1 < len(argv) else None
                value = following if isinstance(following, str) and not following.startswith("--") else ""
            inside = _inline_mapping_keys(_normal(name), value)
            # A whole section (--data '{tile: 64}') is merged option by option: only what the
            # mapping holds is given. A deeper option's mapping is its value, given as a whole.
            keys |= inside if inside and "." not in name else inside | {_normal(name)}
    return keys


def _inline_mapping_keys(key: str, value: str) -> set[str]:
    """The options an inline YAML mapping sets: ``--data '{tile: 64}'`` is ``--data.tile 64`` to
    jsonargparse, so it gives ``data.tile``. A file name or a plain value gives nothing."""
    if "{" not in value and ":" not in value:
        return set()
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return set()
    return {_normal(k) for k in _flatten(parsed, key)} if isinstance(parsed, dict) and parsed else set()


def _normal(key: str) -> str:
    return ".".join(part for part in key.split(".") if part != "init_args")


def _is_explicit(key: str, explicit: set[str]) -> bool:
    key = _normal(key)
    return any(key == e or key.startswith(e + ".") or e.startswith(key + ".") for e in explicit)


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    """{"a.b": leaf} of nested dicts / Namespaces (lists and other values are leaves)."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}"))
        return out
    return {prefix: value}


def _unified_precision(value: Any) -> Any:
    """Lightning's spelling of a precision (``None`` is its default; "32" and 32 are "32-true").
    Written out because Lightning's own converter is private."""
    aliases = {None: "32-true", "32": "32-true", "64": "64-true", "16": "16-mixed", "bf16": "bf16-mixed"}
    return aliases.get(str(value) if value is not None else None, value)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def show_differences(differs: dict[str, tuple[Any, Any]]) -> str:
    """``key=value (checkpoint: value), ...`` of ``{key: (value, checkpoint value)}``."""
    return ", ".join(f"{k}={_show(v)} (checkpoint: {_show(c)})" for k, (v, c) in differs.items())


def generator_differences(config, ckpt: Any) -> dict[str, tuple[Any, Any]]:
    """The ``model.generator`` options (class_path, init_args) in which ``config`` differs from
    what train.py checkpoint ``ckpt`` recorded: ``{key: (config value, checkpoint value)}``; {}
    when ``ckpt`` records no generator (a bare state_dict, a reference pix2pix file)."""
    hparams = ckpt.get("hyper_parameters") if isinstance(ckpt, dict) else None
    recorded = hparams.get("generator") if isinstance(hparams, dict) else None
    if not isinstance(recorded, dict) or "class_path" not in recorded:
        return {}
    here = _flatten(config.model.get("generator"), "model.generator")
    there = _flatten(recorded, "model.generator")
    return {k: (here.get(k), there.get(k)) for k in sorted(set(here) | set(there)) if here.get(k) != there.get(k)}


class OptionMerge:
    """What :func:`merge_checkpoint_options` decided, for printing and for tests."""

    def __init__(self) -> None:
        self.from_checkpoint: dict[str, tuple[Any, Any]] = {}   # key -> (config value, checkpoint value)
        self.from_command_line: dict[str, tuple[Any, Any]] = {}  # key -> (command-line value, checkpoint value)
        self.refused: dict[str, tuple[Any, Any]] = {}

    def report(self, path: str, limit: int = 8, fit: bool = False) -> None:
        """Print what was kept and what was changed. ``fit``: the networks' options are said apart
        (a resumed fit cannot change them, so advising their flag was advice the next run refused)."""
        # Options the config left unset (None) simply come from the checkpoint: not news. (An
        # unset precision reads as float32, "32-true", so a kept bf16 is printed.)
        kept = [(k, v, c) for k, (v, c) in self.from_checkpoint.items() if v is not None]
        networks = [item for item in kept if fit and item[0].split(".")[:2] in (["model", n] for n in NETWORK_KEYS)]
        for items, why in (([i for i in kept if i not in networks], "pass the flag on the command line to change it"),
                           (networks, "a resumed fit cannot change the networks; a new run (without --ckpt_path) "
                                      "trains the config's")):
            if items:
                more = f", and {len(items) - limit} more" if len(items) > limit else ""
                notice(f"{path}: kept from the checkpoint ({why}): "
                       + ", ".join(f"{k}={_show(c)} (config: {_show(v)})" for k, v, c in items[:limit]) + more)
        if self.from_command_line:
            changed = show_differences(self.from_command_line)
            notice(f"{path}: changed from the checkpoint by the command line: {changed}")


def refuse_new_seeds(config, ckpt: dict[str, Any], explicit: set[str]) -> None:
    """A resumed fit goes on with the checkpoint's random streams (the RNG states and the shuffling
    it saved: an exact resume), so a ``--seed_everything`` or ``--data.seed`` other than the run's
    would not be used, while the start-up lines and config.yaml said it was.

    Raises:
        ValueError: one of them given on the command line, unlike the checkpoint's.
    """
    rng = (ckpt.get("callbacks") or {}).get("ResumeRNGState") or {}
    recorded = {"seed_everything": rng.get("seed"),
                "data.seed": (ckpt.get("datamodule_hyper_parameters") or {}).get("seed")}
    given = {"seed_everything": config.get("seed_everything"), "data.seed": (config.get("data") or {}).get("seed")}
    new = {key: (given[key], recorded[key]) for key in recorded
           if _is_explicit(key, explicit) and recorded[key] is not None and given[key] != recorded[key]}
    if new:
        raise ValueError(f"--ckpt_path: {show_differences(new)}: a resumed fit goes on with the checkpoint's random "
                         "streams (its saved RNG states and data order, so that it resumes exactly), and a new seed "
                         "would not be used; drop it, or start a new run without --ckpt_path")


def merge_checkpoint_options(config, ckpt: dict[str, Any], subcommand: str, explicit: set[str]) -> tuple[
        OptionMerge, dict[str, Any]]:
    """Decide, option by option, between the config and the checkpoint (rules in the module doc).

    Args:
        config: the subcommand's parsed config (jsonargparse Namespace with ``model``, ``data``).
        ckpt: the checkpoint dict (``hyper_parameters``, ``datamodule_hyper_parameters``).
        subcommand: ``fit``, ``validate``, ``test`` or ``predict``.
        explicit: :func:`explicit_keys` of the command line.

    Returns:
        (decisions, updates) where ``updates`` is ``{"model": {...}, "data": {...}}`` of the
        checkpoint values to parse into the config (whole top-level options, so a network's
        ``class_path`` / ``init_args`` come together).

    Raises:
        ValueError: ``fit`` with a network option changed on the command line.
    """
    from pix2pix_aa.module import TRAINER_OPTIONS_KEY

    merge = OptionMerge()
    updates: dict[str, dict[str, Any]] = {"model": {}, "data": {}, "trainer": {}}
    sections = [("model", dict(ckpt.get("hyper_parameters") or {})),
                ("data", dict(ckpt.get("datamodule_hyper_parameters") or {}))]
    if subcommand == "fit":  # a resumed fit goes on in the precision it was trained in
        sections.append(("trainer", dict(ckpt.get(TRAINER_OPTIONS_KEY) or {})))
    not_inherited = _DATA_KEYS_NOT_INHERITED["fit" if subcommand == "fit" else "other"]
    for section, saved in sections:
        saved.pop("_instantiator", None)
        current = config.get(section)
        for key, ckpt_value in saved.items():
            if current is None or key not in current or (section == "data" and key in not_inherited):
                continue
            name = f"{section}.{key}"
            here = _flatten(current[key], name)
            there = _flatten(ckpt_value, name)
            if name == "trainer.precision":  # an unset precision is float32: the same as "32-true"
                here, there = {name: _unified_precision(here[name])}, {name: _unified_precision(there[name])}
            differs = {k: (here.get(k), there.get(k)) for k in sorted(set(here) | set(there))
                       if here.get(k) != there.get(k)}
            if not differs:
                continue
            given = {k: v for k, v in differs.items() if _is_explicit(k, explicit)}
            if given and section == "model" and key in NETWORK_KEYS and subcommand == "fit":
                merge.refused.update(given)
                continue
            if given:
                merge.from_command_line.update(given)
                continue
            merge.from_checkpoint.update(differs)
            updates[section][key] = ckpt_value
    if merge.refused:
        raise ValueError(
            "--ckpt_path: resuming cannot change the networks (the weights and optimiser state belong to the "
            f"checkpoint's): {show_differences(merge.refused)}"
            "; drop these flags to resume, or start a new run without --ckpt_path")
    return merge, {k: v for k, v in updates.items() if v}
