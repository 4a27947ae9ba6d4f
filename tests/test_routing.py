"""Routing strategies as pure objects."""

from __future__ import annotations

import random

import pytest

from crypto.wire import pack
from mesh.core.routing import (
    DirectDelivery,
    EnvView,
    Epidemic,
    Prophet,
    ProphetParams,
    SprayAndWait,
    by_name,
    destination,
)
from mesh.core.routing.prophet import MAX_INFO, MAX_OWN, MAX_PEERS, MAX_TABLE, route_of
from mesh.core.session import route_key
from mesh.core.wirecodec import MAX_Q, decode_p, encode_p, pack_routing

NOW = 1_700_000_000
PEER = b"peer"
SESSION_TAG = b"\x07" * 8
HINT = b"\x2a"


def env(budget: int, tag: bytes = SESSION_TAG, candidate: bool = False) -> EnvView:
    return EnvView(b"\x01" * 32, budget, NOW + 3600, tag, candidate=candidate)


def key(i: int) -> bytes:
    return i.to_bytes(8, "big")


@pytest.mark.parametrize(
    ("tag", "marked", "expected"),
    [
        (SESSION_TAG, True, (True, False)),  # a per-message session tag names one node
        (SESSION_TAG + key(1), True, (True, False)),  # ... also with a route key after it
        (HINT, True, (False, True)),  # a first-contact hint: 1 in 256 nodes share it
        (HINT, False, (False, False)),
        (b"", True, (False, False)),  # bulletins, prekeys: nobody's
    ],
)
def test_a_hint_mark_is_a_candidate_never_the_destination(
    tag: bytes, marked: bool, expected: tuple[bool, bool]
) -> None:
    assert destination(tag, marked) == expected


def test_direct_only_to_destination() -> None:
    s = DirectDelivery()
    assert not s.decide(env(1), PEER, False, NOW).give
    h = s.decide(env(1), PEER, True, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, 0, 1)
    assert s.NEEDS_DESTINATION
    assert "hint" in s.REVEALS


def test_direct_tries_first_contact_candidates_and_keeps_its_copy() -> None:
    s = DirectDelivery()
    h = s.decide(env(1, HINT, candidate=True), PEER, False, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, 0, 1)
    # A candidate's copy has no budget: it never hands it on, to a candidate or anyone.
    assert not s.decide(env(0, HINT, candidate=True), PEER, False, NOW).give
    assert not s.decide(env(1, HINT), PEER, False, NOW).give


def test_epidemic_gives_everything_with_hop_budget() -> None:
    s = Epidemic()
    h = s.decide(env(5), PEER, False, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, 4, 5)
    assert not s.decide(env(0), PEER, False, NOW).give
    assert not s.NEEDS_DESTINATION


@pytest.mark.parametrize(("copies", "give", "keep"), [(8, 4, 4), (7, 3, 4), (2, 1, 1)])
def test_binary_spray(copies: int, give: int, keep: int) -> None:
    h = SprayAndWait(copies=8).decide(env(copies), PEER, False, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, give, keep)


def test_spray_wait_phase() -> None:
    s = SprayAndWait(copies=4)
    assert not s.decide(env(1), PEER, False, NOW).give
    assert s.decide(env(1), PEER, True, NOW).give
    assert s.INITIAL_BUDGET == 4
    with pytest.raises(ValueError, match="copy"):
        SprayAndWait(copies=0)


def test_spray_total_copies_conserved() -> None:
    """Copies are split, never created: L copies in the network at most."""
    budgets = [16]
    for _ in range(10):
        new = []
        for b in budgets:
            h = SprayAndWait(16).decide(env(b), PEER, False, NOW)
            if h.give:
                new += [h.peer_budget, h.keep_budget]
            else:
                new.append(b)
        budgets = new
    assert sum(budgets) == 16
    assert len(budgets) == 16


