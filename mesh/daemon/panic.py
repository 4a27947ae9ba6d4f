"""``steppe panic``: destroy a profile's keys and data at once, also while the daemon runs.

Order matters: first the key slots (crypto-shredding: once the Argon2id-wrapped copies of
the data key are gone, nothing encrypted under it opens, whatever passphrase is typed),
then the running daemon is told to stop without saving, then every file of the profile is
overwritten with random bytes and deleted. Flash storage may keep old blocks (wear
levelling); the shredded key slots are what make those useless.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import trio

from crypto import keystore
from crypto.errors import CryptoError
from mesh import ipc
from mesh.profile import KEYSTORE, atomic_write

TELL_DAEMON_TIMEOUT = 0.5


def _shred(path: Path) -> None:
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(os.urandom(min(size, 64 << 20)))
            f.flush()
            os.fsync(f.fileno())
    with contextlib.suppress(OSError):
        path.unlink()


async def _tell_daemon(sock: Path) -> None:
    with trio.move_on_after(TELL_DAEMON_TIMEOUT):
        try:
            client = await ipc.Client.connect(sock)
        except ipc.IpcError:
            return  # no daemon running
        with contextlib.suppress(ipc.IpcError, OSError, trio.BrokenResourceError):
            await client.call("panic")
        with contextlib.suppress(OSError, trio.BrokenResourceError):
            await client.aclose()


def panic(profile_dir: Path) -> float:
    """Wipe the profile; returns the seconds it took."""
    start = time.monotonic()
    ks = profile_dir / KEYSTORE
    if ks.exists():
        # A damaged keystore cannot be parsed; it is shredded below anyway.
        with contextlib.suppress(CryptoError, OSError):
            atomic_write(ks, keystore.wipe_slots(ks.read_bytes()))
    trio.run(_tell_daemon, ipc.socket_path(profile_dir))
    if profile_dir.is_dir():
        for entry in sorted(profile_dir.iterdir()):
            if entry.is_file() and entry.name != ipc.SOCKET_NAME:
                _shred(entry)
    return time.monotonic() - start
