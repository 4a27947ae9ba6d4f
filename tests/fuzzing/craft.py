"""Building attacker input that gets past each layer's authentication, so mutations reach
the parser behind it: link records sealed under the victim's own receive key, envelopes
with valid stamps, bulletins and prekey records re-signed by their real keys, first
contacts sealed to the victim's prekey and session messages sealed with the peer's
Double Ratchet.

The harness plays the peer, so it holds the peer's keys: that is the point. Nothing here
calls into the victim node; it only reads the keys a real peer would share with it.
"""

from __future__ import annotations

import random
from typing import Any

from crypto import primitives as p
from crypto.bulletin import Bulletin
from crypto.identity import Identity
from crypto.noise import CipherState, HandshakeState, KeyPair
from crypto.padding import BUCKETS, bucket_for, pad
from crypto.prekeys import PrekeyRecord
from crypto.receipts import receipt_hash
from crypto.seal import OVERHEAD
from crypto.seal import PROLOGUE as SEAL_PROLOGUE
from mesh.core import envelope as E
from mesh.core import link as L
from mesh.core import messages as M
from mesh.core import protocol as P
from mesh.core import session as S
from mesh.core.config import hint_for
from tests.fuzzing.honest import Framing
from tests.fuzzing.mutate import (
    flip_bits,
    mutate_encoded,
    mutate_tree,
    near_value,
    pack_or,
    unpack,
)

MAX_CRAFTED = 60 * 1024  # keep crafted records within what a real link may carry


# ---- link records -----------------------------------------------------------------------


def recv_cipher(session: L.LinkSession) -> CipherState | None:
    """The peer's sending key: the victim's receive key and counter (Noise splits one key
    per direction, known to both ends)."""
    recv = session._recv
    return None if recv is None else CipherState(recv.k, recv.n)


def seal_plain(cipher: CipherState, plain: bytes, framing: Framing) -> bytes:
    """Encrypt a record plaintext, padded as the link mode pads records."""
    return cipher.encrypt_with_ad(b"", plain.ljust(framing.padded(len(plain)) - L.TAG, b"\x00"))


def data_record(cipher: CipherState, payload: bytes, framing: Framing) -> bytes:
    return seal_plain(cipher, b"\x01" + len(payload).to_bytes(4, "big") + payload, framing)


def odd_record(cipher: CipherState, payload: bytes, framing: Framing, r: random.Random) -> bytes:
    """A record whose plaintext header or padding is wrong: unknown type, a length beyond
    or short of the payload, non-zero padding, or a plaintext shorter than its header."""
    kind, length = 1, len(payload)
    op = r.randrange(5)
    if op == 0:
        kind = r.choice((0, 2, 3, 0xFF))
    elif op == 1:
        length = r.choice((length + 1, length - 1, length + 100, 2**32 - 1, 0))
    elif op == 2:
        plain = b"\x01" + length.to_bytes(4, "big") + payload + b"\x01"
        return seal_plain(cipher, plain, framing)
    elif op == 3:
        return cipher.encrypt_with_ad(b"", r.randbytes(r.randrange(5)))
    head = bytes([kind]) + max(0, length).to_bytes(4, "big")
    return seal_plain(cipher, head + payload, framing)


def batch_variant(messages: list[bytes], r: random.Random) -> tuple[str, bytes]:
    """A record payload: the messages in one batch, or a batch that breaks its rules (no
    message, more than a record may hold, not an array)."""
    roll = r.random()
    if roll < 0.8:
        return "batch", P.batch(messages, 1 << 20)[0]
    if roll < 0.87:
        return "batch-empty", b"\x90"
    if roll < 0.94:
        return "batch-over", _over_batch(messages)
    return "batch-bare", messages[0]


