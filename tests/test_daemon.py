"""The daemon on trio with real sockets on loopback: discovery, store and forward across a
relay, receipts, hostile peers, backoff on a mock clock, the local API."""

from __future__ import annotations

import itertools
import os
import socket
import sqlite3
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

from crypto.identity import ContactCard
from mesh import ipc
from mesh.core import envelope as E
from mesh.core import link as L
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon, DaemonError
from mesh.daemon.discovery import Discovery
from mesh.daemon.links import LinkKind
from mesh.daemon.links.gateway import Backoff
from mesh.daemon.links.tcp import TCP_MTU
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.ipc.events import LinkChanged
from mesh.profile import Profile
from tests.daemon_helpers import befriend, loopback_config, make_profile


class Running:
    """A daemon in its own cancel scope inside a test nursery."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.scope = trio.CancelScope()
        self.done = trio.Event()

    async def _run(self, task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with self.scope:
                await self.daemon.run(task_status=task_status)
        finally:
            self.done.set()

    async def stop(self) -> None:
        self.scope.cancel()
        await self.done.wait()


async def start(nursery: trio.Nursery, profile: Profile, config: Config) -> Running:
    r = Running(Daemon(profile, config, profile.path, handle_signals=False))
    await nursery.start(r._run)
    return r


async def until(
    what: str, check: Callable[[], bool], limit: float = 20.0, step: float = 0.05
) -> None:
    """Poll a condition on daemon state (no event to wait on: it is the daemon's)."""
    with trio.move_on_after(limit):
        while not check():  # noqa: ASYNC110
            await trio.sleep(step)
        return
    raise AssertionError(f"timed out waiting for {what}")


async def knows_prekey(a: Running, b: Profile, limit: float = 20.0) -> None:
    """Wait until ``a``'s daemon holds ``b``'s prekey (it can seal to ``b``)."""
    key = b.identity.sign_public
    await until("the prekey", lambda: a.daemon.node.contacts[key].prekey is not None, limit)


def kinds(d: Daemon) -> list[E.Kind]:
    out = []
    for i in d.store.ids_in_range(b"", None):
        frame = d.store.get(i)
        assert frame is not None
        out.append(E.decode(frame).kind)
    return out


def test_store_and_forward_across_a_relay(tmp_path: Path) -> None:
    now = int(time.time())
    alice, relay, bob = (make_profile(tmp_path, n, now) for n in ("Alice", "Relay", "Bob"))
    befriend(alice, bob, now)
    cfg = loopback_config()

    async def main() -> None:
        async with trio.open_nursery() as n:
            r = await start(n, relay, cfg)
            b = await start(n, bob, cfg)
            # Bob's signed prekey reaches the relay through LAN discovery and sync.
            await until(
                "Bob's prekey on the relay",
                lambda: kinds(r.daemon).count(E.Kind.PREKEY) >= 1,  # its own is not stored
            )
            await b.stop()
            await until("the relay to drop Bob's link", lambda: not r.daemon.links)
            a = await start(n, alice, cfg)
            bob_key = bob.identity.sign_public
            await until(
                "Alice to learn Bob's prekey",
                lambda: a.daemon.node.contacts[bob_key].prekey is not None,
            )
            a.daemon.send_text("Bob", "across the relay")
            await until("the relay to hold it", lambda: E.Kind.FIRST_CONTACT in kinds(r.daemon))
            await a.stop()
            b2 = await start(n, bob, cfg)
            await until("Bob to receive", lambda: bool(b2.daemon.history.messages()))
            got = b2.daemon.history.messages()
            assert [(m.text, m.outgoing, m.contact) for m in got] == [
                ("across the relay", False, alice.identity.sign_public)
            ]
            await until(
                "the receipt to purge the relay's copy",
                lambda: E.Kind.FIRST_CONTACT not in kinds(r.daemon),
            )
            assert r.daemon.node.stats.get("purged_by_receipt") == 1
            # Alice returns and learns her message arrived.
            a2 = await start(n, alice, cfg)
            await until("Alice's receipt", lambda: a2.daemon.history.messages()[0].state == "acked")
            n.cancel_scope.cancel()

    trio.run(main)


def test_history_and_sessions_survive_a_restart(tmp_path: Path) -> None:
    """Messages after a restart still use the saved ratchet session and history."""
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    cfg = loopback_config()

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            b = await start(n, bob, cfg)
            await knows_prekey(a, bob)
            a.daemon.send_text("Bob", "one")
            await until("one", lambda: len(b.daemon.history.messages()) == 1)
            await a.stop()
            await b.stop()
            a = await start(n, alice, cfg)
            assert a.daemon.node.saved.sessions, "the session came back from the encrypted state"
            a.daemon.node.contacts[
                bob.identity.sign_public
            ].prekey = None  # so only the session can be used
            a.daemon.send_text("Bob", "two")
            b = await start(n, bob, cfg)
            await until("two", lambda: len(b.daemon.history.messages()) == 2)
            assert [m.text for m in b.daemon.history.messages()] == ["one", "two"]
            n.cancel_scope.cancel()

    trio.run(main)


def test_hostile_peers_are_cut_off_and_others_keep_working(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    cfg = loopback_config()

    async def hostile(port: int, payload: Callable[[int], bytes], rounds: int) -> int:
        """Send garbage; return how many bytes went out before the daemon hung up."""
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        sent = 0
        with trio.move_on_after(10):
            try:
                for k in range(rounds):
                    data = payload(k)
                    await stream.send_all(data)
                    sent += len(data)
                while await stream.receive_some(65536):
                    pass  # the daemon may still send its handshake, then EOF
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        await stream.aclose()
        return sent

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            b = await start(n, bob, cfg)
            await knows_prekey(a, bob)
            port = b.daemon.tcp_port
            before = b.daemon.stats.get("links_closed_by_node", 0)
            # a well-framed record with an impossible handshake length, one huge blob, and
            # an endless stream of garbage
            await hostile(port, lambda k: L.frame_stream(b"\xff\xff" + os.urandom(TCP_MTU)), 1)
            await hostile(port, lambda k: os.urandom(4 << 20), 1)
            sent = await hostile(port, lambda k: os.urandom(TCP_MTU), 100_000)
            assert sent < 100_000 * TCP_MTU, "the endless sender was cut off"
            await until(
                "hostile links closed and counted",
                lambda: b.daemon.stats.get("links_closed_by_node", 0) >= before + 3,
            )
            assert b.daemon.stats.get("links_incoming", 0) >= 3
            # The honest link between Alice and Bob still carries messages.
            a.daemon.send_text("Bob", "still here")
            await until("delivery", lambda: bool(b.daemon.history.messages()))
            n.cancel_scope.cancel()

    trio.run(main)


def test_gateway_redials_with_exponential_backoff(tmp_path: Path) -> None:
    """Mock clock: attempts to an unreachable peer space out 1, 2, 4 ... s, capped."""
    now = int(time.time())
    p = make_profile(tmp_path, "Gate", now)
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    cfg = loopback_config(lan=False, peers=(f"127.0.0.1:{dead}",), backoff_max=16.0)
    attempts: list[float] = []

    async def main() -> None:
        d = Daemon(p, cfg, p.path, handle_signals=False, clock=lambda: 1.8e9 + trio.current_time())
        original = d.tcp.dial

        async def counting(
            host: str, port: int, kind: LinkKind, *, pin: bytes = b"", label: str = ""
        ) -> bool:
            attempts.append(trio.current_time())
            return await original(host, port, kind, pin=pin, label=label)

        d.tcp.dial = counting  # type: ignore[method-assign]
        with trio.move_on_after(200):
            await d.run()

    # the threshold lets getaddrinfo threads and refused connects finish before time jumps
    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.05))
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert len(gaps) >= 10
    for k, gap in enumerate(gaps[:4]):  # full jitter: between half and all of 2^k
        assert 2**k / 2 <= gap <= 2**k + 0.5
    assert all(8 <= g <= 16.5 for g in gaps[5:]), "capped at backoff_max"


