"""``daemon.lock``: who may write a profile's keystore right now.

A running daemon holds an exclusive ``flock`` on ``daemon.lock`` in the profile directory
for as long as it runs: it owns the keystore then (it rotates and prunes the prekey ring,
and applies contact changes it is sent over the local API). A command that changes the
keystore with no daemon running takes the same lock for its read-modify-write, so a
daemon cannot start in between and work from (and later save) a copy that misses it.
The file is removed by whoever let go of it last, so nothing is left behind.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import TextIO

LOCK_NAME = "daemon.lock"


class ProfileLocked(Exception):
    """Someone else (a daemon, or a command changing the keystore) holds the lock."""


def lock_profile(path: Path, wait: float = 0.0) -> TextIO:
    """Take the exclusive lock on ``daemon.lock``, trying for up to ``wait`` seconds (a
    command holds it for a moment only), or raise :class:`ProfileLocked`. A lock taken on
    a file that its last holder removed in the meantime is worthless (a third process
    could create a new one), so it is taken again on the file now at that path."""
    lock = path / LOCK_NAME
    deadline = time.monotonic() + wait
    while True:
        f = lock.open("w")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            if time.monotonic() >= deadline:
                raise ProfileLocked(str(path)) from None
            time.sleep(0.05)
            continue
        try:
            if os.stat(lock).st_ino == os.fstat(f.fileno()).st_ino:
                return f
        except FileNotFoundError:
            pass
        f.close()


def unlock_profile(f: TextIO, path: Path) -> None:
    """Remove ``daemon.lock`` while still holding it, then let go."""
    (path / LOCK_NAME).unlink(missing_ok=True)
    f.close()
