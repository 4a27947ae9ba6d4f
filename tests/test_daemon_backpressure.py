"""Backpressure on real daemons (issue 11, "bulk traffic stalls the daemon"): a full send
queue pauses what fills it instead of dropping the link; a peer that never reads is
dropped at a hard cap in bytes; nothing else waits on a slow link. Loopback only."""

from __future__ import annotations

import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.testing

from mesh import ipc
from mesh.core.events import SendMessage, Transmit
from mesh.daemon import daemon as daemon_module
from mesh.daemon import flow
from mesh.daemon.daemon import Daemon
from mesh.daemon.links import LinkKind
from mesh.daemon.links.tcp import LinkInfo
from mesh.profile import Profile
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import start, until

# Flood limit lifted (the bulk case); receipts held back, so only the bulk moves.
BULK = loopback_config(lan=False, link_rate=1e9, link_burst=1e9, receipt_delay=(3600, 7200))


class SlowProxy:
    """A loopback TCP relay for daemons that dial it: what the dialler sends goes straight
    on to the target daemon; what comes back is read ``chunk`` bytes at a time, ``pause``
    seconds apart, and not at all once ``stall`` is set. Its socket towards the target has
    a small receive buffer, so the target's writer feels a slow reader at once instead of
    filling the kernel's buffers first."""

    def __init__(self, target_port: int, chunk: int = 4096, pause: float = 0.001) -> None:
        self.target_port = target_port
        self.chunk = chunk
        self.pause = pause
        self.stall = trio.Event()
        self.port = 0
        self.connections = 0
        self.forwarded = 0  # bytes the target sent that reached the dialler
        self.sources: set[str] = set()  # what the target sees as the remote of our links

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._relay, listeners)

    async def _relay(self, dialler: trio.SocketStream) -> None:
        self.connections += 1
        sock = trio.socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        try:
            await sock.connect(("127.0.0.1", self.target_port))
            host, port = sock.getsockname()[:2]
            self.sources.add(f"{host}:{port}")
            target = trio.SocketStream(sock)
            async with target, dialler, trio.open_nursery() as nursery:
                nursery.start_soon(self._onward, dialler, target, nursery.cancel_scope)
                await self._back(target, dialler)
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass  # either daemon hung up (or dropped the link): this connection is over
        finally:
            sock.close()

    async def _onward(
        self, dialler: trio.SocketStream, target: trio.SocketStream, scope: trio.CancelScope
    ) -> None:
        try:
            while data := await dialler.receive_some(65536):
                await target.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    async def _back(self, target: trio.SocketStream, dialler: trio.SocketStream) -> None:
        while True:
            if self.stall.is_set():
                await trio.sleep_forever()
            data = await target.receive_some(self.chunk)
            if not data:
                return
            self.forwarded += len(data)
            await dialler.send_all(data)
            await trio.sleep(self.pause)


def compose(d: Daemon, to: Profile, texts: list[str]) -> None:
    """Queue messages in one step of the node (not one state save each: set-up, not the
    subject here)."""
    key = to.identity.sign_public
    d.call_node(
        lambda now: [a for t in texts for a in d.node.handle(SendMessage(key, t.encode()), now)]
    )


