"""Routing strategies as pure objects."""

from __future__ import annotations

import random

import pytest

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


def test_prophet_encounter_aging_transitivity() -> None:
    prm = ProphetParams()
    a = Prophet()
    b = Prophet()
    # B is the recipient of tag "bob"; A meets B.
    info_b = b.routing_info([b"bob" * 3], NOW)
    a.on_contact(PEER, info_b, NOW)
    first = (1 - prm.delta) * prm.p_encounter_first
    assert a.table[b"bob" * 3] == pytest.approx(first)
    # Aging: 100 time units later.
    a.routing_info([], NOW + 100 * prm.time_unit)
    assert a.table[b"bob" * 3] == pytest.approx(first * prm.gamma**100)
    # Transitivity: C meets A, learns about "bob" through A.
    c = Prophet()
    c.on_contact(b"a", a.routing_info([b"alice"], NOW + 3000), NOW + 3000)
    expected = c.table[b"alice"] * a.table[b"bob" * 3] * prm.beta
    assert c.table[b"bob" * 3] == pytest.approx(expected)


def test_prophet_repeat_encounter_uses_interval() -> None:
    prm = ProphetParams()
    a = Prophet()
    a.encounter(b"x", NOW)
    first = a.table[b"x"]
    a.encounter(b"x", NOW + prm.i_typ // 2)
    p_enc = prm.p_encounter_max * 0.5
    assert a.table[b"x"] == pytest.approx(first + (1 - prm.delta - first) * p_enc)


def test_prophet_forwards_to_better_carrier_only() -> None:
    a = Prophet()
    a.table[b"bob" * 3] = 0.2
    a.on_contact(PEER, Prophet(table={b"bob" * 3: 0.6}).routing_info([], NOW), NOW)
    assert a.decide(env(3, b"bob" * 3), PEER, False, NOW).give
    a.on_contact(b"worse", Prophet(table={b"bob" * 3: 0.1}).routing_info([], NOW), NOW)
    assert not a.decide(env(3, b"bob" * 3), b"worse", False, NOW).give
    # The destination itself always gets it.
    a.on_contact(b"dest", Prophet().routing_info([b"bob" * 3], NOW), NOW)
    assert a.decide(env(3, b"bob" * 3), b"dest", False, NOW).give


def test_prophet_ignores_malformed_info() -> None:
    a = Prophet()
    a.on_contact(PEER, b"\xc1garbage", NOW)
    a.on_contact(PEER, b"\x92\x90\x91\x92\xc4\x01x\xce\xff\xff\xff\xff", NOW)
    assert a.table == {}


def test_by_name() -> None:
    assert isinstance(by_name("epidemic"), Epidemic)
    assert by_name("spray", copies=4).INITIAL_BUDGET == 4
    with pytest.raises(ValueError, match="unknown"):
        by_name("flooding")
