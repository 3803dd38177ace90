"""One process at a time: an advisory lock on a file, held for a block of code.

Used where two processes would silently corrupt each other's work: two fits of one training run
(each rewriting the other's last.ckpt, config.yaml and TensorBoard events) and two downloads of
one archive (one appending to the other's ``.part``).

Written here rather than taken from a library: the standard library has the primitive
(``fcntl.flock``) but no context manager around it, and the one small thing needed on top is the
holder's name in the refusal. The kernel releases the lock when its holder exits, however it exits
(a killed job leaves no stale lock to clear by hand); processes it forks (DataLoader workers) do
not share it. Where ``fcntl`` is missing (Windows) or the
file system refuses locks (some network mounts), the block runs unlocked.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["LockHeld", "exclusive", "held"]

#: File descriptors of the locks this process holds. A forked child (a DataLoader worker) shares
#: the lock with its parent; after a kill -9 of the parent, the orphaned workers kept the run
#: locked for the seconds they took to notice, and a relaunch was refused naming a dead pid.
_HELD: set[int] = set()


def _release_in_child() -> None:
    # Point the child's copies of the descriptors at /dev/null: the lock then belongs to the
    # parent's descriptor alone (closing them would break the child's file objects).
    if not _HELD:
        return
    null = os.open(os.devnull, os.O_RDONLY)
    for fd in _HELD:
        os.dup2(null, fd)
    os.close(null)
    _HELD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_release_in_child)


class LockHeld(RuntimeError):
    """Another process holds the lock. ``holder`` is ``"pid N on HOST"`` (or ``"another process"``
    when the file names none)."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(f"{path} is held by {holder}")
        self.path, self.holder = path, holder


@contextmanager
def exclusive(path: str | os.PathLike) -> Iterator[None]:
    """Hold the lock on ``path`` (created, with its folder, if missing) for the block; the file then
    names this process (``pid N on HOST``) for whoever is refused. The file is left in place:
    removing a lock file lets a third process lock a new file while a second holds the old one.

    Raises:
        LockHeld: another process holds it (the block does not run).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks to take
        yield
        return
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as f:  # "a+": the holder's name is not truncated before the lock is ours
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            f.seek(0)
            pid, _, host = f.read().strip().partition(" ")
            raise LockHeld(path, f"pid {pid} on {host}" if pid.isdigit() and host else "another process") from None
        except OSError:  # a file system without locks (ENOLCK on some network mounts): run unlocked
            locked = False
        if not locked:
            yield
            return
        f.seek(0)
        f.truncate()
        f.write(f"{os.getpid()} {socket.gethostname()}\n")
        f.flush()
        _HELD.add(f.fileno())
        try:
            yield
        finally:
            _HELD.discard(f.fileno())


def held(path: str | os.PathLike) -> bool:
    """Whether another process holds the lock on ``path`` now (False when there is no such file).
    The probe takes the lock for an instant when it is free."""
    if not Path(path).is_file():
        return False
    try:
        with exclusive(path):
            return False
    except LockHeld:
        return True
    except OSError:  # cannot open it (another user's run): nobody's lock this process could see
        return False