@pytest.mark.parametrize("copies", [1, 2, 3, 4, 7, 8, 16])
def test_spray_first_contact_makes_at_most_l_transfers(copies: int) -> None:
    """Holders meet random peers, a third of them candidates (their hint matches, as a
    colliding node's would): however the meetings fall, the copies of one first contact
    are handed over at most L times, and a candidate never gets budget for free."""
    s = SprayAndWait(copies)
    r = random.Random(copies)
    for _run in range(200):
        holders = [copies]
        transfers = 0
        for _meeting in range(60):
            i = r.randrange(len(holders))
            candidate = r.random() < 1 / 3
            h = s.decide(env(holders[i], HINT, candidate), PEER, False, NOW)
            if not h.give:
                continue
            transfers += 1
            assert h.peer_budget + h.keep_budget == holders[i] - 1
            holders[i] = h.keep_budget
            holders.append(h.peer_budget)
        assert transfers <= copies
        assert sum(holders) == copies - transfers


def test_spray_keeps_the_last_transfers_of_a_first_contact_for_candidates() -> None:
    s = SprayAndWait(8)
    h = s.decide(env(8, HINT), PEER, False, NOW)
    assert (h.peer_budget, h.keep_budget) == (3, 4)
    assert not s.decide(env(2, HINT), PEER, False, NOW).give
    h = s.decide(env(2, HINT, candidate=True), PEER, False, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, 0, 1)
    assert not s.decide(env(0, HINT, candidate=True), PEER, False, NOW).give


# ---- PRoPHET ----------------------------------------------------------------------------
def info(own: list[bytes], table: dict[bytes, float] | None = None) -> bytes:
    return pack_routing(own, sorted((table or {}).items()))


def test_prophet_announces_todays_route_keys_of_its_sessions() -> None:
    tag_keys = [bytes([i]) * 32 for i in range(3)]
    s = Prophet()
    day = NOW // 86400
    announced = s.routing_info(tag_keys, NOW)
    assert announced == pack_routing([route_key(k, day) for k in tag_keys], [])
    # A sender in the same session on the same day puts the same key after its tag.
    assert s.route_for(tag_keys[1], NOW + 60) == route_key(tag_keys[1], day)
    assert s.route_for(tag_keys[1], NOW + 86400) != route_key(tag_keys[1], day)
    assert route_of(SESSION_TAG + route_key(tag_keys[1], day)) == route_key(tag_keys[1], day)
    assert route_of(SESSION_TAG) is None
    assert route_of(HINT) is None
    many = [i.to_bytes(32, "big") for i in range(MAX_OWN + 10)]
    assert len(s.routing_info(many, NOW)) <= MAX_INFO


def test_prophet_encounter_aging_transitivity() -> None:
    prm = ProphetParams()
    a = Prophet()
    a.on_contact(PEER, info([key(1)]), NOW)  # B receives on key 1; A meets B
    first = (1 - prm.delta) * prm.p_encounter_first
    assert a.table[key(1)] == pytest.approx(first)
    # Aging: 100 time units later.
    a.routing_info([], NOW + 100 * prm.time_unit)
    assert a.table[key(1)] == pytest.approx(first * prm.gamma**100)
    # Transitivity: C meets A (who receives on key 2), learns about key 1 through A.
    c = Prophet()
    c.on_contact(b"a", info([key(2)], a.table), NOW + 3000)
    expected = c.table[key(2)] * a.table[key(1)] * prm.beta
    assert c.table[key(1)] == pytest.approx(expected, rel=1e-3)


