"""Routing strategies as pure objects."""

from __future__ import annotations

import pytest

from mesh.core.routing import (
    DirectDelivery,
    EnvView,
    Epidemic,
    Prophet,
    ProphetParams,
    SprayAndWait,
    by_name,
)

NOW = 1_700_000_000
PEER = b"peer"


def env(budget: int, tag: bytes = b"t1") -> EnvView:
    return EnvView(b"\x01" * 32, budget, NOW + 3600, tag)


def test_direct_only_to_destination() -> None:
    s = DirectDelivery()
    assert not s.decide(env(1), PEER, False, NOW).give
    h = s.decide(env(1), PEER, True, NOW)
    assert h.give
    assert s.NEEDS_DESTINATION
    assert s.REVEALS


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


def test_prophet_encounter_aging_transitivity() -> None:
    prm = ProphetParams()
    a = Prophet()
    b = Prophet()
    # B is the recipient of tag "bob"; A meets B.
    info_b = b.routing_info([b"bob"], NOW)
    a.on_contact(PEER, info_b, NOW)
    first = (1 - prm.delta) * prm.p_encounter_first
    assert a.table[b"bob"] == pytest.approx(first)
    # Aging: 100 time units later.
    a.routing_info([], NOW + 100 * prm.time_unit)
    assert a.table[b"bob"] == pytest.approx(first * prm.gamma**100)
    # Transitivity: C meets A, learns about "bob" through A.
    c = Prophet()
    c.on_contact(b"a", a.routing_info([b"alice"], NOW + 3000), NOW + 3000)
    expected = c.table[b"alice"] * a.table[b"bob"] * prm.beta
    assert c.table[b"bob"] == pytest.approx(expected)


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
    a.table[b"bob"] = 0.2
    a.on_contact(PEER, Prophet(table={b"bob": 0.6}).routing_info([], NOW), NOW)
    assert a.decide(env(3, b"bob"), PEER, False, NOW).give
    a.on_contact(b"worse", Prophet(table={b"bob": 0.1}).routing_info([], NOW), NOW)
    assert not a.decide(env(3, b"bob"), b"worse", False, NOW).give
    # The destination itself always gets it.
    a.on_contact(b"dest", Prophet().routing_info([b"bob"], NOW), NOW)
    assert a.decide(env(3, b"bob"), b"dest", False, NOW).give


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
