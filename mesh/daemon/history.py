"""Message history and node state, encrypted at rest.

One SQLite file (``history.db`` in the profile, WAL, synchronous FULL). Every row is
``nonce || XChaCha20-Poly1305(history key, msgpack record, ad = table name)`` where the
history key is derived from the profile's random data key, which only the Argon2id
passphrase key unwraps. Nothing in the file is readable without the passphrase: not the
contact, the text, the time or the direction. Rows are bound to their table, so a row
cannot be moved from one table to the other. Once the keystore's slots are wiped
(``steppe panic``) no passphrase opens any row.

Tables: ``messages(id, blob)`` (one row per message, in and out) and ``state(key, blob)``
(the node's exported state). Queries decrypt rows in memory; a personal history of tens of
thousands of messages is read in well under a second.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto import primitives as p
from crypto.errors import CryptoError
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack

HISTORY = "history.db"
_MSG_AD = b"steppe/history/messages/v1"
_STATE_AD = b"steppe/history/state/v1"


class HistoryError(Exception):
    pass


@dataclass(slots=True)
class Message:
    row: int
    contact: bytes  # the contact's identity key
    outgoing: bool
    msg_id: bytes
    created: int
    text: str
    state: str  # outgoing: queued / acked; incoming: received

    def to_dict(self) -> dict[str, Any]:
        return {
            "contact": self.contact,
            "outgoing": self.outgoing,
            "msg_id": self.msg_id,
            "created": self.created,
            "text": self.text,
            "state": self.state,
        }


def history_key(data_key: bytes) -> bytes:
    return p.blake2b(b"history", key=data_key, digest_size=32, person=b"steppe-at-rest")


class History:
    def __init__(self, path: Path, data_key: bytes, rng: p.Rng) -> None:
        self._key = history_key(data_key)
        self._rng = rng
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, blob BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, blob BLOB)")
        path.chmod(0o600)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is one commit (one fsync), or nothing if it raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _seal(self, obj: object, ad: bytes) -> bytes:
        nonce = self._rng(p.XNONCE_LEN)
        return nonce + p.xchacha_encrypt(self._key, nonce, pack(obj), ad)

    def _open(self, blob: bytes, ad: bytes) -> Any:
        try:
            raw = p.xchacha_decrypt(self._key, blob[: p.XNONCE_LEN], blob[p.XNONCE_LEN :], ad)
        except CryptoError:
            raise HistoryError("history row does not decrypt (wrong key or tampered)") from None
        return strict_unpack(raw, max_size=len(raw), max_str_len=1 << 20)

    # ---- messages ---------------------------------------------------------------------
    def add(self, contact: bytes, outgoing: bool, msg_id: bytes, created: int, text: str) -> int:
        state = "queued" if outgoing else "received"
        blob = self._seal([contact, outgoing, msg_id, created, text, state], _MSG_AD)
        cur = self._db.execute("INSERT INTO messages (blob) VALUES (?)", (blob,))
        return int(cur.lastrowid or 0)

    def _rows(self) -> list[Message]:
        out = []
        for row, blob in self._db.execute("SELECT id, blob FROM messages ORDER BY id"):
            f = expect_list(self._open(blob, _MSG_AD), 6, "history message")
            out.append(
                Message(
                    row,
                    expect_bytes(f[0], "contact"),
                    bool(f[1]),
                    expect_bytes(f[2], "msg id"),
                    expect_int(f[3], "created"),
                    str(f[4]),
                    str(f[5]),
                )
            )
        return out

    def mark(self, msg_id: bytes, state: str) -> bool:
        for m in self._rows():
            if m.msg_id == msg_id:
                rec = [m.contact, m.outgoing, m.msg_id, m.created, m.text, state]
                self._db.execute(
                    "UPDATE messages SET blob = ? WHERE id = ?", (self._seal(rec, _MSG_AD), m.row)
                )
                return True
        return False

    def messages(self, contact: bytes | None = None, limit: int = 100) -> list[Message]:
        rows = [m for m in self._rows() if contact is None or m.contact == contact]
        return rows[-limit:] if limit > 0 else rows

    def conversations(self) -> dict[bytes, Message]:
        """contact -> the latest message with them."""
        last: dict[bytes, Message] = {}
        for m in self._rows():
            last[m.contact] = m
        return last

    # ---- node state -------------------------------------------------------------------
    def save_state(self, key: str, data: bytes) -> None:
        blob = self._seal([key, data], _STATE_AD)
        self._db.execute("INSERT OR REPLACE INTO state (key, blob) VALUES (?, ?)", (key, blob))

    def load_state(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT blob FROM state WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        f = expect_list(self._open(row[0], _STATE_AD), 2, "state")
        if f[0] != key:
            raise HistoryError("state row was moved")
        return expect_bytes(f[1], "state")
