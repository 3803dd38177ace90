"""``pix2pix-aa-data``: the reference pix2pix's data sets and pretrained generators, one command each.

    pix2pix-aa-data download facades             # -> data/pix2pix/facades/{train,val,test}/*.jpg (A|B)
    pix2pix-aa-data model facades_label2photo    # -> checkpoints/facades_label2photo_pretrained/
    pix2pix-aa-data list                         # what there is, and what is here

The same files as the reference's ``datasets/download_pix2pix_dataset.sh`` and
``scripts/download_pix2pix_model.sh`` (junyanz/pytorch-CycleGAN-and-pix2pix), from the same
server; ``--base-url`` or ``PIX2PIX_AA_DATA_URL`` / ``PIX2PIX_AA_MODEL_URL`` name a mirror
(``http(s)://`` or ``file://``). Every download:

* resumes: bytes go to ``<file>.part`` and a later run (or the automatic retry after a dropped
  connection) asks for the rest with an HTTP ``Range`` (``If-Range`` guards against a file that
  changed on the server meanwhile);
* is atomic: the ``.part`` is checked, then becomes the file by ``os.replace`` (a file of that
  name, such as the archive kept from an earlier download, stays until then), a data set is
  extracted into a hidden temporary folder and renamed into place with its ``download.json``
  inside, a model folder is renamed into place with its record: a folder under its final name
  is complete;
* is checked: its size and SHA-256 are recorded at the first download and compared whenever
  the file is used again or downloaded again (or compared with ``--sha256``);
* fails in one ``error:`` line with exit code 1 (network, HTTP, disk, checksum, archive) or 2
  (usage: an unknown name, cityscapes), leaving no half-written folder.

The standard library does the work (urllib, tarfile with the ``data`` extraction filter,
hashlib): no download library adds what is needed here (resume with ``If-Range``, atomic
install, recorded checksums) and the project gains no dependency.
"""

from __future__ import annotations

import argparse
import errno
import gzip
import hashlib
import http.client
import json
import os
import shlex
import shutil
import socket
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from pix2pix_aa.locking import LockHeld, exclusive
from pix2pix_aa.pretrained import (
    MODEL_ROOT,
    MODELS,
    RECORD_FORMAT,
    WEIGHTS_NAME,
    model_folder,
    read_record,
    record_path,
)

__all__ = [
    "DATASETS",
    "DATA_ROOT",
    "DownloadError",
    "UsageError",
    "download_dataset",
    "download_model",
    "fetch",
    "main",
]

#: The reference's server (``download_pix2pix_dataset.sh`` / ``download_pix2pix_model.sh``).
DATA_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/datasets/"
MODEL_URL = "http://efrosgans.eecs.berkeley.edu/pix2pix/models-pytorch/"
DATA_URL_ENV = "PIX2PIX_AA_DATA_URL"
MODEL_URL_ENV = "PIX2PIX_AA_MODEL_URL"
#: Data sets go to ``data/pix2pix/<name>`` (``data/facades`` is the procedural set); their
#: archives stay in ``data/pix2pix/archives/`` (reused offline, and checked) unless
#: ``--delete-archive``.
DATA_ROOT = Path("data/pix2pix")
ARCHIVES = "archives"
#: Written inside an extracted data set, last: what it was extracted from.
MARKER = "download.json"

SPLITS = ("train", "val", "test")
#: The splits each of the reference's archives holds (maps, edges2shoes and edges2handbags have
#: no test/): an archive without one of its set's splits is extracted, with a notice.
DATASET_SPLITS = {
    "facades": SPLITS,
    "maps": ("train", "val"),
    "edges2shoes": ("train", "val"),
    "edges2handbags": ("train", "val"),
    "night2day": SPLITS,
}
#: The reference's pix2pix sets and their sizes as its script lists them (training images).
DATASETS = {name: f"{what}; {', '.join(DATASET_SPLITS[name])}" for name, what in {
    "facades": "CMP Facades: 400 training images (A photo | B label map)",
    "maps": "Google Maps: 1096 training images (A aerial photo | B map)",
    "edges2shoes": "UT Zappos50K: 50k training images (A edges | B photo)",
    "edges2handbags": "Amazon handbags (iGAN): 137k training images (A edges | B photo)",
    "night2day": "Transient Attributes: 20k images of about 100 webcams (A night | B day)",
}.items()}
CITYSCAPES = ("cityscapes is not distributed by the pix2pix server because of its licence: register at "
              "https://cityscapes-dataset.com, download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, "
              "and combine them with the reference's datasets/prepare_cityscapes_dataset.py")

CHUNK = 1 << 20
#: The reference's defaults for the generator options that its ``OfficialModel`` does not name
#: (``--ngf 64``, ``--input_nc 3``, ``--output_nc 3``; ``netG`` and ``norm`` are per model).
REFERENCE_GENERATOR = {"ngf": 64, "input_nc": 3, "output_nc": 3}
#: Seconds before the k-th automatic resume after a dropped connection: k * RETRY_WAIT_S.
RETRY_WAIT_S = 2.0
EXIT_FAILED, EXIT_USAGE = 1, 2


class DownloadError(Exception):
    """A download, check or extraction that failed; the message is one line meant for the user."""


class UsageError(Exception):
    """A request that cannot be met as asked (unknown name, cityscapes); exit code 2."""


# -- small helpers -------------------------------------------------------------------------------
def _mb(n: Optional[int]) -> str:
    """A byte count for people: ``218.2 MB``, ``12.5 kB``, ``512 B``, ``?`` (unknown)."""
    if n is None:
        return "?"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB" if n >= 1e3 else f"{n} B"


