"""Link sessions back to back (h11-style helper): handshake, records, fragmentation, and
every way a hostile neighbour can break the link."""

from __future__ import annotations

import random

import pytest

from crypto.noise import KeyPair
from mesh.core import link as L
from mesh.core.link import CloseReason, LinkOutput, LinkSession, LinkState

NOW = 1_700_000_000


def make_pair(mtu: int = 244, seed: int = 1) -> tuple[LinkSession, LinkSession]:
    r = random.Random(seed)
    a = LinkSession(
        initiator=True,
        static=KeyPair.generate(r.randbytes),
        mtu=mtu,
        rng=r.randbytes,
        now=NOW,
        hello=b"hello-from-a",
    )
    b = LinkSession(
        initiator=False,
        static=KeyPair.generate(r.randbytes),
        mtu=mtu,
        rng=r.randbytes,
        now=NOW,
        hello=b"hello-from-b",
    )
    return a, b


def pump(a: LinkSession, b: LinkSession, first: LinkOutput) -> tuple[list[bytes], list[bytes]]:
    """Deliver frames back and forth until quiet; messages received by (a, b)."""
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    queue: list[tuple[LinkSession, bytes]] = [(b, f) for f in first.frames]
    while queue:
        dest, frame = queue.pop(0)
        out = dest.receive_frame(frame, NOW)
        (got_a if dest is a else got_b).extend(out.messages)
        other = b if dest is a else a
        queue.extend((other, f) for f in out.frames)
    return got_a, got_b


def opened_pair(mtu: int = 244) -> tuple[LinkSession, LinkSession]:
    a, b = make_pair(mtu)
    pump(a, b, a.start())
    assert b.start().frames == []
    return a, b


@pytest.mark.parametrize("mtu", [20, 23, 100, 244, 1400])
def test_handshake_and_messages_at_any_mtu(mtu: int) -> None:
    a, b = opened_pair(mtu)
    assert a.state is LinkState.OPEN
    assert b.state is LinkState.OPEN
    assert a.peer_hello == b"hello-from-b"
    assert b.peer_hello == b"hello-from-a"
    assert a.handshake_hash == b.handshake_hash
    big = bytes(range(256)) * 40
    got_a, got_b = pump(a, b, a.send(big))
    assert got_b == [big]
    out = b.send(b"reply")
    assert all(len(f) == mtu for f in out.frames)
    got_a, _ = pump(b, a, out)
    assert got_a == [] or got_a == [b"reply"]


def test_frames_are_padded_to_mtu_and_hide_size() -> None:
    a, _ = opened_pair(244)
    small, medium = a.send(b"x"), a.send(b"y" * 300)
    assert [len(f) for f in small.frames] == [244]
    assert [len(f) for f in medium.frames] == [244, 244]


def test_tampered_record_closes_link() -> None:
    a, b = opened_pair()
    frame = bytearray(a.send(b"secret").frames[0])
    frame[20] ^= 1
    out = b.receive_frame(bytes(frame), NOW)
    assert out.closed is CloseReason.DECRYPT_FAILED
    assert b.state is LinkState.CLOSED
    assert b.receive_frame(a.send(b"more").frames[0], NOW).messages == []


def test_replayed_record_closes_link() -> None:
    a, b = opened_pair()
    frame = a.send(b"once").frames[0]
    assert b.receive_frame(frame, NOW).messages == [b"once"]
    assert b.receive_frame(frame, NOW).closed is CloseReason.DECRYPT_FAILED


def test_reordered_records_close_link() -> None:
    a, b = opened_pair()
    f1, f2 = a.send(b"1").frames[0], a.send(b"2").frames[0]
    assert b.receive_frame(f2, NOW).closed is CloseReason.DECRYPT_FAILED
    _ = f1


def test_wrong_size_frame_closes_link() -> None:
    _, b = opened_pair()
    assert b.receive_frame(b"short", NOW).closed is CloseReason.BAD_FRAME


def test_garbage_during_handshake_closes_link() -> None:
    _, b = make_pair()
    out = b.receive_frame(bytes(244), NOW)
    assert out.closed is not None
    assert b.state is LinkState.CLOSED


def _frag(rec: int, index: int, count: int, mtu: int = 100) -> bytes:
    return (rec.to_bytes(2, "big") + index.to_bytes(2, "big") + count.to_bytes(2, "big")).ljust(
        mtu, b"\x00"
    )


def test_too_many_concurrent_reassemblies_closes_link() -> None:
    _, b = opened_pair(100)
    for rec in range(L.MAX_CONCURRENT):
        assert b.receive_frame(_frag(rec, 0, 3), NOW).closed is None
    assert b.receive_frame(_frag(99, 0, 3), NOW).closed is CloseReason.LIMIT


def test_oversized_record_closes_link() -> None:
    _, b = opened_pair(100)
    assert b.receive_frame(_frag(1, 0, 60000), NOW).closed is CloseReason.LIMIT


def test_reassembly_total_buffer_is_bounded() -> None:
    r = L.Reassembler(1500)
    reason = None
    for i in range(1000):
        try:
            r.feed(_frag(i % L.MAX_CONCURRENT, i // L.MAX_CONCURRENT, 44, 1500), NOW)
        except L.ProtocolViolation as exc:
            reason = exc.reason
            break
    assert reason is CloseReason.LIMIT
    assert r.buffered <= L.MAX_BUFFERED


def test_stale_reassembly_times_out() -> None:
    _, b = opened_pair(100)
    b.receive_frame(_frag(5, 0, 3), NOW)
    assert b.next_deadline() == NOW + L.REASSEMBLY_TIMEOUT
    b.tick(NOW + L.REASSEMBLY_TIMEOUT)
    assert b._reasm.buffered == 0
    assert b.next_deadline() is None


def test_handshake_timeout() -> None:
    a, _ = make_pair()
    a.start()
    assert a.next_deadline() == NOW + L.HANDSHAKE_TIMEOUT
    assert a.tick(NOW + L.HANDSHAKE_TIMEOUT).closed is CloseReason.TIMEOUT


def test_graceful_close() -> None:
    a, b = opened_pair()
    out = a.close()
    assert a.state is LinkState.CLOSED
    assert b.receive_frame(out.frames[0], NOW).closed is CloseReason.PEER


def test_rekey_at_the_same_record_on_both_sides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(L, "REKEY_EVERY", 3)
    a, b = opened_pair()
    assert a._send is not None
    key0 = a._send.k
    for i in range(10):
        got = b.receive_frame(a.send(bytes([i])).frames[0], NOW).messages
        assert got == [bytes([i])]
    assert a._send.k != key0


def test_fresh_link_keys_per_connection() -> None:
    a1, _ = opened_pair()
    a2, _ = make_pair(seed=2)
    assert a1.peer_static != a2.peer_static


def test_claiming_someone_elses_link_key_fails_the_handshake() -> None:
    """Mallory presents a relay's pinned public key without its private key."""
    r = random.Random(9)
    relay = KeyPair.generate(r.randbytes)
    fake = KeyPair(r.randbytes(32), relay.public)
    a = LinkSession(
        initiator=True, static=KeyPair.generate(r.randbytes), mtu=244, rng=r.randbytes, now=NOW
    )
    mallory = LinkSession(initiator=False, static=fake, mtu=244, rng=r.randbytes, now=NOW)
    out = a.start()
    out = mallory.receive_frame(out.frames[0], NOW)
    result = a.receive_frame(out.frames[0], NOW)
    assert result.closed is CloseReason.DECRYPT_FAILED
    assert a.state is LinkState.CLOSED
