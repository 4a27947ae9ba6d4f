"""Benchmarks of the node issue: reconciliation bytes, link and routing throughput, memory."""

from __future__ import annotations

import os
import random
import time
import tracemalloc
from collections.abc import Callable
from functools import partial

from crypto.identity import Identity
from crypto.noise import KeyPair
from crypto.padding import BUCKETS
from crypto.prekeys import PrekeyRing
from mesh.core import envelope
from mesh.core.driver import carry_out
from mesh.core.events import (
    Action,
    BulletinStored,
    CloseLink,
    FileAction,
    FrameReceived,
    GroupAction,
    LinkOpened,
    LinkUp,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    Transmit,
)
from mesh.core.link import LinkSession
from mesh.core.memory_store import MemoryStore
from mesh.core.node import Node, NodeConfig
from mesh.core.routing import EnvView, Epidemic, Prophet, SprayAndWait, Strategy
from mesh.core.store import StoreItem

NOW = 1_700_000_000


def line(label: str, value: str) -> None:
    print(f"  {label:<52} {value}")


def _envelopes(n: int, rnd: random.Random) -> list[StoreItem]:
    out = []
    hour = NOW // 3600 + 48
    for _ in range(n):
        env = envelope.make(
            envelope.Kind.SESSION,
            hour,
            rnd.randbytes(8),
            rnd.randbytes(BUCKETS[1]),
            8,
            receipt=rnd.randbytes(16),
        )
        out.append(StoreItem(env.id(), envelope.encode(env), env.expiry, 0, b"seed"))
    return out


def _node(rnd: random.Random, items: list[StoreItem]) -> Node:
    ident = Identity.generate(rnd.randbytes)
    ring = PrekeyRing()
    ring.create(ident, NOW, rnd.randbytes)
    store = MemoryStore()
    store.put_many(items, NOW)
    cfg = NodeConfig(base_difficulty=0, mint_difficulty=0, link_burst=1e9, link_rate=1e9)
    return Node(ident, ring, store, rnd.randbytes, cfg)


class _Wire:
    """One end of the pumped contact (an ``ActionSink``): frames go to the other end's
    pending list; a closed link is a failed benchmark."""

    def __init__(self, to_peer: list[bytes]) -> None:
        self.to_peer = to_peer

    def on_transmit(self, act: Transmit) -> None:
        self.to_peer.append(act.data)

    def on_close_link(self, act: CloseLink) -> None:
        raise RuntimeError(f"link closed: {act.reason}")

    def on_link_opened(self, act: LinkOpened) -> None:
        return  # only bytes are measured

    def on_message_delivered(self, act: MessageDelivered) -> None:
        return

    def on_message_queued(self, act: MessageQueued) -> None:
        return

    def on_message_acked(self, act: MessageAcked) -> None:
        return

    def on_send_failed(self, act: SendFailed) -> None:
        return

    def on_bulletin_stored(self, act: BulletinStored) -> None:
        return

    def on_file(self, act: FileAction) -> None:
        return

    def on_group(self, act: GroupAction) -> None:
        return


def _pump(a: Node, b: Node) -> tuple[int, int]:
    """Run a contact to quiescence, delivering frames in waves; (link bytes, waves)."""
    pending: dict[int, list[bytes]] = {0: [], 1: []}
    nodes = [a, b]
    wires = [_Wire(pending[1]), _Wire(pending[0])]

    def take(idx: int, actions: list[Action]) -> None:
        carry_out(actions, wires[idx])

    take(1, b.handle(LinkUp(1, initiator=False), NOW))
    take(0, a.handle(LinkUp(1, initiator=True), NOW))
    wire, waves = 0, 0
    while pending[0] or pending[1]:
        for idx in (0, 1):
            frames = pending[idx][:]
            pending[idx].clear()  # the same list: the other end's wire appends to it
            if frames:
                waves += 1
            for f in frames:
                wire += len(f)
                take(idx, nodes[idx].handle(FrameReceived(1, f), NOW))
    return wire, waves


