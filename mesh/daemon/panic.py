"""``steppe panic``: destroy a profile's keys and data at once, also while the daemon runs.

Only a Steppe profile is wiped: a directory whose ``keystore`` file carries the keystore
header (:func:`crypto.keystore.is_keystore`; no passphrase needed, and a keystore whose
slots are already wiped still counts, so an interrupted panic can be run again). Any
other path raises :class:`NotAProfile` and nothing is touched: ``--profile ~/Documents``
by mistake deletes nothing.

Order matters: first the key slots (crypto-shredding: once the Argon2id-wrapped copies of
the data key are gone, nothing encrypted under it opens, whatever passphrase is typed),
then the running daemon is told to stop without saving, then every regular file of the
profile directory is overwritten with random bytes and deleted, the keystore last (so a
panic cut short is still recognised as a profile next time). Flash storage may keep old
blocks (wear levelling); the shredded key slots are what make those useless.
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


class NotAProfile(Exception):
    """The path holds no Steppe profile; nothing was touched. One readable line."""


def check_profile(profile_dir: Path) -> None:
    """Raise :class:`NotAProfile` unless ``profile_dir`` holds a Steppe keystore."""
    ks = profile_dir / KEYSTORE
    if not profile_dir.is_dir():
        raise NotAProfile(f"there is no directory {profile_dir}: nothing wiped")
    try:
        with ks.open("rb") as f:
            head = f.read(keystore.MAX_KEYSTORE + 1)
    except OSError:
        head = b""
    if ks.is_symlink() or not keystore.is_keystore(head):
        raise NotAProfile(f"{profile_dir} is not a Steppe profile (no keystore): nothing wiped")


def shred(path: Path) -> None:
    with contextlib.suppress(OSError):
        size = path.stat().st_size
        with path.open("r+b") as f:
            f.write(os.urandom(min(size, 64 << 20)))
            f.flush()
            os.fsync(f.fileno())
    with contextlib.suppress(OSError):
        path.unlink()


async def tell_daemon(sock: Path) -> None:
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
    """Wipe the profile; returns the seconds it took. Raises :class:`NotAProfile`, having
    touched nothing, unless the directory holds a Steppe keystore."""
    start = time.monotonic()
    check_profile(profile_dir)
    ks = profile_dir / KEYSTORE
    # A keystore that is recognised but will not parse is shredded below anyway.
    with contextlib.suppress(CryptoError, OSError):
        atomic_write(ks, keystore.wipe_slots(ks.read_bytes(), os.urandom))
    shred_all_but_keystore(profile_dir)
    shred(ks)
    return time.monotonic() - start


def shred_all_but_keystore(profile_dir: Path) -> None:
    """Tell a running daemon to stop without saving, then overwrite and delete every
    regular file of the profile but the keystore (panic; a duress unlock)."""
    trio.run(tell_daemon, ipc.socket_path(profile_dir))  # none running is the usual case
    for entry in sorted(profile_dir.iterdir()):
        if entry.is_file() and not entry.is_symlink() and entry.name not in LAST:
            shred(entry)


LAST = {KEYSTORE, ipc.SOCKET_NAME}  # the keystore is shredded last; the socket is not a file
