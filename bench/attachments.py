"""Attachment figures for issue 16: files between two daemons, and what receiving one costs.

Run: ``.venv/bin/python -m bench.attachments`` (``--sizes 1,10`` MiB, ``--ble 1`` MiB, 0 to
skip, ``--mtu 247 --acl 251``).

1. **Throughput over TCP.** Alice's and Bob's daemons in this process, Alice dialling Bob
   on loopback (a direct link, no LAN discovery), Bob's prekey already known to her.
   Seconds from ``Daemon.send_file`` (random bytes, so no photo is written again; the
   sealing of every chunk is in the figure) until Bob's message row is ``received``
   (every chunk committed and the whole file checked against the manifest's digest), and
   MiB/s of file bytes. The baseline, measured in the same run on the same kind of link:
   the same number of payload bytes as text messages of the largest size (12,000 bytes,
   ``MAX_TEXT``), from the first ``send_text`` until Bob has opened the last. Both are
   16 KiB envelopes; a chunk carries 16,364 bytes of file and a text 12,000, so the text
   needs 1.36 times the envelopes for the same bytes: that is part of what the ratio
   shows (a file is the way to send bulk). Each with the shipped flood limit (a burst of
   400 envelopes per source, then 50/s, on both daemons) and with it lifted.
2. **Over Bluetooth LE**, the same on Bumble's virtual controllers as ``bench.ble`` runs
   them (one radio link, both daemons in this process, ATT MTU ``--mtu``, LE ACL buffer
   ``--acl``): a file of ``--ble`` MiB and its text baseline. CPU-bound figures of
   Bumble's Python host on this machine, not of a radio.
3. **Reassembly memory.** Bob's daemon in its own process (his profile opened with its
   passphrase, as ``steppe daemon`` does), Alice's here dialling it. Its high-water mark
   of RSS (``VmHWM``, reset with ``clear_refs``) over an idle window with the link up (the
   baseline), then over the receipt of each file: what receiving adds, against the file's
   size. Then the bytes of Bob's ``history.db`` (with its WAL) and of his envelope store.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import psutil
import trio

from bench.daemon import _disk, _hwm, _port, _reset_hwm
from crypto import keystore
from crypto.attachment import CHUNK_DATA
from crypto.identity import ContactCard
from mesh import ipc
from mesh.daemon.config import Config
from mesh.daemon.daemon import Daemon
from mesh.daemon.links import LinkKind
from mesh.daemon.links.ble.bumble import BumbleBackend
from mesh.photo_metadata import OutgoingFile
from mesh.profile import Profile, create_profile
from tests.ble_helpers import ble_config, radio_name
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import Running, knows_prekey, start, until

MIB = 2**20
TEXT = ipc.MAX_TEXT
LIFTED = {"link_rate": 1e9, "link_burst": 1e9}
IDLE = 3.0  # seconds of the idle window that is the memory baseline
PASSPHRASE = b"bench bob"


def _file(size: int) -> OutgoingFile:
    data = os.urandom(size)
    return OutgoingFile("bench.bin", data, "application/octet-stream", (), "sent as it is")


def _texts(size: int) -> list[str]:
    """``size`` bytes (rounded up to whole messages) of text in messages of MAX_TEXT."""
    alphabet = "abcdefghijklmnopqrstuvwxyz"
    n = math.ceil(size / TEXT)
    return ["".join(alphabet[b % 26] for b in os.urandom(TEXT)) for _ in range(n)]


@dataclass(frozen=True, slots=True)
class Run:
    seconds: float  # from the first send call to the last byte in Bob's history
    queued: float  # of which in the send calls (sealing, stamps, commits)
    payload: int  # bytes of file or text

    @property
    def rate(self) -> float:
        return self.payload / MIB / self.seconds


# ---- one transfer between two daemons in this process ---------------------------------


@dataclass(frozen=True, slots=True)
class Carrier:
    name: str
    bob: Config
    alice: Callable[[Daemon], Config]  # Alice's, given Bob's running daemon
    kinds: frozenset[LinkKind]  # what Alice's links must be (nothing else carries it)
    mtu: int = 0  # BLE: the ATT MTU; 0: TCP
    acl: int = 0


def tcp() -> Carrier:
    return Carrier(
        "TCP loopback",
        loopback_config(lan=False),
        lambda b: loopback_config(lan=False, peers=(f"127.0.0.1:{b.tcp_port}",)),
        frozenset({LinkKind.GATEWAY}),
    )


def ble(mtu: int, acl: int) -> Carrier:
    radio = f"local:{radio_name()}"
    name = f"BLE MTU {mtu}, {acl}-B ACL"
    cfg = ble_config(radio)
    return Carrier(name, cfg, lambda _: cfg, frozenset({LinkKind.BLE}), mtu, acl)


async def _daemon(n: trio.Nursery, p: Profile, cfg: Config, carrier: Carrier) -> Running:
    if not carrier.mtu:
        return await start(n, p, cfg)
    d = Daemon(p, cfg, p.path, handle_signals=False)
    d.ble.backend = BumbleBackend(cfg.ble_adapter, att_mtu=carrier.mtu, acl_length=carrier.acl)
    r = Running(d)
    await n.start(r._run)
    return r


def transfer(carrier: Carrier, size: int, as_text: bool, lifted: bool) -> Run:
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-files-"))
    try:
        return trio.run(_transfer, root, carrier, size, as_text, lifted)
    finally:
        shutil.rmtree(root, ignore_errors=True)


async def _transfer(root: Path, carrier: Carrier, size: int, as_text: bool, lifted: bool) -> Run:
    now = int(time.time())
    alice, bob = make_profile(root, "Alice", now), make_profile(root, "Bob", now)
    befriend(alice, bob, now)
    texts = _texts(size) if as_text else []
    file = None if as_text else _file(size)
    limits = LIFTED if lifted else {}
    async with trio.open_nursery() as n:
        b = await _daemon(n, bob, replace(carrier.bob, **limits), carrier)  # type: ignore[arg-type]
        a_cfg = replace(carrier.alice(b.daemon), **limits)  # type: ignore[arg-type]
        a = await _daemon(n, alice, a_cfg, carrier)
        await knows_prekey(a, bob, 60)
        await until("a link", lambda: bool(a.daemon.links and b.daemon.links), 60)
        start_at = time.perf_counter()
        if file is not None:
            a.daemon.send_file("Bob", file)
        for t in texts:
            a.daemon.send_text("Bob", t)
        queued = time.perf_counter() - start_at
        if file is not None:
            done = lambda: [m.state for m in b.daemon.history.messages()] == ["received"]  # noqa: E731
        else:
            done = lambda: b.daemon.node.stats.get("delivered", 0) >= len(texts)  # noqa: E731
        await until("Bob to have it all", done, 900, 0.005)
        took = time.perf_counter() - start_at
        kinds = {x.kind for x in a.daemon.links.values()}
        assert kinds == carrier.kinds, f"carried by {kinds}, not {carrier.kinds}"
        n.cancel_scope.cancel()
    return Run(took, queued, len(texts) * TEXT if as_text else size)


def _line(label: str, run: Run, base: Run | None) -> str:
    ratio = f"; {run.rate / base.rate:.2f}x the text baseline" if base is not None else ""
    return (
        f"    {label:<44} {run.seconds:6.2f} s ({run.queued:5.2f} s in the send calls) "
        f"{run.rate:6.2f} MiB/s{ratio}"
    )


def print_throughput(carrier: Carrier, sizes: list[int], limits: tuple[bool, ...]) -> None:
    for size in sizes:
        chunks = math.ceil(size / CHUNK_DATA)
        print(
            f"  {carrier.name}, {size / MIB:g} MiB ({chunks} chunks; text baseline "
            f"{math.ceil(size / TEXT)} messages of {TEXT:,} B):"
        )
        for lifted in limits:
            tag = "flood limit lifted" if lifted else "shipped flood limit"
            base = transfer(carrier, size, True, lifted)
            got = transfer(carrier, size, False, lifted)
            print(_line(f"text baseline, {tag}", base, None))
            print(_line(f"file, {tag}", got, base), flush=True)


# ---- reassembly memory: Bob's daemon in its own process -------------------------------


def run_bob(root: Path) -> None:
    """Child process: Bob's daemon from his keystore, as ``steppe daemon`` runs it."""
    from mesh.daemon.config import load
    from mesh.profile import open_profile

    prof = open_profile(root / "bob", PASSPHRASE)
    _reset_hwm("self")  # Argon2id took its 64 MiB and gave them back: not the daemon's
    trio.run(Daemon(prof, load(root / "bob.toml"), prof.path).run)


