"""SQLite backend of :class:`mesh.core.store.PolicyStore` (the daemon's default).

One file per profile, WAL journal, ``synchronous=FULL``: a transaction that returned has
reached the disk, so an envelope reported ``STORED`` survives ``kill -9`` and power loss.
The schema is versioned with ``PRAGMA user_version`` and upgraded step by step by
:data:`MIGRATIONS` when the store is opened.

The count and the total sizes are mirrored in memory (loaded at open, kept in step inside
each transaction, rebuilt if a transaction rolls back), so the global quota checks cost no
query; per-source byte counts live in a ``sources`` table kept by triggers (one indexed
read per admission); everything per envelope (ids, tags, receipt hashes,
budgets) stays on disk behind indexes, so memory does not grow with the store. One
process owns a store file at a time.

Rows hold only what any relay of the envelope sees (its id, frame, expiry, tag, receipt
hash and budget), a rank made of public facts, an opaque source label and the arrival
time: nothing marks the owner's own envelopes or those addressed to it (that is kept in
memory, :meth:`~mesh.core.store.PolicyStore.protect`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from mesh.core import envelope
from mesh.core.session import TAG_LEN
from mesh.core.store import PUBLIC_RANK, Meta, PolicyStore, Quotas, StoreItem

SCHEMA_VERSION = 4


def _v1(db: sqlite3.Connection) -> None:
    db.execute(
        "CREATE TABLE envelopes (id BLOB PRIMARY KEY NOT NULL, data BLOB NOT NULL,"
        " expiry INTEGER NOT NULL, priority INTEGER NOT NULL, source BLOB NOT NULL,"
        " size INTEGER NOT NULL)"
    )
    db.execute("CREATE INDEX envelopes_expiry ON envelopes(expiry)")
    db.execute(
        "CREATE TABLE seen (id BLOB PRIMARY KEY NOT NULL, expiry INTEGER NOT NULL) WITHOUT ROWID"
    )


def _v2(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE envelopes ADD COLUMN received INTEGER NOT NULL DEFAULT 0")
    db.execute("CREATE INDEX envelopes_evict ON envelopes(priority, expiry)")
    db.execute("CREATE INDEX seen_expiry ON seen(expiry)")


def _v3(db: sqlite3.Connection) -> None:
    """The envelope index moves to disk: tag, receipt hash and budget, read from each
    stored frame (a frame that no longer decodes is dropped)."""
    db.execute("ALTER TABLE envelopes ADD COLUMN tag BLOB NOT NULL DEFAULT x''")
    db.execute("ALTER TABLE envelopes ADD COLUMN receipt BLOB NOT NULL DEFAULT x''")
    db.execute("ALTER TABLE envelopes ADD COLUMN budget INTEGER NOT NULL DEFAULT 0")
    for eid, frame in db.execute("SELECT id, data FROM envelopes").fetchall():
        try:
            env = envelope.decode(bytes(frame))
        except envelope.EnvelopeError:
            db.execute("DELETE FROM envelopes WHERE id = ?", (eid,))
            continue
        db.execute(
            "UPDATE envelopes SET tag = ?, receipt = ?, budget = ? WHERE id = ?",
            (env.tag, env.receipt, env.budget, eid),
        )
    db.execute("CREATE INDEX envelopes_tag ON envelopes(tag) WHERE tag != x''")
    db.execute("CREATE INDEX envelopes_receipt ON envelopes(receipt) WHERE receipt != x''")


def _v4(db: sqlite3.Connection) -> None:
    """Per-source byte counts move to disk, kept by triggers in the same transaction as the
    rows they count: held in memory they cost ~130 B per distinct source label, and labels
    are as many as envelopes in the worst case (own envelopes each carry a random one)."""
    db.execute(
        "CREATE TABLE sources (source BLOB PRIMARY KEY NOT NULL, bytes INTEGER NOT NULL)"
        " WITHOUT ROWID"
    )
    db.execute("INSERT INTO sources SELECT source, SUM(size) FROM envelopes GROUP BY source")
    db.execute(
        "CREATE TRIGGER sources_insert AFTER INSERT ON envelopes BEGIN"
        " INSERT INTO sources VALUES (new.source, new.size)"
        " ON CONFLICT(source) DO UPDATE SET bytes = bytes + new.size; END"
    )
    db.execute(
        "CREATE TRIGGER sources_delete AFTER DELETE ON envelopes BEGIN"
        " UPDATE sources SET bytes = bytes - old.size WHERE source = old.source;"
        " DELETE FROM sources WHERE source = old.source AND bytes <= 0; END"
    )
    db.execute(
        "CREATE TRIGGER sources_resize AFTER UPDATE OF size ON envelopes BEGIN"
        " UPDATE sources SET bytes = bytes + new.size - old.size WHERE source = old.source;"
        " END"
    )


MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [_v1, _v2, _v3, _v4]


class StoreFileError(Exception):
    """The store file cannot be used (newer schema, not a database, locked)."""


def migrate(db: sqlite3.Connection, target: int = SCHEMA_VERSION) -> int:
    """Bring the schema up to ``target``, one transaction per step; return the old version."""
    current = int(db.execute("PRAGMA user_version").fetchone()[0])
    if current > len(MIGRATIONS):
        raise StoreFileError(f"store schema v{current} is newer than this Steppe (v{target})")
    for version in range(current, target):
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[version](db)
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
    return current


class SQLiteStore(PolicyStore):
    def __init__(self, path: str | Path, quotas: Quotas | None = None) -> None:
        super().__init__(quotas)
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=5.0)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            migrate(self._db)
        except sqlite3.DatabaseError as exc:
            raise StoreFileError(f"{self.path}: {exc}") from exc
        self._depth = 0
        self._load_mirror()

    def _load_mirror(self) -> None:
        row = self._db.execute("SELECT COALESCE(SUM(size), 0) FROM envelopes").fetchone()
        self._bytes = int(row[0])
        self._count = int(self._db.execute("SELECT COUNT(*) FROM envelopes").fetchone()[0])
        row = self._db.execute(
            "SELECT COALESCE(SUM(size), 0) FROM envelopes WHERE priority >= ?", (PUBLIC_RANK,)
        ).fetchone()
        self._public = int(row[0])

    # ---- reads ------------------------------------------------------------------------
    def has(self, envelope_id: bytes) -> bool:
        row = self._db.execute("SELECT 1 FROM envelopes WHERE id = ?", (envelope_id,)).fetchone()
        return row is not None

    def get(self, envelope_id: bytes) -> bytes | None:
        row = self._db.execute("SELECT data FROM envelopes WHERE id = ?", (envelope_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def count(self) -> int:
        return self._count

    def public_bytes(self) -> int:
        return self._public

    def total_bytes(self) -> int:
        return self._bytes

    def source_bytes(self, source: bytes) -> int:
        row = self._db.execute("SELECT bytes FROM sources WHERE source = ?", (source,)).fetchone()
        return 0 if row is None else int(row[0])

    def ids_in_range(self, lo: bytes, hi: bytes | None, limit: int | None = None) -> list[bytes]:
        sql = "SELECT id FROM envelopes WHERE id >= ?"
        args: list[object] = [lo]
        if hi is not None:
            sql += " AND id < ?"
            args.append(hi)
        sql += " ORDER BY id"
        if limit is not None:
            sql += " LIMIT ?"
            args.append(limit)
        return [bytes(r[0]) for r in self._db.execute(sql, args)]

    def seen_count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM seen").fetchone()[0])

    def meta(self, envelope_id: bytes) -> Meta | None:
        row = self._db.execute(
            "SELECT expiry, priority, rowid FROM envelopes WHERE id = ?", (envelope_id,)
        ).fetchone()
        return None if row is None else Meta(int(row[0]), int(row[1]), int(row[2]))

    def _with_tag(self, tag: bytes) -> list[bytes]:
        # A whole 8-byte session tag also finds the tags that start with it (a route key
        # after it): the range [tag, tag + 8 x ff] of the tag index.
        top = tag + b"\xff" * 8 if len(tag) == TAG_LEN else tag
        rows = self._db.execute(
            "SELECT id FROM envelopes WHERE tag >= ? AND tag <= ? AND tag != x''", (tag, top)
        )
        return [bytes(r[0]) for r in rows]

    def _with_receipt(self, receipt: bytes) -> list[bytes]:
        rows = self._db.execute(
            "SELECT id FROM envelopes WHERE receipt = ? AND receipt != x''", (receipt,)
        )
        return [bytes(r[0]) for r in rows]

    def _header(self, envelope_id: bytes) -> tuple[bytes, int] | None:
        row = self._db.execute(
            "SELECT tag, budget FROM envelopes WHERE id = ?", (envelope_id,)
        ).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def _replace(self, envelope_id: bytes, data: bytes, budget: int) -> bool:
        row = self._db.execute(
            "SELECT source, size, priority FROM envelopes WHERE id = ?", (envelope_id,)
        ).fetchone()
        if row is None:
            return False
        delta = len(data) - int(row[1])
        if int(row[2]) >= PUBLIC_RANK:
            self._public += delta
        self._db.execute(
            "UPDATE envelopes SET data = ?, size = ?, budget = ? WHERE id = ?",
            (data, len(data), budget, envelope_id),
        )
        self._bytes += delta
        return True

    def close(self) -> None:
        self._db.close()

    # ---- primitives -------------------------------------------------------------------
    def _transaction(self) -> AbstractContextManager[object]:
        return self._txn()

    @contextmanager
    def _txn(self) -> Iterator[None]:
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self._depth = 1
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            self._load_mirror()
            raise
        else:
            self._db.execute("COMMIT")
        finally:
            self._depth = 0

    def _expiry_of(self, envelope_id: bytes) -> int | None:
        row = self._db.execute(
            "SELECT expiry FROM envelopes WHERE id = ?", (envelope_id,)
        ).fetchone()
        return None if row is None else int(row[0])

    def _is_seen(self, envelope_id: bytes, now: int) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM seen WHERE id = ? AND expiry > ?", (envelope_id, now)
        ).fetchone()
        return row is not None

    def _add_seen(self, envelope_id: bytes, expiry: int) -> None:
        self._db.execute(
            "INSERT INTO seen (id, expiry) VALUES (?, ?) ON CONFLICT(id) DO UPDATE"
            " SET expiry = max(expiry, excluded.expiry)",
            (envelope_id, expiry),
        )

    def _insert(self, item: StoreItem, now: int) -> None:
        self._db.execute(
            "INSERT INTO envelopes (id, data, expiry, priority, source, size, received, tag,"
            " receipt, budget) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                item.id,
                item.data,
                item.expiry,
                item.priority,
                item.source,
                item.size,
                now,
                item.tag,
                item.receipt,
                item.budget,
            ),
        )
        self._count += 1
        if item.priority >= PUBLIC_RANK:
            self._public += item.size
        self._bytes += item.size

    def _remove(self, envelope_id: bytes) -> None:
        row = self._db.execute(
            "DELETE FROM envelopes WHERE id = ? RETURNING size, priority", (envelope_id,)
        ).fetchone()
        if row is None:
            return
        size = int(row[0])
        self._count -= 1
        if int(row[1]) >= PUBLIC_RANK:
            self._public -= size
        self._bytes -= size

    def _eviction_order(self, public: bool) -> Iterator[tuple[int, int, bytes, int]]:
        where = "priority >= ?" if public else "priority < ?"
        cursor = self._db.execute(
            "SELECT priority, expiry, id, size FROM envelopes WHERE "  # noqa: S608
            + where
            + " ORDER BY priority, expiry",
            (PUBLIC_RANK,),
        )
        for priority, expiry, vid, size in cursor:
            yield int(priority), int(expiry), bytes(vid), int(size)

    def _arrival_order(self, public: bool) -> Iterator[tuple[bytes, int]]:
        where = "priority >= ?" if public else "priority < ?"
        cursor = self._db.execute(
            "SELECT id, size FROM envelopes WHERE "  # noqa: S608
            + where
            + " ORDER BY rowid",
            (PUBLIC_RANK,),
        )
        for vid, size in cursor:
            yield bytes(vid), int(size)

    def _sweep(self, now: int) -> list[bytes]:
        dead = [
            bytes(r[0])
            for r in self._db.execute("SELECT id FROM envelopes WHERE expiry <= ?", (now,))
        ]
        for vid in dead:
            self._remove(vid)
        self._db.execute("DELETE FROM seen WHERE expiry <= ?", (now,))
        return dead
