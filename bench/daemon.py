"""Daemon benchmark: a relay daemon (its own process, SQLite store, default durability)
fed over loopback TCP by in-process peer daemons.

Run: ``.venv/bin/python -m bench.daemon``. Prints:

- relay ingest: envelopes per second accepted into the relay's store from 1 and from 10
  concurrent peers, with the default per-link flood limit (a token bucket of 50
  envelopes/s after a burst of 400) and with that limit lifted, which shows the store and
  protocol capacity; CPU seconds of the relay process per 1,000 envelopes relayed;
- end-to-end latency of one message Alice -> relay -> Bob across three daemons;
- relay memory (issue 10, part 3; ``--only memory``, ``--sizes`` to choose): RSS of the
  relay with an empty store, then started from a store file holding 100,000 and 1,000,000
  envelopes of the smallest bucket (unique tags and receipt hashes, 1,000 per source label;
  the first size once more with every envelope from its own label), after start-up and at
  its peak while peers push 20,000 more; bytes per stored envelope against the target of
  at most 200 B, and whether the shipped ``store.max_envelopes`` fits the
  ``MemoryMax=`` of ``deploy/steppe-relay.service``.

The baseline for the ingest figures is a bare loop of SQLite puts of the same envelopes
(one transaction each, as the relay commits them), measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import trio

from crypto import keystore
from crypto.identity import ContactCard
from crypto.padding import BUCKETS
from crypto.stamp import leading_zero_bits
from mesh import ipc
from mesh.core import envelope
from mesh.core.store import Quotas, StoreItem
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.profile import Profile, create_profile, new_profile

STAMP_BITS = 8  # the relay's base requirement while its store has room
# Store limits for the memory figures: room for 1,000,000 envelopes of the smallest bucket
# (the shipped 256 MiB would hold under half of them), so nothing is refused or evicted.
INGEST = (4, 5_000)  # peers pushing into the relay during the memory figures, envelopes each
BIG_STORE = Quotas(max_total_bytes=2 * 2**30, max_total_count=2_000_000, max_source_bytes=2 * 2**30)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _profile(root: Path, name: str) -> Profile:
    return new_profile(root / name, name, int(time.time()), os.urandom)


def mint(envelope_id: bytes, bits: int) -> bytes:
    """A hashcash stamp of at least ``bits`` (<= 64) bits over an envelope id: what
    ``crypto.stamp.mint_stamp`` finds, three times faster (the personalised hash state is
    set up once per envelope). Filling a store with a million valid envelopes needs it."""
    state = hashlib.blake2b(envelope_id, digest_size=32, person=b"steppe-stamp")
    pack_u64 = struct.Struct(">Q").pack
    counter = int.from_bytes(os.urandom(7), "big")
    while True:
        stamp = pack_u64(counter)
        h = state.copy()
        h.update(stamp)
        if int.from_bytes(h.digest()[:8], "big") >> (64 - bits) == 0:
            return stamp
        counter += 1


def junk_envelopes(n: int, body: int = BUCKETS[1]) -> list[envelope.Envelope]:
    """Valid session envelopes stamped at the relay's base difficulty, each with its own
    random tag, receipt hash and body (2 KiB unless told)."""
    now = int(time.time())
    out = []
    for _ in range(n):
        env = envelope.make(
            envelope.Kind.SESSION,
            envelope.coarse_expiry(now, 86400),
            os.urandom(8),
            os.urandom(body),
            8,
            receipt=os.urandom(16),
        )
        out.append(env.with_stamp(mint(env.id(), STAMP_BITS)))
    return out


def row(env: envelope.Envelope, source: bytes) -> StoreItem:
    """The store row a node writes for an envelope it relays: tag, receipt hash and budget
    for the index, and a rank of public facts (for mail: the stamp work it carries, which
    is what a node reads back before it offers the envelope to a peer demanding work)."""
    eid = env.id()
    rank = min(255, leading_zero_bits(eid, env.stamp))
    return StoreItem(
        eid, envelope.encode(env), env.expiry, rank, source, env.tag, env.receipt, env.budget
    )


def fill(store: SQLiteStore, envs: list[envelope.Envelope]) -> None:
    now = int(time.time())
    items = [row(e, b"bench") for e in envs]
    for k in range(0, len(items), 1000):
        store.put_many(items[k : k + 1000], now)


def stored_items(job: tuple[int, bytes]) -> list[StoreItem]:
    """``n`` store rows for envelopes of the smallest bucket from ``source`` (b"": each
    from its own)."""
    n, source = job
    return [row(env, source or os.urandom(16)) for env in junk_envelopes(n, BUCKETS[0])]


def fill_store(path: Path, n: int, per_source: int) -> float:
    """Fill the store file at ``path`` with ``n`` unique envelopes, ``per_source`` from each
    source label (1: every envelope from its own), minted on every core; seconds taken."""
    chunk = 10_000
    jobs = []
    for k in range(0, n, chunk):
        size = min(chunk, n - k)
        if per_source == 1:
            jobs.append((size, b""))
            continue
        for j in range(0, size, per_source):
            jobs.append((min(per_source, size - j), os.urandom(16)))
    start = time.perf_counter()
    store = SQLiteStore(path, BIG_STORE)
    now = int(time.time())
    with multiprocessing.get_context("spawn").Pool() as pool:
        batch: list[StoreItem] = []
        for items in pool.imap_unordered(stored_items, jobs):
            batch += items
            if len(batch) >= chunk:
                store.put_many(batch, now)
                batch = []
        store.put_many(batch, now)
    assert store.count() == n, store.count()
    store.close()
    return time.perf_counter() - start


class Relay:
    """``steppe daemon`` for a relay profile, in its own process."""

    def __init__(self, root: Path, unlimited: bool, big_store: bool = False) -> None:
        self.root = root
        self.port = _port()
        pw = b"bench relay"
        self.profile = create_profile(
            root / "relay",
            "Relay",
            pw,
            keystore.KdfParams.named("interactive"),
            int(time.time()),
            os.urandom,
        )
        (root / "pw").write_bytes(pw + b"\n")
        cfg = '[daemon]\nmode = "relay"\n[lan]\nenabled = false\nlisten = "127.0.0.1"\n'
        cfg += f"port = {self.port}\n"
        if big_store:
            cfg += f"[store]\nmax_bytes = {BIG_STORE.max_total_bytes}\n"
            cfg += f"max_envelopes = {BIG_STORE.max_total_count}\n"
        if unlimited:  # the flood limit lifted: what the relay itself can take
            cfg += "[limits]\nlink_rate = 1e9\nlink_burst = 1e9\n"
        (root / "relay.toml").write_text(cfg)
        self.env = dict(os.environ)
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> psutil.Process:
        cmd = [sys.executable, "-m", "bench.daemon", "--relay", str(self.root)]
        self.proc = subprocess.Popen(cmd, env=self.env)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.status()
                break
            except (ipc.IpcError, OSError):
                if time.monotonic() > deadline:
                    raise SystemExit("bench: the relay did not start") from None
                time.sleep(0.05)
        return psutil.Process(self.proc.pid)

    def status(self) -> dict[str, Any]:
        result: dict[str, Any] = ipc.call_daemon_sync(self.profile.path, "status")
        return result

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def run_relay(root: Path) -> None:
    """Child process: the relay daemon (the flood limit lifted when asked)."""
    from mesh.daemon.config import load
    from mesh.profile import open_profile

    prof = open_profile(root / "relay", (root / "pw").read_bytes().strip())
    _reset_hwm("self")  # Argon2id just took its 64 MiB and gave them back: not the store's
    cfg = load(root / "relay.toml")
    d = Daemon(prof, cfg, prof.path)
    trio.run(d.run)


def _push(
    relay: Relay, root: Path, peers: int, per_peer: int, watch: psutil.Process | None = None
) -> tuple[float, int]:
    """Peer daemons (in this process) push ``peers * per_peer`` fresh envelopes into the
    relay over loopback; returns the seconds until the relay holds them all and the peak
    RSS of ``watch`` meanwhile (sampled about every 50 ms)."""
    base = relay.status()["envelopes"]
    envs = junk_envelopes(peers * per_peer)
    sources = []
    for k in range(peers):
        p = _profile(root, f"peer{k}")
        store = SQLiteStore(p.store_path)
        fill(store, envs[k * per_peer : (k + 1) * per_peer])
        store.close()
        sources.append(p)
    target = base + len(envs)
    cfg = Config(lan=False, listen="127.0.0.1", port=0, peers=(f"127.0.0.1:{relay.port}",))
    elapsed, peak = 0.0, 0

    async def main() -> None:
        nonlocal elapsed, peak
        async with trio.open_nursery() as n:
            start = trio.current_time()
            for p in sources:
                n.start_soon(Daemon(p, cfg, p.path, handle_signals=False).run)
            with trio.fail_after(3600):
                while True:  # polling another process: no event to wait on
                    if watch is not None:
                        peak = max(peak, watch.memory_info().rss)
                    status = await ipc.call_daemon(relay.profile.path, "status")
                    if status["envelopes"] >= target:
                        break
                    await trio.sleep(0.05)
            elapsed = trio.current_time() - start
            n.cancel_scope.cancel()

    trio.run(main)
    return elapsed, peak


def bench_ingest(peers: int, per_peer: int, unlimited: bool) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    try:
        relay = Relay(root, unlimited)
        proc = relay.start()
        try:
            cpu0 = sum(proc.cpu_times()[:2])
            elapsed, _peak = _push(relay, root, peers, per_peer)
            cpu = sum(proc.cpu_times()[:2]) - cpu0
        finally:
            relay.stop()
        n = peers * per_peer
        return n / elapsed, cpu / n * 1000
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_store_baseline(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "s.db")
        envs = junk_envelopes(n)
        now = int(time.time())
        start = time.perf_counter()
        for e in envs:
            store.put(StoreItem(e.id(), envelope.encode(e), e.expiry, 0, b"x"), now)
        took = time.perf_counter() - start
        store.close()
        return n / took


def bench_latency(samples: int) -> list[float]:
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    try:
        alice, relay, bob = (_profile(root, n) for n in ("alice", "relay", "bob"))
        now = int(time.time())
        alice.add_contact(ContactCard.decode(bob.card.encode()), now, name="bob")
        bob.add_contact(ContactCard.decode(alice.card.encode()), now, name="alice")
        out: list[float] = []

        async def main() -> None:
            async with trio.open_nursery() as n:
                r = Daemon(
                    relay,
                    Config(lan=False, listen="127.0.0.1", port=0),
                    relay.path,
                    handle_signals=False,
                )
                await n.start(r.run)
                via = Config(
                    lan=False, listen="127.0.0.1", port=0, peers=(f"127.0.0.1:{r.tcp_port}",)
                )
                a = Daemon(alice, via, alice.path, handle_signals=False)
                b = Daemon(bob, via, bob.path, handle_signals=False)
                await n.start(a.run)
                await n.start(b.run)
                key = bob.identity.sign_public
                with trio.fail_after(30):
                    while a.node.contacts[key].prekey is None:  # noqa: ASYNC110
                        await trio.sleep(0.01)
                for k in range(samples):
                    start = trio.current_time()
                    a.send_text("bob", f"ping {k}")
                    with trio.fail_after(30):
                        while len(b.history.messages(limit=0)) <= k:  # noqa: ASYNC110
                            await trio.sleep(0.0005)
                    out.append(trio.current_time() - start)
                n.cancel_scope.cancel()

        trio.run(main)
        return out
    finally:
        shutil.rmtree(root, ignore_errors=True)


@dataclass(frozen=True, slots=True)
class Memory:
    """The relay's memory around one store size (bytes and seconds)."""

    stored: int
    fill: float  # seconds to mint and write the store file before the relay starts
    disk: int  # bytes of the store file (with its WAL) on disk
    startup: float  # seconds from exec to serving its local API
    rss: int  # settled after start-up
    anon: int  # the part of it not backed by files (what cannot be paged out)
    ingest: float  # seconds to take INGEST[0] * INGEST[1] more from peers
    peak: int  # RSS at its highest while it did, sampled every 50 ms
    hwm_startup: int  # the kernel's high-water mark of RSS (VmHWM) over start-up, after the
    # passphrase's Argon2id (64 MiB, given back at once, before the store is opened)
    hwm: int  # ... and over the ingest: no transient escapes it