def _one_line(e: BaseException) -> str:
    """``Type: message`` on one line (tarfile's messages span several)."""
    return f"{type(e).__name__}: {' '.join(str(e).split())}"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _notice(message: str) -> None:
    from pix2pix_aa.console import notice

    notice(message)


def _fsync_dir(folder: Path) -> None:
    from pix2pix_aa.checkpoints.io import _fsync_dir as fsync_dir

    fsync_dir(folder)


def _write_json(path: Path, obj: Any) -> None:
    """``obj`` as JSON at ``path``, whole or not at all (temporary file beside it, then ``os.replace``)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(_disk_problem(e, f"writing {path}")) from None


def _read_json(path: Path) -> Optional[dict]:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DownloadError(f"{path}: unreadable ({e}); delete it and run the command again") from None
    if not isinstance(value, dict):
        raise DownloadError(f"{path}: not a JSON object; delete it and run the command again")
    return value


def sha256_of(path: Path) -> str:
    """SHA-256 of a file, hex (read in blocks: data set archives are gigabytes)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:  # hashlib.file_digest would do this from Python 3.11 on; 3.10 is supported
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _existing_parent(path: Path) -> Path:
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_space(folder: Path, need: int, what: str) -> None:
    """Refuse before writing ``need`` bytes into ``folder`` (or its nearest existing parent) if
    they do not fit: a full disk found halfway wastes the download."""
    free = shutil.disk_usage(_existing_parent(folder)).free
    if need > free:
        raise DownloadError(f"not enough disk space for {what}: it needs {_mb(need)} in {folder}, {_mb(free)} free; "
                            "free some space or pass --root on a larger disk")


def _disk_problem(e: OSError, what: str) -> str:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"disk full while {what} ({os.strerror(e.errno)}); free some space or pass --root on a larger disk"
    return f"cannot write while {what}: {e}"


def _base_url(given: Optional[str], env: str, default: str) -> str:
    """The mirror to download from, ending in ``/``: ``given`` (``--base-url``), else ``$env``,
    else ``default``. A folder path (no scheme) becomes its ``file://`` URL.

    Raises:
        DownloadError: neither a URL urllib opens (http, https, file) nor an existing folder.
    """
    url = given or os.environ.get(env) or default
    where = "--base-url" if given else env
    try:
        scheme = urllib.parse.urlsplit(url).scheme.lower()
    except ValueError as e:  # e.g. "http://[::1/"
        raise DownloadError(f"{where} {url}: not a valid URL ({e})") from None
    if scheme not in ("http", "https", "file", "ftp"):
        if Path(url).expanduser().is_dir():  # the natural way to name a local mirror
            return Path(url).expanduser().resolve().as_uri() + "/"
        raise DownloadError(f"{where} {url}: not a URL (http://, https://, file://) nor an existing folder")
    return url if url.endswith("/") else url + "/"