def bench_reconciliation() -> None:
    print("\nReconciliation: two stores of 10,000 envelopes (1 KiB bodies), epidemic")
    rnd = random.Random(7)
    common = _envelopes(10_000, rnd)
    for d in (10, 100, 1000):
        extra = _envelopes(d, rnd)
        shared = common[: 10_000 - d // 2]
        a = _node(rnd, shared + extra[: d // 2])
        b = _node(rnd, shared + extra[d // 2 :])
        missing = sum(len(x.data) for x in extra)
        start = time.perf_counter()
        wire, waves = _pump(a, b)
        elapsed = time.perf_counter() - start
        assert a.store.count() == b.store.count() == 10_000 - d // 2 + d
        proto = a.stats.get("protocol_bytes_sent", 0) + b.stats.get("protocol_bytes_sent", 0)
        target = 1.2 * missing + 2048
        verdict = "met" if proto <= target else "NOT MET"
        print(
            f"  difference {d:5d}: missing {missing / 1024:7.1f} KiB; protocol bytes "
            f"{proto / 1024:7.1f} KiB = {proto / missing:4.2f}x missing "
            f"(target <= {target / 1024:.1f} KiB: {verdict})"
        )
        print(
            f"  {'':17} reconciliation overhead {(proto - missing) / 1024:6.1f} KiB; "
            f"{waves / 2:.1f} round trips; on the link, padded to a 1400-B MTU: "
            f"{wire / 1024:7.1f} KiB; {elapsed:.2f} s"
        )


def _rate(fn: Callable[[], object], seconds: float = 1.0) -> float:
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        fn()
        n += 1
    return n / (time.perf_counter() - start)


def _open_pair(mtu: int) -> tuple[LinkSession, LinkSession]:
    r = random.Random(1)
    a = LinkSession(
        initiator=True, static=KeyPair.generate(r.randbytes), mtu=mtu, rng=r.randbytes, now=NOW
    )
    b = LinkSession(
        initiator=False, static=KeyPair.generate(r.randbytes), mtu=mtu, rng=r.randbytes, now=NOW
    )
    to_b = a.start().frames
    while to_b:
        to_a = [f for x in to_b for f in b.receive_frame(x, NOW).frames]
        to_b = [f for x in to_a for f in a.receive_frame(x, NOW).frames]
    return a, b


def bench_link_throughput() -> None:
    print("\nLink session throughput (1 KiB messages, one core, both ends)")
    msg = os.urandom(1024)
    for mtu in (1400, 244):
        a, b = _open_pair(mtu)
        counted = {"frames": 0}

        def one(a: LinkSession = a, b: LinkSession = b, counted: dict[str, int] = counted) -> None:
            frames = a.send(msg).frames
            counted["frames"] += len(frames)
            for f in frames:
                b.receive_frame(f, NOW)

        start = time.perf_counter()
        n = 0
        while time.perf_counter() - start < 1.0:
            one()
            n += 1
        elapsed = time.perf_counter() - start
        line(f"MTU {mtu}: messages/s", f"{n / elapsed:9.0f} /s")
        line(f"MTU {mtu}: frames/s", f"{counted['frames'] / elapsed:9.0f} /s")


def bench_routing() -> None:
    print("\nRouting decisions")
    view = EnvView(os.urandom(32), 6, NOW + 3600, os.urandom(16))  # session tag + route key
    prophet = Prophet()
    for _ in range(200):
        prophet.table[os.urandom(8)] = random.random()
    prophet.peer_tables[b"p"] = {view.tag[8:]: 0.9}
    strategies: list[tuple[str, Strategy]] = [
        ("epidemic", Epidemic()),
        ("spray-and-wait", SprayAndWait(8)),
        ("prophet", prophet),
    ]
    for name, strat in strategies:
        rate = _rate(partial(strat.decide, view, b"p", False, NOW))
        line(f"{name} decide()", f"{rate:9.0f} /s")


def bench_memory() -> None:
    print("\nMemory: in-memory store (the simulator's)")
    rnd = random.Random(3)
    items = _envelopes(10_000, rnd)
    frame_bytes = sum(len(x.data) for x in items)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = MemoryStore()
    store.put_many(items, NOW)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    index = after - before
    line("10,000 envelopes: frames themselves", f"{frame_bytes / 2**20:7.1f} MiB")
    line("10,000 envelopes: index and bookkeeping on top", f"{index / 2**20:7.1f} MiB")
    line("per envelope: bookkeeping", f"{index / 10_000:7.0f} B")
    assert store.count() == len(items)


def main() -> None:
    bench_reconciliation()
    bench_link_throughput()
    bench_routing()
    bench_memory()