def _over_batch(messages: list[bytes]) -> bytes:
    """A batch of more than MAX_BATCH messages (the messages repeated), as much of it as a
    crafted record carries: of 1,025 copies of a 60 KiB message only the first 60 KiB are
    built, not 60 MiB."""
    n = (P.MAX_BATCH // len(messages) + 1) * len(messages)
    out = bytearray(b"\xdc" + n.to_bytes(2, "big"))
    for i in range(n):
        if len(out) >= MAX_CRAFTED:
            break
        out += messages[i % len(messages)]
    return bytes(out[:MAX_CRAFTED])


def handshake_record(message: bytes, r: random.Random) -> tuple[str, bytes]:
    """A Noise message in a record whose 2-byte length field may lie (the truncated-tag
    attack of issue 10 among them)."""
    n = len(message)
    declared = r.choice((n, n - 16, n - 1, n + 1, n - 32, 0, 0xFFFF, r.randrange(0x10000)))
    declared = max(0, min(0xFFFF, declared))
    name = "hs-length" if declared != n else "hs-record"
    return name, declared.to_bytes(2, "big") + message


def attacker_handshake(initiator: bool, r: random.Random) -> HandshakeState:
    return HandshakeState(
        "XX", initiator, L.PROLOGUE, rng=r.randbytes, s=KeyPair.generate(r.randbytes)
    )


# X25519 points of small order: a DH with them gives all zeros (libsodium refuses it)
LOW_ORDER = (
    bytes(32),
    b"\x01" + bytes(31),
    bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800"),
)


# ---- envelopes ----------------------------------------------------------------------------


def stamped_frame(env: E.Envelope, difficulty: int, r: random.Random) -> bytes:
    return E.encode(M.stamped(env, difficulty, r.randbytes))


def envelope_variant(frame: bytes, r: random.Random, difficulty: int) -> tuple[str, bytes]:
    """An envelope frame mutated as msgpack fields or bytes; when it still decodes, usually
    with a fresh valid stamp, so it passes the stamp check and reaches the kind's parser."""
    try:
        fields = E._fields(frame) if r.random() < 0.3 else None
    except E.EnvelopeError:
        fields = None
    if fields is not None:
        i = r.randrange(8)
        fields[i] = near_value(fields[i], r)
        name, out = f"env-field{i}", pack_or(fields, frame)
    else:
        name, out = mutate_encoded(frame, r, ())
        name = "env-" + name
    try:
        env = E.decode(out)
    except E.EnvelopeError:
        return name, out
    if r.random() < 0.8:
        return name + "+stamp", stamped_frame(env, difficulty, r)
    return name, out


def _padded(raw: bytes) -> bytes:
    try:
        return pad(raw, bucket_for(len(raw) + 4))
    except ValueError:
        return pad(raw[: BUCKETS[-1] - 4], BUCKETS[-1])


def bulletin_variant(
    honest: Bulletin, persona_seed: bytes, r: random.Random, expiry_hour: int
) -> tuple[str, E.Envelope]:
    """A bulletin with mutated fields, re-signed by its persona when the fields still have
    the types a signature covers (so the node's checks after the signature are reached)."""
    fields = mutate_tree(unpack(honest.encode()), r)
    name = "bulletin"
    if isinstance(fields, list) and len(fields) == 8 and r.random() < 0.7:
        public, secret = p.ed25519_keypair(persona_seed)
        if r.random() < 0.8:
            fields[0] = public
        try:
            fields[7] = p.ed25519_sign(secret, Bulletin(*_seven(fields), b"").signed_bytes())
            name = "bulletin+signed"
        except (TypeError, ValueError, OverflowError):
            pass  # fields a signature cannot cover: sent unsigned
    body = _padded(pack_or(fields, honest.encode()))
    return name, E.make(E.Kind.BULLETIN, expiry_hour, b"", body, 8)


def _seven(f: list[Any]) -> tuple[Any, Any, Any, Any, Any, Any, Any]:
    return f[0], f[1], f[2], f[3], f[4], f[5], f[6]


def prekey_variant(
    honest: PrekeyRecord, owner: Identity, r: random.Random, expiry_hour: int
) -> tuple[str, E.Envelope]:
    """A prekey record with mutated fields (a low-order key among them), re-signed by the
    identity it names when its fields still type-check."""
    fields = unpack(honest.encode())
    if r.random() < 0.3:
        fields[2] = r.choice(LOW_ORDER)
        fields[3] = honest.created + r.randrange(1, 3600)
    else:
        fields = mutate_tree(fields, r)
    name = "prekey"
    if isinstance(fields, list) and len(fields) == 6 and r.random() < 0.8:
        try:
            f = fields
            rec = PrekeyRecord(f[0], f[1], f[2], f[3], f[4], b"")
            fields[5] = owner.sign(rec._signed())
            name = "prekey+signed"
        except (TypeError, ValueError, OverflowError):
            pass  # fields a signature cannot cover: sent unsigned
    body = _padded(pack_or(fields, honest.encode()))
    return name, E.make(E.Kind.PREKEY, expiry_hour, b"", body, 8)


def first_contact_variant(
    sender: Identity, recipient: Identity, prekey: PrekeyRecord, now: int, r: random.Random
) -> tuple[str, E.Envelope]:
    """A first contact sealed to the victim's prekey (so it opens) whose inner payload or
    padding is mutated: reaches the inner payload's parser and the session set-up."""
    me = sender.public()
    secret = r.randbytes(16)
    inner_list = [1, [me.sign_public, me.cert], recipient.fingerprint, now, r.randbytes(16)]
    inner_list += [1, b"crafted", secret]
    name, inner = mutate_encoded(pack_or(inner_list, b""), r, ())
    inner = inner[: BUCKETS[-1] - OVERHEAD - 4]
    size = bucket_for(len(inner) + OVERHEAD + 4)
    padded = pad(inner, size - OVERHEAD)
    if r.random() < 0.2:
        name, padded = "fc-pad", flip_bits(padded, r)
    receipt = receipt_hash(secret) if r.random() < 0.8 else r.randbytes(16)
    expiry_hour = E.coarse_expiry(now, 86400)
    tag = hint_for(prekey.public)
    header = E.header_bytes(E.Kind.FIRST_CONTACT, expiry_hour, tag, receipt)
    hs = HandshakeState(
        "X",
        True,
        SEAL_PROLOGUE + header,
        rng=r.randbytes,
        s=KeyPair(sender.dh_private, sender.dh_public),
        rs=prekey.public,
    )
    body = hs.write_message(padded)
    return "fc-" + name, E.make(E.Kind.FIRST_CONTACT, expiry_hour, tag, body, 8, receipt=receipt)


def session_variant(sess: S.Session, now: int, r: random.Random) -> tuple[str, E.Envelope]:
    """A session envelope under a tag the victim expects, sealed with the peer's ratchet;
    the inner payload, the ratchet message or its padding is mutated."""
    tag = sess.next_tag()
    secret = r.randbytes(16)
    receipt = receipt_hash(secret)
    expiry_hour = E.coarse_expiry(now, 86400)
    header = E.header_bytes(E.Kind.SESSION, expiry_hour, tag, receipt)
    inner = S.Inner(r.randbytes(16), now, 1, b"crafted", secret).encode()
    layer = r.randrange(3)
    if layer == 0:
        name, inner = mutate_encoded(inner, r, ())
    message = sess.ratchet.encrypt(inner, S._RATCHET_AD)
    if layer == 1:
        name, message = _ratchet_variant(message, r)
    message = message[: BUCKETS[-1] - 4 - 24 - 16]  # a mutation may have grown it
    size = bucket_for(len(message) + 4 + 24 + 16)
    padded = pad(message, size - 24 - 16)
    if layer == 2:
        name, padded = "pad", flip_bits(padded[:8], r) + padded[8:]
    nonce = r.randbytes(24)
    body = nonce + p.xchacha_encrypt(sess.send_env_key, nonce, padded, header)
    return "sess-" + name, E.make(E.Kind.SESSION, expiry_hour, tag, body, 8, receipt=receipt)


def _ratchet_variant(message: bytes, r: random.Random) -> tuple[str, bytes]:
    """``len(header) | header | ciphertext`` with the header's fields or length mutated."""
    n = message[0]
    header, rest = message[1 : 1 + n], message[1 + n :]
    if r.random() < 0.6:
        name, header = mutate_encoded(header, r, ())
        return "ratchet-" + name, bytes([min(255, len(header))]) + header + rest
    return "ratchet-bytes", flip_bits(message[:4], r) + message[4:]


def trade_offer(env_frame: bytes) -> bytes | None:
    """A TRADE offering this frame's envelope, so the victim asks for it (None: the frame
    does not decode, so it can only be sent unsolicited)."""
    try:
        env = E.decode(env_frame)
    except E.EnvelopeError:
        return None
    return P.encode(P.Trade([(env.id(), env.tag)], False, [], [], []))