def test_a_slow_reader_gets_all_the_bulk_over_one_link(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1,000 messages wait for Bob, whose side of the connection reads 4 KiB a millisecond.
    Alice's send queue passes its high watermark, Bob's asks wait until it drains, and
    everything arrives over the one link: nothing dropped, no reconnect, nothing sent twice.
    (The bounded channel this replaced, shrunk to 16 frames here to fail fast, dropped the
    link as slow; Bob reconnected and was sent everything again.)"""
    monkeypatch.setattr(flow, "HIGH_WATER", 64 * 1024)
    monkeypatch.setattr(flow, "LOW_WATER", 32 * 1024)
    monkeypatch.setattr(daemon_module, "SEND_QUEUE", 16, raising=False)
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    n = 1000

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a = Daemon(alice, BULK, alice.path, handle_signals=False)
            a.node.contacts[bob.identity.sign_public].prekey = bob.ring.keys[-1].record
            compose(a, bob, [f"message {k}" for k in range(n)])
            await nursery.start(a.run)
            proxy = SlowProxy(a.tcp_port)
            await nursery.start(proxy.serve)
            b = await start(nursery, bob, replace(BULK, peers=(f"127.0.0.1:{proxy.port}",)))
            await until(
                "Bob has them all (or his link was dropped)",
                lambda: (
                    b.daemon.node.stats.get("delivered") == n or "links_dropped_slow" in a.stats
                ),
            )
            assert "links_dropped_slow" not in a.stats
            assert proxy.forwarded > n * 300  # it all went through the slow reader
            assert a.stats.get("backpressure_pauses", 0) >= 1
            assert a.stats["links_incoming"] == 1
            assert proxy.connections == 1
            assert b.daemon.stats["links_gateway"] == 1
            assert a.node.stats["envelopes_sent"] <= n + 1  # n messages and Alice's prekey
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_a_peer_that_never_reads_is_dropped_at_the_cap_and_nothing_else_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Bob's side stops reading once his link is open; Alice keeps writing to Carol, and
    every envelope is offered to Bob too. Bob's link is dropped once its queue would pass
    the hard cap; what waited for him never passed it. Meanwhile Carol's link carries
    everything and the local API answers. (The old queue counted frames, 4,096 of any
    size: here it never dropped Bob.)"""
    monkeypatch.setattr(flow, "HIGH_WATER", 4096)
    monkeypatch.setattr(flow, "LOW_WATER", 2048)
    monkeypatch.setattr(flow, "SLOW_CAP", 64 * 1024)
    now = int(time.time())
    alice, bob, carol = (make_profile(tmp_path, x, now) for x in ("Alice", "Bob", "Carol"))
    befriend(alice, carol, now)

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a = (await start(nursery, alice, BULK)).daemon
            proxy = SlowProxy(a.tcp_port)
            await nursery.start(proxy.serve)
            peers = (f"127.0.0.1:{proxy.port}",)
            await start(nursery, bob, replace(BULK, peers=peers, backoff_max=60.0))
            c = await start(nursery, carol, replace(BULK, peers=(f"127.0.0.1:{a.tcp_port}",)))
            carol_key = carol.identity.sign_public
            await until(
                "both links open, Carol's prekey known",
                lambda: (
                    len(a.node.links) == 2
                    and all(ln.hello is not None for ln in a.node.links.values())
                    and a.node.contacts[carol_key].prekey is not None
                ),
            )
            proxy.stall.set()
            links = {x.remote in proxy.sources: x.id for x in a.links.values()}
            peaks: dict[int, int] = {}  # link -> most bytes its outbox held
            put = flow.ByteQueue.put

            def watched(queue: flow.ByteQueue, data: bytes) -> None:
                put(queue, data)
                for x in a.tcp.links.values():
                    if queue is x.outbox:
                        peaks[x.id] = max(peaks.get(x.id, 0), queue.bytes)

            monkeypatch.setattr(flow.ByteQueue, "put", watched)
            sent, stalled, status = 0, 0, {}
            for step in range(80):
                compose(a, carol, [f"{step}.{k}" for k in range(25)])
                sent += 25
                await trio.sleep(0.01)
                if step == 10:  # Bob's queue is above the watermark: the local API answers
                    stalled = peaks.get(links[True], 0)
                    with trio.fail_after(2):
                        status = await ipc.call_daemon(alice.path, "status")
                if a.stats.get("links_dropped_slow"):
                    break
            assert a.stats.get("links_dropped_slow") == 1, f"not dropped after {sent} sent"
            assert stalled >= flow.HIGH_WATER
            assert max(peaks.values()) <= flow.SLOW_CAP
            assert status["links"] == 2
            assert links[False] in a.links  # Carol's link, the same one
            await until("Carol has them all", lambda: c.daemon.node.stats.get("delivered") == sent)
            with trio.fail_after(2):
                assert (await ipc.call_daemon(alice.path, "status"))["name"] == "Alice"
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_two_daemons_with_bulk_for_each_other_do_not_wait_on_each_other(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both send in bulk over a stream that buffers nothing (trio's lockstep pair), so both
    queues pass the high watermark and both pause their input. Each side goes on reading
    while it waits, so each drains the other. (Reading only what can be fed at once,
    ``INBOX_MAX`` of one byte, both wait for ever: nothing of 1,000 arrived in 30 s.)"""
    monkeypatch.setattr(flow, "HIGH_WATER", 16 * 1024)
    monkeypatch.setattr(flow, "LOW_WATER", 8 * 1024)
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    n = 600

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            a = Daemon(alice, BULK, alice.path, handle_signals=False)
            b = Daemon(bob, BULK, bob.path, handle_signals=False)
            for d, to in ((a, bob), (b, alice)):
                d.node.contacts[to.identity.sign_public].prekey = to.ring.keys[-1].record
                compose(d, to, [f"from {d.profile.name}: {k}" for k in range(n)])
                await nursery.start(d.run)
            ours, theirs = trio.testing.lockstep_stream_pair()
            nursery.start_soon(a.tcp.run, ours, True, LinkKind.GATEWAY, "127.0.0.2:1")
            nursery.start_soon(b.tcp.run, theirs, False, LinkKind.INCOMING, "127.0.0.3:1")
            await until(
                "both have all",
                lambda: a.node.stats.get("delivered") == n and b.node.stats.get("delivered") == n,
            )
            for d in (a, b):
                assert d.stats.get("backpressure_pauses", 0) >= 1
                assert "links_dropped_slow" not in d.stats
            nursery.cancel_scope.cancel()

    trio.run(main)


def test_the_caps_bound_what_waits_for_links_nobody_drains(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Links with no writer: a frame that would take a link's queue past SLOW_CAP drops
    that link; one that would take all queues together past ALL_LINKS_CAP drops the
    fullest link (another, or this one). Nothing queued ever passes either cap."""
    monkeypatch.setattr(flow, "SLOW_CAP", 10_000)
    monkeypatch.setattr(flow, "ALL_LINKS_CAP", 25_000)
    p = make_profile(tmp_path, "Solo", int(time.time()))
    d = Daemon(p, loopback_config(lan=False), p.path, handle_signals=False)

    async def main() -> None:  # cancel scopes want a trio run
        infos = [
            LinkInfo(i, LinkKind.INCOMING, f"127.0.0.{i}:1", 0.0, trio.CancelScope())
            for i in range(6)
        ]
        d.tcp.links.update({x.id: x for x in infos[1:]})

        def send(link: int, size: int) -> dict[int, int]:
            d.on_transmit(Transmit(link, bytes(size)))
            return {i: x.outbox.bytes for i, x in d.tcp.links.items() if x.outbox.bytes}

        assert send(1, 9_000) == {1: 9_000}
        assert send(1, 1_001) == {}  # 10,001 > SLOW_CAP: link 1 dropped
        send(2, 9_000)
        send(3, 8_000)
        assert send(4, 7_000) == {2: 9_000, 3: 8_000, 4: 7_000}  # 24,000 in all
        assert send(4, 2_000) == {3: 8_000, 4: 9_000}  # 26,000 > ALL: the fullest, 2, goes
        assert send(5, 7_500) == {3: 8_000, 4: 9_000, 5: 7_500}
        assert send(4, 600) == {3: 8_000, 5: 7_500}  # 25,100 > ALL: 4 is the fullest
        assert send(5, 2_500) == {3: 8_000, 5: 10_000}  # at SLOW_CAP, not past it
        assert set(d.links) == {3, 5}
        assert [x.id for x in infos if x.scope.cancel_called] == [1, 2, 4]
        assert d.stats["links_dropped_slow"] == 3
        assert [len(x.outbox) for x in infos] == [0, 0, 0, 1, 0, 2]  # dropped: freed

    try:
        trio.run(main)
    finally:
        d.close()
