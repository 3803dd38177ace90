"""Procedural facades: palette, layout, file format, determinism, CLI."""

from __future__ import annotations

import contextlib
import os
import signal

import numpy as np
import pytest
from PIL import Image

from pix2pix_aa.data import facades as facades_module
from pix2pix_aa.data.facades import (
    DEFAULT_SPLITS,
    PALETTE,
    generate_facades,
    main,
    render_facade,
    render_pair,
    sample_grid,
)
from pix2pix_aa.data.palette import CLASS_IDS, colorize, decode_labels, palette_distance


def test_palette_is_cmp_jet12():
    assert PALETTE.shape == (13, 3)
    assert tuple(PALETTE[CLASS_IDS["background"]]) == (0, 0, 170)
    assert tuple(PALETTE[CLASS_IDS["window"]]) == (0, 85, 255)
    assert tuple(PALETTE[CLASS_IDS["molding"]]) == (255, 85, 0)
    assert tuple(PALETTE[CLASS_IDS["shop"]]) == (170, 0, 0)
    assert len({tuple(c) for c in PALETTE}) == 13


def test_decode_labels_by_nearest_colour_survives_jpeg_like_noise():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 13, size=(20, 30)).astype(np.uint8)
    noisy = np.clip(colorize(labels).astype(int) + rng.integers(-30, 31, size=(20, 30, 3)), 0, 255).astype(np.uint8)
    np.testing.assert_array_equal(decode_labels(noisy), labels)
    assert palette_distance(colorize(labels)).max() == 0


def test_render_facade_shapes_classes_and_look():
    photo, labels = render_facade(3, size=128)
    assert photo.shape == (128, 128, 3) and photo.dtype == np.uint8
    assert labels.shape == (128, 128) and labels.dtype == np.uint8
    present = set(np.unique(labels))
    assert {CLASS_IDS["facade"], CLASS_IDS["window"], CLASS_IDS["door"]} <= present
    assert 0 not in present  # nothing left "unknown"
    # Windows form a grid: several separate window rows.
    win_rows = (labels == CLASS_IDS["window"]).any(axis=1)
    starts = np.flatnonzero(win_rows[1:] & ~win_rows[:-1])
    assert len(starts) >= 3
    # The photo is textured (high-frequency detail), not flat colour per class.
    wall = labels == CLASS_IDS["facade"]
    assert photo[wall].std(axis=0).mean() > 5
    assert np.abs(np.diff(photo.astype(float), axis=1)).mean() > 4


def test_same_building_at_any_size():
    _, small = render_facade(7, size=64)
    _, big = render_facade(7, size=128)
    big_down = big[::2, ::2]
    assert (small == big_down).mean() > 0.85


def test_files_are_aligned_photo_left_labels_right(tiny_facades):
    f = tiny_facades / "train" / "1.png"
    ab = np.asarray(Image.open(f).convert("RGB"))
    assert ab.shape == (64, 128, 3)
    a, b = ab[:, :64], ab[:, 64:]
    assert palette_distance(b).max() == 0  # PNG: exact palette colours
    assert palette_distance(a).mean() > 20  # a photo, not a label map
    np.testing.assert_array_equal(ab, render_pair(0, "train", 0, 64))
    assert sorted(p.name for p in tiny_facades.iterdir()) == ["generation.json", "test", "train", "val"]
    assert [len(list((tiny_facades / s).iterdir())) for s in ("train", "val", "test")] == [4, 1, 1]


def test_default_counts_are_the_real_facades_split():
    assert DEFAULT_SPLITS == {"train": 400, "val": 100, "test": 106}


def test_splits_and_indices_differ():
    assert not np.array_equal(render_pair(0, "train", 0, 32), render_pair(0, "val", 0, 32))
    assert not np.array_equal(render_pair(0, "train", 0, 32), render_pair(0, "train", 1, 32))


