"""Who applies a change to the contacts: the running daemon, or the command itself.

While a daemon runs for a profile it owns the keystore (:mod:`mesh.daemon.contacts`): a
command that wrote the file behind its back would be overwritten by the daemon's next
save, and the daemon would go on sealing to a key the user just replaced. So a contact
change goes to the daemon over the local API when one holds ``daemon.lock``; with none
running, the command takes ``daemon.lock`` itself, reads the keystore again (no
passphrase needed: the data key is known) and writes it, so no daemon can start in the
middle and miss the change. A daemon that holds the lock but does not answer yet (it is
starting) is waited for a few seconds.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from typing import TypeVar

from mesh import ipc
from mesh.daemon.lock import ProfileLocked, lock_profile, unlock_profile
from mesh.profile import Profile, ProfileError

T = TypeVar("T")
WAIT = 10.0  # seconds to wait for a daemon that holds the lock to answer


def change_contacts(
    profile: Profile, local: Callable[[Profile], T], remote: Callable[[], T], wait: float = WAIT
) -> tuple[T, bool]:
    """``(result, True)`` if the running daemon applied the change (``remote``), else
    ``(result, False)``: ``local`` changed the freshly read profile, which was saved."""
    deadline = time.monotonic() + wait
    while True:
        try:
            lock = lock_profile(profile.path)
        except ProfileLocked:
            if _answers(ipc.socket_path(profile.path)):
                return remote(), True
            if time.monotonic() > deadline:
                raise ProfileError(
                    f"a daemon holds the profile in {profile.path} but does not answer: "
                    "nothing changed; try again once it is up"
                ) from None
            time.sleep(0.1)
            continue
        try:
            profile.reload()
            result = local(profile)
            profile.save(os.urandom)
            return result, False
        finally:
            unlock_profile(lock, profile.path)


def _answers(path: os.PathLike[str]) -> bool:
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(os.fspath(path))
        except OSError:
            return False
        return True
