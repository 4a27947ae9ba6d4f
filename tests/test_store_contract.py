"""One contract, run against every store backend (memory and SQLite)."""

from __future__ import annotations

import os

from mesh.core.store import PUBLIC_RANK, Eviction, PutStatus, Quotas, StoreItem
from tests.conftest import StoreFactory

NOW = 1_700_000_000


def item(
    n: int, *, size: int = 100, expiry: int = NOW + 3600, priority: int = 0, source: bytes = b"a"
) -> StoreItem:
    ident = n.to_bytes(4, "big") + bytes(28)
    return StoreItem(ident, bytes([n % 256]) * size, expiry, priority, source)


def test_put_get_has_and_idempotence(make_store: StoreFactory) -> None:
    s = make_store()
    a = item(1)
    assert s.put(a, NOW).status is PutStatus.STORED
    assert s.has(a.id)
    assert s.get(a.id) == a.data
    assert s.put(a, NOW).status is PutStatus.DUPLICATE
    assert s.count() == 1
    assert s.total_bytes() == 100
    assert not s.has(item(2).id)
    assert s.get(item(2).id) is None


def test_expired_on_arrival_is_refused(make_store: StoreFactory) -> None:
    s = make_store()
    assert s.put(item(1, expiry=NOW), NOW).status is PutStatus.EXPIRED
    assert s.count() == 0


def test_ids_in_range_sorted_and_bounded(make_store: StoreFactory) -> None:
    s = make_store()
    ids = sorted(os.urandom(32) for _ in range(50))
    s.put_many([StoreItem(i, b"x", NOW + 10) for i in reversed(ids)], NOW)
    assert s.ids_in_range(b"", None) == ids
    assert s.ids_in_range(ids[10], ids[20]) == ids[10:20]
    assert s.ids_in_range(ids[10], None, limit=5) == ids[10:15]
    assert s.ids_in_range(ids[-1] + b"\x00", None) == []


def test_sweep_removes_expired_only(make_store: StoreFactory) -> None:
    s = make_store()
    s.put_many([item(1, expiry=NOW + 10), item(2, expiry=NOW + 20), item(3, expiry=NOW + 30)], NOW)
    assert s.sweep(NOW + 20) == 2
    assert [s.has(item(n).id) for n in (1, 2, 3)] == [False, False, True]
    assert s.total_bytes() == 100


def test_seen_set_blocks_redelivery_until_expiry(make_store: StoreFactory) -> None:
    s = make_store()
    a = item(1, expiry=NOW + 100)
    s.put(a, NOW)
    assert s.delete(a.id, NOW + 1)
    assert not s.has(a.id)
    assert s.put(a, NOW + 2).status is PutStatus.SEEN
    assert s.delete(a.id, NOW + 2) is False
    s.sweep(NOW + 100)
    assert s.seen_count() == 0
    # After its expiry the id is forgotten (and the envelope itself would be expired).
    assert s.put(item(1, expiry=NOW + 500), NOW + 101).status is PutStatus.STORED


def test_mark_seen_without_having_it(make_store: StoreFactory) -> None:
    s = make_store()
    a = item(7)
    s.mark_seen(a.id, a.expiry, NOW)
    assert s.put(a, NOW).status is PutStatus.SEEN


def test_per_source_quota(make_store: StoreFactory) -> None:
    s = make_store(Quotas(max_source_bytes=250))
    assert s.put(item(1, source=b"flood"), NOW).status is PutStatus.STORED
    assert s.put(item(2, source=b"flood"), NOW).status is PutStatus.STORED
    assert s.put(item(3, source=b"flood"), NOW).status is PutStatus.QUOTA
    assert s.put(item(4, source=b"other"), NOW).status is PutStatus.STORED
    assert s.source_bytes(b"flood") == 200


def test_item_size_limit(make_store: StoreFactory) -> None:
    s = make_store(Quotas(max_item_bytes=150))
    assert s.put(item(1, size=151), NOW).status is PutStatus.QUOTA


def test_global_quota_evicts_lowest_priority_then_soonest_expiry(
    make_store: StoreFactory,
) -> None:
    s = make_store(Quotas(max_total_bytes=300))
    s.put_many(
        [
            item(1, priority=1, expiry=NOW + 50),
            item(2, priority=0, expiry=NOW + 90),
            item(3, priority=0, expiry=NOW + 60),
        ],
        NOW,
    )
    r = s.put(item(4, priority=2), NOW)
    assert r.status is PutStatus.STORED
    assert r.evicted == (item(3).id,)
    r = s.put(item(5, priority=2), NOW)
    assert r.evicted == (item(2).id,)
    assert sorted(s.ids_in_range(b"", None)) == sorted(item(n).id for n in (1, 4, 5))


