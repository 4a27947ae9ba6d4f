"""Daemons meeting over Bluetooth LE on Bumble virtual controllers: real nodes, real
daemons, the real Bumble host stack; only the radio is virtual. Hostile peers are raw
Bumble devices (tests/ble_helpers.py), none of our backend code. A real clock: the link
waits on the asyncio thread (see mesh/daemon/links/ble/bridge.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from mesh.core.events import Tick
from mesh.core.link import HANDSHAKE_TIMEOUT
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from mesh.daemon.links import LinkKind
from mesh.daemon.links.ble import bridge, gatt
from mesh.daemon.links.ble.bumble import BumbleBackend
from mesh.daemon.links.ble.link import BleLink
from mesh.profile import Profile
from tests.ble_helpers import RawPeer, ble_config, radio_name
from tests.daemon_helpers import befriend, make_profile
from tests.test_daemon import Running, knows_prekey, until


async def start(
    n: trio.Nursery,
    profile: Profile,
    cfg: Config,
    *,
    backend: BumbleBackend | None = None,
    clock: Callable[[], float] = time.time,
) -> Running:
    d = Daemon(profile, cfg, profile.path, handle_signals=False, clock=clock)
    if backend is not None:
        d.ble.backend = backend  # a Bumble backend with a chosen MTU, on a virtual radio
    r = Running(d)
    await n.start(r._run)
    return r


def received(d: Daemon) -> list[str]:
    return [m.text for m in d.history.messages(limit=0) if not m.outgoing]


def ble(d: Daemon) -> list[BleLink]:
    return list(d.ble.links.values())


def opened(d: Daemon) -> bool:
    """The daemon has a BLE link whose Noise handshake finished."""
    return any(x.opened for x in ble(d))


async def both_ways(a: Running, b: Running, alice: Profile, bob: Profile, text: str) -> None:
    await knows_prekey(a, bob)
    await knows_prekey(b, alice)
    a.daemon.send_text(bob.name, f"{text} from A")
    b.daemon.send_text(alice.name, f"{text} from B")
    await until("A's message", lambda: f"{text} from A" in received(b.daemon))
    await until("B's message", lambda: f"{text} from B" in received(a.daemon))


def pair(tmp_path: Path) -> tuple[Profile, Profile]:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    return alice, bob


def test_two_daemons_meet_over_ble_and_exchange_both_ways(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    cfg = ble_config(f"local:{radio_name()}")

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            b = await start(n, bob, cfg)
            await until("a BLE link open on both", lambda: opened(a.daemon) and opened(b.daemon))
            await both_ways(a, b, alice, bob, "over the air")
            rows = a.daemon.ops.peers()
            assert rows
            assert {r.kind for r in rows} == {"ble"}  # as `steppe peers` shows them
            assert {x.kind for x in a.daemon.links.values()} == {LinkKind.BLE}
            assert a.daemon.ops.status().daemon_stats.get("links_ble", 0) >= 1
            assert a.daemon.tcp.links == {}  # nothing but Bluetooth carried it
            n.cancel_scope.cancel()

    trio.run(main)


@pytest.mark.parametrize(("att_mtu", "frame"), [(23, 20), (185, 182), (247, 244), (517, 512)])
def test_mtu_negotiation_and_an_exchange_at_each(tmp_path: Path, att_mtu: int, frame: int) -> None:
    alice, bob = pair(tmp_path)
    radio = f"local:{radio_name()}"
    cfg = ble_config(radio)

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg, backend=BumbleBackend(radio, att_mtu=att_mtu))
            b = await start(n, bob, cfg, backend=BumbleBackend(radio, att_mtu=att_mtu))
            await until("links open", lambda: opened(a.daemon) and opened(b.daemon))
            assert {x.frame for x in ble(a.daemon) + ble(b.daemon)} == {frame}
            assert {x.central for x in ble(a.daemon) + ble(b.daemon)} == {True, False}
            await both_ways(a, b, alice, bob, f"at MTU {att_mtu}")
            n.cancel_scope.cancel()

    trio.run(main)


def test_a_to_b_through_a_relay_they_never_meet(tmp_path: Path) -> None:
    """A and B are on two radio links that do not reach each other; the relay has one
    radio on each (two Bumble devices, one node)."""
    now = int(time.time())
    alice, relay, bob = (make_profile(tmp_path, x, now) for x in ("Alice", "Relay", "Bob"))
    befriend(alice, bob, now)
    west, east = radio_name(), radio_name()

    async def main() -> None:
        async with trio.open_nursery() as n:
            r = await start(n, relay, ble_config(f"local:{west}+local:{east}"))
            a = await start(n, alice, ble_config(f"local:{west}"))
            b = await start(n, bob, ble_config(f"local:{east}"))
            await both_ways(a, b, alice, bob, "via the relay")
            assert len(ble(r.daemon)) == 2
            assert len(ble(a.daemon)) == len(ble(b.daemon)) == 1  # the relay only
            n.cancel_scope.cancel()

    trio.run(main)


def test_a_link_cut_mid_transfer_recovers_on_reconnect(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    cfg = ble_config(f"local:{radio_name()}")
    # enough that the cut cannot come after the last envelope left Alice (with 20 of
    # 3,000 characters, the rest was sometimes already on its way: no reconnect needed)
    texts = [f"{i:02d} " + "x" * 8000 for i in range(60)]

    async def main() -> None:
        aio = bridge.acquire()
        try:
            async with trio.open_nursery() as n:
                a = await start(n, alice, cfg)
                b = await start(n, bob, cfg)
                await knows_prekey(a, bob)
                for text in texts:
                    a.daemon.send_text("Bob", text)
                await until("the first messages", lambda: len(received(b.daemon)) >= 1, step=0.01)
                assert len(received(b.daemon)) < len(texts), "the cut must fall mid-transfer"
                backend = a.daemon.ble.backend
                assert isinstance(backend, BumbleBackend)
                cut = [x.backend_link for x in ble(a.daemon)]
                for link in cut:
                    await bridge.call(aio, backend.close(link))  # a real HCI disconnection
                await until("every message", lambda: len(received(b.daemon)) == len(texts), 120)
                assert sorted(received(b.daemon)) == texts  # each once
                assert a.daemon.stats.get("links_ble", 0) > len(cut)  # it reconnected
                n.cancel_scope.cancel()
        finally:
            await bridge.release(aio)

    trio.run(main)


def test_a_device_that_never_completes_the_handshake_is_dropped(tmp_path: Path) -> None:
    """A silent peripheral that advertises Steppe's service and serves it, but never
    answers: the node's handshake timeout closes its link; the others are served."""
    alice, bob = pair(tmp_path)
    name = radio_name()
    cfg = ble_config(f"local:{name}")
    skew = [0.0]

    def alice_clock() -> float:
        return time.time() + skew[0]

    async def main() -> None:
        aio = bridge.acquire()
        rogue = RawPeer(name, "FF:FF:FF:FF:FF:FE")  # above any address: everyone dials it
        try:
            await bridge.call(aio, rogue.power_on())
            await bridge.call(aio, rogue.serve_silently())
            async with trio.open_nursery() as n:
                a = await start(n, alice, cfg, clock=alice_clock)
                b = await start(n, bob, cfg)
                to_rogue = "FF:FF:FF:FF:FF:FE"
                await until(
                    "Alice's link to the rogue",
                    lambda: any(x.remote == to_rogue for x in ble(a.daemon)),
                )
                await both_ways(a, b, alice, bob, "beside a silent one")
                assert any(x.remote == to_rogue and not x.opened for x in ble(a.daemon))
                assert rogue.written, "Alice began her handshake on it"
                closed = a.daemon.stats.get("links_closed_by_node", 0)
                skew[0] = HANDSHAKE_TIMEOUT + 1.0
                a.daemon.feed(Tick())
                await until(
                    "the silent link closed",
                    lambda: not any(x.remote == to_rogue for x in ble(a.daemon)),
                )
                assert a.daemon.stats.get("links_closed_by_node", 0) == closed + 1
                await trio.sleep(2.0)  # it still advertises: backing off, it is not redialled
                assert not any(x.remote == to_rogue for x in ble(a.daemon))
                skew[0] = 0.0
                a.daemon.send_text("Bob", "still served")
                await until("still served", lambda: "still served" in received(b.daemon))
                n.cancel_scope.cancel()
        finally:
            await bridge.call(aio, rogue.close())
            await bridge.release(aio)

    trio.run(main)