def _url_problem(url: str, reason: Any, env: Optional[str] = None) -> str:
    """Why ``url`` could not be opened, in one line with what to do."""
    if isinstance(reason, FileNotFoundError):
        return f"{url}: no such file (check --base-url)"
    if isinstance(reason, socket.gaierror):
        why = f"host not found ({reason.strerror or reason}): no network?"
    elif isinstance(reason, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(reason, (TimeoutError, socket.timeout)):
        why = "timed out"
    else:
        why = str(reason) or type(reason).__name__
    host = urllib.parse.urlsplit(url).netloc or url
    mirror = f"--base-url or {env}" if env else "--base-url"
    return (f"cannot reach {host} for {url}: {why}; use a mirror ({mirror}) or a local copy (docs/DOWNLOADS.md, "
            "offline use)")


@contextmanager
def _progress(enabled: bool) -> Iterator[Any]:
    """A rich progress bar on stderr (bytes, speed, time left), or one that shows nothing."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                  TimeRemainingColumn(), console=Console(stderr=True), disable=not enabled, transient=True) as bar:
        yield bar


def _open_part(path: Path, mode: str):
    """The ``.part`` file being written (one place, so a test can make its writes fail)."""
    return open(path, mode)


def _content_range(value: Optional[str]) -> tuple[Optional[int], Optional[int]]:
    """(first byte, total size) of ``Content-Range: bytes a-b/total`` (total None when ``*``)."""
    try:
        unit, _, rest = (value or "").partition(" ")
        span, _, total = rest.partition("/")
        if unit != "bytes":
            return None, None
        return int(span.split("-")[0]), (None if total == "*" else int(total))
    except ValueError:
        return None, None


# -- one file over HTTP --------------------------------------------------------------------------
def fetch(url: str, dest: Path, *, retries: int = 3, timeout: float = 30.0, progress: bool = False,
          label: Optional[str] = None, env: Optional[str] = None,
          check: Optional[Callable[[Path], None]] = None) -> int:
    """Download ``url`` to ``dest``, resuming and atomic.

    Bytes go to ``<dest>.part`` (and its source URL and validator to ``<dest>.part.json``); a
    ``.part`` of the same URL is continued with ``Range`` / ``If-Range``. A connection that drops
    mid-file is resumed up to ``retries`` times (after ``RETRY_WAIT_S`` x k seconds); one that
    cannot be opened at all (refused, host not found, HTTP error) fails at once. The complete
    file is ``fsync``\\ ed, passed to ``check``, and renamed to ``dest``: an existing ``dest``
    stays untouched until then. No folder is made before the server answers.

    Args:
        url: ``http(s)://`` or ``file://``.
        dest: the final file.
        retries: automatic resumes after a dropped connection.
        timeout: seconds for the connection and for each read.
        progress: show a progress bar on stderr.
        label: the bar's text (default: ``dest``'s name).
        env: the environment variable that names a mirror, for the error message.
        check: called with the complete ``.part`` before it replaces ``dest``; a
            :class:`DownloadError` from it removes the ``.part`` and is raised.

    Returns:
        The file's size in bytes.

    Raises:
        DownloadError: one line (what failed, what is kept, what to do).
    """
    with _one_download_of(dest):
        return _fetch(url, dest, retries=retries, timeout=timeout, progress=progress, label=label, env=env,
                      check=check)


@contextmanager
def _one_download_of(dest: Path) -> Iterator[None]:
    """Hold this machine's lock on downloading ``dest``. Two commands fetching one file shared its
    ``.part``: one appended to the other's live file, and removed it under the other's checksum
    (a FileNotFoundError traceback). The lock file is in the temporary folder, keyed by ``dest``:
    nothing is made under ``--root`` before the server answers.

    Raises:
        DownloadError: another process holds it.
    """
    key = hashlib.sha256(str(dest.resolve()).encode()).hexdigest()[:16]
    try:
        with exclusive(Path(tempfile.gettempdir()) / f"pix2pix-aa-download-{key}.lock"):
            yield
    except LockHeld as e:
        raise DownloadError(f"another pix2pix-aa-data ({e.holder}) is downloading {dest.name} into {dest.parent}; "
                            "wait for it to finish, then run the command again") from None


def _fetch(url: str, dest: Path, *, retries: int, timeout: float, progress: bool, label: Optional[str],
           env: Optional[str], check: Optional[Callable[[Path], None]]) -> int:
    part = dest.with_name(dest.name + ".part")
    meta_path = dest.with_name(dest.name + ".part.json")
    meta = _resumable_meta(url, part, meta_path)
    attempt, restarted = 0, False
    with _progress(progress) as bar:
        task = bar.add_task(label or dest.name, total=None)
        while True:
            offset = part.stat().st_size if part.exists() else 0
            response = _open_url(url, part, offset, meta, timeout, env, restarted)
            if response is None:  # the .part was removed: start again from byte 0, once
                restarted = True
                continue
            with response:
                span = _response_span(response, url, part, offset, restarted)
                if span is None:
                    restarted = True
                    continue
                offset, total = span
                received, lost, meta = _receive(response, url, dest, part, meta_path, offset, total, bar, task)
            if total is not None and received > total:
                part.unlink()
                raise DownloadError(f"{url}: received {received} bytes, more than the {total} announced; removed "
                                    "the download, run the command again")
            if lost is None and (total is None or received == total):
                break
            attempt += 1
            why = _one_line(lost) if lost is not None else "the server closed the connection"
            if attempt > retries:
                raise DownloadError(f"{url}: connection lost after {_mb(received)} of {_mb(total)} ({why}); the "
                                    f"bytes received are kept in {part}: run the same command again to resume")
            _notice(f"{url}: connection lost after {_mb(received)} of {_mb(total)}; resuming "
                    f"({attempt}/{retries})")
            time.sleep(RETRY_WAIT_S * attempt)
    if check is not None:
        try:
            check(part)
        except DownloadError:
            # only the new bytes go: a file already at ``dest`` (a verified archive) stays
            part.unlink(missing_ok=True)
            meta_path.unlink(missing_ok=True)
            raise
    os.replace(part, dest)
    meta_path.unlink(missing_ok=True)
    _fsync_dir(dest.parent)
    return received


def _resumable_meta(url: str, part: Path, meta_path: Path) -> dict:
    """The source URL and validator of an existing ``.part`` (empty without one); a ``.part`` of
    another URL is removed, with a notice."""
    meta = (_read_json(meta_path) or {}) if part.exists() else {}
    if part.exists() and meta.get("url") != url:
        _notice(f"{part}: a partial download of {meta.get('url', 'an unknown URL')}; starting again from {url}")
        part.unlink()
        meta = {}
    return meta


def _open_url(url: str, part: Path, offset: int, meta: dict, timeout: float, env: Optional[str],
              restarted: bool) -> Any:
    """Open ``url`` from byte ``offset`` (``Range``, with ``If-Range`` the validator in ``meta``).
    Returns the response, or None when the server refused the range (HTTP 416: the ``.part`` is
    not a prefix of this file) and the ``.part`` was removed to start again.

    Raises:
        DownloadError: HTTP error, host not found, refused connection (one line, with the mirror variable).
    """
    headers = {"User-Agent": "pix2pix-aa"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
        if meta.get("validator"):
            headers["If-Range"] = meta["validator"]
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset and not restarted:
            part.unlink()
            return None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}" + (
            " (check the name and --base-url)" if e.code == 404 else "")) from None
    except urllib.error.URLError as e:
        raise DownloadError(_url_problem(url, e.reason, env)) from None
    except (OSError, http.client.HTTPException) as e:
        raise DownloadError(_url_problem(url, e, env)) from None
    except ValueError as e:  # urllib's parse of a malformed URL, e.g. "http://[::1/"
        raise DownloadError(f"{url}: not a valid URL ({e}); check --base-url" + (f" or {env}" if env else "")) from None


def _response_span(response: Any, url: str, part: Path, offset: int,
                   restarted: bool) -> Optional[tuple[int, Optional[int]]]:
    """(the byte the response starts at, the file's total size or None) of an open response.
    A partial response (206) that starts elsewhere than ``offset`` removes the ``.part`` and
    returns None (start again); a whole file (200) starts at 0.

    Raises:
        DownloadError: a second partial response at the wrong byte.
    """
    status = getattr(response, "status", None) or 200  # file:// answers without a status
    if status == 206:
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            if restarted:
                raise DownloadError(f"{url}: the server resumed at byte {start}, not {offset}")
            part.unlink()
            return None
        return offset, total
    if offset:
        _notice(f"{url}: the server sent the whole file (it changed, or cannot resume); starting again")
    length = response.headers.get("Content-Length")
    return 0, int(length) if length and length.isdigit() else None


def _receive(response: Any, url: str, dest: Path, part: Path, meta_path: Path, offset: int, total: Optional[int],
             bar: Any, task: Any) -> tuple[int, Optional[BaseException], dict]:
    """Append the response's bytes to ``part`` (from ``offset``; a new file at 0), after checking
    the free space and recording the URL and validator in ``meta_path``; ``fsync`` at the end.

    Returns:
        (bytes in ``part`` now, the error that cut the connection or None, the recorded meta).

    Raises:
        DownloadError: not enough space, or the folder or ``part`` cannot be made or written.
    """
    validator = response.headers.get("ETag") or response.headers.get("Last-Modified")
    if total is not None:
        _check_space(dest.parent, total - offset, f"{dest.name} ({_mb(total)})")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DownloadError(_disk_problem(e, f"making {dest.parent}")) from None
    meta = {"url": url, "validator": validator}
    _write_json(meta_path, meta)
    received = offset
    lost: Optional[BaseException] = None
    bar.update(task, total=total, completed=received)
    try:
        f = _open_part(part, "ab" if offset else "wb")
    except OSError as e:
        raise DownloadError(_disk_problem(e, f"opening {part}")) from None
    with f:
        while True:
            try:
                # read1: what has arrived, up to CHUNK. read(CHUNK) waited for a whole MiB, so on a
                # link that stalls (a timeout) the bytes it had buffered were lost and a resume
                # began at the same offset again.
                chunk = response.read1(CHUNK) if hasattr(response, "read1") else response.read(CHUNK)
            except (OSError, http.client.HTTPException) as e:  # reset, timeout, incomplete
                lost = e
                break
            if not chunk:
                break
            try:
                f.write(chunk)
            except OSError as e:
                raise DownloadError(_disk_problem(e, f"writing {part} ({_mb(received)} kept: run "
                                                    "the same command again to resume)")) from None
            received += len(chunk)
            bar.update(task, completed=received)
        try:
            f.flush()
            os.fsync(f.fileno())
        except OSError as e:
            raise DownloadError(_disk_problem(e, f"writing {part}")) from None
    return received, lost, meta


# -- data sets -----------------------------------------------------------------------------------
def _install(new: Path, final: Path) -> None:
    """Rename the complete folder ``new`` to ``final``, replacing an existing ``final`` (moved
    aside first: a directory cannot be renamed over a non-empty one). ``new`` gets the
    permissions the umask gives a new folder (``tempfile.mkdtemp`` makes it 0700, which other
    users of a shared machine could not read)."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(new, 0o777 & ~umask)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{os.getpid()}.old")
        os.replace(final, old)
    os.replace(new, final)
    _fsync_dir(final.parent)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _refuse_link(final: Path) -> None:
    """``--force`` on a folder that is a symlink (e.g. to a larger disk): the link was replaced by
    a new folder on --root's disk, the data set it pointed to left stale, and its old link kept."""
    if final.is_symlink():
        raise DownloadError(f"{final} is a link to {final.resolve()}: pass --root {final.resolve().parent} to replace "
                            "the data there, or remove the link")


