"""The store's tag index finds session envelopes by their per-message tag, also when a
routing strategy (PRoPHET) appended a route key after it."""

from __future__ import annotations

from mesh.core.store import StoreItem
from tests.conftest import StoreFactory

NOW = 1_700_000_000
SESSION_TAG = b"\x07" * 8


def item(n: int, tag: bytes) -> StoreItem:
    return StoreItem(bytes([n]) * 32, b"x" * 100, NOW + 3600, tag=tag)


def test_a_session_tag_finds_its_envelopes_with_or_without_a_route_key(
    make_store: StoreFactory,
) -> None:
    s = make_store()
    plain = item(1, SESSION_TAG)
    routed = item(2, SESSION_TAG + b"\x01" * 8)
    other = item(3, SESSION_TAG[:7] + b"\x08" + b"\x01" * 8)
    hint = item(4, SESSION_TAG[:1])  # a first-contact hint equal to the tag's first byte
    for x in (plain, routed, other, hint):
        s.put(x, NOW)
    assert sorted(s.ids_with_tag(SESSION_TAG)) == sorted([plain.id, routed.id])
    assert sorted(s.ids_with_tag(routed.tag)) == sorted([plain.id, routed.id])
    assert s.ids_with_tag(SESSION_TAG[:1]) == [hint.id]
    assert s.header(routed.id) == (routed.tag, 0)  # offers still carry the whole tag
    s.delete(routed.id, NOW)
    assert s.ids_with_tag(SESSION_TAG) == [plain.id]