def test_global_quota_refuses_newcomer_that_ranks_lowest(make_store: StoreFactory) -> None:
    s = make_store(Quotas(max_total_bytes=200))
    s.put_many([item(1, priority=5), item(2, priority=5)], NOW)
    assert s.put(item(3, priority=1), NOW).status is PutStatus.QUOTA
    assert s.count() == 2
    assert not s.has(item(3).id)


def test_count_quota(make_store: StoreFactory) -> None:
    s = make_store(Quotas(max_total_count=2))
    s.put_many([item(1), item(2)], NOW)
    assert s.put(item(3), NOW).status is PutStatus.QUOTA
    assert s.put(item(4, priority=1), NOW).status is PutStatus.STORED
    assert s.count() == 2


def test_put_many_reports_each(make_store: StoreFactory) -> None:
    s = make_store()
    results = s.put_many([item(1), item(1), item(2, expiry=NOW)], NOW)
    assert [r.status for r in results] == [PutStatus.STORED, PutStatus.DUPLICATE, PutStatus.EXPIRED]


def test_meta_is_seen_and_replace(make_store: StoreFactory) -> None:
    s = make_store()
    a = item(1, priority=3, size=100)
    s.put(a, NOW)
    meta = s.meta(a.id)
    assert meta is not None
    assert (meta.expiry, meta.priority) == (a.expiry, 3)
    assert s.meta(item(2).id) is None
    assert s.replace_data(a.id, b"z" * 90, 7)
    assert s.header(a.id) == (b"", 7)
    assert s.get(a.id) == b"z" * 90
    assert s.total_bytes() == 90
    assert s.source_bytes(b"a") == 90
    assert not s.replace_data(item(2).id, b"x", 0)
    assert not s.is_seen(a.id, NOW)
    s.delete(a.id, NOW)
    assert s.is_seen(a.id, NOW)
    assert not s.is_seen(a.id, a.expiry)


def test_removal_observer_sees_every_reason(make_store: StoreFactory) -> None:
    s = make_store(Quotas(max_total_count=2))
    seen: list[tuple[bytes, str]] = []
    s.on_remove = lambda i, why: seen.append((i, why))
    s.put_many([item(1, expiry=NOW + 10), item(2)], NOW)
    s.put(item(3, priority=5), NOW)  # evicts item 1 (lowest priority, soonest expiry)
    s.delete(item(2).id, NOW)
    s.put(item(4, expiry=NOW + 5), NOW)
    s.sweep(NOW + 5)
    assert seen == [(item(1).id, "evicted"), (item(2).id, "deleted"), (item(4).id, "expired")]


def test_symbols_follow_every_insert_and_removal(make_store: StoreFactory) -> None:
    """The store's sketch equals a fresh encoding of its ids after puts, evictions,
    deletes and sweeps, and after growing (reconciliation reads it, never a copy)."""
    from mesh.core.riblt import encode_set

    s = make_store(Quotas(max_total_count=40))
    rand = [os.urandom(32) for _ in range(60)]
    s.put_many([StoreItem(i, b"x", NOW + 10 + k, 0) for k, i in enumerate(rand[:30])], NOW)
    assert s.symbols(64) == encode_set(s.ids_in_range(b"", None), 64)  # built on first use
    s.put_many([StoreItem(i, b"x", NOW + 100, 1) for i in rand[30:]], NOW)  # evicts 20
    assert s.count() == 40
    s.delete(rand[45], NOW)
    s.sweep(NOW + 20)
    ids = s.ids_in_range(b"", None)
    assert s.symbols(64) == encode_set(ids, 64)
    assert s.symbols(1000) == encode_set(ids, 1000)  # grown
    s.put(StoreItem(os.urandom(32), b"y", NOW + 100, 2), NOW)
    assert s.symbols(1000) == encode_set(s.ids_in_range(b"", None), 1000)


def test_protected_items_stay_and_skip_the_source_quota(make_store: StoreFactory) -> None:
    """The node's own and its contacts' envelopes are protected (in memory only): never
    evicted for others, not held to a source's quota, and able to evict anyone else."""
    from dataclasses import replace

    s = make_store(Quotas(max_total_count=3, max_source_bytes=150))
    mine = replace(item(1, priority=0, source=b"me"), protected=True)
    assert s.put(mine, NOW).status is PutStatus.STORED
    assert s.put(replace(item(2, source=b"me"), protected=True), NOW).status is PutStatus.STORED
    assert s.is_protected(mine.id)
    assert s.put(item(3, priority=200), NOW).status is PutStatus.STORED
    # full: a high-ranked stranger cannot evict protected mail ...
    assert s.put(item(4, priority=250, expiry=NOW + 9999), NOW).status is PutStatus.QUOTA
    # ... but protected mail evicts the stranger, whatever its rank
    result = s.put(replace(item(5, priority=0), protected=True), NOW)
    assert result.status is PutStatus.STORED
    assert result.evicted == (item(3).id,)
    assert not s.would_admit_protected(100)  # all protected now


