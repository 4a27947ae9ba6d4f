"""Daemon benchmark: a relay daemon (its own process, SQLite store, default durability)
fed over loopback TCP by in-process peer daemons.

Run: ``.venv/bin/python -m bench.daemon``. Prints:

- relay ingest: envelopes per second accepted into the relay's store from 1 and from 10
  concurrent peers, with the default per-link flood limit (a token bucket of 50
  envelopes/s after a burst of 400) and with that limit lifted, which shows the store and
  protocol capacity; CPU seconds of the relay process per 1,000 envelopes relayed;
- end-to-end latency of one message Alice -> relay -> Bob across three daemons;
- relay memory (RSS): idle with an empty store, and with 100,000 stored envelopes
  (target at most 80 MB).

The baseline for the ingest figures is a bare loop of SQLite puts of the same envelopes
(one transaction each, as the relay commits them), measured in the same run.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import trio

from crypto import keystore
from crypto.identity import ContactCard
from crypto.padding import BUCKETS
from mesh import ipc
from mesh.core import envelope as E
from mesh.core import messages as M
from mesh.core.store import StoreItem
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.profile import Profile, create_profile, new_profile

STAMP_BITS = 8  # the relay's base requirement while its store is at most half full


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _profile(root: Path, name: str) -> Profile:
    return new_profile(root / name, name, int(time.time()), os.urandom)


def junk_envelopes(n: int) -> list[E.Envelope]:
    """Valid, stamped session envelopes with random tags and 1 KiB bodies."""
    now = int(time.time())
    out = []
    for _ in range(n):
        env = E.make(
            E.Kind.SESSION,
            E.coarse_expiry(now, 86400),
            os.urandom(8),
            os.urandom(BUCKETS[1]),
            8,
            receipt=os.urandom(16),
        )
        out.append(M.stamped(env, STAMP_BITS, os.urandom))
    return out


def fill(store: SQLiteStore, envs: list[E.Envelope]) -> None:
    now = int(time.time())
    items = [StoreItem(e.id(), E.encode(e), e.expiry, 0, b"bench") for e in envs]
    for k in range(0, len(items), 1000):
        store.put_many(items[k : k + 1000], now)


class Relay:
    """``steppe daemon`` for a relay profile, in its own process."""

    def __init__(self, root: Path, unlimited: bool) -> None:
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
        (root / "relay.toml").write_text(cfg)
        self.env = dict(os.environ)
        if unlimited:
            self.env["STEPPE_BENCH_UNLIMITED"] = "1"
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
    cfg = load(root / "relay.toml")
    d = Daemon(prof, cfg, prof.path)
    if os.environ.get("STEPPE_BENCH_UNLIMITED"):
        d.node.config = replace(d.node.config, link_rate=1e9, link_burst=1e9)
    trio.run(d.run)


def bench_ingest(peers: int, per_peer: int, unlimited: bool) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    try:
        relay = Relay(root, unlimited)
        proc = relay.start()
        base = relay.status()["envelopes"]
        cpu0 = sum(proc.cpu_times()[:2])
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
        elapsed = 0.0

        async def main() -> None:
            nonlocal elapsed
            async with trio.open_nursery() as n:
                start = trio.current_time()
                for p in sources:
                    n.start_soon(Daemon(p, cfg, p.path, handle_signals=False).run)
                with trio.fail_after(600):
                    while True:  # polling another process: no event to wait on
                        status = await ipc.call_daemon(relay.profile.path, "status")
                        if status["envelopes"] >= target:
                            break
                        await trio.sleep(0.05)
                elapsed = trio.current_time() - start
                n.cancel_scope.cancel()

        try:
            trio.run(main)
            cpu = sum(proc.cpu_times()[:2]) - cpu0
        finally:
            relay.stop()
        return len(envs) / elapsed, cpu / len(envs) * 1000
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_store_baseline(n: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "s.db")
        envs = junk_envelopes(n)
        now = int(time.time())
        start = time.perf_counter()
        for e in envs:
            store.put(StoreItem(e.id(), E.encode(e), e.expiry, 0, b"x"), now)
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


def bench_memory(stored: int) -> tuple[float, float]:
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-"))
    try:
        relay = Relay(root, unlimited=False)
        proc = relay.start()
        time.sleep(1.0)
        idle = proc.memory_info().rss
        relay.stop()
        store = SQLiteStore(relay.profile.store_path)
        envs = junk_envelopes(1000)
        now = int(time.time())
        # 100,000 distinct envelopes: stamps do not matter for what is already stored
        for k in range(stored // 1000):  # from many sources: per-source quotas apply
            ids = [e.id() for e in envs] if k == 0 else [os.urandom(32) for _ in envs]
            batch = [
                StoreItem(i, E.encode(e), e.expiry, 0, os.urandom(8))
                for i, e in zip(ids, envs, strict=True)
            ]
            store.put_many(batch, now)
        store.close()
        proc = relay.start()
        time.sleep(1.0)
        full = proc.memory_info().rss
        count = relay.status()["envelopes"]
        relay.stop()
        assert count >= stored, count
        return idle / 2**20, full / 2**20
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--relay":
        run_relay(Path(sys.argv[2]))
        return
    print("Daemon benchmark (relay in its own process, loopback TCP, SQLite synchronous=FULL)")
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
    lat = bench_latency(30)
    print(
        "  end-to-end latency Alice -> relay -> Bob (3 daemons, loopback): median "
        f"{1000 * statistics.median(lat):.1f} ms, max {1000 * max(lat):.1f} ms "
        f"({len(lat)} messages)"
    )
    idle, full = bench_memory(100_000)
    print(
        f"  relay RSS: idle {idle:.0f} MiB; with 100,000 stored envelopes {full:.0f} MiB "
        "(target 80 MB = 76 MiB)"
    )


if __name__ == "__main__":
    main()