def test_backoff_resets() -> None:
    b = Backoff(base=1.0, cap=8.0)
    delays = [b.next_delay() for _ in range(6)]
    assert delays[-1] <= 8.0
    assert delays[3] >= 4.0
    b.reset()
    assert b.next_delay() <= 1.0


def test_local_api(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    # Bob's card is an old one, without a prekey: nothing can be sealed to him yet.
    alice.add_contact(ContactCard.create(bob.identity, "Bob", now), now)
    cfg = loopback_config(lan=False)

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            sock = ipc.socket_path(alice.path)
            assert stat.S_IMODE(sock.stat().st_mode) == 0o600
            client = await ipc.Client.connect(sock)
            status: dict[str, Any] = await client.call("status")
            assert status["name"] == "Alice"
            assert status["links"] == 0
            contacts = await client.call("contacts")
            assert [c["name"] for c in contacts] == ["Bob"]
            with pytest.raises(ipc.IpcError, match="no current prekey"):
                await client.call("send", contact="Bob", text="hi")
            with pytest.raises(ipc.IpcError, match="no contact named"):
                await client.call("send", contact="Mallory", text="hi")
            with pytest.raises(ipc.IpcError, match="unknown operation"):
                await client.call("format_disk")
            with pytest.raises(ipc.IpcError, match="must be str"):
                await client.call("send", contact="Bob", text=5)
            # A second daemon for the same profile refuses to start.
            with pytest.raises(DaemonError, match="already running"):
                Daemon(alice, cfg, alice.path, handle_signals=False)
            # Events: Bob comes up on loopback, Alice subscribes and sees the peer.
            assert await client.call("subscribe") is True
            b = await start(
                n, bob, loopback_config(lan=False, peers=(f"127.0.0.1:{a.daemon.tcp_port}",))
            )
            event = await client.events()
            assert isinstance(event, LinkChanged)
            assert event.up is True
            peers = await client.call("peers")
            assert [p["kind"] for p in peers] == ["incoming"]
            await client.aclose()
            # Garbage on the socket: the daemon says why, drops that client, keeps serving.
            raw = await trio.open_unix_socket(str(sock))
            await raw.send_all(b"\xff\xff\xff\xff" + b"x" * 16)
            reader, answer = ipc.FrameReader(), []
            while data := await raw.receive_some(100):
                answer += reader.feed(data)
            assert [(m["id"], m["ok"]) for m in answer] == [(0, False)]
            assert "exceeds" in answer[0]["error"]
            await raw.aclose()
            again = await ipc.Client.connect(sock)
            assert (await again.call("status"))["name"] == "Alice"
            await again.aclose()
            await b.stop()
            n.cancel_scope.cancel()

    trio.run(main)


def test_bulletins_flood_and_show_who_signed(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob, carol = (make_profile(tmp_path, n, now) for n in ("Alice", "Bob", "Carol"))
    befriend(alice, bob, now)
    bob.contacts[0].verified = True
    cfg = loopback_config()

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            b = await start(n, bob, cfg)
            c = await start(n, carol, cfg)
            a.daemon.ops.bulletin_post("Clinic on Abay open 9-17", topic="clinic")
            await until("Bob's copy", lambda: bool(b.daemon.ops.bulletin_list()))
            await until("Carol's copy", lambda: bool(c.daemon.ops.bulletin_list()))
            assert [(x.signer, x.text) for x in b.daemon.ops.bulletin_list()] == [
                ("Alice (verified contact)", "Clinic on Abay open 9-17")
            ]
            seen_by_carol = c.daemon.ops.bulletin_list()[0].signer
            assert seen_by_carol.startswith("unknown key "), "a stranger's name is not trusted"
            assert a.daemon.ops.bulletin_list()[0].signer == "you"
            await trio.sleep(1.1)  # a later sequence (seconds) supersedes
            a.daemon.ops.bulletin_post("Clinic closed today", topic="clinic")
            await until(
                "the update to replace the old post",
                lambda: [x.text for x in b.daemon.ops.bulletin_list()] == ["Clinic closed today"],
            )
            with pytest.raises(ipc.IpcError, match="between 1 hour and 7 days"):
                a.daemon.ops.bulletin_post("x", hours=1000)
            n.cancel_scope.cancel()

    trio.run(main)


def test_silent_peer_times_out_and_gateway_reconnects(tmp_path: Path) -> None:
    """Mock clock: a TCP peer that never speaks is dropped after the handshake timeout;
    a gateway link that breaks is dialled again and comes back."""
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)

    async def main() -> None:
        clock = lambda: 1.8e9 + trio.current_time()  # noqa: E731
        async with trio.open_nursery() as n:
            b = Daemon(bob, loopback_config(lan=False), bob.path, handle_signals=False, clock=clock)
            await n.start(b.run)
            silent = await trio.open_tcp_stream("127.0.0.1", b.tcp_port)
            t0 = trio.current_time()
            await until("the silent link dropped", lambda: not b.links, limit=120, step=1.0)
            assert 29 <= trio.current_time() - t0 <= 45, "dropped by the handshake timeout"
            await silent.aclose()
            cfg = loopback_config(lan=False, peers=(f"127.0.0.1:{b.tcp_port}",))
            a = Daemon(alice, cfg, alice.path, handle_signals=False, clock=clock)
            await n.start(a.run)
            await until(
                "the gateway link", lambda: any(x.opened for x in a.links.values()), step=1.0
            )
            first = next(iter(a.links))
            b.tcp.drop(next(iter(b.links)))  # the far end drops the link
            await until(
                "a new gateway link",
                lambda: any(x.opened and x.id != first for x in a.links.values()),
                limit=600,
                step=1.0,
            )
            n.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.05))