def _tree_bytes(root):
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_determinism_same_seed_bytes_identical_independent_of_workers(tmp_path):
    splits = {"train": 10, "val": 2, "test": 2}
    one = _tree_bytes(generate_facades(tmp_path / "w1", seed=5, splits=splits, size=32, workers=1))
    two = _tree_bytes(generate_facades(tmp_path / "w2", seed=5, splits=splits, size=32, workers=2))
    assert len(one) == 15 and one == two
    other = _tree_bytes(generate_facades(tmp_path / "s6", seed=6, splits=splits, size=32, workers=1))
    differing = [k for k in one if k.endswith(".png") and one[k] != other[k]]
    assert len(differing) == 14


def test_jpeg_format_like_the_real_files(tmp_path):
    out = generate_facades(tmp_path / "j", seed=0, splits={"train": 1}, size=64, fmt="jpg")
    ab = np.asarray(Image.open(out / "train" / "1.jpg"))
    assert ab.shape == (64, 128, 3)
    labels = decode_labels(ab[:, 64:])
    truth = render_facade(np.random.default_rng(np.random.SeedSequence([0, 0])), 64)[1]
    assert (labels == truth).mean() > 0.9  # JPEG-blurred colours still decode by nearest colour


def test_generate_refuses_existing_dir_and_bad_args(tmp_path):
    (tmp_path / "x").mkdir()
    with pytest.raises(FileExistsError, match="already exists"):
        generate_facades(tmp_path / "x", splits={"train": 1}, size=32)
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        generate_facades(tmp_path / "y", splits={"dev": 1}, size=32)
    with pytest.raises(ValueError, match="fmt"):
        generate_facades(tmp_path / "y", splits={"train": 1}, size=32, fmt="gif")
    assert not (tmp_path / "y").exists()


def test_cli_writes_data_set_and_grid(tmp_path, capsys):
    grid = tmp_path / "grid.png"
    rc = main(["--out", str(tmp_path / "cli"), "--seed", "1", "--size", "32", "--train", "2", "--val", "1",
               "--test", "1", "--grid", str(grid)])
    assert rc == 0
    assert "wrote 4 images" in capsys.readouterr().out
    assert len(list((tmp_path / "cli" / "train").glob("*.png"))) == 2
    assert Image.open(grid).size == (2 * 64 + 4, 4 * 32 + 3 * 4)
    assert main(["--out", str(tmp_path / "cli"), "--train", "1"]) == 2  # exists -> clear error, exit 2


def test_sample_grid_cells_are_pairs():
    g = sample_grid(seed=0, n=3, size=32, cols=2)
    assert g.shape == (2 * 32 + 4, 2 * 64 + 4, 3)
    np.testing.assert_array_equal(g[:32, :64], render_pair(0, "train", 0, 32))


_PARENT = os.getpid()
_real_write_one = facades_module._write_one


def _write_then_terminate(job):
    """The generator's own writer, then SIGTERM to the generating process at the 11th training
    image (a module-level function: the pool pickles it by name)."""
    _real_write_one(job)
    if job[1] == "train" and job[2] == 10:
        os.kill(_PARENT, signal.SIGTERM)


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_while_generating_is_one_line_and_leaves_no_staging_folder(tmp_path, capfd, monkeypatch, workers):
    """SIGTERM (a scheduler's preemption) ended the process on the spot: exit status 143 with no
    word, and the hidden staging folder ``.<out>.tmp-<pid>`` stayed for good. Forked workers end
    quietly (the pool stops them with SIGTERM too)."""
    monkeypatch.setattr(facades_module, "_write_one", _write_then_terminate)
    before = signal.getsignal(signal.SIGTERM)
    out = tmp_path / "facades"
    rc = main(["--out", str(out), "--size", "16", "--train", "60", "--val", "1", "--test", "1",
               "--workers", str(workers)])
    err = capfd.readouterr().err
    assert rc == 143
    assert f"error: stopped by SIGTERM while generating {out}: the partial data set was removed" in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert list(tmp_path.iterdir()) == []  # neither the data set nor its staging folder
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is put back


