"""Shared pytest fixtures. Keep each block small; append new fixtures below their own header."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# The tests run tiny tensors, where intra-op threading costs more than it saves, and on a busy
# 2-core machine 2 threads can make a small op ~60x slower. One thread keeps the suite fast and
# its timings steady. Subprocess tests (DDP, crash/resume) set their own.
torch.set_num_threads(1)


# --- threads -------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def one_thread():
    """One intra-op thread for each test, the previous count restored after it (no leaks).

    Session- and module-scoped fixtures are set up outside it: they rely on the import-time
    setting above (or set their own)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- data fixtures (pix2pix_aa.data) -----------------------------------------------------
@pytest.fixture(scope="session")
def tiny_facades(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny procedural facades set: 4/1/1 train/val/test images, 64x64 halves (A|B = 64x128 PNG)."""
    from pix2pix_aa.data.facades import generate_facades

    root = tmp_path_factory.mktemp("data") / "facades"
    return generate_facades(root, seed=0, splits={"train": 4, "val": 1, "test": 1}, size=64, workers=1)


# --- train.py in a folder (pix2pix_aa.cli.main) ------------------------------------------
def _run_cli(folder: Path, args: list[str], **kw):
    from pix2pix_aa.cli import main as cli_main

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        return cli_main(args, **kw)


@pytest.fixture(scope="session")
def run_cli():
    """run_cli(folder, args, **kw): pix2pix_aa.cli.main(args, **kw) run in ``folder`` (cwd restored after)."""
    return _run_cli


# --- tiny networks and a quiet CPU trainer -------------------------------------------------
def _tiny_module(unet_kwargs: dict | None = None, *, seed: int | None = None, **module_kwargs):
    """UNetGenerator(num_downs=3, ngf=4, **unet_kwargs) + PatchGANDiscriminator(ndf=4, n_layers=1);
    torch.manual_seed(seed) right before the generator is built, when a seed is given."""
    from pix2pix_aa.module import Pix2PixModule
    from pix2pix_aa.networks import PatchGANDiscriminator, UNetGenerator

    if seed is not None:
        torch.manual_seed(seed)
    generator = UNetGenerator(**{"num_downs": 3, "ngf": 4, **(unet_kwargs or {})})
    return Pix2PixModule(generator=generator, discriminator=PatchGANDiscriminator(ndf=4, n_layers=1), **module_kwargs)


@pytest.fixture(scope="session")
def tiny_module():
    """tiny_module(unet_kwargs=None, *, seed=None, **module_kwargs): a tiny Pix2PixModule (see _tiny_module)."""
    return _tiny_module


def _cpu_trainer(**overrides):
    import pytorch_lightning as pl

    return pl.Trainer(**{"accelerator": "cpu", "logger": False, "enable_progress_bar": False,
                         "enable_model_summary": False, **overrides})


@pytest.fixture(scope="session")
def cpu_trainer():
    """cpu_trainer(**overrides): a pl.Trainer on the CPU with no logger, progress bar or model summary."""
    return _cpu_trainer


# --- training fixtures (LightningCLI on a tiny generated set) ----------------------------
#: A config that trains in seconds: 8/2/2 generated facades at 64 px, tiny U-Net and PatchGAN.
TINY_CONFIG = {
    "seed_everything": 0,
    "trainer": {
        "accelerator": "cpu", "devices": 1, "enable_model_summary": False,
        "enable_progress_bar": False, "log_every_n_steps": 1,
        "logger": {"class_path": "pytorch_lightning.loggers.TensorBoardLogger",
                   "init_args": {"save_dir": "runs", "name": "tiny", "default_hp_metric": False}},
    },
    "model": {
        "generator": {"class_path": "pix2pix_aa.networks.UNetGenerator",
                      "init_args": {"num_downs": 6, "ngf": 8, "antialias": "bin5"}},
        "discriminator": {"class_path": "pix2pix_aa.networks.PatchGANDiscriminator",
                          "init_args": {"ndf": 8, "n_layers": 2}},
        # 2 epochs: trainer.max_epochs is derived from the schedule (n_epochs + n_epochs_decay).
        "n_epochs": 1, "n_epochs_decay": 1, "log_images_every_n_batches": 2,
    },
    "data": {"data_dir": "data/tiny", "dataset": "facades", "direction": "BtoA", "load_size": 72, "crop_size": 64,
             "batch_size": 2, "num_workers": 0, "generate_size": 64,
             "generate_counts": {"train": 8, "val": 2, "test": 2}},
}


def _write_tiny_config(folder: Path, name: str = "tiny.yaml", **overrides) -> Path:
    """Write TINY_CONFIG with overrides given as ``section__key__leaf=value``.

    ``trainer__max_epochs=N`` alone means "train N epochs": the LR decay then takes the epochs
    after ``model.n_epochs`` (train.py refuses a max_epochs that disagrees with the schedule)."""
    import copy

    import yaml

    cfg = copy.deepcopy(TINY_CONFIG)
    for dotted, value in overrides.items():
        node = cfg
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[p]
        node[leaf] = value
    if "trainer__max_epochs" in overrides and "model__n_epochs_decay" not in overrides:
        model = cfg["model"]
        model["n_epochs"] = min(model["n_epochs"], overrides["trainer__max_epochs"])
        model["n_epochs_decay"] = overrides["trainer__max_epochs"] - model["n_epochs"]
    path = Path(folder) / name
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def write_tiny_config():
    """write_tiny_config(folder, name="tiny.yaml", **overrides): TINY_CONFIG written with overrides (see above)."""
    return _write_tiny_config


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory, run_cli) -> tuple[Path, Path]:
    """One 2-epoch bin5 fit, shared: (working folder, run dir runs/tiny/version_0)."""
    folder = tmp_path_factory.mktemp("train")
    run_cli(folder, ["fit", "--config", str(_write_tiny_config(folder))])
    return folder, folder / "runs" / "tiny" / "version_0"


@pytest.fixture(scope="session")
def baseline_run(trained_run, run_cli) -> Path:
    """A 1-epoch baseline (antialias none) in the same folder and data: runs/tiny_baseline/version_0."""
    folder, _ = trained_run
    cfg = _write_tiny_config(folder, "tiny_baseline.yaml", trainer__max_epochs=1)
    run_cli(folder, ["fit", "--config", str(cfg), "--model.generator.init_args.antialias", "none",
                     "--trainer.logger.init_args.name", "tiny_baseline"])
    return folder / "runs" / "tiny_baseline" / "version_0"


# --- pretrained weights (FID / KID / LPIPS) ----------------------------------------------
@pytest.fixture(autouse=True)
def no_weight_downloads(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    """Nothing downloads in the tests, and no weights cached on this machine are used: torch.hub's
    cache is an empty folder, downloads are off (PIX2PIX_AA_OFFLINE, inherited by subprocesses),
    and torch.hub's fetch raises if anything calls it anyway."""
    hub_home = tmp_path_factory.getbasetemp() / "torch_home"
    hub_home.mkdir(exist_ok=True)
    monkeypatch.setenv("TORCH_HOME", str(hub_home))
    monkeypatch.setenv("PIX2PIX_AA_OFFLINE", "1")
    for var in ("PIX2PIX_AA_FID_WEIGHTS", "PIX2PIX_AA_LPIPS_WEIGHTS"):
        monkeypatch.delenv(var, raising=False)

    def refuse(url, *args, **kwargs):
        raise AssertionError(f"a test tried to download {url}")

    monkeypatch.setattr(torch.hub, "download_url_to_file", refuse)