def test_tag_and_receipt_indexes_keep_every_envelope(make_store: StoreFactory) -> None:
    from dataclasses import replace

    s = make_store()
    a = replace(item(1), tag=b"t" * 8, receipt=b"r" * 16, budget=3)
    b = replace(item(2), tag=b"t" * 8, receipt=b"r" * 16, budget=4)  # junk copying both
    s.put_many([a, b], NOW)
    assert sorted(s.ids_with_tag(b"t" * 8)) == sorted([a.id, b.id])
    assert sorted(s.ids_with_receipt(b"r" * 16)) == sorted([a.id, b.id])
    assert s.header(b.id) == (b"t" * 8, 4)
    s.delete(a.id, NOW)
    assert s.ids_with_tag(b"t" * 8) == [b.id]
    assert s.ids_with_receipt(b"r" * 16) == [b.id]
    assert s.ids_with_receipt(b"") == []


def test_public_records_have_their_own_share(make_store: StoreFactory) -> None:
    """Bulletins and prekeys (ranks from PUBLIC_RANK) compete only among themselves for
    their share; they never evict mail, and mail never evicts them."""
    from mesh.core.store import PUBLIC_RANK

    s = make_store(Quotas(max_total_bytes=1000, public_share=0.3))
    assert s.put(item(1, size=300), NOW).status is PutStatus.STORED
    assert s.put(item(2, size=300, priority=PUBLIC_RANK), NOW).status is PutStatus.STORED
    # over the public share: evicts the lower public record, never the mail
    res = s.put(item(3, size=300, priority=PUBLIC_RANK + 5), NOW)
    assert res.status is PutStatus.STORED
    assert res.evicted == (item(2).id,)
    assert s.public_bytes() == 300
    assert s.put(item(4, size=300, priority=PUBLIC_RANK), NOW).status is PutStatus.QUOTA
    assert s.put(item(5, size=300), NOW).status is PutStatus.STORED  # 900 of 1000
    res = s.put(item(6, size=300, priority=9), NOW)  # full: mail evicts mail only
    assert res.evicted == (item(1).id,)
    assert s.has(item(3).id)


def test_oldest_received_evicts_in_arrival_order_whatever_the_rank(
    make_store: StoreFactory,
) -> None:
    """The ONE's buffer rule: the copy stored earliest goes first, high rank, late expiry,
    protected or not; the newcomer is refused only if it cannot fit at all."""
    s = make_store(Quotas(max_total_bytes=300, eviction=Eviction.OLDEST_RECEIVED))
    own = StoreItem(item(1).id, item(1).data, NOW + 9000, 9, b"a", protected=True)
    s.put(own, NOW)
    s.put_many([item(2, priority=0, expiry=NOW + 60), item(3, priority=5)], NOW + 1)
    r = s.put(item(4, priority=0, expiry=NOW + 30), NOW + 2)  # ranks lowest: still stored
    assert (r.status, r.evicted) == (PutStatus.STORED, (own.id,))
    r = s.put(item(5, size=200), NOW + 4)
    assert r.evicted == (item(2).id, item(3).id)  # 3 ranks highest, but came before 4
    assert sorted(s.ids_in_range(b"", None)) == sorted(item(n).id for n in (4, 5))
    assert s.lowest_rank(100) is None  # nothing ranks: the stamp demand does not rise
    assert s.put(item(6, size=301), NOW + 5).status is PutStatus.QUOTA
    assert s.count() == 2


def test_oldest_received_keeps_the_public_records_pool_apart(make_store: StoreFactory) -> None:
    q = Quotas(max_total_bytes=1000, public_share=0.2, eviction=Eviction.OLDEST_RECEIVED)
    s = make_store(q)
    s.put_many([item(1, priority=PUBLIC_RANK), item(2), item(3, priority=PUBLIC_RANK + 1)], NOW)
    r = s.put(item(4, priority=PUBLIC_RANK), NOW + 1)  # over the public share (200 bytes)
    assert r.evicted == (item(1).id,)
    assert s.has(item(2).id)


def test_the_per_source_quota_can_be_turned_off(make_store: StoreFactory) -> None:
    s = make_store(Quotas(max_source_bytes=250, source_quota=False))
    for n in range(1, 6):
        assert s.put(item(n, source=b"one"), NOW).status is PutStatus.STORED
    assert s.source_bytes(b"one") == 500