def test_a_peer_writing_garbage_is_dropped_and_counted(tmp_path: Path) -> None:
    alice, bob = pair(tmp_path)
    name = radio_name()
    cfg = ble_config(f"local:{name}")

    async def main() -> None:
        aio = bridge.acquire()
        rogues = [RawPeer(name, f"C0:00:00:00:00:0{i}") for i in (1, 2)]
        try:
            async with trio.open_nursery() as n:
                a = await start(n, alice, cfg)
                b = await start(n, bob, cfg)
                await both_ways(a, b, alice, bob, "before")

                def closed() -> int:
                    return sum(d.stats.get("links_closed_by_node", 0) for d in (a.daemon, b.daemon))

                before = closed()
                for rogue, size in zip(rogues, (244, 10), strict=True):
                    await bridge.call(aio, rogue.power_on())
                    target = await bridge.call(aio, rogue.find_steppe())
                    junk = [os.urandom(size) for _ in range(30)]  # full-sized, then short
                    await bridge.call(aio, rogue.connect_and_write(target, junk))
                await until("both rogues cut off", lambda: all(r.disconnected for r in rogues))
                # What the air showed them: flags and our service UUID, nothing else (Bumble
                # reports a scan response with the advertisement's data prepended: the
                # response itself is empty).
                assert ("advertisement", gatt.advertising_data()) in rogues[0].heard
                assert {data for _kind, data in rogues[0].heard} == {gatt.advertising_data()}
                assert rogues[0].device_name == b""  # no name over GATT either
                await until("and counted", lambda: closed() >= before + 2)
                await both_ways(a, b, alice, bob, "after")
                n.cancel_scope.cancel()
        finally:
            for rogue in rogues:
                await bridge.call(aio, rogue.close())
            await bridge.release(aio)

    trio.run(main)


