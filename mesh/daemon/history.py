"""Message history and node state, encrypted at rest.

One SQLite file (``history.db`` in the profile, WAL, synchronous FULL). Every row is
``nonce || XChaCha20-Poly1305(history key, msgpack record, ad)`` where the history key is
derived from the profile's random data key, which only the Argon2id passphrase key
unwraps. Nothing in the file is readable without the passphrase: not the contact, the
text, the time or the direction. Once the keystore's slots are wiped (``steppe panic``) no
passphrase opens any row.

Tables: ``messages(id, blob)`` (one row per message, in and out), ``node_rows(key, blob)``
(the node's durable state, one row per session, receipt, delivered id, ...; see
:mod:`mesh.core.durable`) and ``state(key, blob)`` (small records: the summary of the node
rows). Queries decrypt rows in memory; a personal history of tens of thousands of messages
is read in well under a second.

Saving the node state costs what changed
----------------------------------------
:meth:`History.save_rows` writes the node rows a step changed (a send: its session and
its awaited receipt) and nothing else, so sending and receiving stay linear however much
state a node holds. The ``state`` record ``rows`` keeps the number of node rows and a
digest: the XOR of a keyed BLAKE2b of every row's key and sealed blob, updated with each
change. Loading recomputes it, so a node row put back from an older copy, deleted or
added is refused ("rolled back" or "tampered with"), and the ``rows`` record itself is
generation-checked against ``history.gen`` like every state record.

Rows are bound to their place
-----------------------------
The associated data of each row names its table and its row id (``messages`` id, ``state``
key), so a row swapped with another, copied to a second id or moved to the other table
does not decrypt: the first read (or :meth:`History.load_state` at the daemon's start)
checks every row and refuses the file with one line saying which row is out of place.

Rollback of the node state
--------------------------
The node state holds the ratchet sessions. A ``history.db`` put back from an older copy
would make the node reuse message keys it already used, and deliver again what it already
delivered. So every state row carries a generation number, raised on each save, and the
latest generation of each key is also kept in a second file, ``history.gen``, sealed
under the same key (so it cannot be forged without the passphrase). A state row older than
``history.gen`` says is refused: "rolled back". The file is written after the database
commits (never ahead of it, so a crash between the two only leaves it one save behind,
which is accepted), atomically by rename, without a directory fsync (a lost update only
weakens the check by one save, it cannot cause a false alarm).

What this does not catch, and cannot without storage an attacker cannot rewrite: both
files put back together from the same older copy of the disk. A missing state row is not
a rollback (the node then starts with fresh sessions and reuses nothing), and a missing
``history.gen`` is written anew (deleting it disables the check once, as putting back
both files would).

Format versions: ``PRAGMA user_version`` 0 is the first format (ad = table name only);
opening such a file re-seals every row in one transaction, bound to its place (generation
0), and sets version 2. Rows already moved before that cannot be told apart. A message
row is a list of six fields (contact, outgoing, id, created, text, state), since
carriers are counted eight (the envelope id and the carrier count after them), since files
are kept nine (whether the row is a file, :mod:`mesh.daemon.files`); all three read.
Other modules keep their own tables in this file through :meth:`History.table`, sealed the
same way (:meth:`History.seal`, :meth:`History.open`) and committed in the same
transactions.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from crypto import primitives as p
from crypto.errors import CryptoError
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack

HISTORY = "history.db"
GENERATIONS = "history.gen"
FORMAT = 2
_V1_MSG_AD = b"steppe/history/messages/v1"
_V1_STATE_AD = b"steppe/history/state/v1"
_GEN_AD = b"steppe/history/v2|generations"
ROWS_KEY = "rows"  # the state record summarising node_rows: [count, digest]
_OLDER: dict[int, list[object]] = {6: [b"", 0, False], 8: [False]}  # fields rows lack


def _row_ad(key: bytes) -> bytes:
    return b"steppe/history/v2|node_rows|" + key.hex().encode()


def _msg_ad(row: int) -> bytes:
    return b"steppe/history/v2|messages|%d" % row


def _state_ad(key: str) -> bytes:
    return b"steppe/history/v2|state|" + key.encode()


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
    envelope_id: bytes = b""  # outgoing: the envelope that carries it (rows of v2 files: empty)
    carriers: int = 0  # outgoing: how many neighbours it was handed to (mesh.daemon.carried)
    file: bool = False  # a file (mesh.daemon.files): ``text`` is its name

    def to_dict(self) -> dict[str, Any]:
        return {
            "contact": self.contact,
            "outgoing": self.outgoing,
            "msg_id": self.msg_id,
            "created": self.created,
            "text": self.text,
            "state": self.state,
            "carriers": self.carriers,
            "file": self.file,
        }

    def record(self) -> list[object]:
        """The row as it is sealed (nine fields; rows written before carriers: six, before
        files: eight)."""
        return [
            self.contact,
            self.outgoing,
            self.msg_id,
            self.created,
            self.text,
            self.state,
            self.envelope_id,
            self.carriers,
            self.file,
        ]


def history_key(data_key: bytes) -> bytes:
    return p.blake2b(b"history", key=data_key, digest_size=32, person=b"steppe-at-rest")


class History:
    def __init__(self, path: Path, data_key: bytes, rng: p.Rng) -> None:
        self._key = history_key(data_key)
        self._rng = rng
        self._gen_path = path.with_name(GENERATIONS)
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("CREATE TABLE IF NOT EXISTS messages (id INTEGER PRIMARY KEY, blob BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, blob BLOB)")
        self._db.execute("CREATE TABLE IF NOT EXISTS node_rows (key BLOB PRIMARY KEY, blob BLOB)")
        self._digest_key = p.blake2b(b"node rows", key=self._key, digest_size=32)
        path.chmod(0o600)
        self._gens: dict[str, int] = {}  # state key -> generation of its latest save
        self._gens_dirty = False
        self._in_tx = False
        self._ready = False
        # msg id -> row, built on the first mark (one pass) and kept by add: marking a
        # message acknowledged opens one row, not the whole history. A rolled-back add can
        # leave a stale entry; mark checks the row it finds and rebuilds on a mismatch.
        self._by_msg: dict[bytes, int] | None = None
        # contact -> their latest message, and -> the rows of their messages in order:
        # built from the one pass that opens every row, kept by add and mark, dropped on
        # a rollback (rebuilt by a pass on the next call).
        self._latest: dict[bytes, Message] | None = None
        self._by_contact: dict[bytes, list[int]] | None = None

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Everything inside is one commit (one fsync), or nothing if it raises."""
        self._prepare()
        before = dict(self._gens)
        self._db.execute("BEGIN IMMEDIATE")
        self._in_tx = True
        try:
            yield
        except BaseException:
            self._in_tx = False
            self._db.execute("ROLLBACK")
            self._gens, self._gens_dirty = before, False
            self._latest = self._by_contact = None
            raise
        self._in_tx = False
        self._db.execute("COMMIT")
        self._write_gens()

    # ---- other modules' tables (mesh.daemon.files) -----------------------------------
    def table(self, create: str) -> sqlite3.Connection:
        """The database, after ``create`` (a ``CREATE TABLE IF NOT EXISTS``) has run."""
        self._db.execute(create)
        return self._db

    def seal(self, obj: object, ad: bytes) -> bytes:
        """A row's blob: ``ad`` names the table and the row's place in it."""
        return self._seal(obj, ad)

    def open(self, blob: bytes, ad: bytes, where: str) -> Any:
        """A row sealed by :meth:`seal` with the same ``ad`` (HistoryError otherwise)."""
        return self._open(blob, ad, where)

    # ---- sealing, format and checks ---------------------------------------------------
    def _seal(self, obj: object, ad: bytes) -> bytes:
        nonce = self._rng(p.XNONCE_LEN)
        return nonce + p.xchacha_encrypt(self._key, nonce, pack(obj), ad)

    def _open(self, blob: bytes, ad: bytes, where: str) -> Any:
        try:
            raw = p.xchacha_decrypt(self._key, blob[: p.XNONCE_LEN], blob[p.XNONCE_LEN :], ad)
            return strict_unpack(raw, max_size=len(raw), max_str_len=1 << 20)
        except (CryptoError, TypeError):
            raise HistoryError(
                f"{where} does not open where it is: moved, copied, tampered with or "
                "written under another key"
            ) from None

    def _prepare(self) -> None:
        """Once per open: bring an older file to the current format, then check every row
        is in its place and no state row is older than ``history.gen`` says."""
        if self._ready:
            return
        if self._db.execute("PRAGMA user_version").fetchone()[0] < FORMAT:
            self._migrate()
        saved = self._read_gens()
        self._index()  # every message row opens under its own id
        for key, blob in self._db.execute("SELECT key, blob FROM state").fetchall():
            gen = self._state_row(key, blob)[0]
            if gen < saved.get(key, 0):
                raise HistoryError(
                    f"the node state was rolled back to an older copy (save {gen}, the last "
                    f"one was {saved[key]}): restore the newer history.db, or move it away to "
                    "start with fresh sessions"
                )
            self._gens[key] = gen
        self._gens = {**saved, **self._gens}
        self._ready = True

    def _migrate(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            for row, blob in self._db.execute("SELECT id, blob FROM messages").fetchall():
                rec = self._open(blob, _V1_MSG_AD, f"history message {row}")
                self._db.execute(
                    "UPDATE messages SET blob = ? WHERE id = ?",
                    (self._seal(rec, _msg_ad(row)), row),
                )
            for key, blob in self._db.execute("SELECT key, blob FROM state").fetchall():
                f = expect_list(self._open(blob, _V1_STATE_AD, f"state {key!r}"), 2, "state")
                if f[0] != key:
                    raise HistoryError(f"state {key!r} was moved")
                self._db.execute(
                    "UPDATE state SET blob = ? WHERE key = ?",
                    (self._seal([key, 0, f[1]], _state_ad(key)), key),
                )
            self._db.execute(f"PRAGMA user_version = {FORMAT}")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _state_row(self, key: str, blob: bytes) -> tuple[int, bytes]:
        f = expect_list(self._open(blob, _state_ad(key), f"state {key!r}"), 3, "state")
        if f[0] != key:
            raise HistoryError(f"state {key!r} was moved")
        return expect_int(f[1], "generation"), expect_bytes(f[2], "state")

    def _read_gens(self) -> dict[str, int]:
        try:
            blob = self._gen_path.read_bytes()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise HistoryError(f"cannot read {self._gen_path}: {exc.strerror}") from None
        obj = self._open(blob, _GEN_AD, str(self._gen_path))
        if not isinstance(obj, dict) or not all(
            isinstance(k, str) and isinstance(v, int) for k, v in obj.items()
        ):
            raise HistoryError(f"{self._gen_path} is damaged")
        return dict(obj)

    def _write_gens(self) -> None:
        """After the commit: the file may lag the database by one save, never lead it."""
        if not self._gens_dirty:
            return
        tmp = self._gen_path.with_name(GENERATIONS + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(self._seal(self._gens, _GEN_AD))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._gen_path)
        self._gens_dirty = False

    # ---- messages ---------------------------------------------------------------------
    def add(
        self,
        contact: bytes,
        outgoing: bool,
        msg_id: bytes,
        created: int,
        text: str,
        envelope_id: bytes = b"",
        *,
        file: bool = False,
        state: str = "",
    ) -> int:
        self._prepare()
        state = state or ("queued" if outgoing else "received")
        row = int(self._db.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM messages").fetchone()[0])
        m = Message(row, contact, outgoing, msg_id, created, text, state, envelope_id, 0, file)
        blob = self._seal(m.record(), _msg_ad(row))
        self._db.execute("INSERT INTO messages (id, blob) VALUES (?, ?)", (row, blob))
        if self._by_msg is not None:
            self._by_msg[msg_id] = row
        if self._latest is not None and self._by_contact is not None:
            self._latest[contact] = m
            self._by_contact.setdefault(contact, []).append(row)
        return row

    def _message(self, row: int, blob: bytes) -> Message:
        where = f"history message {row}"
        obj = self._open(blob, _msg_ad(row), where)
        if isinstance(obj, list) and len(obj) in _OLDER:  # written before carriers, files
            obj = [*obj, *_OLDER[len(obj)]]
        f = expect_list(obj, 9, "history message")
        return Message(
            row,
            expect_bytes(f[0], "contact"),
            bool(f[1]),
            expect_bytes(f[2], "msg id"),
            expect_int(f[3], "created"),
            str(f[4]),
            str(f[5]),
            expect_bytes(f[6], "envelope id"),
            expect_int(f[7], "carriers"),
            bool(f[8]),
        )

    def _rows(self) -> list[Message]:
        cursor = self._db.execute("SELECT id, blob FROM messages ORDER BY id")
        return [self._message(row, blob) for row, blob in cursor]

    def _find(self, msg_id: bytes) -> Message | None:
        for attempt in range(2):
            if self._by_msg is None or attempt:
                self._by_msg = {m.msg_id: m.row for m in self._rows()}
            row = self._by_msg.get(msg_id)
            if row is None:
                return None
            got = self._db.execute("SELECT blob FROM messages WHERE id = ?", (row,)).fetchone()
            m = None if got is None else self._message(row, got[0])
            if m is not None and m.msg_id == msg_id:
                return m
        return None

    def find(self, msg_id: bytes) -> Message | None:
        self._prepare()
        return self._find(msg_id)

    def mark(self, msg_id: bytes, state: str) -> bool:
        """Set a message's state (``acked``); False if no message has that id."""
        return self._update(msg_id, state=state)

    def carried(self, msg_id: bytes, carriers: int) -> bool:
        """Record that one of our messages was handed to ``carriers`` neighbours."""
        return self._update(msg_id, carriers=carriers)

    def _update(self, msg_id: bytes, **change: Any) -> bool:
        self._prepare()
        m = self._find(msg_id)
        if m is None:
            return False
        m = replace(m, **change)
        self._db.execute(
            "UPDATE messages SET blob = ? WHERE id = ?",
            (self._seal(m.record(), _msg_ad(m.row)), m.row),
        )
        if self._latest is not None:
            latest = self._latest.get(m.contact)
            if latest is not None and latest.row == m.row:
                self._latest[m.contact] = m
        return True

    def awaiting(self) -> list[Message]:
        """Our messages not yet acknowledged whose envelope id is known (rows of this
        format: the carriers counted for them resume from the saved count)."""
        self._prepare()
        return [m for m in self._rows() if m.outgoing and m.state == "queued" and m.envelope_id]

    def _index(self) -> tuple[dict[bytes, Message], dict[bytes, list[int]]]:
        """The latest message and the rows of each contact (one pass over every row when
        they are not kept)."""
        if self._latest is None or self._by_contact is None:
            latest: dict[bytes, Message] = {}
            rows: dict[bytes, list[int]] = {}
            for m in self._rows():
                latest[m.contact] = m
                rows.setdefault(m.contact, []).append(m.row)
            self._latest, self._by_contact = latest, rows
        return self._latest, self._by_contact

    def messages(self, contact: bytes | None = None, limit: int = 100) -> list[Message]:
        """The last ``limit`` messages (0: all), with ``contact`` only if given, oldest
        first. With a contact only their rows are opened (the index of rows by contact
        is kept in memory, never on disk: the file does not say which rows belong
        together)."""
        self._prepare()
        if contact is None:
            rows = self._rows()
            return rows[-limit:] if limit > 0 else rows
        wanted = self._index()[1].get(contact, [])
        wanted = wanted[-limit:] if limit > 0 else wanted
        found: list[Message] = []
        for start in range(0, len(wanted), 500):  # SQLite's bound on parameters
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            query = f"SELECT id, blob FROM messages WHERE id IN ({marks}) ORDER BY id"  # noqa: S608
            found += [self._message(r, b) for r, b in self._db.execute(query, chunk)]
        return found

    def conversations(self) -> dict[bytes, Message]:
        """contact -> the latest message with them (kept in memory)."""
        self._prepare()
        return dict(self._index()[0])

    # ---- node state -------------------------------------------------------------------
    def save_state(self, key: str, data: bytes) -> None:
        self._prepare()
        gen = self._gens.get(key, 0) + 1
        blob = self._seal([key, gen, data], _state_ad(key))
        self._db.execute("INSERT OR REPLACE INTO state (key, blob) VALUES (?, ?)", (key, blob))
        self._gens[key], self._gens_dirty = gen, True
        if not self._in_tx:
            self._write_gens()

    def load_state(self, key: str) -> bytes | None:
        """The saved state under ``key``; the first call checks the whole file (rows in
        their place, no rollback) and raises :class:`HistoryError` with one line."""
        self._prepare()
        row = self._db.execute("SELECT blob FROM state WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        return self._state_row(key, row[0])[1]

    def delete_state(self, key: str) -> None:
        self._prepare()
        self._db.execute("DELETE FROM state WHERE key = ?", (key,))

    # ---- node rows --------------------------------------------------------------------
    def _row_mac(self, key: bytes, blob: bytes) -> int:
        data = len(key).to_bytes(2, "big") + key + blob
        return int.from_bytes(p.blake2b(data, key=self._digest_key, digest_size=32), "big")

    def _summary(self) -> tuple[int, int] | None:
        data = self.load_state(ROWS_KEY)
        if data is None:
            return None
        f = expect_list(strict_unpack(data, max_size=len(data)), 2, "node rows summary")
        return expect_int(f[0], "row count"), int.from_bytes(expect_bytes(f[1], "digest"), "big")

    def save_rows(self, changes: Mapping[bytes, bytes | None]) -> None:
        """Write the node rows that changed (``None``: delete), and the summary, in one
        transaction (the caller's, if one is open)."""
        if not changes:
            return
        if not self._in_tx:
            with self.transaction():
                self.save_rows(changes)
            return
        count, digest = self._summary() or (0, 0)
        for key, value in changes.items():
            old = self._db.execute("SELECT blob FROM node_rows WHERE key = ?", (key,)).fetchone()
            if old is not None:
                count, digest = count - 1, digest ^ self._row_mac(key, old[0])
            if value is None:
                self._db.execute("DELETE FROM node_rows WHERE key = ?", (key,))
                continue
            blob = self._seal([key, value], _row_ad(key))
            self._db.execute(
                "INSERT OR REPLACE INTO node_rows (key, blob) VALUES (?, ?)", (key, blob)
            )
            count, digest = count + 1, digest ^ self._row_mac(key, blob)
        self.save_state(ROWS_KEY, pack([count, digest.to_bytes(32, "big")]))

    def load_rows(self) -> dict[bytes, bytes] | None:
        """Every node row (``None`` if none was ever saved), each checked in its place and
        all of them against the summary. Raises :class:`HistoryError` with one line."""
        summary = self._summary()
        if summary is None:
            return None
        rows: dict[bytes, bytes] = {}
        digest = 0
        for key, blob in self._db.execute("SELECT key, blob FROM node_rows"):
            key = bytes(key)
            f = expect_list(self._open(blob, _row_ad(key), "a node state row"), 2, "node row")
            if f[0] != key:
                raise HistoryError("a node state row was moved")
            rows[key] = expect_bytes(f[1], "node row")
            digest ^= self._row_mac(key, blob)
        if (len(rows), digest) != summary:
            raise HistoryError(
                "the node state rows do not match their summary: rolled back to an older "
                "copy or tampered with (restore the newer history.db, or move it away to "
                "start with fresh sessions)"
            )
        return rows
