"""Crafted input from a peer at the link and ratchet layers: every failure is a typed peer
error that closes the link (issue 10, part 1), never an exception out of the core."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest

from crypto import primitives as p
from crypto.errors import AuthenticationError, CryptoError, DecodeError
from crypto.identity import Identity
from crypto.noise import HandshakeState, KeyPair
from crypto.prekeys import PrekeyRecord
from crypto.ratchet import MAX_SKIP, Header, Ratchet
from crypto.stamp import leading_zero_bits
from mesh.core import envelope as E
from mesh.core import link as L
from mesh.core import messages as M
from mesh.core.errors import PeerError
from mesh.core.events import MessageQueued, SendMessage
from mesh.core.link import CloseReason, LinkSession, LinkState
from mesh.core.node import Node
from mesh.core.store import StoreItem
from tests.netsim import Net

NOW = 1_700_000_000


def _record(payload: bytes, declared: int) -> bytes:
    """A handshake record with a chosen length field."""
    return declared.to_bytes(2, "big") + payload


def _victim(initiator: bool, mtu: int = 244) -> LinkSession:
    r = random.Random(5)
    s = LinkSession(
        initiator=initiator, static=KeyPair.generate(r.randbytes), mtu=mtu, rng=r.randbytes, now=NOW
    )
    return s


def _reassemble(frames: list[bytes], mtu: int) -> bytes:
    r = L.Reassembler(mtu)
    out = None
    for f in frames:
        out = r.feed(f, NOW)
    assert out is not None
    return out


@pytest.mark.parametrize("mtu", [22, 244, 4096])
def test_truncated_handshake_message_3_closes_the_link(mtu: int) -> None:
    """The attack of issue 10: message 3 with its record length cut by 16 bytes, so the
    payload's AEAD tag is missing. It used to raise a bare ValueError out of the core."""
    victim = _victim(initiator=False, mtu=mtu)
    r = random.Random(6)
    hs = HandshakeState("XX", True, L.PROLOGUE, rng=r.randbytes, s=KeyPair.generate(r.randbytes))
    msg1 = hs.write_message(b"")
    replies: list[bytes] = []
    for f in L.fragment(_record(msg1, len(msg1)), 0, mtu):
        out = victim.receive_frame(f, NOW)
        assert out.closed is None
        replies += out.frames
    rec2 = _reassemble(replies, mtu)
    n2 = int.from_bytes(rec2[:2], "big")
    hs.read_message(rec2[2 : 2 + n2])
    msg3 = hs.write_message(b"hello")
    frames = L.fragment(_record(msg3, len(msg3) - 16), 1, mtu)
    closed = None
    for f in frames:
        closed = victim.receive_frame(f, NOW).closed or closed
    assert closed is CloseReason.DECRYPT_FAILED
    assert victim.state is LinkState.CLOSED


@pytest.mark.parametrize("cut", [16, 17, 40, 64])
def test_truncated_handshake_message_2_closes_the_link(cut: int) -> None:
    victim = _victim(initiator=True)
    first = victim.start()
    rec1 = _reassemble(first.frames, 244)
    r = random.Random(7)
    hs = HandshakeState("XX", False, L.PROLOGUE, rng=r.randbytes, s=KeyPair.generate(r.randbytes))
    hs.read_message(rec1[2 : 2 + int.from_bytes(rec1[:2], "big")])
    msg2 = hs.write_message(b"payload")
    closed = None
    for f in L.fragment(_record(msg2, len(msg2) - cut), 1, 244):
        closed = victim.receive_frame(f, NOW).closed or closed
    assert closed is not None
    assert victim.state is LinkState.CLOSED


def _open_pair(mtu: int) -> tuple[LinkSession, LinkSession]:
    r = random.Random(8)
    a = LinkSession(
        initiator=True, static=KeyPair.generate(r.randbytes), mtu=mtu, rng=r.randbytes, now=NOW
    )
    b = LinkSession(
        initiator=False, static=KeyPair.generate(r.randbytes), mtu=mtu, rng=r.randbytes, now=NOW
    )
    queue = [(b, f) for f in a.start().frames]
    while queue:
        dest, frame = queue.pop(0)
        out = dest.receive_frame(frame, NOW)
        queue += [(a if dest is b else b, f) for f in out.frames]
    assert a.state is LinkState.OPEN
    assert b.state is LinkState.OPEN
    return a, b


@pytest.mark.parametrize(("mtu", "plain_len"), [(22, 0), (23, 1), (26, 4)])
def test_authentic_record_too_short_for_its_header_closes_the_link(
    mtu: int, plain_len: int
) -> None:
    """MTU 22 leaves 16 bytes per fragment: an authentic record of only the AEAD tag (an
    empty plaintext) used to raise IndexError reading the record type."""
    a, b = _open_pair(mtu)
    assert a._send is not None
    sealed = a._send.encrypt_with_ad(b"", bytes(plain_len))
    closed = None
    for f in L.fragment(sealed, 5, mtu):
        closed = b.receive_frame(f, NOW).closed or closed
    assert closed is CloseReason.BAD_FRAME


def test_link_violations_are_peer_errors() -> None:
    assert issubclass(L.ProtocolViolation, PeerError)