def test_a_device_at_its_cap_rotates_a_quiet_link_out_for_a_newcomer(tmp_path: Path) -> None:
    """One link each: A and B link and stay quiet; C, arriving later, is refused by both
    for the cap. Without rotation A's message for C could never leave the pair."""
    now = int(time.time())
    alice, bob, carol = (make_profile(tmp_path, n, now) for n in ("Alice", "Bob", "Carol"))
    befriend(alice, carol, now)
    cfg = ble_config(f"local:{radio_name()}", ble_max_links=1, ble_rotate_after=2)

    async def main() -> None:
        async with trio.open_nursery() as n:
            a, b = await start(n, alice, cfg), await start(n, bob, cfg)
            await until("A and B linked", lambda: opened(a.daemon) and opened(b.daemon))
            c = await start(n, carol, cfg)
            await knows_prekey(a, carol, 60)  # C's prekey crosses only once the pair opens
            a.daemon.send_text(carol.name, "to the newcomer")
            await until("delivered", lambda: "to the newcomer" in received(c.daemon), 60)
            rotated = sum(r.daemon.stats.get("ble_links_rotated", 0) for r in (a, b, c))
            assert rotated >= 1
            n.cancel_scope.cancel()

    trio.run(main)


def test_ten_devices_at_once_and_a_message_crosses_the_crowd(tmp_path: Path) -> None:
    """Ten daemons on one virtual radio, started 0.5 s apart; every one gets an open link
    within the caps; the first then writes to the last, several hops
    away (the caps can leave the crowd in groups that are full and never link with each
    other: rotation, after 5 s here, is what lets the message cross)."""
    now = int(time.time())
    profiles = [make_profile(tmp_path, f"P{i}", now) for i in range(10)]
    first, last = profiles[0], profiles[-1]
    befriend(first, last, now)
    cfg = ble_config(
        f"local:{radio_name()}",
        ble_max_links=4,
        ble_advertise_interval=200,
        ble_rotate_after=5,
    )

    async def main() -> None:
        async with trio.open_nursery() as n:
            running = []
            for p in profiles:
                running.append(await start(n, p, cfg))
                await trio.sleep(0.5)  # staggered: the virtual stack dislikes a rush
            await until(
                "every device on an open link",
                lambda: all(opened(r.daemon) for r in running),
                limit=60,
            )
            ups = sum(r.daemon.stats.get("links_ble", 0) for r in running)
            assert ups >= 10
            assert all(len(ble(r.daemon)) <= 4 for r in running)
            await knows_prekey(running[0], last)
            running[0].daemon.send_text(last.name, "across the crowd")
            await until(
                "delivered", lambda: "across the crowd" in received(running[-1].daemon), 120
            )
            n.cancel_scope.cancel()

    trio.run(main)