def _remove_stale(folder: Path, name: str) -> None:
    """Temporary folders left by a killed run (``.<name>.*.tmp`` / ``.old``)."""
    if folder.is_dir():
        for stale in [*folder.glob(f".{name}.*.tmp"), *folder.glob(f".{name}.*.old")]:
            if stale.is_symlink():  # rmtree refuses links (silently here)
                stale.unlink()
            else:
                shutil.rmtree(stale, ignore_errors=True)


def _images(folder: Path) -> list[Path]:
    """The image files in ``folder`` as the data sets list them (hidden ``._*`` copies left out),
    so the counts said are the ones that train; [] for a split without any (said as missing)."""
    from pix2pix_aa.data.image_io import list_images

    try:
        return list_images(folder, f"{folder.name}/")
    except FileNotFoundError:
        return []


def _tar_end_problem(tar: tarfile.TarFile) -> Optional[str]:
    """Why ``tar`` (read to its end) lacks the two zero blocks every tar writer ends with, or None;
    then the rest of the stream is read, so that gzip checks its CRC-32 and length (raising
    ``gzip.BadGzipFile`` / ``zlib.error`` / ``EOFError``). tarfile takes the end of the data, or
    a damaged header after the first, as the end of the archive, and stops reading before the
    gzip trailer: a tar cut at a member's boundary, or one with a flipped bit, extracted as a
    smaller or corrupt data set without a word."""
    tar.fileobj.seek(tar.offset)
    tail = tar.fileobj.read(2 * tarfile.BLOCKSIZE)
    if len(tail) < 2 * tarfile.BLOCKSIZE or tail.count(0) != len(tail):
        return f"no end-of-archive marker after its {len(tar.getmembers())} entries: cut short or damaged"
    while tar.fileobj.read(CHUNK):
        pass
    return None


def _first_image_problem(folder: Path) -> Optional[str]:
    """Why the first image of ``folder`` does not decode (an archive of error pages or empty
    files named .jpg), or None: checked before a data set is called ready and its archive's
    checksum recorded."""
    from pix2pix_aa.data.image_io import decode_image

    files = _images(folder)
    if not files:
        return None
    try:
        decode_image(files[0])
    except (OSError, ValueError) as e:
        return " ".join(str(e).split()).replace(str(files[0]), files[0].name)  # not the temporary folder's path
    return None


