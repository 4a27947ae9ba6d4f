"""Which Bluetooth LE link rotates out to make room (mesh/daemon/links/ble/rotation.py)."""

from __future__ import annotations

from dataclasses import dataclass

from mesh.daemon.links.ble.rotation import HOLD_FACTOR, QUIET, Rotation


@dataclass
class Link:
    remote: str
    opened: bool = True
    began: float = 0.0
    last_frame: float = 0.0


def test_no_link_goes_without_someone_asking() -> None:
    rotation = Rotation(after=10)
    assert rotation.pick([Link("a")], now=100) is None


def test_the_link_silent_longest_goes_and_its_address_is_held() -> None:
    rotation = Rotation(after=10)
    links = [Link("a", last_frame=50), Link("b", last_frame=40), Link("c", last_frame=60)]
    rotation.want(100)
    assert rotation.pick(links, now=100) is links[1]
    assert rotation.holds("b", 100 + HOLD_FACTOR * 10 - 1)
    assert not rotation.holds("b", 100 + HOLD_FACTOR * 10)
    assert not rotation.holds("a", 100)
    assert rotation.pick(links, now=100) is None  # one link per sign of demand


def test_young_busy_or_unopened_links_stay() -> None:
    rotation = Rotation(after=10)
    young = Link("young", began=95)
    busy = Link("busy", last_frame=100 - QUIET + 1)
    handshaking = Link("handshaking", opened=False)
    rotation.want(100)
    assert rotation.pick([young, busy, handshaking], now=100) is None


def test_a_sign_of_demand_goes_stale_and_zero_turns_rotation_off() -> None:
    rotation = Rotation(after=10)
    rotation.want(100)
    assert rotation.pick([Link("a")], now=111) is None  # whoever asked has had time to leave
    off = Rotation(after=0)
    off.want(100)
    assert off.pick([Link("a")], now=100) is None