def _disk(path: Path) -> int:
    names = (path.name, path.name + "-wal", path.name + "-shm")
    return sum((path.parent / n).stat().st_size for n in names if (path.parent / n).exists())


def _hwm(pid: int) -> int:
    """The peak RSS of a live process so far (``VmHWM`` of /proc/<pid>/status), bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM: not Linux?")


def _reset_hwm(pid: int | str) -> None:
    """Start the process's ``VmHWM`` afresh from its current RSS (Linux: clear_refs 5)."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def bench_memory(stored: int, per_source: int) -> Memory:
    """Fill a relay's store file directly with ``stored`` envelopes, start the relay daemon
    from it, let it settle, then have peers push more while its RSS is sampled."""
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    try:
        relay = Relay(root, unlimited=True, big_store=True)
        took = fill_store(relay.profile.store_path, stored, per_source) if stored else 0.0
        disk = _disk(relay.profile.store_path)
        began = time.perf_counter()
        proc = relay.start()
        startup = time.perf_counter() - began
        try:
            time.sleep(3.0)  # first tick, sweep, prekey published
            info, hwm_startup = proc.memory_info(), _hwm(proc.pid)
            count = relay.status()["envelopes"]
            assert count >= stored, count
            _reset_hwm(proc.pid)
            ingest, peak = _push(relay, root, *INGEST, watch=proc)
            hwm = _hwm(proc.pid)
        finally:
            relay.stop()
        anon = info.rss - info.shared
        return Memory(stored, took, disk, startup, info.rss, anon, ingest, peak, hwm_startup, hwm)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def memory_max() -> int:
    """``MemoryMax=`` of the shipped systemd unit, in bytes."""
    unit = (Path(__file__).parent.parent / "deploy" / "steppe-relay.service").read_text()
    m = re.search(r"^MemoryMax=(\d+)([KMG]?)$", unit, re.MULTILINE)
    assert m is not None, "no MemoryMax= in deploy/steppe-relay.service"
    scale: int = 1024 ** " KMG".index(m.group(2) or " ")
    return int(m.group(1)) * scale