def _extract(archive: Path, name: str, final: Path, record: dict, downloaded: bool = True) -> dict[str, int]:
    """Extract a data set archive into ``final``, atomically. The archive's top folder (or the
    archive itself) must hold ``train/`` ``val/`` ``test/`` folders of images, end with the tar
    end-of-archive marker, and the first image of each split must decode. A refused archive is
    removed if ``downloaded``; otherwise (a copy put there by hand, or kept and checked from an
    earlier download) it is kept and the message says what to do with it.

    Returns:
        Images per split.
    """
    root = final.parent
    _check_space(root, archive.stat().st_size, f"extracting {archive.name}")
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=root))
    except OSError as e:
        raise DownloadError(_disk_problem(e, f"making a folder in {root}")) from None

    def refuse(why: str, fix: str = f"repack it as {name}/{{train,val,test}}/ or delete it") -> DownloadError:
        if downloaded:
            archive.unlink(missing_ok=True)
            return DownloadError(f"{archive}: {why}; removed it (check --base-url)")
        return DownloadError(f"{archive}: {why}; kept it: {fix}, then run the command again")

    cut = "run the command again to download it again"
    try:
        try:
            with tarfile.open(archive, "r:*") as tar:
                # the "data" filter refuses absolute paths, links out of the folder, devices
                tar.extractall(tmp, filter="data")
                short = _tar_end_problem(tar)
                # The data filter lets links inside the folder through: a test/ that links to train/
                # was a held-out split of training images. The reference's archives hold none.
                links = [f"{m.name} -> {m.linkname}" for m in tar.getmembers() if m.issym() or m.islnk()]
            if short:
                raise refuse(f"not a complete tar archive ({short})", f"delete it or {cut}")
            if links:
                raise refuse(f"it holds links ({', '.join(links[:3])}), not only files: a split could be another "
                             "split's images")
        except tarfile.FilterError as e:
            raise refuse(f"refused by tarfile's data filter ({_one_line(e)}): not a plain data set archive") from None
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:  # before OSError: BadGzipFile is one
            with open(archive, "rb") as f:
                head = f.read(64)
            if head.lstrip()[:1] == b"<":  # a proxy's or server's error page: downloading again gets it again
                raise refuse(f"a web page, not an archive (it starts with {head.lstrip()[:24]!r})",
                             "delete it") from None
            if downloaded:
                archive.unlink(missing_ok=True)
                raise DownloadError(f"{archive}: not a complete .tar.gz archive ({_one_line(e)}); removed it: "
                                    f"{cut}") from None
            raise refuse(f"not a complete .tar.gz archive ({_one_line(e)})", "delete it (a download replaces it) "
                         "or copy it again") from None
        except OSError as e:
            raise DownloadError(_disk_problem(e, f"extracting {archive}")) from None
        top = tmp / name if (tmp / name).is_dir() else tmp
        if not any((top / s).is_dir() for s in SPLITS):
            entries = sorted(p.name for p in tmp.iterdir())
            sub = [p for p in tmp.iterdir() if p.is_dir()]
            if len(sub) == 1 and any((sub[0] / s).is_dir() for s in SPLITS):
                top = sub[0]
                if top.name in (*DATASETS, "cityscapes"):  # e.g. facades served as night2day.tar.gz
                    raise refuse(f"its top folder is {top.name}/, expected {name}/: the {top.name} data set, not "
                                 f"{name}", f"rename it to {top.name}.tar.gz or delete it")
            else:
                raise refuse(f"no train/ val/ test/ folders inside (found {entries[:5]}): not a pix2pix data set "
                             "archive")
        splits = {s: len(_images(top / s)) for s in SPLITS if (top / s).is_dir()}
        if not any(splits.values()):
            raise refuse(f"its {', '.join(splits)} folders hold no images")
        for split in splits:
            bad = _first_image_problem(top / split)
            if bad:
                raise refuse(f"its first {split}/ image does not decode ({bad}): not a data set of images")
        _write_json(top / MARKER, {**record, "name": name, "splits": splits, "extracted_at": _now()})
        _install(top, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return splits


def _describe_splits(splits: dict[str, int]) -> str:
    return ", ".join(f"{s} {n}" for s, n in splits.items()) + " images"


def _announce_missing_splits(name: str, splits: dict[str, int], source: str) -> None:
    """One line when ``splits`` (images per split) lacks a split the reference's ``name`` has
    (an empty folder counts as missing): train.py or evaluate.py would find out much later."""
    expected = DATASET_SPLITS[name]
    missing = [s for s in expected if not splits.get(s)]
    if missing:
        _notice(f"{name}: no {' or '.join(f'{s}/' for s in missing)} images in {source} (the reference's {name} has "
                f"{', '.join(expected)}); only {', '.join(s for s, n in splits.items() if n)} can be used")


def check_name(command: str, name: str) -> None:
    """Raise :class:`UsageError` unless ``name`` is a data set (``command`` ``download``) or a
    pretrained model (``model``) this module downloads; cityscapes gets the reason."""
    if command == "download":
        if name == "cityscapes":
            raise UsageError(CITYSCAPES)
        if name not in DATASETS:
            hint = " (a pretrained model: pix2pix-aa-data model NAME)" if name in MODELS else ""
            raise UsageError(f"unknown data set {name!r}{hint}; available: {', '.join(DATASETS)} (cityscapes: see "
                             "its licence)")
    elif name not in MODELS:
        hint = " (a data set: pix2pix-aa-data download NAME)" if name in DATASETS or name == "cityscapes" else ""
        raise UsageError(f"unknown pretrained model {name!r}{hint}; available: {', '.join(MODELS)}")


def download_dataset(name: str, root: Path = DATA_ROOT, base_url: Optional[str] = None, sha256: Optional[str] = None,
                     force: bool = False, keep_archive: bool = True, retries: int = 3, timeout: float = 30.0,
                     progress: bool = False) -> Path:
    """Download and extract one pix2pix data set into ``<root>/<name>`` (train/ val/ test/ of A|B files).

    An existing ``<root>/<name>`` made by this function is kept (``force``: replaced). The
    archive ``<root>/archives/<name>.tar.gz`` is reused when present (a copy put there by hand
    works offline); its size and SHA-256 go to ``<name>.tar.gz.json`` after the first successful
    extraction, and any later archive of that name must match them (or ``sha256`` when given).

    Returns:
        The data set folder.

    Raises:
        UsageError: an unknown name, or cityscapes (not distributed: licence).
        DownloadError: one line; nothing is left under ``<root>/<name>``.
    """
    check_name("download", name)
    root = Path(root)
    final = root / name
    archive = root / ARCHIVES / f"{name}.tar.gz"
    record_file = archive.with_name(archive.name + ".json")
    _remove_stale(root, name)
    if force:
        _refuse_link(final)
    if final.exists() and not force:
        done = _read_json(final / MARKER)
        if done is None:
            raise DownloadError(f"{final} exists but was not made by pix2pix-aa-data (no {MARKER} in it); move it "
                                "away, or pass --force to replace it")
        if sha256 and done.get("sha256") != sha256:
            raise DownloadError(f"{final} was extracted from an archive with sha256 {done.get('sha256')}, not the "
                                f"{sha256} given; pass --force to download and check it again")
        # Counted again, not read from the record: files removed since would otherwise go unsaid
        # until a training or an evaluation missed them.
        splits = {s: len(_images(final / s)) for s in SPLITS if (final / s).is_dir()}
        recorded = done.get("splits", {})
        _notice(f"{name}: already in {final} ({_describe_splits(splits)}; sha256 "
                f"{str(done.get('sha256'))[:12]}... of {done.get('url')}); --force downloads it again")
        if splits != recorded:
            _notice(f"{name}: {final} no longer holds what was extracted ({_describe_splits(recorded)}); --force "
                    "downloads it again")
        _announce_missing_splits(name, splits, str(final))
        if not keep_archive and archive.is_file():  # --delete-archive given for a set already here
            archive.unlink()
            _notice(f"{name}: deleted {archive} (--delete-archive; its checksum stays recorded)")
        return final
    record = _read_json(record_file)
    if sha256:
        expected, source = sha256, "given with --sha256"
    elif record:
        expected, source = record.get("sha256"), f"recorded in {record_file} at the first download"
    else:
        expected, source = None, None
    url = _base_url(base_url, DATA_URL_ENV, DATA_URL) + f"{name}.tar.gz"
    reused = archive.is_file() and not force
    digests: list[str] = []  # the new file's, hashed once by verify()

    def verify(new: Path) -> None:
        # checked as ``.part``: with --force a kept, verified archive is replaced only by a good one
        digests.append(sha256_of(new))
        if expected and digests[-1] != expected:
            raise DownloadError(f"{url}: sha256 {digests[-1]} does not match {expected} ({source}); removed the "
                                "download" + (f", kept {archive}" if archive.is_file() else "")
                                + ("" if sha256 else f" (delete {record_file} if the server's file was updated)"))

    if reused:
        _notice(f"{name}: using {archive} (no download)")
        digest = sha256_of(archive)
        if expected and digest != expected:
            raise DownloadError(f"{archive}: sha256 {digest} does not match {expected} ({source}): the file is "
                                f"corrupt or another one; delete it (or pass --force) to download it again")
    # --force over a kept archive: the new file stays beside it until it has been extracted, so a
    # download that is not a good archive (no checksum recorded to catch it) never costs the kept one.
    source_file = archive.with_name(archive.name + ".new") if not reused and archive.is_file() else archive
    if not reused:
        _notice(f"{name}: downloading {url}")
        fetch(url, source_file, retries=retries, timeout=timeout, progress=progress, label=f"{name}.tar.gz",
              env=DATA_URL_ENV, check=verify)
        digest = digests[-1]
    size = source_file.stat().st_size
    facts = {"url": url if not reused else (record or {}).get("url", f"local file {archive}"), "size": size,
             "sha256": digest}
    try:
        splits = _extract(source_file, name, final, facts, downloaded=not reused)
    except DownloadError as e:
        if source_file == archive:
            raise
        source_file.unlink(missing_ok=True)
        raise DownloadError(f"{e}; kept {archive}") from None
    if source_file != archive:
        os.replace(source_file, archive)
    if not record or record.get("sha256") != digest:
        _write_json(record_file, {**facts, "recorded_at": _now()})
    if not keep_archive:
        archive.unlink()
    _notice(f"{name}: ready in {final} ({_describe_splits(splits)}; {_mb(size)}, sha256 {digest[:12]}...)")
    _announce_missing_splits(name, splits, archive.name)
    return final


# -- pretrained generators -----------------------------------------------------------------------
def _model_record(name: str, url: str, size: int, digest: str, info: dict, data_root: Path) -> dict:
    model = MODELS[name]
    return {
        "format": RECORD_FORMAT,
        "name": name,
        "source": {"url": url, "size": size, "sha256": digest, "downloaded_at": _now()},
        "generator": {k: info[k] for k in ("netG", "norm", "ngf", "input_nc", "output_nc")},
        "data": {"dataset": "aligned", "data_dir": str(Path(data_root) / model.dataset),
                 "direction": model.direction, "load_size": model.load_size, "crop_size": model.crop_size,
                 "preprocess": "resize_and_crop", "input_nc": info["input_nc"], "output_nc": info["output_nc"],
                 "split": model.split},
        "trained_on": f"{model.task}: the reference pix2pix on {model.dataset} (pix2pix-aa-data download "
                      f"{model.dataset}), --direction {model.direction}, {model.load_size} px resized, "
                      f"{model.crop_size} px crops",
    }


def _announce_architecture(name: str, info: dict) -> None:
    """One line naming every option of the downloaded generator that is not the reference's
    default (read from the file's keys and shapes; dropout only where the keys show it)."""
    model = MODELS[name]
    defaults = {"netG": model.netG, "norm": model.norm, **REFERENCE_GENERATOR}
    differ = [f"{k} {info[k]} (default {v})" for k, v in defaults.items() if info[k] != v]
    if info.get("dropout_from") == "keys" and not info.get("dropout"):
        differ.append("no dropout (default: dropout)")  # pix2pix trains with dropout
    if differ:
        _notice(f"{name}: the file's generator is not the reference's default architecture: {', '.join(differ)}; "
                "recorded as found")


def _set_data_dir(name: str, weights: Path, data_dir: Path) -> None:
    """Record ``data_dir`` as the downloaded model's data folder (``--data-root`` given again),
    which evaluate.py NAME reads; said when it changes."""
    path = record_path(weights)
    record = _read_json(path) or {}
    old = (record.get("data") or {}).get("data_dir")
    if old != str(data_dir):
        record.setdefault("data", {})["data_dir"] = str(data_dir)
        _write_json(path, record)
        _notice(f"{name}: data_dir {data_dir} recorded in {path} (was {old})")


def _drop(partial: Path) -> None:
    """Remove a model's finished or refused download, and its ``.partial`` folder once empty
    (other downloads may be in progress there)."""
    partial.unlink(missing_ok=True)
    try:
        partial.parent.rmdir()
    except OSError:
        pass


def download_model(name: str, root: Path = MODEL_ROOT, data_root: Optional[Path] = None, base_url: Optional[str] = None,
                   sha256: Optional[str] = None, force: bool = False, retries: int = 3, timeout: float = 30.0,
                   progress: bool = False) -> Path:
    """Download one official pix2pix generator to ``<root>/<name>_pretrained/latest_net_G.pth``
    with its record ``latest_net_G.json`` (architecture read from the file, data settings of
    :data:`pix2pix_aa.pretrained.MODELS`, ``data_dir`` = ``<data_root>/<data set>`` (``data_root``
    None: ``data/pix2pix``; given for a model already here, its record takes it), source URL,
    size, SHA-256).

    An existing download is kept after its SHA-256 is checked against its record (``force``:
    downloaded again, and checked against the previous record unless ``sha256`` is given).

    Returns:
        The ``.pth`` file.

    Raises:
        UsageError: an unknown name.
        DownloadError: one line; no folder is left under ``<root>/<name>_pretrained``.
    """
    from pix2pix_aa.reference import load_reference_generator

    check_name("model", name)
    root = Path(root)
    folder = model_folder(name, root)
    weights = folder / WEIGHTS_NAME
    if force:
        _refuse_link(folder)
    try:
        record = read_record(weights) if folder.exists() else None
    except ValueError as e:
        if not force:
            raise DownloadError(f"{e}; or pass --force") from None
        record = None  # replaced below; nothing recorded to check the new file against
    if folder.exists() and not force:
        if record is not None and not weights.is_file():
            raise DownloadError(f"{weights} is missing (its record {record_path(weights).name} is there): download it "
                                f"again with pix2pix-aa-data model {name} --force")
        if record is None:
            raise DownloadError(f"{folder} exists but was not made by pix2pix-aa-data (no {WEIGHTS_NAME} with its "
                                f"{record_path(weights).name}); move it away, or pass --force to replace it")
        digest, expected = sha256_of(weights), sha256 or record.get("source", {}).get("sha256")
        if digest != expected:
            raise DownloadError(f"{weights}: sha256 {digest} does not match {expected} ("
                                + ("given with --sha256" if sha256 else f"recorded in {record_path(weights)}")
                                + "): the file changed since it was downloaded; pass --force to download it again")
        _notice(f"{name}: already in {weights} (sha256 {digest[:12]}... checked)")
        if data_root is not None:  # given for a model already here: its record takes the new folder
            _set_data_dir(name, weights, Path(data_root) / MODELS[name].dataset)
        return weights
    expected = sha256 or (record or {}).get("source", {}).get("sha256")
    url = _base_url(base_url, MODEL_URL_ENV, MODEL_URL) + f"{name}.pth"
    _remove_stale(root, folder.name)
    partial = root / ".partial" / f"{name}.pth"
    _notice(f"{name}: downloading {url}")
    size = fetch(url, partial, retries=retries, timeout=timeout, progress=progress, label=f"{name}.pth",
                 env=MODEL_URL_ENV)
    digest = sha256_of(partial)
    if expected and digest != expected:
        _drop(partial)
        raise DownloadError(f"{url}: sha256 {digest} does not match {expected} ("
                            + ("given with --sha256" if sha256 else f"recorded in {record_path(weights)}")
                            + "); removed the download")
    try:
        _, info = load_reference_generator(partial)
    except ValueError as e:
        _drop(partial)
        # The loader's words are for files the user names: here the file is the download's
        # temporary copy, and no option makes this command unpickle code.
        reason = str(e).replace(f"{partial}: ", "").split("; if you trust this file")[0]
        raise DownloadError(f"{url}: not a reference pix2pix generator ({reason}); removed the download") from None
    model = MODELS[name]
    _announce_architecture(name, info)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=root))
    except OSError as e:
        raise DownloadError(_disk_problem(e, f"making a folder in {root}")) from None
    try:
        os.replace(partial, tmp / WEIGHTS_NAME)
        _write_json(record_path(tmp / WEIGHTS_NAME), _model_record(name, url, size, digest, info,
                                                                   DATA_ROOT if data_root is None else data_root))
        _install(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _drop(partial)
    _notice(f"{name}: ready in {weights} ({info['netG']}, norm {info['norm']}; {model.task}, trained on "
            f"{model.dataset} {model.direction}; {_mb(size)}, sha256 {digest[:12]}...); score it with: "
            # evaluate.py NAME looks under ./checkpoints: another --root is scored by its folder.
            f"python evaluate.py {name if root == MODEL_ROOT else shlex.quote(str(folder))}")
    return weights


# -- command line --------------------------------------------------------------------------------
def _sha256_arg(text: str) -> str:
    value = text.strip().lower()
    if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
        raise argparse.ArgumentTypeError(f"expected 64 hexadecimal digits (a SHA-256), got {text!r}")
    return value


def _number(cast: type, what: str, ok: Any) -> Any:
    """An argparse type: ``cast(text)`` if ``ok`` of it, else the usage error ``expected <what>``."""
    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {value}")
        return value
    return parse


def _add_transfer_options(p: argparse.ArgumentParser, env: str, default: str) -> None:
    p.add_argument("--base-url", default=None,
                   help=f"a mirror of the files (http(s):// or file://); default: ${env}, else {default}")
    p.add_argument("--sha256", type=_sha256_arg, default=None,
                   help="the file's expected SHA-256 (one NAME only); default: the value recorded at the first "
                        "download, if any")
    p.add_argument("--force", action="store_true", help="download again and replace what is there")
    p.add_argument("--retries", type=_number(int, "a whole number >= 0", lambda v: v >= 0), default=3,
                   help="automatic resumes after a dropped connection (default 3)")
    p.add_argument("--timeout", type=_number(float, "seconds > 0", lambda v: v > 0), default=30.0,
                   help="seconds to connect and per read (default 30)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: shown on a terminal)")
    p.add_argument("--debug", action="store_true", help="show full tracebacks")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pix2pix-aa-data",
        description="Download the reference pix2pix's data sets and pretrained generators (docs/DOWNLOADS.md).")
    sub = p.add_subparsers(dest="command", required=True, metavar="{download,model,list}")
    d = sub.add_parser("download", help="download and extract pix2pix data sets",
                       description="Download and extract pix2pix data sets into <root>/<name>: train/ val/ test/ "
                                   "folders of A|B images (--data.dataset aligned).")
    d.add_argument("names", nargs="+", metavar="NAME", help=f"{', '.join(DATASETS)}")
    d.add_argument("--root", type=Path, default=DATA_ROOT, help=f"where the data sets go (default {DATA_ROOT})")
    d.add_argument("--delete-archive", action="store_true",
                   help=f"delete the .tar.gz after extracting (default: kept in <root>/{ARCHIVES}/ for reuse)")
    _add_transfer_options(d, DATA_URL_ENV, DATA_URL)
    m = sub.add_parser("model", help="download official pretrained pix2pix generators",
                       description="Download official pix2pix generators into <root>/<name>_pretrained/, with "
                                   "the data settings they were trained on (evaluate.py NAME reads them).")
    m.add_argument("names", nargs="+", metavar="NAME", help=f"{', '.join(MODELS)}")
    m.add_argument("--root", type=Path, default=MODEL_ROOT, help=f"where the models go (default {MODEL_ROOT})")
    m.add_argument("--data-root", type=Path, default=None,
                   help=f"where `download` put (or will put) the data sets, recorded for evaluate.py (default "
                        f"{DATA_ROOT}; given for a model already here, its record is updated)")
    _add_transfer_options(m, MODEL_URL_ENV, MODEL_URL)
    lister = sub.add_parser("list", help="what can be downloaded, and what is here")
    lister.add_argument("--root", type=Path, default=DATA_ROOT, help=f"data sets folder (default {DATA_ROOT})")
    lister.add_argument("--model-root", type=Path, default=MODEL_ROOT,
                        help=f"models folder (default {MODEL_ROOT})")
    return p