def test_lan_redials_a_dead_neighbour_with_backoff(tmp_path: Path) -> None:
    """Beacons keep arriving from a port nobody answers on: dials space out."""
    now = int(time.time())
    p = make_profile(tmp_path, "Lan", now)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    attempts: list[float] = []

    async def main() -> None:
        d = Daemon(p, loopback_config(lan=False), p.path, handle_signals=False)
        original = d.tcp.dial

        async def counting(
            host: str, port: int, kind: LinkKind, *, pin: bytes = b"", label: str = ""
        ) -> bool:
            attempts.append(trio.current_time())
            return await original(host, port, kind, pin=pin, label=label)

        d.tcp.dial = counting  # type: ignore[method-assign]
        async with trio.open_nursery() as n:
            await n.start(d.run)
            d.lan.nursery = n  # LAN is off in the config: beacons are handed in below
            d.lan.discovery = Discovery("239.0.0.1", 1, 1, 1.0, os.urandom, d.lan.on_beacon)
            d.lan.discovery.instance = b"\x00" * 8  # we are the lower instance: we dial
            for _ in range(120):  # a beacon every second for two minutes
                d.lan.on_beacon("127.0.0.1", dead, b"\xff" * 8)
                await trio.sleep(1.0)
            n.cancel_scope.cancel()

    trio.run(main, clock=trio.testing.MockClock(autojump_threshold=0.05))
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert 4 <= len(attempts) <= 12, attempts  # not one dial per beacon
    assert gaps[-1] > gaps[0]