def test_prophet_repeat_encounter_uses_interval() -> None:
    prm = ProphetParams()
    a = Prophet()
    a.encounter(key(1), NOW)
    first = a.table[key(1)]
    a.encounter(key(1), NOW + prm.i_typ // 2)
    p_enc = prm.p_encounter_max * 0.5
    assert a.table[key(1)] == pytest.approx(first + (1 - prm.delta - first) * p_enc)


def test_prophet_forwards_by_route_key() -> None:
    bob = key(9)
    for_bob = env(3, SESSION_TAG + bob)
    a = Prophet()
    a.table[bob] = 0.2
    a.on_contact(PEER, info([], {bob: 0.6}), NOW)
    h = a.decide(for_bob, PEER, False, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, 2, 3)
    a.on_contact(b"worse", info([], {bob: 0.1}), NOW)
    assert not a.decide(for_bob, b"worse", False, NOW).give
    a.on_contact(b"idle", info([]), NOW)
    assert not a.decide(for_bob, b"idle", False, NOW).give
    # A key nobody has met yet (the recipient has not announced it): as epidemic.
    assert a.decide(env(3, SESSION_TAG + key(10)), b"idle", False, NOW).give
    # The destination gets it: it announces the key, or marks the envelope (exact).
    a.on_contact(b"dest", info([bob]), NOW)
    h = a.decide(for_bob, b"dest", False, NOW)
    assert (h.give, h.peer_budget, h.keep_budget) == (True, 0, 3)
    assert a.decide(for_bob, b"worse", True, NOW).give
    assert a.decide(env(0, SESSION_TAG + bob), b"worse", True, NOW).give
    # Without a route key (first contacts, bulletins): as epidemic; a hint is no key.
    h = a.decide(env(3, HINT, candidate=True), b"worse", False, NOW)
    assert (h.give, h.peer_budget) == (True, 2)
    assert a.decide(env(3, SESSION_TAG), b"worse", False, NOW).give
    assert not a.decide(env(0, HINT), b"worse", False, NOW).give


@pytest.mark.parametrize(
    "bad",
    [
        b"\xc1garbage",
        pack([[key(1)], [[key(2), -1]]]),
        pack([[key(1)], [[key(2), MAX_Q + 1]]]),
        pack([[b"short"], []]),  # route keys are 8 bytes
        pack([[key(1)], [[b"\x01" * 16, 0]]]),
        pack([[key(i) for i in range(MAX_OWN + 1)], []]),
        pack([[], [[key(i), 0] for i in range(MAX_TABLE + 1)]]),
        pack([[key(1)], [], []]),
        bytes(MAX_INFO + 1),
    ],
)
def test_prophet_ignores_malformed_or_oversized_info(bad: bytes) -> None:
    a = Prophet()
    a.on_contact(PEER, bad, NOW)
    assert a.table == {}
    assert a.peer_tables == {}


def hostile_info(r: random.Random) -> bytes:
    """Maximal routing info: MAX_OWN fresh keys and MAX_TABLE fresh entries at P = 1."""
    own = [r.randbytes(8) for _ in range(MAX_OWN)]
    return info(own, {r.randbytes(8): 1.0 for _ in range(MAX_TABLE)})


def test_prophet_tables_stay_bounded_under_hostile_contacts() -> None:
    r = random.Random(5)
    a = Prophet()
    a.table[key(1)] = 0.9  # a destination we met
    for n in range(100):
        peer = r.randbytes(32)  # a fresh link key each time
        a.on_contact(peer, hostile_info(r), NOW + n)
        assert len(a.table) <= a.params.max_entries
        assert set(a.last_seen) <= set(a.table)
        assert len(a.peer_tables) <= MAX_PEERS
        assert len(a.peer_own) <= MAX_PEERS
    assert len(a.table) == a.params.max_entries
    assert key(1) in a.table  # the hostile values (at most 0.495) did not push it out
    # Every entry ages out once nobody refreshes it for entry_lifetime.
    lifetime = a.params.entry_lifetime
    mid = NOW + lifetime // 2
    a.on_contact(b"friend", info([key(2)]), mid)  # key 2 is met again half way
    a.routing_info([], NOW + 100 + lifetime)
    assert set(a.table) == {key(2)}
    assert set(a.last_seen) == {key(2)}
    a.routing_info([], mid + lifetime)
    assert a.table == {}
    assert a.last_seen == {}


def test_small_predictabilities_survive_the_wire() -> None:
    prm = ProphetParams()
    for p in (1.0, 0.5, 1e-3, 1e-7, prm.p_min * 1.01):
        assert decode_p(encode_p(p)) == pytest.approx(p, rel=1e-3)
    assert encode_p(1e-300) == MAX_Q
    with pytest.raises(ValueError, match="predictability"):
        encode_p(0.0)
    # Aged values a linear fixed point would round to zero stay comparable.
    assert decode_p(encode_p(3e-9)) < decode_p(encode_p(4e-9))


def test_by_name() -> None:
    assert isinstance(by_name("epidemic"), Epidemic)
    assert by_name("spray", copies=4).INITIAL_BUDGET == 4
    assert by_name("prophet", initial_budget=9).INITIAL_BUDGET == 9
    with pytest.raises(ValueError, match="unknown"):
        by_name("flooding")
