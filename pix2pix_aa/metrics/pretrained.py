"""The pretrained networks of FID / KID (the FID Inception v3) and LPIPS (AlexNet), and where
their weights come from (docs/DESIGN.md section 5c; docs/QUALITY_METRICS.md).

Weights are found, in this order: a local file given by an option or an environment variable
(:data:`FID_WEIGHTS_ENV`, :data:`LPIPS_WEIGHTS_ENV`); the libraries' own cache (torch.hub's
``<TORCH_HOME>/hub/checkpoints``, where torch-fidelity and torchvision keep them); a download by
the libraries' own function into that cache, with a socket timeout
(:data:`DOWNLOAD_TIMEOUT_S`) so an unreachable host fails instead of hanging. When none works
(no internet, no file), :func:`resolve_weights` returns the one line that says which metric is
skipped and how to supply its weights; the caller prints it and computes the rest.
``PIX2PIX_AA_OFFLINE=1`` (:data:`OFFLINE_ENV`, ``evaluate.py --offline``) forbids the download.

Every file is checked before it is used (:func:`check_weights`), so a wrong one is one line at
start-up, not a traceback at the first validation or after the stability work: the network is
built from it strictly (every key and shape); the AlexNet file's sha256 must start with the digits
in torchvision's file name (torch.hub's convention, which torchvision checks on download); and the
FID Inception must have been trained (its batch norms' running statistics moved from their initial
values) and tell two different images apart (an untrained Inception's features are ~1e-8 and alike
for every image, which made FID 0.00). The FID file's name carries digits too, but torch-fidelity
never checks them, so they are not relied on, and weights trained otherwise (another data set, a
fine-tuned copy) are not told from the published ones. The sha256 of the file used is part
of its :class:`WeightsStatus` line, which evaluate.py records in results.json and results.md.

LPIPS's linear layers ship inside torchmetrics (``torchmetrics/functional/image/lpips_models/
alex.pth``, read from the installed package); only its AlexNet backbone is downloaded (by
torchvision).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from torch import nn

__all__ = ["DOWNLOAD_TIMEOUT_S", "FID_WEIGHTS_ENV", "LPIPS_WEIGHTS_ENV", "OFFLINE_ENV", "WEIGHTS", "WeightsStatus",
           "check_weights", "inception_network", "lpips_network", "offline", "resolve_weights"]

FID_WEIGHTS_ENV = "PIX2PIX_AA_FID_WEIGHTS"
LPIPS_WEIGHTS_ENV = "PIX2PIX_AA_LPIPS_WEIGHTS"
OFFLINE_ENV = "PIX2PIX_AA_OFFLINE"
#: Seconds a connection or a read may stall before a download is given up.
DOWNLOAD_TIMEOUT_S = 20.0
#: A download still running after this many seconds is announced in one line.
ANNOUNCE_AFTER_S = 2.0


@dataclass(frozen=True)
class _Weights:
    metrics: str        # what is skipped without them
    option: str         # evaluate.py's option
    env: str
    key: str            # a key every valid state dict of this network holds
    checks_digest: bool  # the file name's hex digits are its sha256's first (torch.hub's convention)

    @property
    def digest_prefix(self) -> Optional[str]:
        """The first hex digits of the published file's sha256, from its name, or None."""
        found = re.search(torch.hub.HASH_REGEX, os.path.basename(self.url)) if self.checks_digest else None
        return found.group(1) if found else None

    @property
    def url(self) -> str:
        if self.metrics == "LPIPS":
            from torchvision.models import AlexNet_Weights

            return AlexNet_Weights.IMAGENET1K_V1.url
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

        return URL_INCEPTION_V3


#: The two weight files: "fid" (FID Inception, used by FID and KID) and "lpips" (AlexNet).
#: How :func:`inception_network` brings an image to 299 x 299, recorded beside FID and KID.
FID_RESIZE = "resized to 299 x 299 by torch-fidelity's TF1-compatible bilinear (not antialiased)"
WEIGHTS = {"fid": _Weights("FID and KID", "--fid-weights", FID_WEIGHTS_ENV, "Mixed_7c.branch_pool.conv.weight",
                           checks_digest=False),
           "lpips": _Weights("LPIPS", "--lpips-weights", LPIPS_WEIGHTS_ENV, "features.0.weight", checks_digest=True)}


