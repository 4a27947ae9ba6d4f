"""Bluetooth LE figures (issue 13): real daemons on Bumble virtual controllers, per MTU,
next to the TCP link in the same run.

Run: ``.venv/bin/python -m bench.ble`` (``--n 100 --mtus 23,185,247,517 --acl 27``).

For each carrier, Alice and Bob first meet once (a link on both sides), then part. Each
queues ``n`` messages of ``--size`` bytes of text for the other (one way: Alice only),
then they meet again; from the moment Bob's daemon has a link:

- ``first``: seconds to the first message delivered (Noise handshake, HELLO,
  reconciliation, one envelope and its decryption);
- ``1 / 10 / 100``: how long the contact must last to hand over that many;
- ``env/s`` and ``B/s``: messages (and their text bytes) per second of contact, from
  the link to the last one delivered (set-up included), one way, and both ways
  together (``2n`` messages).

Two more columns, of the one-way contact, are what the simulator's radio presets take
(``[[radios]]`` ``setup`` and ``bitrate``; see ``simulations/scenario.py``):

- ``setup s``: seconds from the moment the dialling side first hears the peer (BLE: the
  backend's first ``seen`` of the peer's advertisement, on the asyncio side; TCP: the
  first LAN beacon heard) to the ``LinkUp`` that side's daemon feeds its node (BLE: MTU
  settled and TX subscribed); the median over the four contacts of the carrier's two
  runs (each run: the first meeting and the measured one). It includes the dial's
  random delay (uniform up to ``link.DIAL_DELAY``, 0.5 s), the connection, the MTU
  exchange and the subscription; not the time from coming in range to the first
  advertisement heard (up to about one advertising interval: the bench's daemons
  advertise every 50 ms and scan 25 ms in 50). The simulator's ``setup`` is the time
  from coming in range to ``LinkUp``.
- ``link B/s``: the frame bytes the sender's node transmitted in the one-way contact
  (every ``Transmit``, handshake and reconciliation included; a BLE frame is
  ATT_MTU - 3 bytes, ATT and L2CAP headers not counted, as the simulator counts a
  frame) up to the moment the last message was delivered, divided by the same contact
  time as ``env/s`` (from Bob's link to that moment). The simulator carries a frame in
  ``len(frame) / bitrate`` seconds and the protocol's steps cost no time there, so this
  effective rate, with the node's own work in it, makes a simulated contact last about
  as long as this one.

Both are taken from outside the daemon: the bench's daemon subclass records the time of
each ``LinkUp`` it is fed and the bytes of each ``Transmit``; its Bumble backend wraps
the events object it is started with; its LAN discovery records the first beacon.

The virtual controller's LE ACL buffer is ``--acl`` bytes (27: no data length extension,
the Bumble default; 251 with it): every frame costs ``ceil((frame + 4) / acl)`` ACL
packets through Bumble's Python host, so these are CPU-bound figures of this machine, not
of a radio (a real BLE 4.2/5 link with DLE carries roughly 50-150 kB/s).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import trio

from mesh.core.events import Action, Event, LinkUp, Transmit
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from mesh.daemon.links.ble.backend import BackendEvents, Timing
from mesh.daemon.links.ble.bumble import BumbleBackend
from mesh.daemon.links.lan import Lan
from mesh.profile import Profile
from tests.ble_helpers import ble_config, radio_name
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import Running, knows_prekey, until

MARKS = (1, 10, 100)


@dataclass
class Sightings:
    """When a daemon first heard a peer (advertisement or beacon), and its LinkUps."""

    first: float | None = None
    ups: list[tuple[float, bool]] = field(default_factory=list)  # (when, initiator)

    def heard(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()


class _SeenEvents:
    """A backend's events, passed on, with the first ``seen`` timed (asyncio side)."""

    def __init__(self, inner: BackendEvents, sightings: Sightings) -> None:
        self.inner = inner
        self.sightings = sightings

    def seen(self, address: str, /) -> None:
        self.sightings.heard()
        self.inner.seen(address)

    def link_up(self, link: int, central: bool, frame: int, address: str, /) -> None:
        self.inner.link_up(link, central, frame, address)

    def frame(self, link: int, data: bytes, /) -> None:
        self.inner.frame(link, data)

    def link_down(self, link: int, reason: str, /) -> None:
        self.inner.link_down(link, reason)


class _TimedBumble(BumbleBackend):
    def __init__(self, spec: str, att_mtu: int, acl_length: int, sightings: Sightings):
        super().__init__(spec, att_mtu=att_mtu, acl_length=acl_length)
        self.sightings = sightings

    async def start(self, events: BackendEvents, timing: Timing) -> None:
        await super().start(_SeenEvents(events, self.sightings), timing)


class _TimedLan(Lan):
    def __init__(self, lan: Lan, sightings: Sightings) -> None:
        super().__init__(lan.links, lan.jitter)
        self.sightings = sightings

    def on_beacon(self, ip: str, port: int, instance: bytes) -> None:
        self.sightings.heard()
        super().on_beacon(ip, port, instance)


class _Timed(Daemon):
    """A daemon that records when it feeds its node a LinkUp, and the frame bytes its
    node transmits (``sightings`` is filled by its backend or LAN discovery)."""

    sightings: Sightings
    sent: int

    def feed(self, event: Event) -> list[Action]:
        if isinstance(event, LinkUp):
            self.sightings.ups.append((time.perf_counter(), event.initiator))
        return super().feed(event)

    def on_transmit(self, act: Transmit) -> None:
        self.sent += len(act.data)
        super().on_transmit(act)