@pytest.mark.parametrize("n", [0, 1, 15])
def test_aead_open_of_a_too_short_ciphertext_is_an_authentication_error(n: int) -> None:
    with pytest.raises(AuthenticationError):
        p.chacha_decrypt(bytes(32), bytes(12), bytes(n), b"")
    with pytest.raises(AuthenticationError):
        p.xchacha_decrypt(bytes(32), bytes(24), bytes(n), b"")


def test_ratchet_refuses_a_new_chain_beyond_max_skip_before_deriving(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A header that opens a new chain with a counter beyond MAX_SKIP is refused before any
    root-key derivation (it used to cost two DH and KDF steps first)."""
    r = random.Random(3)
    sk = r.randbytes(32)
    bob_kp = KeyPair.generate(r.randbytes)
    alice = Ratchet.init_alice(sk, bob_kp.public, r.randbytes)
    bob = Ratchet.init_bob(sk, bob_kp)
    bob.decrypt(alice.encrypt(b"hi", b"ad"), b"ad", NOW, r.randbytes)
    calls: list[int] = []
    real = p.x25519

    def counting(priv: bytes, pub: bytes) -> bytes:
        calls.append(1)
        return real(priv, pub)

    monkeypatch.setattr(p, "x25519", counting)
    attacker = KeyPair.generate(r.randbytes).public
    header = Header(attacker, 0, MAX_SKIP + 1).encode()
    forged = bytes([len(header)]) + header + bytes(32)
    with pytest.raises(CryptoError):
        bob.decrypt(forged, b"ad", NOW, r.randbytes)
    assert calls == []
    header = Header(attacker, MAX_SKIP + 5, 0).encode()
    with pytest.raises(CryptoError):
        bob.decrypt(bytes([len(header)]) + header + bytes(32), b"ad", NOW, r.randbytes)
    assert calls == []


# X25519 public keys of small order (a DH with them yields all zeros): zero, one, and a
# point of order 8 (from libsodium's blocklist).
SMALL_ORDER = [
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
]


def _signed_prekey(owner: Identity, public: bytes, created: int) -> PrekeyRecord:
    unsigned = PrekeyRecord(owner.sign_public, 7, public, created, created + 86400, b"")
    return replace(unsigned, signature=owner.sign(unsigned._signed()))


@pytest.mark.parametrize("public", SMALL_ORDER, ids=["zero", "one", "order-8"])
def test_a_prekey_record_with_a_small_order_key_does_not_decode(public: bytes) -> None:
    """Signed by its owner or not, a prekey no one can seal to is not a prekey: the decoder
    refuses it (found by the fuzz harness: sealing to it raised out of Node.handle)."""
    owner = Identity.generate(random.Random(9).randbytes)
    with pytest.raises(DecodeError):
        PrekeyRecord.decode(_signed_prekey(owner, public, NOW).encode())
    good = _signed_prekey(owner, b"\x09" + bytes(31), NOW)  # the base point
    assert PrekeyRecord.decode(good.encode()) == good


def test_a_relayed_small_order_prekey_is_refused_and_the_contact_stays_writable() -> None:
    """A hostile contact C signs a prekey record with a small-order key and a hostile relay
    hands it to V. V used to learn it, and its next message to C raised AuthenticationError
    out of Node.handle (a crash for the daemon). Now the envelope is refused and counted."""
    net = Net(seed=11)
    v, relay, c = net.add(), net.add(), net.add()
    net.introduce_all()
    vn, cn = net.nodes[v], net.nodes[c]
    real = vn.contacts[cn.identity.sign_public].prekey
    assert real is not None
    bad = _signed_prekey(cn.identity, SMALL_ORDER[2], real.created + 60)
    env = M.stamped(M.prekey_envelope(bad), 8, random.Random(2).randbytes)
    # the relay does not run our checks: the record goes straight into its store (ranked
    # by its real stamp work, as any store ranks it, so the relay offers it)
    rank = leading_zero_bits(env.id(), env.stamp)
    item = StoreItem(env.id(), E.encode(env), env.expiry, rank, b"x", budget=env.budget)
    net.nodes[relay].store.put(item, NOW)
    net.connect(relay, v)
    net.run(5)
    actions = vn.handle(SendMessage(cn.identity.sign_public, b"still writable"), int(net.now))
    assert any(isinstance(x, MessageQueued) for x in actions)
    assert vn.stats.get("rejected_bad_signature") == 1
    assert vn.contacts[cn.identity.sign_public].prekey == real


def test_a_small_order_prekey_learned_before_the_fix_is_forgotten_on_restore() -> None:
    """A node that learned such a record before its decoder refused it saved it in its
    state; restoring that state forgets the record instead of refusing the whole state
    (the daemon would not start)."""
    net = Net(seed=12)
    v, c = net.add(), net.add()
    net.introduce_all()
    old, cn = net.nodes[v], net.nodes[c]
    old.contacts[cn.identity.sign_public].prekey = _signed_prekey(
        cn.identity, SMALL_ORDER[0], int(net.now)
    )
    state = old.saved.export()
    fresh = Node(old.identity, old.ring, old.store, old.rng, old.config)
    fresh.add_contact(cn.identity.public())
    fresh.saved.restore(state, int(net.now))
    assert fresh.contacts[cn.identity.sign_public].prekey is None
    assert fresh.can_write(cn.identity.sign_public, int(net.now)) is False