@dataclass(frozen=True, slots=True)
class Memory:
    idle_hwm: int
    idle_rss: int
    peaks: list[tuple[int, int, float]]  # (file bytes, VmHWM while receiving it, seconds)
    history: int  # bytes of history.db with its WAL, after
    store: int  # bytes of the envelope store file with its WAL, after
    held: int  # chunk envelopes in Bob's store once the files are whole...
    held_bytes: int  # ... the store's count of their bytes then
    left: int  # ... and once their receipts were released


def bench_memory(sizes: list[int]) -> Memory:
    root = Path(tempfile.mkdtemp(prefix="steppe-bench-files-"))
    try:
        now = int(time.time())
        params = keystore.KdfParams.named("interactive")
        bob = create_profile(root / "bob", "Bob", PASSPHRASE, params, now, os.urandom)
        alice = make_profile(root, "Alice", now)
        alice.add_contact(ContactCard.decode(bob.card.encode()), now)
        bob.add_contact(ContactCard.decode(alice.card.encode()), now)
        bob.save(os.urandom)
        port = _port()
        cfg = f'[lan]\nenabled = false\nlisten = "127.0.0.1"\nport = {port}\n'
        cfg += "[routing]\nreceipt_delay = [1, 2]\n[limits]\nlink_rate = 1e9\nlink_burst = 1e9\n"
        (root / "bob.toml").write_text(cfg)
        cmd = [sys.executable, "-m", "bench.attachments", "--bob", str(root)]
        proc = subprocess.Popen(cmd)
        try:
            _wait_status(bob.path)
            peaks, idle_hwm, idle_rss, held = trio.run(_memory, alice, bob, port, proc.pid, sizes)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
        history, store = _disk(bob.path / "history.db"), _disk(bob.store_path)
        return Memory(idle_hwm, idle_rss, peaks, history, store, *held)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _wait_status(path: Path) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            ipc.call_daemon_sync(path, "status")
            return
        except (ipc.IpcError, OSError):
            if time.monotonic() > deadline:
                raise SystemExit("bench: Bob's daemon did not start") from None
            time.sleep(0.05)


