from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mesh.core.memory_store import MemoryStore
from mesh.core.store import PolicyStore, Quotas
from mesh.daemon.sqlite_store import SQLiteStore

StoreFactory = Callable[..., PolicyStore]


@pytest.fixture(params=["memory", "sqlite"])
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[PolicyStore] = []

    def factory(quotas: Quotas | None = None, name: str = "store.db") -> PolicyStore:
        store: PolicyStore
        if request.param == "memory":
            store = MemoryStore(quotas)
        else:
            store = SQLiteStore(tmp_path / name, quotas)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def rng() -> Callable[[int], bytes]:
    """A seeded byte source, so failures reproduce."""
    r = random.Random(1234)
    return r.randbytes