def _worker_stuck_in_c(*args, **kwargs):
    """The pool's worker loop, except that the first worker to start blocks for good in C before
    taking a job, as a forked worker does on a lock another thread held at fork time. A default
    mutex locked twice never returns, and a signal does not interrupt the wait, so a Python
    handler never runs there."""
    import ctypes
    import multiprocessing.pool

    try:
        fd = os.open(os.environ["STUCK_WORKER_FILE"], os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return _real_pool_worker(*args, **kwargs)
    os.write(fd, str(os.getpid()).encode())
    os.close(fd)
    libc = ctypes.CDLL(None)
    mutex = ctypes.create_string_buffer(64)  # zeros: PTHREAD_MUTEX_INITIALIZER (glibc)
    libc.pthread_mutex_lock(mutex)
    libc.pthread_mutex_lock(mutex)
    return multiprocessing.pool.worker(*args, **kwargs)


_real_pool_worker = __import__("multiprocessing.pool").pool.worker


def test_a_forked_worker_stuck_in_c_does_not_hang_the_generation(tmp_path, monkeypatch):
    """The SIGTERM handler of the generating process was inherited by its forked workers. The pool
    ends its workers with SIGTERM once the jobs are done, and a worker blocked in C (the other
    worker did every job) never ran that handler, so the parent waited for it for good. Forked
    workers now get the default SIGTERM action, which ends them wherever they are."""
    import multiprocessing.pool
    import threading
    import time

    stuck = tmp_path / "stuck.pid"
    monkeypatch.setenv("STUCK_WORKER_FILE", str(stuck))
    monkeypatch.setattr(multiprocessing.pool, "worker", _worker_stuck_in_c)

    def unstick() -> None:  # a hang fails the test below instead of the suite waiting for good
        if stuck.exists():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(stuck.read_text()), signal.SIGKILL)

    timer = threading.Timer(60, unstick)
    timer.start()
    start = time.monotonic()
    try:
        generate_facades(tmp_path / "facades", splits={"train": 12, "val": 0, "test": 0}, size=16, workers=2)
    finally:
        timer.cancel()
    assert stuck.exists()  # the case happened: one worker blocked
    assert time.monotonic() - start < 50
    assert len(list((tmp_path / "facades" / "train").glob("*.png"))) == 12


def test_a_staging_folder_of_a_process_that_no_longer_runs_is_removed(tmp_path):
    """A generation killed with SIGKILL (or a machine that went down) leaves ``.<out>.tmp-<pid>``;
    the next generation of that folder removes it, and leaves one of a running process alone."""
    import subprocess
    import sys

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = tmp_path / f".facades.tmp-{int(gone.stdout)}"
    alive = tmp_path / f".facades.tmp-{os.getppid()}"
    for folder in (dead, alive):
        (folder / "train").mkdir(parents=True)
    generate_facades(tmp_path / "facades", splits={"train": 1, "val": 0, "test": 0}, size=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["facades", alive.name])


def test_overwrite_replaces_only_a_generated_data_set(tmp_path, capsys):
    """``--overwrite`` removed any folder: a mistyped ``--out`` took the user's files with it."""
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.txt").write_text("precious")
    assert main(["--out", str(mine), "--size", "16", "--train", "1", "--val", "0", "--test", "0", "--overwrite"]) == 2
    assert "holds files that no generator wrote (no generation.json); --overwrite replaces only a generated data set" \
        in capsys.readouterr().err
    assert (mine / "thesis.txt").read_text() == "precious"
    generated = tmp_path / "generated"
    generate_facades(generated, splits={"train": 2, "val": 0, "test": 0}, size=16)
    generate_facades(generated, splits={"train": 1, "val": 0, "test": 0}, size=16, overwrite=True)
    assert len(list((generated / "train").iterdir())) == 1
    (tmp_path / "empty").mkdir()
    generate_facades(tmp_path / "empty", splits={"train": 1, "val": 0, "test": 0}, size=16, overwrite=True)