@dataclass
class Carrier:
    name: str
    config: Config
    mtu: int = 0  # BLE: the ATT MTU asked for and offered
    acl: int = 0


@dataclass
class Result:
    first: float
    marks: dict[int, float]
    rate: float  # envelopes per second, one way
    both: float  # envelopes per second, both ways together
    setups: list[float]  # seconds from the dialler hearing the peer to its LinkUp, per contact
    link_rate: float  # frame bytes per second the sender transmitted, one way


async def _start(n: trio.Nursery, p: Profile, carrier: Carrier) -> Running:
    d = _Timed(p, carrier.config, p.path, handle_signals=False)
    d.sightings, d.sent = Sightings(), 0
    if carrier.mtu:
        adapter = carrier.config.ble_adapter
        d.ble.backend = _TimedBumble(adapter, carrier.mtu, carrier.acl, d.sightings)
    else:
        d.lan = _TimedLan(d.lan, d.sightings)
    r = Running(d)
    await n.start(r._run)
    return r


def _timed(r: Running) -> _Timed:
    assert isinstance(r.daemon, _Timed)
    return r.daemon


def _setup(*sides: Sightings) -> float:
    """From the dialler first hearing its peer to its first LinkUp (the earliest such
    link of the contact; nan if none was timed)."""
    times = [
        min(t for t, initiator in s.ups if initiator) - s.first
        for s in sides
        if s.first is not None and any(initiator for _, initiator in s.ups)
    ]
    return min(times, default=float("nan"))


def _received(d: Daemon) -> int:
    return d.node.stats.get("delivered", 0)


async def _watch(d: Daemon, want: int, began: list[float]) -> list[float]:
    """When each of ``want`` messages arrived, from the first link (polled)."""
    times: list[float] = []
    while len(times) < want:
        if not began and d.links:
            began.append(time.perf_counter())
        got = _received(d)
        now = time.perf_counter()
        times.extend(now for _ in range(got - len(times)))
        await trio.sleep(0.002)
    return times


async def _run(root: Path, carrier: Carrier, n: int, size: int, both: bool) -> Result:
    now = int(time.time())
    alice, bob = (make_profile(root, f"{x}{next(_ids)}", now) for x in ("Alice", "Bob"))
    befriend(alice, bob, now)
    async with trio.open_nursery() as nursery:
        a, b = await _start(nursery, alice, carrier), await _start(nursery, bob, carrier)
        await knows_prekey(a, bob, 60)
        await knows_prekey(b, alice, 60)
        met = (_timed(a).sightings, _timed(b).sightings)
        await until("a link", lambda: all(s.ups for s in met), 60)
        setups = [_setup(*met)]
        await b.stop()
        await until("apart", lambda: not a.daemon.links, 30)
        text = "x" * size
        for i in range(n):
            a.daemon.send_text(bob.name, f"{i:06d}{text[6:]}")
        await a.stop()
        b = await _start(nursery, bob, carrier)
        if both:
            for i in range(n):
                b.daemon.send_text(alice.name, f"{i:06d}{text[6:]}")
        a = await _start(nursery, alice, carrier)
        began: list[float] = []
        with trio.fail_after(600):
            to_bob = await _watch(b.daemon, n, began)
            sent = _timed(a).sent  # no await since the last delivery was seen
            to_alice = await _watch(a.daemon, n, []) if both else []
        nursery.cancel_scope.cancel()
    t0 = began[0]
    last = max(to_bob + to_alice)
    marks = {k: to_bob[k - 1] - t0 for k in MARKS if k <= n}
    took = to_bob[-1] - t0
    return Result(
        to_bob[0] - t0,
        marks,
        n / took,
        (len(to_bob) + len(to_alice)) / (last - t0),
        [*setups, _setup(_timed(a).sightings, _timed(b).sightings)],
        sent / took,
    )


_ids = itertools.count(1)


def carriers(mtus: list[int], acl: int) -> list[Carrier]:
    out = [Carrier("TCP (loopback)", loopback_config())]
    for mtu in mtus:
        cfg = ble_config(f"local:{radio_name()}")
        out.append(Carrier(f"BLE MTU {mtu}", cfg, mtu, acl))
    return out


def _line(name: str, one: Result, two: Result, size: int) -> str:
    marks = " ".join(f"{one.marks.get(k, float('nan')):7.2f}" for k in MARKS)
    setup = statistics.median(one.setups + two.setups)
    return (
        f"{name:<16} {setup:7.3f} {one.first:8.3f} {marks} {one.rate:7.1f} "
        f"{one.rate * size:8.0f} {one.link_rate:9.0f} {two.both:10.1f} {two.both * size:9.0f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="messages each way")
    parser.add_argument("--size", type=int, default=100, help="bytes of text per message")
    parser.add_argument("--mtus", default="23,185,247,517")
    parser.add_argument("--acl", type=int, default=27, help="virtual LE ACL buffer bytes")
    args = parser.parse_args()
    mtus = [int(x) for x in args.mtus.split(",") if x]
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-ble-"))
    print(f"{args.n} messages of {args.size} B each way; virtual LE ACL buffer {args.acl} B")
    head = f"{'carrier':<16} {'setup s':>7} {'first s':>8} "
    head += " ".join(f"{f'{k} s':>7}" for k in MARKS)
    print(head + f" {'env/s':>7} {'B/s':>8} {'link B/s':>9} {'env/s 2way':>10} {'B/s 2way':>9}")
    try:
        for carrier in carriers(mtus, args.acl):
            one = trio.run(_run, root, carrier, args.n, args.size, False)
            two = trio.run(_run, root, carrier, args.n, args.size, True)
            print(_line(carrier.name, one, two, args.size), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
