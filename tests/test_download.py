"""pix2pix-aa-data, offline: data sets and pretrained generators from a local HTTP server.

The server (http.server in a thread on 127.0.0.1) serves archives in the reference's layout and
a reference-format generator state_dict, both made here; it honours ``Range`` / ``If-Range`` and
can drop the connection partway through a file. Every failure must be one ``error:`` line, a
non-zero exit code, and no half-written folder.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from pix2pix_aa import download
from pix2pix_aa.download import main

DATA = "/pix2pix/datasets/"
MODELS = "/pix2pix/models-pytorch/"


# -- a local server ------------------------------------------------------------------------------
@dataclass
class ServerState:
    files: dict[str, bytes] = field(default_factory=dict)
    #: path -> body bytes sent before the connection is dropped (once: the next request is whole)
    drop_after: dict[str, int] = field(default_factory=dict)
    #: path -> body bytes sent before the server stalls for ``stall_s`` and then drops (once)
    stall_after: dict[str, int] = field(default_factory=dict)
    stall_s: float = 1.0
    ranges: bool = True
    requests: list[tuple[str, str | None, str | None]] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        state: ServerState = self.server.state
        state.requests.append((self.path, self.headers.get("Range"), self.headers.get("If-Range")))
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404, "Not Found")
            return
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        wanted = self.headers.get("Range")
        start = 0
        if wanted and state.ranges and self.headers.get("If-Range") in (None, etag):
            start = int(wanted.removeprefix("bytes=").split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(body) - start))
        self.send_header("ETag", etag)
        self.end_headers()
        payload = body[start:]
        stall = state.stall_after.pop(self.path, None)
        if stall is not None:  # part of the body, then nothing until the client's timeout
            self.wfile.write(payload[:stall])
            self.wfile.flush()
            time.sleep(state.stall_s)
            self.close_connection = True
            return
        cut = state.drop_after.pop(self.path, None)
        if cut is not None:  # part of the body, then the connection goes away
            self.wfile.write(payload[:cut])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


class QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:  # the dropped connections
        pass


@pytest.fixture
def server():
    srv = QuietServer(("127.0.0.1", 0), Handler)
    srv.state = ServerState()
    # serve_forever's default poll of 0.5 s made every test's shutdown wait up to half a second
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    srv.url = f"http://127.0.0.1:{srv.server_address[1]}"
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def closed_port() -> str:
    """A base URL on 127.0.0.1 where nothing listens: connections are refused at once."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"http://127.0.0.1:{port}"


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(download, "RETRY_WAIT_S", 0.0)
    for env in (download.DATA_URL_ENV, download.MODEL_URL_ENV):
        monkeypatch.delenv(env, raising=False)


# -- files in the reference's layout -------------------------------------------------------------
SPLITS = {"train": 3, "val": 1, "test": 2}