def print_memory(sizes: list[int]) -> None:
    mib = 2**20
    pushed = INGEST[0] * INGEST[1]
    print(
        "\nRelay memory: RSS of the relay daemon process (SQLite store, its defaults); stored "
        f"envelopes of the smallest bucket ({BUCKETS[0]}-B body) with unique tags and receipt "
        f"hashes, written to the store file before the relay starts; then {INGEST[0]} peers "
        f"push {pushed:,} more over loopback (flood limit lifted) while RSS is sampled"
    )
    base = bench_memory(0, 1)
    print(
        f"  empty store (baseline): start-up {base.startup:.1f} s; RSS {base.rss / mib:.1f} MiB "
        f"(anonymous {base.anon / mib:.1f}); during ingest ({base.ingest:.1f} s) sampled peak "
        f"{base.peak / mib:.1f} MiB, high-water mark (VmHWM) {base.hwm / mib:.1f} MiB"
    )
    runs = [(n, 1000) for n in sizes] + [(sizes[0], 1)]
    frame = 0
    by_size: dict[tuple[int, int], Memory] = {}
    for n, per_source in runs:
        m = by_size[n, per_source] = bench_memory(n, per_source)
        label = "1,000 per source label" if per_source > 1 else "each from its own source label"
        frame = max(frame, m.disk // max(n, 1))
        print(f"  {n:,} stored, {label}: filled in {m.fill:.0f} s, {m.disk / mib:.0f} MiB on disk")
        print(
            f"    after start-up ({m.startup:.1f} s): RSS {m.rss / mib:.1f} MiB (anonymous "
            f"{m.anon / mib:.1f}) = baseline + {(m.rss - base.rss) / mib:.1f} MiB = "
            f"{(m.rss - base.rss) / n:.1f} B per envelope (target <= 200 B); VmHWM "
            f"{m.hwm_startup / mib:.1f} MiB"
        )
        print(
            f"    during ingest of {pushed:,} more ({m.ingest:.1f} s): sampled peak "
            f"{m.peak / mib:.1f} MiB, VmHWM {m.hwm / mib:.1f} MiB = the empty store's + "
            f"{(m.hwm - base.hwm) / mib:.1f} MiB = {(m.hwm - base.hwm) / n:.1f} B per stored "
            "envelope"
        )
    print_fit(base, by_size, sizes, frame)


def print_fit(
    base: Memory, by_size: dict[tuple[int, int], Memory], sizes: list[int], frame: int
) -> None:
    """Does the shipped envelope limit fit ``MemoryMax=``? The model: the high-water mark
    measured at the largest size (its transients do not grow with the store: the RIBLT
    re-encodes a bounded chunk of ids at a time), plus, per envelope, what start-up holds
    when every envelope has its own source label (the per-source byte counts mirrored in
    memory) over what it holds with 1,000 per label."""
    mib = 2**20
    cfg, limit = Config(), memory_max()
    smallest = len(envelope.encode(junk_envelopes(1, BUCKETS[0])[0]))
    by_bytes = cfg.store_max_bytes // smallest
    print(
        f"  shipped limits (mesh/daemon/config.py): store.max_envelopes "
        f"{cfg.store_max_envelopes:,}, store.max_bytes {cfg.store_max_bytes / mib:.0f} MiB "
        f"(room for {by_bytes:,} envelopes of the smallest bucket; deploy/config.toml raises "
        f"it to 1 GiB, so there the count binds); disk per stored envelope {frame} B"
    )
    top, first = max(sizes), sizes[0]
    big = by_size[top, 1000]
    per_label = max(0.0, (by_size[first, 1].rss - by_size[first, 1000].rss) / first)
    limit_n = cfg.store_max_envelopes
    for labels, slope in (("1,000 per source label", 0.0), ("each its own label", per_label)):
        grows = max(0.0, (big.rss - base.rss) / top)  # start-up, per envelope
        projected = big.hwm + max(0, limit_n - top) * grows
        projected += limit_n * slope
        room = (limit - projected) / limit
        verdict = "fits" if room >= 0.25 else "fits, little room" if room > 0 else "DOES NOT FIT"
        print(
            f"  {limit_n:,} envelopes, {labels}: VmHWM at {top:,} {big.hwm / mib:.1f} MiB"
            + (f" + {slope:.0f} B per envelope" if slope else "")
            + f" = {projected / mib:.0f} MiB against MemoryMax={limit // mib}M "
            f"(deploy/steppe-relay.service): {verdict} ({room:.0%} of it to spare)"
        )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        run_relay(Path(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(prog="python -m bench.daemon")
    ap.add_argument("--only", choices=("ingest", "latency", "memory"), default=None)
    ap.add_argument("--sizes", default="100000,1000000", help="stored envelopes (memory)")
    args = ap.parse_args()
    print("Daemon benchmark (relay in its own process, loopback TCP, SQLite synchronous=FULL)")
    if args.only in (None, "ingest"):
        print_ingest()
    if args.only in (None, "latency"):
        lat = bench_latency(30)
        print(
            "  end-to-end latency Alice -> relay -> Bob (3 daemons, loopback): median "
            f"{1000 * statistics.median(lat):.1f} ms, max {1000 * max(lat):.1f} ms "
            f"({len(lat)} messages)"
        )
    if args.only in (None, "memory"):
        print_memory([int(x) for x in args.sizes.split(",")])


def print_ingest() -> None:
    base = bench_store_baseline(2000)
    print(f"  baseline: bare SQLite put, one transaction each: {base:8.0f} envelopes/s")
    for unlimited in (False, True):
        label = "flood limit lifted" if unlimited else "default flood limit (400, then 50/s)"
        # With the default limit a link takes a burst of 400 envelopes, then 50/s (the
        # receiver asks for the rest as tokens return): that, not the store, sets the rate.
        for peers, per in ((1, 2000), (10, 300)):
            rate, cpu = bench_ingest(peers, per, unlimited)
            print(
                f"  ingest, {peers:2d} peer(s), {label}: {rate:8.0f} envelopes/s "
                f"({rate / base:.2f}x baseline), relay CPU {cpu:.2f} s per 1,000 envelopes"
            )


if __name__ == "__main__":
    main()