def test_peer_resetting_its_connection_costs_only_that_link(tmp_path: Path) -> None:
    now = int(time.time())
    p = make_profile(tmp_path, "Solo", now)

    async def main() -> None:
        async with trio.open_nursery() as n:
            r = await start(n, p, loopback_config(lan=False))
            for _ in range(20):
                stream = await trio.open_tcp_stream("127.0.0.1", r.daemon.tcp_port)
                stream.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00" * 2)
                await stream.send_all(os.urandom(100))  # half a frame, then a reset
                await stream.aclose()
            await until("links gone", lambda: not r.daemon.links)
            assert r.daemon.stats.get("links_internal_error", 0) == 0
            assert r.daemon.ops.status().links == 0  # still answering
            n.cancel_scope.cancel()

    trio.run(main)


def test_damaged_saved_state_is_one_line(tmp_path: Path) -> None:
    now = int(time.time())
    p = make_profile(tmp_path, "Solo", now)
    d = Daemon(p, loopback_config(lan=False), p.path, handle_signals=False)
    d.close()
    con = sqlite3.connect(p.path / "history.db")
    con.execute("UPDATE state SET blob = ?", (os.urandom(80),))
    con.commit()
    con.close()
    with pytest.raises(DaemonError, match=r"saved node state .* is damaged"):
        Daemon(p, loopback_config(lan=False), p.path, handle_signals=False)
    # The lock was released: after repair (here: a fresh profile dir) a daemon can start.
    (p.path / "history.db").unlink()
    Daemon(p, loopback_config(lan=False), p.path, handle_signals=False).close()


def test_a_crash_between_storing_and_recording_a_message_loses_nothing(tmp_path: Path) -> None:
    """The history write fails at the moment of delivery (standing in for a crash at that
    point): the whole event's store changes roll back (the envelope is neither kept nor
    marked seen), and after a restart the sender's copy comes again and is delivered once."""
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    bob_cfg = loopback_config(lan=False, port=port)
    alice_cfg = loopback_config(lan=False, peers=(f"127.0.0.1:{port}",), backoff_max=2.0)

    async def main() -> None:
        async with trio.open_nursery() as n:
            b = await start(n, bob, bob_cfg)
            a = Daemon(alice, alice_cfg, alice.path, handle_signals=False)
            a.node.contacts[bob.identity.sign_public].prekey = bob.ring.keys[-1].record
            a.send_text("Bob", "survives")
            first_contact = next(iter(a.node.awaited_receipts().values()))

            def crash(*_args: object) -> int:
                raise RuntimeError("power cut")

            b.daemon.history.add = crash  # type: ignore[assignment]
            await n.start(a.run)
            with trio.fail_after(20):
                await b.done.wait()  # crash-only: the daemon stopped itself, saving nothing
            assert b.daemon.broken
            store = SQLiteStore(bob.store_path)
            try:
                frames = [store.get(i) for i in store.ids_in_range(b"", None)]
                held = [E.decode(f).kind for f in frames if f is not None]
                assert E.Kind.FIRST_CONTACT not in held, "the whole event rolled back"
                assert store.seen_count() == 0, "nothing marked seen: it may come again"
            finally:
                store.close()
            b2 = await start(n, bob, bob_cfg)
            await until("delivery after the restart", lambda: bool(b2.daemon.history.messages()))
            await trio.sleep(1.0)
            got = b2.daemon.history.messages()
            assert [(m.text, m.msg_id) for m in got] == [("survives", first_contact)]
            n.cancel_scope.cancel()

    trio.run(main)
