"""Reading what a profile holds when no daemon runs for it: ``steppe inbox`` opens the
encrypted history itself, with the passphrase, and only reads it; so does ``steppe
contact add-sender`` to find the identity of someone who wrote.

The rows come out in the shape the daemon's ``messages`` request answers with, so the
command prints both the same way.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from crypto.identity import PublicIdentity
from mesh import ipc
from mesh.core.durable import strangers_in
from mesh.daemon.history import HISTORY, History
from mesh.ipc.calls import MessageRow
from mesh.profile import Profile


def daemon_answers(profile_dir: Path) -> bool:
    """A daemon is listening on this profile's local socket (a stale file is not one)."""
    path = ipc.socket_path(profile_dir)
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
    return True


def messages(profile: Profile, contact: str, limit: int) -> list[MessageRow]:
    """The last ``limit`` messages (with ``contact`` only, if given), oldest first. A
    profile whose daemon never ran has no history file, and none is created."""
    key = profile.contact(contact).identity.sign_public if contact else None
    path = profile.path / HISTORY
    if not path.exists():
        return []
    names = {c.identity.sign_public: c.name for c in profile.contacts}
    history = History(path, profile.data_key, os.urandom)
    try:
        rows = history.messages(key, limit)
    finally:
        history.close()
    return [
        MessageRow(
            m.contact,
            names.get(m.contact, m.contact.hex()[:16]),
            m.outgoing,
            m.msg_id,
            m.created,
            m.text,
            m.state,
            m.carriers,
            m.file,
        )
        for m in rows
    ]


def strangers(profile: Profile) -> list[PublicIdentity]:
    """Who wrote without being a contact, as the node's saved state keeps them."""
    path = profile.path / HISTORY
    if not path.exists():
        return []
    history = History(path, profile.data_key, os.urandom)
    try:
        return strangers_in(history.load_rows() or {})
    finally:
        history.close()