@dataclass
class WeightsStatus:
    """Where one network's weights come from: ``path`` (a local file), ``source`` (``option`` |
    ``environment`` | ``cache`` | ``download``) and the file's ``sha256``, or ``skipped``: the one
    line saying which metrics are skipped, why, and how to supply the weights."""

    name: str
    path: Optional[str] = None
    source: Optional[str] = None
    skipped: Optional[str] = None
    sha256: Optional[str] = None

    def describe(self) -> str:
        return self.skipped or (f"{WEIGHTS[self.name].metrics}: weights {self.path} ({self.source}, "
                                f"sha256 {self.sha256})" + (f", images {FID_RESIZE}" if self.name == "fid" else ""))


def offline() -> bool:
    """Downloads forbidden by :data:`OFFLINE_ENV` (any value but '', 0, false, no)."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() not in ("", "0", "false", "no")


#: Files already checked in this process: (name, resolved path, size, mtime) -> sha256.
_CHECKED: dict[tuple, str] = {}


def _load_problem(e: Exception) -> str:
    """The first specific line of a ``load_state_dict`` error (missing / unexpected keys, a size
    mismatch), shortened."""
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()] or [type(e).__name__]
    line = next((ln for ln in lines if ln.startswith(("Missing", "Unexpected", "size mismatch"))), lines[0])
    return line if len(line) <= 200 else line[:197] + "..."


def _features_differ(net: nn.Module) -> float:
    """RMS difference of the network's features for a noise image and a smooth ramp (uint8, 64 x 64)."""
    noise = torch.randint(0, 256, (1, 3, 64, 64), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    ramp = torch.linspace(0, 255, 64).round().to(torch.uint8).expand(1, 3, 64, 64)
    with torch.no_grad():
        f = net(torch.cat([noise, ramp])).reshape(2, -1).double()
    return float((f[0] - f[1]).pow(2).mean().sqrt())


#: Below this RMS difference (features of a trained FID Inception are ~0.1-1 and differ by as much)
#: the two probe images count as alike.
_ALIKE_RMS = 1e-4


def _batch_norm_untouched(state: dict) -> bool:
    """Whether every batch norm's running statistics in ``state`` are at their initial values
    (mean 0, variance 1): a network built and saved without training, whatever its weights' init.
    The FID Inception's, converted from TensorFlow's, are its moving averages over ImageNet."""
    means = [v for k, v in state.items() if k.endswith("running_mean") and isinstance(v, torch.Tensor)]
    variances = [v for k, v in state.items() if k.endswith("running_var") and isinstance(v, torch.Tensor)]
    return bool(means) and all(bool((m == 0).all()) for m in means) and all(bool((v == 1).all()) for v in variances)


def check_weights(name: str, path: str, origin: str = "weights file") -> str:
    """Check that ``path`` holds the weights of network ``name`` (``"fid"`` or ``"lpips"``);
    returns its sha256 (hex). Checked once per file per process.

    Raises:
        ValueError: one line naming ``origin`` and the file: missing, unreadable, another
            network's (a key or shape the network does not have; for AlexNet, a sha256 other than
            torchvision's file's), or, for the FID Inception, untrained weights (every batch norm's
            statistics at their initial values) or features that do not tell two images apart.
    """
    from pix2pix_aa.download import sha256_of

    w = WEIGHTS[name]
    p = Path(path).expanduser()
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "no such file"
        raise ValueError(f"{origin} {path}: {what}; give the {w.metrics} weights file (a copy of {w.url})")
    stat = p.stat()
    key = (name, str(p.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _CHECKED:
        return _CHECKED[key]
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line, whatever torch raised
        from pix2pix_aa.checkpoints import load_error_reason

        with open(p, "rb") as f:
            head = f.read(4)
        raise ValueError(f"{origin} {path}: not a PyTorch weights file ({load_error_reason(e, head)}); expected a "
                         f"copy of {w.url}") from None
    if not isinstance(state, dict) or w.key not in state:
        raise ValueError(f"{origin} {path}: not the {w.metrics} network's weights (no {w.key!r}); expected a copy "
                         f"of {w.url}")
    untouched = name == "fid" and _batch_norm_untouched(state)
    del state
    digest = sha256_of(p)
    expected = w.digest_prefix
    if expected and not digest.startswith(expected):
        raise ValueError(f"{origin} {path}: not the {w.metrics} network's published weights (sha256 {digest[:12]}..., "
                         f"the file {os.path.basename(w.url)} starts {expected}); {w.metrics} is defined with those: "
                         f"give a copy of {w.url}")
    try:
        net = inception_network(str(p)) if name == "fid" else lpips_network(str(p))
    except Exception as e:  # noqa: BLE001 - the libraries' strict load says which keys or shapes differ
        raise ValueError(f"{origin} {path}: not the {w.metrics} network's weights ({_load_problem(e)}); expected a "
                         f"copy of {w.url}") from None
    if untouched:  # after the build, so that another network's file is named as such
        _NETWORKS.pop(("fid", str(p)), None)
        raise ValueError(f"{origin} {path}: untrained FID Inception weights (every batch norm's running statistics "
                         f"are still at their initial mean 0 and variance 1); expected a copy of {w.url}")
    if name == "fid":
        rms = _features_differ(net)
        if not rms > _ALIKE_RMS:  # also NaN
            _NETWORKS.pop(("fid", str(p)), None)
            raise ValueError(f"{origin} {path}: the FID Inception built from it gives a noise image and a smooth ramp "
                             f"the same features (RMS difference {rms:.1e}): not a trained network's weights; "
                             f"expected a copy of {w.url}")
    _CHECKED[key] = digest
    return digest


def _library_missing(name: str) -> Optional[str]:
    if name == "fid":
        try:
            import torch_fidelity  # noqa: F401
        except ImportError:
            return ("FID and KID skipped: the FID Inception network needs torch-fidelity "
                    "(pip install torch-fidelity)")
    return None


def resolve_weights(name: str, path: Optional[str] = None, download: Optional[bool] = None,
                    timeout: float = DOWNLOAD_TIMEOUT_S, announce: Optional[Callable[[str], None]] = None,
                    has_option: bool = True) -> WeightsStatus:
    """Find the weights of network ``name`` (``"fid"`` or ``"lpips"``), downloading them into the
    libraries' cache if needed and allowed.

    Args:
        path: a local file (the option's value); None: the environment variable, then the cache.
        download: allow a download (default: unless :func:`offline`).
        timeout: socket timeout of the download, seconds.
        announce: called with one line when a download lasts over :data:`ANNOUNCE_AFTER_S` (the
            libraries' own progress output is held back, so an attempt that fails at once, as
            offline, prints nothing but the skip line).
        has_option: the caller takes evaluate.py's option (``--fid-weights``); False (train.py):
            the skip line names the environment variable alone.

    Returns:
        A :class:`WeightsStatus` with a local ``path``, or ``skipped`` set (no weights reachable).

    Raises:
        ValueError: one line, when a given file does not exist or is not this network's weights
            (a usage error: the user asked for that file; :func:`check_weights`).
    """
    w = WEIGHTS[name]
    missing = _library_missing(name)
    if missing:
        return WeightsStatus(name, skipped=missing)
    for value, source, origin in ((path, "option", w.option), (os.environ.get(w.env), "environment", w.env)):
        if value:
            digest = check_weights(name, value, origin)
            # resolved: results.json is read from elsewhere than the folder evaluate.py ran in
            return WeightsStatus(name, str(Path(value).expanduser().resolve()), source, sha256=digest)
    cached = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(w.url)
    how = (f"pass {w.option} PATH (or set {w.env}) to a copy of {w.url}" if has_option
           else f"set {w.env} to a copy of {w.url}")
    if cached.is_file():
        try:  # a damaged cache file would otherwise fail inside the evaluation, once per model
            digest = check_weights(name, str(cached), "cached file")
        except ValueError as e:
            return WeightsStatus(name, skipped=f"{w.metrics} skipped: {e}; delete it to download it again, or {how}")
        return WeightsStatus(name, str(cached), "cache", sha256=digest)
    if not (download if download is not None else not offline()):
        return WeightsStatus(name, skipped=f"{w.metrics} skipped: no weights in the cache ({cached}) and downloads "
                                            "are off (" + ("--offline or " if has_option else "")
                                            + f"{OFFLINE_ENV}); {how}")
    # Said only if the download lasts (a real transfer), so an offline machine, which fails at once,
    # prints the skip line alone.
    timer = threading.Timer(ANNOUNCE_AFTER_S, announce or (lambda _: None),
                            (f"{w.metrics}: downloading the weights into {cached} (once) from {w.url}",))
    timer.daemon = True
    captured = io.StringIO()
    before = socket.getdefaulttimeout()
    try:  # the libraries' own download into their cache; urllib reads the default socket timeout
        timer.start()
        socket.setdefaulttimeout(timeout)
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(captured):
            torch.hub.load_state_dict_from_url(w.url, progress=False, map_location="cpu", check_hash=name == "lpips")
    except Exception as e:  # noqa: BLE001 - offline, DNS, timeout, HTTP, hash: all mean "no weights"
        text = str(getattr(e, "reason", None) or e).strip()
        reason = text.splitlines()[0] if text else type(e).__name__
        return WeightsStatus(name, skipped=f"{w.metrics} skipped: could not download the weights ({reason}); {how}")
    finally:
        timer.cancel()
        socket.setdefaulttimeout(before)
    try:
        digest = check_weights(name, str(cached), "downloaded file")
    except ValueError as e:
        return WeightsStatus(name, skipped=f"{w.metrics} skipped: {e}; delete it to download it again, or {how}")
    return WeightsStatus(name, str(cached), "download", sha256=digest)


@contextlib.contextmanager
def hub_dir(path: str) -> Iterator[None]:
    """torch.hub's cache folder is ``path`` inside the block and what it was before after it, unset
    included (``torch.hub.set_dir`` alone would pin it and TORCH_HOME would stop counting). Its
    private ``_hub_dir`` is listed in :data:`pix2pix_aa.compat.PRIVATE_ATTRIBUTES` (tested)."""
    before = torch.hub._hub_dir
    torch.hub.set_dir(path)
    try:
        yield
    finally:
        torch.hub._hub_dir = before


_NETWORKS: dict[tuple[str, str], nn.Module] = {}


def inception_network(path: str) -> nn.Module:
    """The FID Inception v3 (torchmetrics' ``NoTrainInceptionV3``, the network torch-fidelity and
    the TF FID use; 2048-d pool features) with the weights in ``path``; built once per process.
    Takes uint8 (N, 3, H, W) and resizes to 299 x 299 itself, as torch-fidelity and the TF FID do
    (:data:`FID_RESIZE`)."""
    key = ("fid", str(path))
    if key not in _NETWORKS:
        from torchmetrics.image.fid import NoTrainInceptionV3

        # antialias=False: torchmetrics' default resizes with PyTorch's antialiased bilinear, whose
        # features differ from torch-fidelity's (and so from published FIDs) by up to a few tenths
        # of a percent; off, it runs torch-fidelity's TF1-compatible bilinear resize.
        net = NoTrainInceptionV3(name="inception-v3-compat", features_list=["2048"],
                                 feature_extractor_weights_path=str(path), antialias=False)
        net.num_features = 2048
        _NETWORKS[key] = net
    return _NETWORKS[key]


class _Lpips(nn.Module):
    """torchmetrics' ``LearnedPerceptualImagePatchSimilarity`` (AlexNet) as (pred, target) -> (N,)."""

    def __init__(self, metric: nn.Module) -> None:
        super().__init__()
        self.metric = metric

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        self.metric.reset()
        self.metric.update(pred, target)
        return self.metric.compute().reshape(-1)


def lpips_network(path: str) -> nn.Module:
    """LPIPS (AlexNet, linear layers v0.1 shipped in torchmetrics) with the AlexNet weights in
    ``path``; built once per process. Inputs in [-1, 1], (N, 3, H, W)."""
    key = ("lpips", str(path))
    if key not in _NETWORKS:
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

        # torchmetrics builds AlexNet through torchvision, which reads torch.hub's cache: point the
        # cache at a folder holding the file under torchvision's name, so it is read, not fetched.
        name = os.path.basename(WEIGHTS["lpips"].url)
        with tempfile.TemporaryDirectory() as hub:
            (Path(hub) / "checkpoints").mkdir()
            link = Path(hub) / "checkpoints" / name
            try:
                link.symlink_to(Path(path).resolve())
            except OSError:  # no symlinks here (some Windows setups): a copy does the same
                shutil.copyfile(path, link)
            with hub_dir(hub):
                metric = LearnedPerceptualImagePatchSimilarity(net_type="alex", reduction="none")
        _NETWORKS[key] = _Lpips(metric).eval()
    return _NETWORKS[key]