def ab_jpeg(seed: int, size: int = 64) -> bytes:
    """An A|B pair as the reference stores it: one JPEG, size x 2*size."""
    pixels = np.random.default_rng(seed).integers(0, 256, (size, 2 * size, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def make_archive(name: str = "facades", splits: dict[str, int] = SPLITS, extra: dict[str, bytes] | None = None,
                 seed: int = 0) -> bytes:
    """``<name>/<split>/<i>.jpg`` in a .tar.gz, folders as entries too (as the reference's archives)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        def add(path: str, data: bytes | None) -> None:
            info = tarfile.TarInfo(path)
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))

        add(name, None)
        for split, n in splits.items():
            add(f"{name}/{split}", None)
            for i in range(1, n + 1):
                add(f"{name}/{split}/{i}.jpg", ab_jpeg(seed * 1000 + list(splits).index(split) * 100 + i))
        for path, data in (extra or {}).items():
            add(path, data)
    return out.getvalue()


@pytest.fixture(scope="module")
def facades_tgz() -> bytes:
    return make_archive()


def reference_generator_bytes(num_downs: int = 8, ngf: int = 4, seed: int = 0) -> bytes:
    """A reference-format U-Net generator state_dict (the keys the reference's UnetGenerator
    saves: a re-statement of its modules in tests/test_reference.py), random weights."""
    from test_reference import RefUnet, randomise

    out = io.BytesIO()
    torch.save(randomise(RefUnet(3, 3, num_downs, ngf, norm="batch", dropout=True), seed).state_dict(), out)
    return out.getvalue()


@pytest.fixture(scope="module")
def generator_pth() -> bytes:
    return reference_generator_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def run(capsys, *args: str) -> tuple[int, list[str]]:
    """main(args) -> (exit code, its error: lines); no traceback may escape."""
    code = main([*args, "--no-progress"] if args and args[0] != "list" else list(args))
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, [line for line in err.splitlines() if line.startswith("error:")]


def leftovers(root: Path) -> list[str]:
    """Hidden temporary folders / files left in ``root`` (there must be none)."""
    return sorted(p.name for p in root.glob(".*")) if root.exists() else []


# -- data sets -----------------------------------------------------------------------------------
def test_download_extracts_the_reference_layout_and_records_size_and_sha256(tmp_path, server, facades_tgz, capsys):
    from pix2pix_aa.data import Pix2PixDataModule

    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    code, errors = run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    assert (code, errors) == (0, [])
    folder = root / "facades"
    assert {s: len(list((folder / s).glob("*.jpg"))) for s in SPLITS} == SPLITS
    record = json.loads((root / "archives" / "facades.tar.gz.json").read_text())
    assert record["size"] == len(facades_tgz) and record["sha256"] == sha(facades_tgz)
    assert record["url"] == server.url + DATA + "facades.tar.gz"
    marker = json.loads((folder / "download.json").read_text())
    assert marker["sha256"] == sha(facades_tgz) and marker["splits"] == SPLITS
    assert (root / "archives" / "facades.tar.gz").read_bytes() == facades_tgz
    assert leftovers(root) == [] and not list((root / "archives").glob("*.part*"))
    # the layout --data.dataset aligned reads: A | B halves, labels (B) -> photo (A) with BtoA
    dm = Pix2PixDataModule(data_dir=str(folder), dataset="aligned", direction="BtoA", crop_size=64, load_size=64,
                           num_workers=0)
    test = dm.eval_dataset("test")
    assert len(test) == 2 and test[0]["input"].shape == (3, 64, 64)
    # again: nothing downloaded, the folder kept
    before = len(server.state.requests)
    assert run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA) == (0, [])
    assert len(server.state.requests) == before == 1


def test_mirror_from_the_environment_and_base_url_first(tmp_path, server, closed_port, facades_tgz, capsys,
                                                        monkeypatch):
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    monkeypatch.setenv(download.DATA_URL_ENV, server.url + DATA.rstrip("/"))  # with or without the slash
    assert run(capsys, "download", "facades", "--root", str(tmp_path / "a")) == (0, [])
    assert server.state.requests[-1][0] == DATA + "facades.tar.gz"
    monkeypatch.setenv(download.DATA_URL_ENV, closed_port)  # --base-url wins over the variable
    assert run(capsys, "download", "facades", "--root", str(tmp_path / "b"), "--base-url", server.url + DATA) == (0, [])
    assert len(server.state.requests) == 2


@pytest.mark.parametrize("ranges", [True, False], ids=["range", "server-without-range"])
def test_a_dropped_connection_is_resumed_in_the_same_command(tmp_path, server, facades_tgz, capsys, ranges):
    half = len(facades_tgz) // 2
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    server.state.drop_after[DATA + "facades.tar.gz"] = half
    server.state.ranges = ranges
    root = tmp_path / "data"
    assert run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA) == (0, [])
    assert len(server.state.requests) == 2
    _, first_range, _ = server.state.requests[0]
    _, second_range, if_range = server.state.requests[1]
    assert first_range is None and second_range == f"bytes={half}-" and if_range.startswith('"')
    assert (root / "archives" / "facades.tar.gz").read_bytes() == facades_tgz
    assert len(list((root / "facades" / "train").glob("*.jpg"))) == 3


def test_an_interrupted_download_fails_in_one_line_and_the_next_run_resumes(tmp_path, server, facades_tgz, capsys):
    half = len(facades_tgz) // 2
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    server.state.drop_after[DATA + "facades.tar.gz"] = half
    root = tmp_path / "data"
    args = ("download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    code, errors = run(capsys, *args, "--retries", "0")
    assert code == 1 and len(errors) == 1
    assert "connection lost after" in errors[0] and "run the same command again to resume" in errors[0]
    assert not (root / "facades").exists() and leftovers(root) == []
    part = root / "archives" / "facades.tar.gz.part"
    assert part.read_bytes() == facades_tgz[:half]
    assert run(capsys, *args) == (0, [])
    assert server.state.requests[-1][1] == f"bytes={half}-"  # only the rest was asked for
    assert (root / "archives" / "facades.tar.gz").read_bytes() == facades_tgz and not part.exists()
    assert (root / "facades" / "download.json").is_file()


def test_bytes_received_before_a_stall_are_kept(tmp_path, server, facades_tgz, capsys):
    """A 1 MiB read() waited for the whole MiB: the bytes a stalled link had sent were dropped at
    the timeout (the .part stayed empty), so each resume began at the same offset again."""
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    server.state.stall_after[DATA + "facades.tar.gz"] = 4096
    root = tmp_path / "data"
    code, errors = run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA,
                       "--retries", "0", "--timeout", "0.3")
    assert code == 1 and "connection lost after 4.1 kB" in errors[0], errors
    assert (root / "archives" / "facades.tar.gz.part").read_bytes() == facades_tgz[:4096]


def test_a_second_download_of_the_same_file_is_one_line(tmp_path, server, facades_tgz, capsys):
    """Two commands shared the .part: one appended to the other's live file and died with a
    FileNotFoundError traceback when the other renamed it."""
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    with download._one_download_of(root / "archives" / "facades.tar.gz"):  # as a running command holds it
        code, errors = run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    holder = f"pid {os.getpid()} on {socket.gethostname()}"
    assert code == 1 and errors == [f"error: another pix2pix-aa-data ({holder}) is downloading facades.tar.gz into "
                                    f"{root / 'archives'}; wait for it to finish, then run the command again"]
    assert server.state.requests == [] and not root.exists()
    assert run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA) == (0, [])


def cut_at_a_member(tgz: bytes) -> bytes:
    """``tgz``'s tar cut right before its last member, gzipped whole again: a complete gzip stream
    of a tar without its end-of-archive marker (tarfile reads it as a shorter archive)."""
    raw = gzip.decompress(tgz)
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        last = tar.getmembers()[-1].offset
    return gzip.compress(raw[:last])


def images_that_are_not(body: bytes) -> bytes:
    """An archive in the reference's layout whose .jpg files hold ``body`` (an error page, nothing)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for split in ("train", "val", "test"):
            info = tarfile.TarInfo(f"facades/{split}/1.jpg")
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))
    return out.getvalue()