def _list(args: argparse.Namespace) -> None:
    print("data sets (pix2pix-aa-data download NAME):")
    for name, what in DATASETS.items():
        here = args.root / name / MARKER
        print(f"  {name:16s} {what}" + (f"  [here: {args.root / name}]" if here.is_file() else ""))
    print(f"  {'cityscapes':16s} not distributed (licence): see `pix2pix-aa-data download cityscapes`")
    print("pretrained generators (pix2pix-aa-data model NAME; then python evaluate.py NAME):")
    for name, model in MODELS.items():
        here = model_folder(name, args.model_root) / WEIGHTS_NAME
        print(f"  {name:20s} {model.task}; {model.dataset}, {model.direction}, {model.crop_size} px"
              + (f"  [here: {here}]" if here.is_file() else ""))


def main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``pix2pix-aa-data``. Exit codes: 0 done, 1 a download or check failed, 2 usage."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "list":
        _list(args)
        return 0
    if args.sha256 and len(args.names) > 1:
        parser.error("--sha256 checks one file: give one NAME with it")
    progress = not args.no_progress and sys.stderr.isatty()
    try:
        for name in args.names:  # every name checked before anything is downloaded
            check_name(args.command, name)
        for name in args.names:
            options = dict(base_url=args.base_url, sha256=args.sha256, force=args.force, retries=args.retries,
                           timeout=args.timeout, progress=progress)
            if args.command == "download":
                download_dataset(name, root=args.root, keep_archive=not args.delete_archive, **options)
            else:
                download_model(name, root=args.root, data_root=args.data_root, **options)
    except UsageError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    except DownloadError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted; what was received is kept as the download's .part file (in --root's archives/ "
              "or .partial/): run the same command again to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
