"""Files sent and received, kept in the history database and encrypted at rest like it.

Theory of operation
-------------------
A file is a message in the history (a row whose ``file`` flag is set and whose text is
the file's name, as the sender wrote it: render it inert) and a record here, both under
the message's id. Its state is the message row's state, kept in that one place: ours
``queued`` until the recipient's receipt says the whole file arrived, then ``acked``;
theirs ``receiving``, then ``received`` (every chunk here and the whole file matches the
manifest's digest), ``damaged`` (it does not: a modified sender), ``dropped`` (it expired
before it was whole), ``refused`` (the node would not take it, and why is the note) or
``deleted`` (the user deleted its content, :meth:`Files.delete`; the record stays).

Two tables in ``history.db``: ``files(id, blob)``, one record per file (contact, file id,
name, type, size, chunk count, chunks received, digest, note, time), and
``file_chunks(id, idx, blob)``, one row per received chunk holding its piece. Every blob is
sealed under the history key (:meth:`mesh.daemon.history.History.seal`) with associated
data naming its table and its place (message id; message id and index), so a chunk moved
to another index or another file, or a record swapped with another, does not open.

Commit before acknowledging: the daemon writes a step's chunks in the same history
transaction as the node rows that mark them received (:meth:`Files.commit`, from
``Daemon._commit_step``), before the envelope store commits and before any receipt the
step releases is sent. A crash loses no acknowledged chunk, and a restart resumes the
file from the chunks on disk. Memory: one chunk at a time; the digest check and a save
stream the rows in index order (:meth:`Files.pieces`).

What the file does not hide from someone who has it without the passphrase: how many
files and chunk rows there are and so roughly their sizes, and which chunk rows belong to
one file (they share an id column). Not their names, content, senders or times.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from crypto.attachment import DIGEST_LEN, file_hasher
from crypto.wire import expect_bytes, expect_int, expect_list, expect_str
from mesh.core.events import Action, ChunkReceived, FileDropped, FileOffered, FileReceived
from mesh.daemon.history import History, HistoryError

log = logging.getLogger(__name__)

RECEIVING, RECEIVED, DAMAGED, DROPPED, REFUSED, DELETED = (
    "receiving",
    "received",
    "damaged",
    "dropped",
    "refused",
    "deleted",
)
_FILES = "CREATE TABLE IF NOT EXISTS files (id BLOB PRIMARY KEY, blob BLOB)"
_CHUNKS = (
    "CREATE TABLE IF NOT EXISTS file_chunks "
    "(id BLOB, idx INTEGER, blob BLOB, PRIMARY KEY (id, idx))"
)


def _file_ad(msg_id: bytes) -> bytes:
    return b"steppe/history/v2|files|" + msg_id.hex().encode()


def _chunk_ad(msg_id: bytes, index: int) -> bytes:
    return b"steppe/history/v2|file_chunks|" + msg_id.hex().encode() + b"|%d" % index


class FileError(Exception):
    """One readable line: why a file cannot be found, read or saved."""


@dataclass(frozen=True, slots=True)
class FileRecord:
    msg_id: bytes  # the message that carries the file: its id everywhere
    contact: bytes
    outgoing: bool
    file_id: bytes  # the manifest's (empty: a manifest that could not be read)
    name: str  # as the sender wrote it
    mime: str
    size: int
    count: int  # chunks
    received: int  # chunks here (ours: 0)
    digest: bytes
    note: str  # refused or dropped: why; ours: what was removed before sending
    created: int

    def record(self) -> list[object]:
        return [
            self.msg_id,
            self.contact,
            self.outgoing,
            self.file_id,
            self.name,
            self.mime,
            self.size,
            self.count,
            self.received,
            self.digest,
            self.note,
            self.created,
        ]

    @classmethod
    def load(cls, obj: object) -> FileRecord:
        f = expect_list(obj, 12, "file record")
        return cls(
            expect_bytes(f[0], "message id"),
            expect_bytes(f[1], "contact"),
            bool(f[2]),
            expect_bytes(f[3], "file id"),
            expect_str(f[4], "name"),
            expect_str(f[5], "type"),
            expect_int(f[6], "size"),
            expect_int(f[7], "chunk count"),
            expect_int(f[8], "chunks received"),
            expect_bytes(f[9], "digest"),
            expect_str(f[10], "note"),
            expect_int(f[11], "created"),
        )


class Files:
    def __init__(self, history: History) -> None:
        self._history = history
        self._db = history.table(_FILES)
        history.table(_CHUNKS)
        self._by_file: dict[bytes, bytes] | None = None  # file id -> message id

    # ---- records ----------------------------------------------------------------------
    def _put(self, rec: FileRecord) -> None:
        blob = self._history.seal(rec.record(), _file_ad(rec.msg_id))
        self._db.execute(
            "INSERT OR REPLACE INTO files (id, blob) VALUES (?, ?)", (rec.msg_id, blob)
        )
        if self._by_file is not None and rec.file_id:
            self._by_file[rec.file_id] = rec.msg_id

    def get(self, msg_id: bytes) -> FileRecord | None:
        row = self._db.execute("SELECT blob FROM files WHERE id = ?", (msg_id,)).fetchone()
        if row is None:
            return None
        rec = FileRecord.load(self._history.open(row[0], _file_ad(msg_id), "a file record"))
        if rec.msg_id != msg_id:
            raise HistoryError("a file record was moved")
        return rec

    def records(self) -> list[FileRecord]:
        found = []
        for msg_id, blob in self._db.execute("SELECT id, blob FROM files").fetchall():
            rec = FileRecord.load(self._history.open(blob, _file_ad(msg_id), "a file record"))
            if rec.msg_id != msg_id:
                raise HistoryError("a file record was moved")
            found.append(rec)
        return sorted(found, key=lambda r: (r.created, r.msg_id))

    def of_file(self, file_id: bytes) -> FileRecord | None:
        if self._by_file is None or file_id not in self._by_file:
            self._by_file = {r.file_id: r.msg_id for r in self.records() if r.file_id}
        msg_id = self._by_file.get(file_id)
        return None if msg_id is None else self.get(msg_id)

    def state(self, msg_id: bytes) -> str:
        m = self._history.find(msg_id)
        return "" if m is None else m.state

    def find(self, prefix: str) -> FileRecord:
        """The file whose message id (hex) starts with ``prefix``."""
        text = prefix.strip().lower()
        if len(text) < 4 or any(ch not in "0123456789abcdef" for ch in text):
            raise FileError(f"{prefix!r} is not a file id (at least 4 hex digits, from 'files')")
        hits = [r for r in self.records() if r.msg_id.hex().startswith(text)]
        if not hits:
            raise FileError(f"no file has an id starting with {text}")
        if len(hits) > 1:
            raise FileError(f"{len(hits)} files have ids starting with {text}: give more digits")
        return hits[0]

    # ---- ours -------------------------------------------------------------------------
    def sent(self, rec: FileRecord, envelope_id: bytes) -> None:
        """One of our files was queued (inside the caller's history transaction)."""
        self._history.add(
            rec.contact, True, rec.msg_id, rec.created, rec.name, envelope_id, file=True
        )
        self._put(rec)

    # ---- theirs: a step's file actions ------------------------------------------------
    def commit(self, actions: Iterable[Action]) -> None:
        """Keep what a step's file actions say, inside the step's history transaction."""
        for act in actions:
            match act:
                case FileOffered():
                    self._offered(act)
                case ChunkReceived():
                    self._chunk(act)
                case FileReceived():
                    self._whole(act)
                case FileDropped():
                    self._dropped(act)

    def _offered(self, act: FileOffered) -> None:
        if self.get(act.msg_id) is not None:
            return  # the same manifest again
        state = REFUSED if act.refused else RECEIVING
        self._history.add(
            act.sender, False, act.msg_id, act.created, act.name, file=True, state=state
        )
        digest = act.digest if len(act.digest) == DIGEST_LEN else b""
        rec = FileRecord(
            act.msg_id,
            act.sender,
            False,
            act.file_id,
            act.name,
            act.mime,
            act.size,
            act.count,
            0,
            digest,
            act.refused,
            act.created,
        )
        self._put(rec)

    def _chunk(self, act: ChunkReceived) -> None:
        rec = self.of_file(act.file_id)
        if rec is None or not 0 <= act.index < rec.count:
            log.warning("a chunk of a file without a record: not kept")
            return
        blob = self._history.seal([act.index, act.data], _chunk_ad(rec.msg_id, act.index))
        self._db.execute(
            "INSERT OR REPLACE INTO file_chunks (id, idx, blob) VALUES (?, ?, ?)",
            (rec.msg_id, act.index, blob),
        )
        self._put(replace(rec, received=act.received))

    def _whole(self, act: FileReceived) -> None:
        rec = self.of_file(act.file_id)
        if rec is None:
            return
        h, size = file_hasher(), 0
        try:
            for piece in self.pieces(rec):
                h.update(piece)
                size += len(piece)
        except FileError:
            size = -1
        if size == rec.size and h.digest() == rec.digest:
            self._history.mark(rec.msg_id, RECEIVED)
            return
        self._history.mark(rec.msg_id, DAMAGED)
        self._put(replace(rec, note="the file does not match what its sender's manifest says"))
        self._forget_chunks(rec.msg_id)

    def _dropped(self, act: FileDropped) -> None:
        rec = self.of_file(act.file_id)
        if rec is None:
            return
        self._history.mark(rec.msg_id, DROPPED)
        self._put(replace(rec, note=act.reason))
        self._forget_chunks(rec.msg_id)

    def _forget_chunks(self, msg_id: bytes) -> None:
        self._db.execute("DELETE FROM file_chunks WHERE id = ?", (msg_id,))

    def delete(self, rec: FileRecord) -> None:
        """Forget a received file's content (its chunk rows); its record and message stay,
        marked ``deleted``. A file still arriving goes on arriving (the node still
        expects its chunks): delete it once it is received, dropped or damaged."""
        state = self.state(rec.msg_id)
        if rec.outgoing or state == RECEIVING:
            what = "one of yours (nothing of it is kept)" if rec.outgoing else "still arriving"
            raise FileError(f"{rec.name!r} cannot be deleted: it is {what}")
        with self._history.transaction():
            self._forget_chunks(rec.msg_id)
            self._history.mark(rec.msg_id, DELETED)
        self._db.execute("VACUUM")  # the pieces leave the file, not only the table

    # ---- reading and saving -----------------------------------------------------------
    def pieces(self, rec: FileRecord) -> Iterator[bytes]:
        """The file's pieces in order, each opened in its place (FileError if one is
        missing)."""
        cursor = self._db.execute(
            "SELECT idx, blob FROM file_chunks WHERE id = ? ORDER BY idx", (rec.msg_id,)
        )
        expected = 0
        for index, blob in cursor:
            f = expect_list(
                self._history.open(blob, _chunk_ad(rec.msg_id, index), "a file chunk"),
                2,
                "file chunk",
            )
            if f[0] != index or index != expected:
                raise FileError(f"chunk {expected} of {rec.name!r} is missing")
            expected += 1
            yield expect_bytes(f[1], "chunk")
        if expected != rec.count:
            raise FileError(f"{rec.name!r} has {expected} of its {rec.count} chunks")

    def save(self, rec: FileRecord, path: Path) -> int:
        """Write a received file to ``path`` (absolute, not yet existing, mode 0600);
        returns its size. Nothing is left at ``path`` if it fails."""
        state = self.state(rec.msg_id)
        if rec.outgoing or state != RECEIVED:
            what = "one of yours" if rec.outgoing else state or "unknown"
            raise FileError(f"{rec.name!r} cannot be saved: it is {what}")
        if not path.is_absolute():
            raise FileError(f"{path} is not an absolute path")
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise FileError(f"cannot write {path}: {exc.strerror}") from None
        size = 0
        try:
            with os.fdopen(fd, "wb") as out:
                for piece in self.pieces(rec):
                    out.write(piece)
                    size += len(piece)
                out.flush()
                os.fsync(out.fileno())
        except BaseException as exc:
            path.unlink(missing_ok=True)
            if isinstance(exc, OSError):
                raise FileError(f"cannot write {path}: {exc.strerror}") from None
            raise
        return size
