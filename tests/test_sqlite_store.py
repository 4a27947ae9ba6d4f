"""SQLite-only properties: reopen, schema migration, durability under kill -9."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import pytest

from mesh.core import envelope as E
from mesh.core.store import PutStatus, StoreItem
from mesh.daemon.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SQLiteStore, StoreFileError

NOW = 1_700_000_000
ROOT = Path(__file__).resolve().parent.parent


def _item(n: int) -> StoreItem:
    return StoreItem(n.to_bytes(32, "big"), b"d" * 50, NOW + 3600, 0, b"s")


def test_contents_and_seen_set_survive_reopen(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    s = SQLiteStore(path)
    s.put_many([_item(1), _item(2)], NOW)
    s.delete(_item(1).id, NOW)
    s.close()
    s = SQLiteStore(path)
    assert s.put(_item(1), NOW).status is PutStatus.SEEN
    assert s.has(_item(2).id)
    assert s.count() == 1
    assert s.total_bytes() == 50
    assert s.source_bytes(b"s") == 50
    s.close()


def test_migration_from_v1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    db = sqlite3.connect(path, isolation_level=None)
    MIGRATIONS[0](db)
    db.execute("PRAGMA user_version = 1")
    env = E.make(E.Kind.SESSION, (NOW + 7200) // 3600, b"t" * 8, bytes(512), 5, receipt=b"r" * 16)
    frame = E.encode(env)
    for eid, data in ((env.id(), frame), (b"\x01" * 32, b"not an envelope")):
        db.execute(
            "INSERT INTO envelopes (id, data, expiry, priority, source, size)"
            " VALUES (?, ?, ?, 0, ?, ?)",
            (eid, data, NOW + 10, b"x", len(data)),
        )
    db.close()
    s = SQLiteStore(path)
    assert s.get(env.id()) == frame
    assert s.header(env.id()) == (b"t" * 8, 5)  # v3 reads the index columns from the frame
    assert s.ids_with_tag(b"t" * 8) == [env.id()]
    assert s.ids_with_receipt(b"r" * 16) == [env.id()]
    assert not s.has(b"\x01" * 32)  # a row that is not an envelope is dropped
    assert s.source_bytes(b"x") == len(frame)  # v4 counts per source on disk
    s.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    cols = [r[1] for r in db.execute("PRAGMA table_info(envelopes)")]
    assert "received" in cols
    db.close()


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    db.close()
    with pytest.raises(StoreFileError, match="newer"):
        SQLiteStore(path)


def test_not_a_database_gives_store_error(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreFileError):
        SQLiteStore(path)


def test_wal_mode(tmp_path: Path) -> None:
    s = SQLiteStore(tmp_path / "w.db")
    assert s._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    s.close()


def test_acknowledged_envelopes_survive_kill_9(tmp_path: Path) -> None:
    path = tmp_path / "kill.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.store_writer", str(path), "50"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    acknowledged: list[str] = []
    deadline = time.monotonic() + 60
    while len(acknowledged) < 2000 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        acknowledged.append(line.strip())
    proc.send_signal(signal.SIGKILL)  # in the middle of a later batch
    proc.wait()
    proc.stdout.close()
    assert len(acknowledged) >= 2000, "writer did not get going"
    store = SQLiteStore(path)
    missing = [i for i in acknowledged if not store.has(bytes.fromhex(i))]
    assert missing == []
    # The store is consistent: the in-memory mirror matches the table.
    assert store.count() == len(store.ids_in_range(b"", None)) >= len(acknowledged)
    store.close()


def test_per_source_counts_cost_no_memory_per_label(tmp_path: Path) -> None:
    """Issue 10 (memory per stored envelope): per-source byte counts were a dict in memory,
    ~130 B per distinct label, and a relay can hold as many labels as envelopes (its own
    each carry a random one). Opening a store of 20,000 labels now allocates nothing per
    label (the counts are a table kept by triggers), and the counts stay right."""
    path = tmp_path / "s.db"
    s = SQLiteStore(path)
    items = [
        StoreItem(n.to_bytes(32, "big"), b"d" * 50, NOW + 3600, 0, n.to_bytes(16, "big"))
        for n in range(20_000)
    ]
    s.put_many(items, NOW)
    s.close()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        s = SQLiteStore(path)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held < 200_000, held  # the dict was 2.6 MB
    assert s.source_bytes((7).to_bytes(16, "big")) == 50
    s.delete((7).to_bytes(32, "big"), NOW)
    assert s.source_bytes((7).to_bytes(16, "big")) == 0
    with s.transaction():
        s.put(StoreItem(b"\xee" * 32, b"e" * 70, NOW + 3600, 0, b"z"), NOW)
        assert s.source_bytes(b"z") == 70  # seen inside the transaction that wrote it
    assert s.total_bytes() == 19_999 * 50 + 70
    s.close()
