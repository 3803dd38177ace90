"""Every use of a private Lightning or jsonargparse attribute, in one place.

Each is used because no public API gives the same thing; ``tests/test_compat.py`` fails loudly
if an upgrade moves one, so the breakage shows up as one named test rather than as a wrong
number somewhere else.
"""

from __future__ import annotations

from typing import Any, Optional

__all__ = ["PRIVATE_ATTRIBUTES", "batches_in_checkpoint", "batches_that_stepped", "built_by_cli",
           "cli_trainer_init", "ddp_allow_unused_parameters", "epochs_in_checkpoint", "jsonargparse_debug_active",
           "open_progress_bars", "parser_actions", "subcommand_parsers"]

#: (object path, attribute, why) for each private attribute the project relies on.
PRIVATE_ATTRIBUTES: tuple[tuple[str, str, str], ...] = (
    ("pytorch_lightning.loops.training_epoch_loop._TrainingEpochLoop", "_batches_that_stepped",
     "training iterations done (Lightning's logging x-axis); global_step counts both players' optimiser steps"),
    ("pytorch_lightning.cli.LightningCLI", "_parse_ckpt_path",
     "replaced: Lightning's merge lets the checkpoint's hyper-parameters override the command line"),
    ("pytorch_lightning.cli.LightningCLI", "_run_subcommand",
     "wrapped: a subcommand that fails before training removes the empty log folder it created"),
    ("pytorch_lightning.core.mixins.hparams_mixin", "_given_hyperparameters",
     "tells LightningCLI's instantiation of the module from a plain Python one"),
    ("pytorch_lightning.callbacks.ModelCheckpoint", "_save_topk_checkpoint",
     "FiniteModelCheckpoint's hook between 'decide to save the best' and 'save' (never a NaN best)"),
    ("pytorch_lightning.callbacks.ModelCheckpoint", "_save_last_checkpoint",
     "FiniteModelCheckpoint's hook before writing last (never NaN weights)"),
    ("jsonargparse._common", "debug_mode_active",
     "the parser's one-line errors defer to jsonargparse's debug mode"),
    ("torch.hub", "_hub_dir",
     "metrics.pretrained.hub_dir restores it around a temporary torch.hub.set_dir (LPIPS weights from a local "
     "file), so an unset hub dir goes back to following TORCH_HOME"),
    ("argparse._ActionsContainer", "_actions",
     "a parser's options: the short --help and the option names an unknown flag is matched against"),
    ("jsonargparse.ArgumentParser", "_subcommands_action",
     "the subcommands' parsers: a config file's unknown key is matched against their options too"),
    ("argparse._SubParsersAction", "_name_parser_map",
     "the parser of each subcommand, by name"),
    ("pytorch_lightning.cli.LightningCLI", "_get",
     "the trainer's plugins and callbacks as given in the config (before instantiation)"),
    ("jsonargparse.DefaultHelpFormatter", "_get_help_string",
     "overridden: the help's lists of known subclasses cut to this project's classes"),
    ("pytorch_lightning.cli.LightningCLI", "_instantiate_trainer",
     "wrapped: trainer.enable_checkpointing false leaves out the checkpoint callbacks the CLI adds"),
    ("tqdm.tqdm", "_instances",
     "the progress bars still open when an error stops training: the CLI ends their line before the error's"),
    ("pytorch_lightning.strategies.DDPStrategy", "_ddp_kwargs",
     "the DDP options of a strategy no name reaches (strategy auto on several devices, a class_path): the "
     "GAN needs find_unused_parameters there too"),
)

#: Attributes in PRIVATE_ATTRIBUTES set on instances (in their owner's source, not on the class).
INSTANCE_ATTRIBUTES = frozenset({"_batches_that_stepped", "_actions", "_name_parser_map", "_ddp_kwargs"})


def batches_in_checkpoint(ckpt: dict) -> Optional[int]:
    """Training iterations (batches) a Lightning checkpoint had done: the x-axis of its run's
    TensorBoard scalars (``global_step`` counts both players' optimiser steps, another unit).
    None when the fit loop's counter is not saved.

    A mid-epoch checkpoint (saved in ``on_train_batch_end``) holds ``_batches_that_stepped``
    before Lightning counts that batch, one short of the batches it trained (and of the step the
    resumed run logs first); the batch progress's ``processed`` has it."""
    try:
        loop = ckpt["loops"]["fit_loop"]
        stepped = int(loop["epoch_loop.state_dict"]["_batches_that_stepped"])
    except (KeyError, TypeError, ValueError):
        return None
    try:
        return max(stepped, int(loop["epoch_loop.batch_progress"]["total"]["processed"]))
    except (KeyError, TypeError, ValueError):
        return stepped


def epochs_in_checkpoint(ckpt: dict) -> Optional[int]:
    """Training epochs a Lightning checkpoint had finished (its fit loop's processed epochs: the
    ``current_epoch`` Lightning restores from it). None when the counter is not saved."""
    try:
        return int(ckpt["loops"]["fit_loop"]["epoch_progress"]["current"]["processed"])
    except (KeyError, TypeError, ValueError):
        return None


def batches_that_stepped(trainer: Any) -> int:
    """Training iterations (batches) done so far in this fit, resumed runs included."""
    return int(trainer.fit_loop.epoch_loop._batches_that_stepped)


def built_by_cli() -> bool:
    """True while LightningCLI instantiates the module. It then hands save_hyperparameters the
    config (networks as class_path/init_args), which must be kept; the networks themselves
    arrive as objects in both cases, so their type cannot tell the two apart. If Lightning
    moves its context variable, fall back to keeping the CLI's config."""
    try:
        from pytorch_lightning.core.mixins.hparams_mixin import _given_hyperparameters
    except ImportError:  # pragma: no cover - Lightning moved it (tests/test_compat.py says so)
        return True
    return _given_hyperparameters.get() is not None


def parser_actions(parser: Any) -> list:
    """The argparse actions (options and positionals) of ``parser``, in the order added."""
    return list(parser._actions)


def subcommand_parsers(parser: Any) -> list:
    """The parsers of ``parser``'s subcommands (none for a parser without subcommands)."""
    action = getattr(parser, "_subcommands_action", None)
    return list(getattr(action, "_name_parser_map", {}).values())


def jsonargparse_debug_active() -> bool:
    """True when jsonargparse's debug mode (``JSONARGPARSE_DEBUG``) asks for its own tracebacks."""
    from jsonargparse._common import debug_mode_active  # noqa: PLC0415 (private: imported only when asked)

    return bool(debug_mode_active())


def cli_trainer_init(cli: Any, key: str) -> Any:
    """``trainer.<key>`` of a LightningCLI's instantiated config for the current subcommand (None when absent)."""
    return cli._get(cli.config_init, "trainer", default={}).get(key)


def ddp_allow_unused_parameters(strategy: Any) -> Optional[bool]:
    """Tell a DDP strategy that parameters may go unused in a backward pass, unless its options
    already say either way. For the DDP strategies no strategy name reaches: the one Lightning
    picks itself (strategy ``auto`` on several devices) and one given as a class_path (whose
    options jsonargparse fills with DDP's default, False). Returns the strategy's
    find_unused_parameters after that, or None when ``strategy`` is not a DDP strategy.
    """
    from pytorch_lightning.strategies import DDPStrategy

    if not isinstance(strategy, DDPStrategy):
        return None
    return bool(strategy._ddp_kwargs.setdefault("find_unused_parameters", True))


def open_progress_bars() -> int:
    """How many tqdm progress bars (Lightning's included) are open in this process."""
    from tqdm import tqdm

    return len(getattr(tqdm, "_instances", ()))
