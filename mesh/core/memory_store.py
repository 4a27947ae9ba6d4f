"""In-memory backend of :class:`~mesh.core.store.PolicyStore` (the simulator's): sorted by
id for range queries, with dict indexes by tag and receipt."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import replace

from sortedcontainers import SortedDict, SortedList

from mesh.core.multiindex import MultiIndex
from mesh.core.session import message_tag
from mesh.core.store import PUBLIC_RANK, Meta, PolicyStore, Quotas, StoreItem


class MemoryStore(PolicyStore):
    def __init__(self, quotas: Quotas | None = None) -> None:
        super().__init__(quotas)
        self._items: SortedDict = SortedDict()  # id -> (StoreItem, seq)
        self._order: SortedList = SortedList()  # (priority, expiry, id)
        self._arrivals: SortedDict = SortedDict()  # seq -> id, the order they were stored
        self._by_expiry: SortedList = SortedList()  # (expiry, id)
        self._sources: dict[bytes, int] = {}
        self._bytes = 0
        self._public = 0
        self._seen: dict[bytes, int] = {}
        self._tags = MultiIndex()
        self._receipts = MultiIndex()
        self._seq = 0

    def has(self, envelope_id: bytes) -> bool:
        return envelope_id in self._items

    def _item(self, envelope_id: bytes) -> StoreItem | None:
        entry: tuple[StoreItem, int] | None = self._items.get(envelope_id)
        return None if entry is None else entry[0]

    def get(self, envelope_id: bytes) -> bytes | None:
        item = self._item(envelope_id)
        return None if item is None else item.data

    def count(self) -> int:
        return len(self._items)

    def total_bytes(self) -> int:
        return self._bytes

    def public_bytes(self) -> int:
        return self._public

    def source_bytes(self, source: bytes) -> int:
        return self._sources.get(source, 0)

    def ids_in_range(self, lo: bytes, hi: bytes | None, limit: int | None = None) -> list[bytes]:
        keys = self._items.irange(lo, hi, inclusive=(True, False))
        out: list[bytes] = []
        for key in keys:
            if limit is not None and len(out) >= limit:
                break
            out.append(key)
        return out

    def seen_count(self) -> int:
        return len(self._seen)

    def meta(self, envelope_id: bytes) -> Meta | None:
        entry: tuple[StoreItem, int] | None = self._items.get(envelope_id)
        if entry is None:
            return None
        return Meta(entry[0].expiry, entry[0].priority, entry[1])

    def _with_tag(self, tag: bytes) -> list[bytes]:
        return self._tags.get(tag)

    def _with_receipt(self, receipt: bytes) -> list[bytes]:
        return self._receipts.get(receipt)

    def _header(self, envelope_id: bytes) -> tuple[bytes, int] | None:
        item = self._item(envelope_id)
        return None if item is None else (item.tag, item.budget)

    def _replace(self, envelope_id: bytes, data: bytes, budget: int) -> bool:
        entry: tuple[StoreItem, int] | None = self._items.get(envelope_id)
        if entry is None:
            return False
        item, seq = entry
        delta = len(data) - item.size
        self._items[envelope_id] = (replace(item, data=data, budget=budget), seq)
        self._sources[item.source] += delta
        self._bytes += delta
        if item.priority >= PUBLIC_RANK:
            self._public += delta
        return True

    def close(self) -> None:
        pass

    def _transaction(self) -> AbstractContextManager[object]:
        return nullcontext()

    def _expiry_of(self, envelope_id: bytes) -> int | None:
        item = self._item(envelope_id)
        return None if item is None else item.expiry

    def _is_seen(self, envelope_id: bytes, now: int) -> bool:
        expiry = self._seen.get(envelope_id)
        return expiry is not None and expiry > now

    def _add_seen(self, envelope_id: bytes, expiry: int) -> None:
        self._seen[envelope_id] = max(expiry, self._seen.get(envelope_id, 0))

    def _insert(self, item: StoreItem, now: int) -> None:
        self._seq += 1
        self._items[item.id] = (replace(item, protected=False), self._seq)
        self._order.add((item.priority, item.expiry, item.id))
        self._arrivals[self._seq] = item.id
        self._by_expiry.add((item.expiry, item.id))
        self._sources[item.source] = self._sources.get(item.source, 0) + item.size
        self._bytes += item.size
        if item.priority >= PUBLIC_RANK:
            self._public += item.size
        if item.tag:
            self._tags.add(message_tag(item.tag), item.id)
        if item.receipt:
            self._receipts.add(item.receipt, item.id)

    def _remove(self, envelope_id: bytes) -> None:
        item, seq = self._items.pop(envelope_id)
        self._order.remove((item.priority, item.expiry, item.id))
        del self._arrivals[seq]
        self._by_expiry.remove((item.expiry, item.id))
        left = self._sources[item.source] - item.size
        if left:
            self._sources[item.source] = left
        else:
            del self._sources[item.source]
        self._bytes -= item.size
        if item.priority >= PUBLIC_RANK:
            self._public -= item.size
        if item.tag:
            self._tags.discard(message_tag(item.tag), item.id)
        if item.receipt:
            self._receipts.discard(item.receipt, item.id)

    def _eviction_order(self, public: bool) -> Iterator[tuple[int, int, bytes, int]]:
        lo, hi = ((PUBLIC_RANK,), None) if public else (None, (PUBLIC_RANK,))
        for priority, expiry, vid in self._order.irange(lo, hi, inclusive=(True, False)):
            yield priority, expiry, vid, self._items[vid][0].size

    def _arrival_order(self, public: bool) -> Iterator[tuple[bytes, int]]:
        for vid in self._arrivals.values():
            item: StoreItem = self._items[vid][0]
            if (item.priority >= PUBLIC_RANK) == public:
                yield vid, item.size

    def _sweep(self, now: int) -> list[bytes]:
        dead = [vid for _exp, vid in self._by_expiry.irange(maximum=(now, b"\xff" * 64))]
        for vid in dead:
            self._remove(vid)
        self._seen = {k: v for k, v in self._seen.items() if v > now}
        return dead