def flip_a_bit(data: bytes) -> bytes:
    """``data`` with one bit of its middle byte flipped: inside the deflate stream of a .tar.gz,
    where tarfile alone extracts it (its members corrupt) without an error."""
    damaged = bytearray(data)
    damaged[len(data) // 2] ^= 1
    return bytes(damaged)


@pytest.mark.parametrize("damage", ["truncated", "not-gzip", "no-layout", "unsafe-member", "cut-at-a-member",
                                    "empty-jpgs", "html-jpgs", "flipped-bit", "bad-crc", "html-page"])
def test_a_bad_archive_is_one_line_and_leaves_no_folder(tmp_path, server, facades_tgz, capsys, damage):
    body = {"truncated": facades_tgz[: len(facades_tgz) * 2 // 3],
            "not-gzip": b"PK\x03\x04 a zip file, not a tar" * 40,
            "no-layout": make_archive(splits={"images": 2}),
            "unsafe-member": make_archive(extra={"../escaped.txt": b"x"}),
            # before: extracted as a data set one test image short, without a word
            "cut-at-a-member": cut_at_a_member(facades_tgz),
            # before: "ready", and the archive's checksum recorded as the one to expect
            "empty-jpgs": images_that_are_not(b""),
            "html-jpgs": images_that_are_not(b"<html>404 Not Found</html>"),
            # before: "ready", its images corrupt, and that file's checksum recorded
            "flipped-bit": flip_a_bit(facades_tgz),
            # every member whole, the gzip trailer's CRC-32 wrong: read only when the stream is read to its end
            "bad-crc": facades_tgz[:-8] + bytes([facades_tgz[-8] ^ 1]) + facades_tgz[-7:],
            # before: "not a complete .tar.gz archive (ReadError: ...); ... run the command again"
            "html-page": b"<!DOCTYPE html><html><body>Service Unavailable</body></html>"}[damage]
    server.state.files[DATA + "facades.tar.gz"] = body
    root = tmp_path / "data"
    code, errors = run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    assert code == 1 and len(errors) == 1
    expected = {"truncated": "not a complete .tar.gz archive", "not-gzip": "not a complete .tar.gz archive",
                "no-layout": "no train/ val/ test/ folders inside",
                "unsafe-member": "refused by tarfile's data filter",
                "cut-at-a-member": "not a complete tar archive (no end-of-archive marker after its 9 entries: "
                                   "cut short or damaged",
                "empty-jpgs": "its first train/ image does not decode (1.jpg: file is empty",
                "html-jpgs": "its first train/ image does not decode (1.jpg:",
                "flipped-bit": "not a complete ",  # tar archive (a damaged header) or .tar.gz archive (the CRC)
                "bad-crc": "not a complete .tar.gz archive (BadGzipFile: CRC check failed",
                "html-page": "a web page, not an archive (it starts with b'<!DOCTYPE html><html><bo')"}[damage]
    assert expected in errors[0] and "removed it" in errors[0]
    if damage == "unsafe-member":
        assert "OutsideDestinationError" in errors[0] and not (tmp_path / "escaped.txt").exists()
    assert not (root / "facades").exists() and leftovers(root) == []
    assert not (root / "archives" / "facades.tar.gz").exists()  # the next run downloads again
    assert not (root / "archives" / "facades.tar.gz.json").exists()  # nothing recorded


def test_a_wrong_checksum_is_one_line_and_leaves_nothing(tmp_path, server, facades_tgz, capsys):
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    code, errors = run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA,
                       "--sha256", "0" * 64)
    assert code == 1 and len(errors) == 1
    assert f"sha256 {sha(facades_tgz)} does not match {'0' * 64} (given with --sha256)" in errors[0]
    assert not (root / "facades").exists() and not (root / "archives" / "facades.tar.gz").exists()
    assert leftovers(root) == []
    # the right value is accepted
    assert run(capsys, "download", "facades", "--root", str(root), "--base-url", server.url + DATA,
               "--sha256", sha(facades_tgz).upper()) == (0, [])


def test_the_recorded_checksum_is_checked_when_the_file_comes_again(tmp_path, server, facades_tgz, capsys):
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    args = ("download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    assert run(capsys, *args, "--delete-archive") == (0, [])
    assert not (root / "archives" / "facades.tar.gz").exists()
    # the server now sends another (valid) archive under the same name
    other = make_archive(seed=1)
    server.state.files[DATA + "facades.tar.gz"] = other
    code, errors = run(capsys, *args, "--force")
    assert code == 1 and len(errors) == 1
    assert f"sha256 {sha(other)} does not match {sha(facades_tgz)} (recorded in" in errors[0]
    assert (root / "facades" / "download.json").is_file()  # the good copy is kept: --force replaced nothing
    # a kept archive that changed on disk is refused when it is used again
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    assert run(capsys, *args, "--force") == (0, [])
    archive = root / "archives" / "facades.tar.gz"
    archive.write_bytes(facades_tgz[:-1] + bytes([facades_tgz[-1] ^ 1]))
    for p in sorted((root / "facades").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (root / "facades").rmdir()
    code, errors = run(capsys, *args)
    assert code == 1 and "the file is corrupt or another one; delete it (or pass --force)" in errors[0]
    assert not (root / "facades").exists()


def test_a_forced_download_that_fails_its_checksum_keeps_the_verified_archive(tmp_path, facades_tgz, capsys):
    """--force downloads beside the kept archive: a new file that fails the recorded checksum is
    removed, the verified archive stays (the data set can be made from it again, offline)."""
    mirror = tmp_path / "m2"
    mirror.mkdir()
    (mirror / "facades.tar.gz").write_bytes(facades_tgz)
    root = tmp_path / "data"
    archive = root / "archives" / "facades.tar.gz"
    args = ("download", "facades", "--root", str(root), "--base-url", mirror.as_uri() + "/")
    assert run(capsys, *args) == (0, [])
    (mirror / "facades.tar.gz").write_bytes(make_archive(seed=1))  # another file under the same name
    code, errors = run(capsys, *args, "--force")
    assert code == 1 and len(errors) == 1
    assert archive.read_bytes() == facades_tgz and not list(archive.parent.glob("*.part*"))
    assert f"does not match {sha(facades_tgz)} (recorded in" in errors[0]
    assert f"removed the download, kept {archive}" in errors[0]
    assert (root / "facades" / "download.json").is_file() and leftovers(root) == []
    (mirror / "facades.tar.gz").unlink()  # no mirror: the kept archive alone makes the data set again
    for p in sorted((root / "facades").rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    (root / "facades").rmdir()
    assert run(capsys, *args) == (0, []) and len(list((root / "facades" / "test").glob("*.jpg"))) == 2


def test_a_forced_download_that_is_not_a_good_archive_keeps_the_kept_one(tmp_path, facades_tgz, capsys):
    """With no checksum to catch it (the record deleted, as the checksum error advises), a new file
    that is not a usable archive was renamed over the kept one before extraction failed."""
    mirror = tmp_path / "m3"
    mirror.mkdir()
    (mirror / "facades.tar.gz").write_bytes(facades_tgz)
    root = tmp_path / "data"
    archive = root / "archives" / "facades.tar.gz"
    args = ("download", "facades", "--root", str(root), "--base-url", mirror.as_uri() + "/", "--force")
    assert run(capsys, *args[:-1]) == (0, [])
    for served in (b"not a gzip file at all", make_archive("maps")):
        archive.with_name("facades.tar.gz.json").unlink(missing_ok=True)
        (mirror / "facades.tar.gz").write_bytes(served)
        code, errors = run(capsys, *args)
        assert code == 1 and len(errors) == 1 and errors[0].endswith(f"; kept {archive}"), errors
        assert archive.read_bytes() == facades_tgz and [p.name for p in archive.parent.iterdir()] == [archive.name]
        assert (root / "facades" / "download.json").is_file() and leftovers(root) == []


def test_an_archive_of_another_data_set_is_refused(tmp_path, server, closed_port, facades_tgz, capsys):
    server.state.files[DATA + "night2day.tar.gz"] = facades_tgz  # its top folder is facades/
    root = tmp_path / "data"
    archive = root / "archives" / "night2day.tar.gz"
    args = ("download", "night2day", "--root", str(root))
    code, errors = run(capsys, *args, "--base-url", server.url + DATA)
    assert code == 1 and len(errors) == 1
    assert f"{archive}: its top folder is facades/, expected night2day/" in errors[0]
    assert errors[0].endswith("removed it (check --base-url)")
    assert not (root / "night2day").exists() and not archive.exists() and leftovers(root) == []
    assert not archive.with_name("night2day.tar.gz.json").exists()
    archive.write_bytes(facades_tgz)  # a copy put there by hand under the wrong name: refused, kept
    code, errors = run(capsys, *args, "--base-url", closed_port)
    assert code == 1 and "expected night2day/" in errors[0] and "rename it to facades.tar.gz or delete it" in errors[0]
    assert archive.read_bytes() == facades_tgz and not (root / "night2day").exists()
    good = make_archive("night2day")
    server.state.files[DATA + "night2day.tar.gz"] = good
    assert run(capsys, *args, "--base-url", server.url + DATA, "--force") == (0, [])
    assert archive.read_bytes() == good and (root / "night2day" / "download.json").is_file()


@pytest.mark.parametrize("name,splits,missing", [
    ("facades", {"train": 4, "val": 2}, "no test/ images"),
    ("facades", {"train": 3, "val": 1, "test": 0}, "no test/ images"),  # an empty folder is no split
    ("night2day", {"train": 2}, "no val/ or test/ images"),
    ("maps", {"train": 2, "val": 1}, None),  # maps has no test/ in the reference either
], ids=["facades-no-test", "facades-empty-test", "night2day-train-only", "maps"])
def test_a_missing_split_is_announced(tmp_path, server, capsys, name, splits, missing):
    server.state.files[DATA + f"{name}.tar.gz"] = make_archive(name, splits)
    root = tmp_path / "data"
    args = ["download", name, "--root", str(root), "--base-url", server.url + DATA, "--no-progress"]
    for again in (False, True):  # the ready line, then the already-there line
        assert main(args) == 0
        lines = capsys.readouterr().err.splitlines()
        said = [line for line in lines if "the reference's" in line]
        if missing is None:
            assert said == []
            continue
        expected = ", ".join(download.DATASET_SPLITS[name])
        present = ", ".join(s for s, n in splits.items() if n)
        source = root / name if again else f"{name}.tar.gz"
        assert said == [f"[pix2pix_aa] {name}: {missing} in {source} (the reference's {name} has {expected}); "
                        f"only {present} can be used"]


def test_an_unreachable_server_fails_at_once_in_one_line(tmp_path, closed_port):
    root = tmp_path / "data"
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "pix2pix_aa.download", "download", "facades", "--root", str(root),
                           "--base-url", closed_port], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[1])
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 1 and len(errors) == 1 and "Traceback" not in done.stderr
    assert "connection refused" in errors[0] and closed_port.removeprefix("http://") in errors[0]
    assert "use a mirror (--base-url or PIX2PIX_AA_DATA_URL)" in errors[0]
    assert time.monotonic() - start < 60  # no retries: process start-up only (slow on a busy 2-core machine)
    assert not root.exists()  # nothing made before the server answers


def test_http_errors_and_usage_errors(tmp_path, server, capsys):
    root = tmp_path / "data"
    code, errors = run(capsys, "download", "maps", "--root", str(root), "--base-url", server.url + DATA)
    assert code == 1 and errors == [f"error: {server.url}{DATA}maps.tar.gz: HTTP 404 Not Found (check the name "
                                    "and --base-url)"]
    code, errors = run(capsys, "download", "cityscapes", "--root", str(root), "--base-url", server.url + DATA)
    assert code == 2 and len(errors) == 1 and "licence" in errors[0] and "cityscapes-dataset.com" in errors[0]
    code, errors = run(capsys, "download", "facades", "horses", "--root", str(root), "--base-url", server.url + DATA)
    assert code == 2 and "unknown data set 'horses'" in errors[0]
    code, errors = run(capsys, "download", "edges2shoes", "day2night", "--root", str(root))
    assert code == 2 and "'day2night' (a pretrained model: pix2pix-aa-data model NAME)" in errors[0]
    assert len(server.state.requests) == 1 and not root.exists()  # names are checked before any download
    with pytest.raises(SystemExit) as e:
        main(["download", "facades", "--sha256", "abc"])
    assert e.value.code == 2


def test_disk_full_before_and_during_the_download_and_while_extracting(tmp_path, server, facades_tgz, capsys,
                                                                       monkeypatch):
    import shutil
    from collections import namedtuple

    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    args = ("download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    usage = namedtuple("usage", "total used free")
    with monkeypatch.context() as m:  # too little space: refused before a byte is written
        m.setattr(download.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 1000, 1000))
        code, errors = run(capsys, *args)
    assert code == 1 and "not enough disk space" in errors[0] and "1.0 kB free" in errors[0]
    assert not root.exists()

    class Full(io.FileIO):
        def write(self, b):
            raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:  # the disk fills up during the download
        m.setattr(download, "_open_part", lambda path, mode: Full(path, mode.replace("b", "")))
        code, errors = run(capsys, *args)
    assert code == 1 and len(errors) == 1 and "disk full while writing" in errors[0]
    assert not (root / "facades").exists() and leftovers(root) == []

    def full_extract(self, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as m:  # ... or while extracting
        m.setattr(tarfile.TarFile, "extractall", full_extract)
        code, errors = run(capsys, *args)
    assert code == 1 and len(errors) == 1 and "disk full while extracting" in errors[0]
    assert not (root / "facades").exists() and leftovers(root) == []
    assert (root / "archives" / "facades.tar.gz").read_bytes() == facades_tgz  # kept: it is fine
    assert shutil.disk_usage(tmp_path).free > 0 and run(capsys, *args) == (0, [])


def test_offline_from_a_copied_archive_or_a_file_mirror(tmp_path, closed_port, facades_tgz, capsys):
    root = tmp_path / "data"
    (root / "archives").mkdir(parents=True)
    (root / "archives" / "facades.tar.gz").write_bytes(facades_tgz)
    assert run(capsys, "download", "facades", "--root", str(root), "--base-url", closed_port) == (0, [])
    assert json.loads((root / "facades" / "download.json").read_text())["url"].startswith("local file")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "facades.tar.gz").write_bytes(facades_tgz)
    assert run(capsys, "download", "facades", "--root", str(tmp_path / "b"), "--base-url", mirror.as_uri()) == (0, [])
    assert len(list((tmp_path / "b" / "facades" / "test").glob("*.jpg"))) == 2


def test_a_folder_path_as_mirror_is_read_as_its_file_url_and_a_non_url_is_one_line(tmp_path, facades_tgz, capsys,
                                                                                    monkeypatch):
    mirror = tmp_path / "my mirror"  # a space too
    mirror.mkdir()
    (mirror / "facades.tar.gz").write_bytes(facades_tgz)
    root = tmp_path / "data"
    # before: a traceback ("unknown url type") from inside urllib
    assert run(capsys, "download", "facades", "--root", str(root), "--base-url", str(mirror)) == (0, [])
    assert json.loads((root / "facades" / "download.json").read_text())["url"] == mirror.as_uri() + "/facades.tar.gz"
    monkeypatch.setenv(download.MODEL_URL_ENV, str(tmp_path / "nowhere"))
    code, errors = run(capsys, "model", "facades_label2photo", "--root", str(tmp_path / "m"))
    assert code == 1 and errors == [f"error: {download.MODEL_URL_ENV} {tmp_path / 'nowhere'}: not a URL (http://, "
                                    "https://, file://) nor an existing folder"]
    code, errors = run(capsys, "download", "facades", "--root", str(tmp_path / "c"), "--base-url", "http://[::1/")
    assert code == 1 and errors == ["error: --base-url http://[::1/: not a valid URL (Invalid IPv6 URL)"]


def test_a_hand_placed_archive_that_is_refused_is_kept(tmp_path, closed_port, capsys):
    root = tmp_path / "data"
    archive = root / "archives" / "facades.tar.gz"
    archive.parent.mkdir(parents=True)
    archive.write_bytes(make_archive(splits={"images": 2}))  # a layout the user can repack
    code, errors = run(capsys, "download", "facades", "--root", str(root), "--base-url", closed_port)
    assert code == 1 and "no train/ val/ test/ folders inside" in errors[0]
    assert errors[0].endswith("kept it: repack it as facades/{train,val,test}/ or delete it, then run the command "
                              "again")
    assert archive.is_file() and not (root / "facades").exists() and leftovers(root) == []  # before: deleted


def test_links_in_an_archive_or_as_the_folder_are_refused(tmp_path, server, facades_tgz, capsys):
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for split, data in (("train", ab_jpeg(1)), ("val", ab_jpeg(2))):
            info = tarfile.TarInfo(f"facades/{split}/1.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("facades/test")
        link.type, link.linkname = tarfile.SYMTYPE, "train"
        tar.addfile(link)
    server.state.files[DATA + "facades.tar.gz"] = out.getvalue()
    root = tmp_path / "data"
    args = ["download", "facades", "--root", str(root), "--base-url", server.url + DATA]
    code, errors = run(capsys, *args)
    # before: "ready (train 1, val 1, test 1 images)": the training image scored as a test image
    assert code == 1 and "it holds links (facades/test -> train), not only files" in errors[0]
    assert not (root / "facades").exists()
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    disk = tmp_path / "big_disk"
    assert run(capsys, "download", "facades", "--root", str(disk), "--base-url", server.url + DATA) == (0, [])
    (root / "facades").symlink_to(disk / "facades")
    code, errors = run(capsys, *args, "--force")
    # before: the link replaced by a new folder on --root's disk, a hidden .facades.*.old link left behind
    assert code == 1 and errors == [f"error: {root / 'facades'} is a link to {disk / 'facades'}: pass --root {disk} "
                                    "to replace the data there, or remove the link"]
    assert (root / "facades").is_symlink() and leftovers(root) == []


def test_installed_folders_get_the_umasks_permissions(tmp_path, server, generator_pth, capsys):
    """tempfile.mkdtemp's 0700 was renamed into place: other users could not read a model folder."""
    import os
    import stat

    server.state.files[MODELS + "facades_label2photo.pth"] = generator_pth
    flat = io.BytesIO()  # train/ val/ test/ at the archive's top: the temporary folder itself is installed
    with tarfile.open(fileobj=flat, mode="w:gz") as tar:
        for split in ("train", "val", "test"):
            data = ab_jpeg(3)
            info = tarfile.TarInfo(f"{split}/1.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    server.state.files[DATA + "facades.tar.gz"] = flat.getvalue()
    old = os.umask(0o022)
    models = tmp_path / "my models"  # a space: the "score it with" line quotes the folder
    try:
        assert main(["model", "facades_label2photo", "--root", str(models), "--base-url", server.url + MODELS,
                     "--no-progress"]) == 0
        assert f"score it with: python evaluate.py '{models / 'facades_label2photo_pretrained'}'\n" in (
            capsys.readouterr().err)
        assert run(capsys, "download", "facades", "--root", str(tmp_path / "d"), "--base-url", server.url + DATA) == (
            0, [])
    finally:
        os.umask(old)
    for folder in (models / "facades_label2photo_pretrained", tmp_path / "d" / "facades"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o755, folder


def test_options_for_what_is_already_here_are_applied(tmp_path, server, facades_tgz, generator_pth, capsys):
    """--data-root for a downloaded model and --delete-archive for an extracted set were accepted
    and ignored ("already in ..."); a model folder that lost its weights was "not made by" the command."""
    server.state.files[MODELS + "facades_label2photo.pth"] = generator_pth
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    models, data = tmp_path / "models", tmp_path / "data"
    model = ["model", "facades_label2photo", "--root", str(models), "--base-url", server.url + MODELS]
    assert run(capsys, *model) == (0, [])
    record = models / "facades_label2photo_pretrained" / "latest_net_G.json"
    assert json.loads(record.read_text())["data"]["data_dir"] == str(Path("data/pix2pix") / "facades")
    assert main([*model, "--data-root", str(tmp_path / "elsewhere"), "--no-progress"]) == 0
    assert json.loads(record.read_text())["data"]["data_dir"] == str(tmp_path / "elsewhere" / "facades")
    assert f"data_dir {tmp_path / 'elsewhere' / 'facades'} recorded in" in capsys.readouterr().err
    (models / "facades_label2photo_pretrained" / "latest_net_G.pth").unlink()
    code, errors = run(capsys, *model)
    assert code == 1 and "latest_net_G.pth is missing (its record latest_net_G.json is there): download it again " \
                         "with pix2pix-aa-data model facades_label2photo --force" in errors[0]
    dataset = ["download", "facades", "--root", str(data), "--base-url", server.url + DATA]
    assert run(capsys, *dataset) == (0, []) and (data / "archives" / "facades.tar.gz").is_file()
    assert main([*dataset, "--delete-archive", "--no-progress"]) == 0
    assert not (data / "archives" / "facades.tar.gz").exists() and (data / "facades" / "train").is_dir()


def test_already_there_counts_the_folder_again(tmp_path, server, facades_tgz, capsys):
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    args = ["download", "facades", "--root", str(root), "--base-url", server.url + DATA, "--no-progress"]
    assert main(args) == 0
    for p in [root / "facades" / "train" / "2.jpg", *(root / "facades" / "test").iterdir()]:
        p.unlink()
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    # before: "(train 3, val 1, test 2 images ...)" from the record, and no word of the missing test images
    assert "already in" in err and "(train 2, val 1, test 0 images;" in err
    assert "no longer holds what was extracted (train 3, val 1, test 2 images); --force downloads it again" in err
    assert "no test/ images in" in err


def test_a_folder_not_made_by_the_command_is_not_replaced_without_force(tmp_path, server, facades_tgz, capsys):
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    root = tmp_path / "data"
    (root / "facades" / "train").mkdir(parents=True)
    (root / "facades" / "train" / "mine.jpg").write_bytes(b"mine")
    args = ("download", "facades", "--root", str(root), "--base-url", server.url + DATA)
    code, errors = run(capsys, *args)
    assert code == 1 and "was not made by pix2pix-aa-data" in errors[0] and server.state.requests == []
    assert (root / "facades" / "train" / "mine.jpg").is_file()
    assert run(capsys, *args, "--force") == (0, [])
    assert not (root / "facades" / "train" / "mine.jpg").exists() and leftovers(root) == []


def test_list_names_every_data_set_and_model(tmp_path, capsys):
    assert main(["list", "--root", str(tmp_path), "--model-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for name in [*download.DATASETS, "cityscapes", "facades_label2photo", "sat2map", "map2sat", "edges2shoes",
                 "day2night"]:
        assert f"  {name} " in out


# -- pretrained generators -----------------------------------------------------------------------
def test_model_download_records_architecture_data_settings_and_checksum(tmp_path, server, generator_pth, capsys):
    server.state.files[MODELS + "facades_label2photo.pth"] = generator_pth
    root, data_root = tmp_path / "models", tmp_path / "sets"
    args = ("model", "facades_label2photo", "--root", str(root), "--data-root", str(data_root), "--base-url",
            server.url + MODELS)
    assert main([*args, "--no-progress"]) == 0
    # Another --root: the next step names its folder, which evaluate.py scores (was "python evaluate.py
    # facades_label2photo -> python evaluate.py FOLDER", a line that copied into the shell redirected).
    assert f"score it with: python evaluate.py {root / 'facades_label2photo_pretrained'}\n" in capsys.readouterr().err
    weights = root / "facades_label2photo_pretrained" / "latest_net_G.pth"
    assert weights.read_bytes() == generator_pth
    record = json.loads(weights.with_suffix(".json").read_text())
    assert record["format"] == "pix2pix_aa.pretrained/1" and record["name"] == "facades_label2photo"
    assert record["generator"] == {"netG": "unet_256", "norm": "batch", "ngf": 4, "input_nc": 3, "output_nc": 3}
    assert record["data"] == {"dataset": "aligned", "data_dir": str(data_root / "facades"), "direction": "BtoA",
                              "load_size": 286, "crop_size": 256, "preprocess": "resize_and_crop", "input_nc": 3,
                              "output_nc": 3, "split": "test"}
    assert record["source"]["sha256"] == sha(generator_pth) and record["source"]["size"] == len(generator_pth)
    assert leftovers(root) == [] and not (root / ".partial").exists()
    # again: checked against the record, not downloaded
    assert run(capsys, *args) == (0, []) and len(server.state.requests) == 1
    weights.write_bytes(generator_pth[:-1] + bytes([generator_pth[-1] ^ 1]))
    code, errors = run(capsys, *args)
    assert code == 1 and len(errors) == 1 and "the file changed since it was downloaded; pass --force" in errors[0]
    assert run(capsys, *args, "--force") == (0, []) and weights.read_bytes() == generator_pth
    weights.with_suffix(".json").write_text("{broken")  # a damaged record: refused, replaced by --force
    code, errors = run(capsys, *args)
    assert code == 1 and "unreadable record" in errors[0] and errors[0].endswith("or pass --force")
    assert run(capsys, *args, "--force") == (0, [])
    assert json.loads(weights.with_suffix(".json").read_text())["source"]["sha256"] == sha(generator_pth)


def test_model_download_resumes_after_a_dropped_connection(tmp_path, server, generator_pth, capsys):
    server.state.files[MODELS + "sat2map.pth"] = generator_pth
    server.state.drop_after[MODELS + "sat2map.pth"] = 1000
    root = tmp_path / "models"
    args = ("model", "sat2map", "--root", str(root), "--base-url", server.url + MODELS)
    code, errors = run(capsys, *args, "--retries", "0")
    assert code == 1 and "run the same command again to resume" in errors[0]
    assert not (root / "sat2map_pretrained").exists()
    assert run(capsys, *args) == (0, [])
    assert server.state.requests[-1][1] == "bytes=1000-"
    weights = root / "sat2map_pretrained" / "latest_net_G.pth"
    assert weights.read_bytes() == generator_pth
    data = json.loads(weights.with_suffix(".json").read_text())["data"]
    assert (data["direction"], data["split"], data["data_dir"]) == ("AtoB", "val", "data/pix2pix/maps")


def test_a_generator_saved_by_old_pytorch_loads_with_its_record(tmp_path, server, capsys):
    """The official files date from PyTorch 0.4 (2018): the pre-1.6 serialisation, BatchNorm
    without ``num_batches_tracked``. Downloaded, then loaded by evaluate.py's loader: the
    reference network's outputs exactly."""
    from test_reference import RefUnet, randomise

    from pix2pix_aa.evaluation.checkpoints import load_generator

    net = randomise(RefUnet(3, 3, 8, 4, norm="batch", dropout=True), seed=3)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    out = io.BytesIO()
    torch.save(state, out, _use_new_zipfile_serialization=False)
    server.state.files[MODELS + "day2night.pth"] = out.getvalue()
    root = tmp_path / "models"
    assert run(capsys, "model", "day2night", "--root", str(root), "--base-url", server.url + MODELS) == (0, [])
    loaded = load_generator(root / "day2night_pretrained" / "latest_net_G.pth")
    assert loaded.datamodule_hparams["direction"] == "BtoA"
    assert loaded.datamodule_hparams["data_dir"] == str(Path("data/pix2pix/night2day"))
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded.generator(x), net(x))


@pytest.mark.parametrize("case", ["not-a-generator", "junk", "pickled-module", "wrong-sha256", "unreachable"])
def test_model_failures_are_one_line_and_leave_no_folder(tmp_path, server, closed_port, generator_pth, capsys, case):
    from test_reference import RefNLayerD

    body = {"not-a-generator": None, "junk": b"not a state_dict" * 100, "pickled-module": None}.get(case,
                                                                                                    generator_pth)
    if body is None:
        out = io.BytesIO()
        net = RefNLayerD(6, 4)
        torch.save(net if case == "pickled-module" else net.state_dict(), out)
        body = out.getvalue()
    server.state.files[MODELS + "map2sat.pth"] = body
    root = tmp_path / "models"
    url = closed_port if case == "unreachable" else server.url + MODELS
    extra = ("--sha256", "f" * 64) if case == "wrong-sha256" else ()
    code, errors = run(capsys, "model", "map2sat", "--root", str(root), "--base-url", url, *extra)
    assert code == 1 and len(errors) == 1
    expected = {"not-a-generator": "discriminator, not a generator", "junk": "not a readable PyTorch checkpoint",
                "wrong-sha256": f"does not match {'f' * 64}",
                # not the temporary file's path, nor evaluate.py's / train.py's options to trust it
                "pickled-module": "map2sat.pth: not a reference pix2pix generator (refused to unpickle objects that "
                                  "are not plain weights",
                "unreachable": "connection refused; use a mirror (--base-url or PIX2PIX_AA_MODEL_URL)"}[case]
    assert expected in errors[0] and ".partial" not in errors[0] and "--trust-checkpoint" not in errors[0]
    assert not (root / "map2sat_pretrained").exists() and leftovers(root) == []


@pytest.mark.parametrize("case", ["unet-ngf4", "resnet-instance-1ch", "all-default"])
def test_a_generator_that_is_not_the_reference_default_is_announced(tmp_path, server, generator_pth, capsys,
                                                                    monkeypatch, case):
    """Every option read from the file that differs from the reference's default is named, in one line."""
    from test_reference import RefResnet, randomise

    body = generator_pth  # unet_256, batch, ngf 4
    if case == "resnet-instance-1ch":
        out = io.BytesIO()
        torch.save(randomise(RefResnet(1, 3, 4, norm="instance", dropout=False, n_blocks=6)).state_dict(), out)
        body = out.getvalue()
    elif case == "all-default":  # a 64-wide unet_256 is 218 MB: the default is made the file's instead
        monkeypatch.setitem(download.REFERENCE_GENERATOR, "ngf", 4)
    server.state.files[MODELS + "facades_label2photo.pth"] = body
    code = main(["model", "facades_label2photo", "--root", str(tmp_path / "models"), "--base-url",
                 server.url + MODELS, "--no-progress"])
    said = [line for line in capsys.readouterr().err.splitlines() if "default architecture" in line]
    assert code == 0
    expected = {"unet-ngf4": "ngf 4 (default 64)",
                "resnet-instance-1ch": "netG resnet_6blocks (default unet_256), norm instance (default batch), ngf 4 "
                                       "(default 64), input_nc 1 (default 3), no dropout (default: dropout)",
                "all-default": None}[case]
    if expected is None:
        assert said == []
    else:
        assert said == [f"[pix2pix_aa] facades_label2photo: the file's generator is not the reference's default "
                        f"architecture: {expected}; recorded as found"]


def test_model_usage_errors(capsys):
    code, errors = run(capsys, "model", "edges2handbags")
    assert code == 2 and "unknown pretrained model 'edges2handbags' (a data set" in errors[0]
    assert "facades_label2photo, sat2map, map2sat, edges2shoes, day2night" in errors[0]


# -- end to end: download, then evaluate.py NAME with no data flag -------------------------------
def _evaluate(args: list[str]) -> int:
    from pix2pix_aa.evaluation.cli import main as evaluate_main

    return evaluate_main(args)


def test_downloaded_model_is_evaluated_by_name_on_its_recorded_data(tmp_path, server, facades_tgz, generator_pth,
                                                                    capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(download.DATA_URL_ENV, server.url + DATA)
    monkeypatch.setenv(download.MODEL_URL_ENV, server.url + MODELS)
    server.state.files[DATA + "facades.tar.gz"] = facades_tgz
    server.state.files[MODELS + "facades_label2photo.pth"] = generator_pth
    fast = ["--shifts", "2", "--noise", "none", "--layers", "none", "--flicker-frames", "0", "--samples", "0",
            "--no-spectrum", "--no-tensorboard"]

    # before the download: one line naming the command that fixes it
    assert _evaluate(["facades_label2photo", *fast]) == 2
    assert "download it with: pix2pix-aa-data model facades_label2photo" in capsys.readouterr().err
    assert run(capsys, "model", "facades_label2photo") == (0, [])
    assert _evaluate(["facades_label2photo", *fast]) == 2  # the data set is not there yet
    err = capsys.readouterr().err
    assert "data/pix2pix/facades does not exist" in err and "pix2pix-aa-data download facades" in err
    assert run(capsys, "download", "facades") == (0, [])

    # the name alone (only the speed flags above: no data flag)
    assert _evaluate(["facades_label2photo", *fast, "--out", "by_name"]) == 0
    models = json.loads((tmp_path / "by_name" / "results.json").read_text())["models"]
    weights = Path("checkpoints/facades_label2photo_pretrained/latest_net_G.pth")
    assert list(models) == ["facades_label2photo_pretrained/latest_net_G"]
    by_name = next(iter(models.values()))
    data = by_name["data"]
    assert data["data_dir"] == "data/pix2pix/facades" and data["dataset"] == "aligned"
    assert data["direction"] == "BtoA" and data["image_size"] == [256, 256] and data["images"] == 2
    assert data["settings_from"] == str(weights.with_suffix(".json")) and data["overridden"] == []

    # a file that is no longer the one downloaded (here its record names another sha256) was scored
    # under the official name without a word
    record_file = weights.with_suffix(".json")
    record = json.loads(record_file.read_text())
    record_file.write_text(json.dumps({**record, "source": {**record["source"], "sha256": "0" * 64}}))
    assert _evaluate(["facades_label2photo", *fast, "--out", "changed"]) == 2
    err = capsys.readouterr().err
    assert "does not match 000000000000... recorded in" in err and "the file changed since it was downloaded; " \
        "download it again (pix2pix-aa-data model facades_label2photo --force)" in err
    record_file.write_text(json.dumps(record))

    # the same numbers as the explicit flags on the bare .pth (its record moved away)
    weights.with_suffix(".json").rename(tmp_path / "record.json")
    assert _evaluate([str(weights), *fast, "--out", "by_flags", "--data-dir", "data/pix2pix/facades", "--dataset",
                      "aligned", "--direction", "BtoA", "--size", "256"]) == 0
    by_flags = next(iter(json.loads((tmp_path / "by_flags" / "results.json").read_text())["models"].values()))
    keys = [k for k in by_name["row"] if k.startswith(("stability_", "quality_"))]
    assert "stability_crop_pooled_db" in keys and all(by_name["row"][k] == by_flags["row"][k] for k in keys)


@pytest.mark.parametrize("content,expected", [
    ("{not json", "unreadable record of latest_net_G.pth"),
    ('{"format": "something/2", "data": {}}', "not a pix2pix_aa record (format 'something/2'"),
    ('{"format": "pix2pix_aa.pretrained/1", "data": {"data_dir": "x"}}', "no data settings dataset, direction, "
                                                                         "crop_size"),
])
def test_a_bad_record_is_one_line(tmp_path, generator_pth, capsys, content, expected):
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "latest_net_G.pth").write_bytes(generator_pth)
    (folder / "latest_net_G.json").write_text(content)
    assert _evaluate([str(folder), "--no-tensorboard"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert expected in errors[0] and "Traceback" not in "".join(errors)


def test_a_hand_written_record_gives_a_reference_file_its_data(tmp_path, generator_pth, facades_tgz, monkeypatch):
    """The record works for any reference .pth: format and data settings are enough; its
    generator entry checks the file."""
    from pix2pix_aa.evaluation.checkpoints import CheckpointError, find_checkpoints, load_generator
    from pix2pix_aa.evaluation.data import data_settings

    weights = tmp_path / "my_run" / "latest_net_G.pth"
    weights.parent.mkdir()
    weights.write_bytes(generator_pth)
    record = {"format": "pix2pix_aa.pretrained/1",
              "data": {"dataset": "aligned", "data_dir": "sets/mine", "direction": "AtoB", "crop_size": 128}}
    weights.with_suffix(".json").write_text(json.dumps(record))
    (path,) = find_checkpoints([str(weights.parent)])  # the folder gives its .pth
    assert path == weights
    settings = data_settings(load_generator(path))
    assert settings.kwargs["data_dir"] == "sets/mine" and settings.kwargs["direction"] == "AtoB"
    assert settings.kwargs["crop_size"] == 128 and settings.source == str(weights.with_suffix(".json"))
    assert settings.split == "test"  # no split recorded: evaluate.py's default
    record["data"]["split"] = "val"  # a set without test/ (maps, edges2shoes): its held-out split
    weights.with_suffix(".json").write_text(json.dumps(record))
    assert data_settings(load_generator(path)).split == "val"
    assert data_settings(load_generator(path), split="train").split == "train"  # --split wins
    assert "split" not in data_settings(load_generator(path)).kwargs  # not a data module option
    record["generator"] = {"netG": "unet_128"}
    weights.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="--netG unet_128 given, but the file holds a reference unet_256"):
        load_generator(path)


def test_fetch_with_the_progress_bar(tmp_path, server, facades_tgz):
    """fetch() itself, with rich's bar on (as on a terminal): the same bytes, the size returned."""
    server.state.files["/f.bin"] = facades_tgz
    dest = tmp_path / "sub" / "f.bin"
    assert download.fetch(server.url + "/f.bin", dest, progress=True) == len(facades_tgz)
    assert dest.read_bytes() == facades_tgz and sorted(p.name for p in dest.parent.iterdir()) == ["f.bin"]
