"""Bluetooth LE figures (issue 13): real daemons on Bumble virtual controllers, per MTU,
next to the TCP link in the same run.

Run: ``.venv/bin/python -m bench.ble`` (``--n 100 --mtus 23,185,247,517 --acl 27``).

For each carrier, Alice and Bob first meet once (their prekeys cross), then part. Each
queues ``n`` messages of ``--size`` bytes of text for the other (one way: Alice only),
then they meet again; from the moment Bob's daemon has a link:

- ``first``: seconds to the first message delivered (Noise handshake, HELLO,
  reconciliation, one envelope and its decryption);
- ``1 / 10 / 100``: how long the contact must last to hand over that many;
- ``env/s`` and ``B/s``: messages (and their text bytes) per second of contact, from
  the link to the last one delivered (set-up included), one way, and both ways
  together (``2n`` messages).

The virtual controller's LE ACL buffer is ``--acl`` bytes (27: no data length extension,
the Bumble default; 251 with it): every frame costs ``ceil((frame + 4) / acl)`` ACL
packets through Bumble's Python host, so these are CPU-bound figures of this machine, not
of a radio (a real BLE 4.2/5 link with DLE carries roughly 50-150 kB/s).
"""

from __future__ import annotations

import argparse
import itertools
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import trio

from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from mesh.daemon.links.ble.bumble import BumbleBackend
from mesh.profile import Profile
from tests.ble_helpers import ble_config, radio_name
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import Running, until

MARKS = (1, 10, 100)


@dataclass
class Carrier:
    name: str
    config: Config
    mtu: int = 0  # BLE: the ATT MTU asked for and offered
    acl: int = 0

    def backend(self) -> BumbleBackend | None:
        if not self.mtu:
            return None
        return BumbleBackend(self.config.ble_adapter, att_mtu=self.mtu, acl_length=self.acl)


@dataclass
class Result:
    first: float
    marks: dict[int, float]
    rate: float  # envelopes per second, one way
    both: float  # envelopes per second, both ways together


async def _start(n: trio.Nursery, p: Profile, carrier: Carrier) -> Running:
    d = Daemon(p, carrier.config, p.path, handle_signals=False)
    backend = carrier.backend()
    if backend is not None:
        d.ble.backend = backend
    r = Running(d)
    await n.start(r._run)
    return r


def _received(d: Daemon) -> int:
    return d.node.stats.get("delivered", 0)


async def _prekey(x: Running, y: Profile) -> None:
    key = y.identity.sign_public
    await until("the prekey", lambda: x.daemon.node.contacts[key].prekey is not None, 60)


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
        await _prekey(a, bob)
        await _prekey(b, alice)
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
            to_alice = await _watch(a.daemon, n, []) if both else []
        nursery.cancel_scope.cancel()
    t0 = began[0]
    last = max(to_bob + to_alice)
    marks = {k: to_bob[k - 1] - t0 for k in MARKS if k <= n}
    rate = n / (to_bob[-1] - t0)
    return Result(to_bob[0] - t0, marks, rate, (len(to_bob) + len(to_alice)) / (last - t0))


_ids = itertools.count(1)


def carriers(mtus: list[int], acl: int) -> list[Carrier]:
    out = [Carrier("TCP (loopback)", loopback_config())]
    for mtu in mtus:
        cfg = ble_config(f"local:{radio_name()}")
        out.append(Carrier(f"BLE MTU {mtu}", cfg, mtu, acl))
    return out


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
    head = f"{'carrier':<16} {'first s':>8} " + " ".join(f"{f'{k} s':>7}" for k in MARKS)
    print(head + f" {'env/s':>7} {'B/s':>8} {'env/s 2way':>10} {'B/s 2way':>9}")
    try:
        for carrier in carriers(mtus, args.acl):
            one = trio.run(_run, root, carrier, args.n, args.size, False)
            two = trio.run(_run, root, carrier, args.n, args.size, True)
            marks = " ".join(f"{one.marks.get(k, float('nan')):7.2f}" for k in MARKS)
            print(
                f"{carrier.name:<16} {one.first:8.3f} {marks} {one.rate:7.1f} "
                f"{one.rate * args.size:8.0f} {two.both:10.1f} {two.both * args.size:9.0f}",
                flush=True,
            )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