async def _memory(
    alice: Profile, bob: Profile, port: int, pid: int, sizes: list[int]
) -> tuple[list[tuple[int, int, float]], int, int, tuple[int, int, int]]:
    cfg = loopback_config(lan=False, peers=(f"127.0.0.1:{port}",), **LIFTED)
    client = await ipc.Client.connect(ipc.socket_path(bob.path))
    peaks = []
    async with trio.open_nursery() as n:
        a = await start(n, alice, cfg)
        await knows_prekey(a, bob, 60)
        await until("a link", lambda: bool(a.daemon.links), 60)
        await trio.sleep(IDLE)  # the first tick, sweep and sync are over
        _reset_hwm(pid)
        await trio.sleep(IDLE)
        idle_hwm, idle_rss = _hwm(pid), psutil.Process(pid).memory_info().rss
        idle = await _status(client)
        for size in sizes:
            _reset_hwm(pid)
            began = time.perf_counter()
            msg_id = a.daemon.send_file("Bob", _file(size))
            with trio.fail_after(600):
                while True:  # Bob is another process: poll his local API
                    rows = ipc.calls.Files().decode(await client.call("files"))
                    if any(r.msg_id == msg_id and r.state == "received" for r in rows):
                        break
                    await trio.sleep(0.05)
            peaks.append((size, _hwm(pid), time.perf_counter() - began))
        whole = await _status(client)
        # Bob releases each chunk's receipt after receipt_delay (1-2 s here) and drops his
        # own copy of the chunk envelope with it.
        with trio.move_on_after(30):
            while (await _status(client)).envelopes > idle.envelopes:  # noqa: ASYNC110
                await trio.sleep(0.2)
        purged = await _status(client)
        await client.aclose()
        n.cancel_scope.cancel()
    grew = whole.store_bytes - idle.store_bytes
    store = (whole.envelopes - idle.envelopes, grew, purged.envelopes - idle.envelopes)
    return peaks, idle_hwm, idle_rss, store


async def _status(client: ipc.Client) -> ipc.calls.StatusInfo:
    return ipc.calls.Status().decode(await client.call("status"))


def print_memory(sizes: list[int]) -> None:
    m = bench_memory(sizes)
    print(
        "  Bob's daemon in its own process, Alice's dialling it on loopback (flood limit "
        f"lifted); idle with the link up (baseline): VmHWM {m.idle_hwm / MIB:.1f} MiB over "
        f"{IDLE:.0f} s, RSS {m.idle_rss / MIB:.1f} MiB"
    )
    for size, hwm, took in m.peaks:
        extra = hwm - m.idle_hwm
        print(
            f"    receiving a {size / MIB:g} MiB file ({took:.1f} s): VmHWM {hwm / MIB:.1f} MiB "
            f"= idle + {extra / MIB:.1f} MiB ({extra / size:.2f}x the file's size)"
        )
    total = sum(size for size, _, _ in m.peaks)
    print(
        f"    after, on disk: history.db {m.history / MIB:.1f} MiB ({m.history / total:.3f}x "
        f"the {total / MIB:g} MiB of files received, every chunk sealed in it); Bob's "
        f"envelope store held {m.held} more envelopes ({m.held_bytes / MIB:.1f} MiB) once "
        f"the files were whole, {m.left} once their receipts were released (1-2 s here; "
        f"30-300 s shipped); its file {m.store / MIB:.1f} MiB (SQLite keeps the freed pages)"
    )


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--bob":
        run_bob(Path(sys.argv[2]))
        return
    ap = argparse.ArgumentParser(prog="python -m bench.attachments")
    ap.add_argument("--sizes", default="1,10", help="file sizes, MiB")
    ap.add_argument("--ble", type=float, default=1, help="file size over BLE, MiB (0: skip)")
    ap.add_argument("--mtu", type=int, default=247, help="BLE ATT MTU")
    ap.add_argument("--acl", type=int, default=251, help="virtual LE ACL buffer bytes")
    args = ap.parse_args()
    sizes = [int(float(x) * MIB) for x in args.sizes.split(",") if x]
    print("Attachments (issue 16): seconds from the send call until Bob has it all")
    print_throughput(tcp(), sizes, (False, True))
    if args.ble:
        # 1 MiB is 65 chunks (89 texts): under the burst of 400, the flood limit never binds.
        print_throughput(ble(args.mtu, args.acl), [int(args.ble * MIB)], (False,))
    print("Reassembly memory")
    print_memory(sizes)


if __name__ == "__main__":
    main()
