"""Attacks on a real daemon over loopback: crafted handshakes from a stranger, as the
dialler and as the one dialled. The daemon must close the link, count it and keep serving
everyone else (issue 10, part 1)."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path

import trio

from crypto.noise import HandshakeState, KeyPair
from mesh.core import link as L
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_daemon import knows_prekey, start, until


async def _read_record(stream: trio.SocketStream, buf: bytearray) -> bytes:
    deframer = L.Deframer()
    while True:
        data = await stream.receive_some(65536)
        if not data:
            raise EOFError("the daemon hung up")
        records = deframer.feed(bytes(data))
        if records:
            return records[0]


def _framed(msg: bytes, declared: int, record_no: int) -> bytes:
    return L.frame_stream(declared.to_bytes(2, "big") + msg)


async def _drained(stream: trio.SocketStream) -> bool:
    """True once the daemon has closed the connection (EOF or reset)."""
    with trio.move_on_after(10):
        try:
            while await stream.receive_some(65536):
                pass
        except trio.BrokenResourceError:
            pass
        return True
    return False


async def truncated_msg3(port: int) -> bool:
    """Dial the daemon, complete messages 1 and 2, send message 3 with its record length
    16 bytes short (the payload's AEAD tag cut off). True if the daemon hung up."""
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        hs = HandshakeState("XX", True, L.PROLOGUE, rng=os.urandom, s=KeyPair.generate(os.urandom))
        msg1 = hs.write_message(b"")
        await stream.send_all(_framed(msg1, len(msg1), 0))
        rec2 = await _read_record(stream, bytearray())
        hs.read_message(rec2[2 : 2 + int.from_bytes(rec2[:2], "big")])
        msg3 = hs.write_message(b"")
        await stream.send_all(_framed(msg3, len(msg3) - 16, 1))
        return await _drained(stream)


async def truncated_msg2(listener: trio.SocketListener) -> bool:
    """Be dialled by the daemon (a gateway peer), answer message 1 with a message 2 whose
    record length is 16 bytes short. True if the daemon hung up."""
    stream = await listener.accept()
    async with stream:
        rec1 = await _read_record(stream, bytearray())
        hs = HandshakeState("XX", False, L.PROLOGUE, rng=os.urandom, s=KeyPair.generate(os.urandom))
        hs.read_message(rec1[2 : 2 + int.from_bytes(rec1[:2], "big")])
        msg2 = hs.write_message(b"")
        await stream.send_all(_framed(msg2, len(msg2) - 16, 0))
        return await _drained(stream)


def test_truncated_handshakes_close_the_link_and_the_daemon_keeps_serving(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)

    async def main() -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        trap = listeners[0]
        trap_port = trap.socket.getsockname()[1]
        cfg = loopback_config(backoff_max=1.0)
        async with trio.open_nursery() as n:
            b = await start(n, bob, replace(cfg, peers=(f"127.0.0.1:{trap_port}",)))
            a = await start(n, alice, cfg)
            await knows_prekey(a, bob)
            port = b.daemon.tcp_port
            for _ in range(5):
                assert await truncated_msg3(port), "the daemon kept a broken link open"
            assert await truncated_msg2(trap), "the daemon kept a broken gateway link open"
            assert await truncated_msg2(trap)
            await until(
                "the broken links counted",
                lambda: b.daemon.node.stats.get("links_closed_decrypt_failed", 0) >= 7,
            )
            assert not b.daemon.broken
            # The honest link still carries messages both ways.
            a.daemon.send_text("Bob", "still here")
            await until("delivery to Bob", lambda: bool(b.daemon.history.messages()))
            b.daemon.send_text("Alice", "and here")
            await until("delivery to Alice", lambda: len(a.daemon.history.messages()) == 2)
            n.cancel_scope.cancel()
        await trap.aclose()

    trio.run(main)


def test_connection_floods_hit_the_caps(tmp_path: Path) -> None:
    """Many silent connections from one address: beyond limits.max_links_per_address
    (and max_handshakes) they are closed at once and counted, and the daemon takes new
    links again once the flood is gone."""
    now = int(time.time())
    bob = make_profile(tmp_path, "Bob", now)
    cfg = loopback_config(max_links_per_address=3, max_handshakes=3, lan=False)

    async def main() -> None:
        async with trio.open_nursery() as n:
            b = await start(n, bob, cfg)
            port = b.daemon.tcp_port
            flood = [await trio.open_tcp_stream("127.0.0.1", port) for _ in range(8)]
            await until("the excess refused", lambda: len(b.daemon.links) == 3)
            refused = b.daemon.stats.get("links_refused_per_address", 0)
            refused += b.daemon.stats.get("links_refused_handshakes", 0)
            assert refused == 5
            for s in flood:
                await s.aclose()
            await until("the flood gone", lambda: not b.daemon.links)
            ok = await trio.open_tcp_stream("127.0.0.1", port)
            await until("a new link accepted", lambda: len(b.daemon.links) == 1)
            await ok.aclose()
            n.cancel_scope.cancel()

    trio.run(main)
