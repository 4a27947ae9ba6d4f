"""First-contact sealing: ``Noise_X_25519_ChaChaPoly_BLAKE2b`` to a signed prekey.

What it guarantees, exactly
---------------------------
*Confidentiality* of the body and of the sender's identity against everyone who does not
hold the recipient's private prekey: relays, neighbours, radio listeners. The ciphertext is
a fresh ephemeral X25519 public key followed by AEAD ciphertext; it contains no key id, no
fingerprint and no plaintext length (bodies are padded to a size bucket), so nothing in it
identifies the sender or the recipient.

The inner payload costs about 260 bytes (sender identity key and certificate, recipient
fingerprint, time, message id), so first-contact messages start at the 1 KiB bucket.

*Sender authentication* to the recipient: the Noise ``ss`` DH proves the sender holds the
private half of the static X25519 key it sent, and the payload carries the sender's
Ed25519-signed certificate for that key, which the recipient checks. Caveat (inherent in
the one-way X pattern): whoever holds the recipient's prekey private key can forge
first-contact messages *to that recipient* claiming any sender (key-compromise
impersonation). Later messages use the per-contact ratchet, which does not have this gap.

*Binding*: the inner payload names the sender's identity, the recipient's fingerprint, the
creation time and a message id, and the envelope header is the Noise prologue. A message
re-sealed to someone else, or a header spliced onto another body, does not open.

*Forward secrecy*: compromise of the sender's keys later does not open it (the ephemeral
key is gone). Compromise of the recipient's prekey opens it only until that prekey is
pruned (:meth:`crypto.prekeys.PrekeyRing.prune`).

Not provided here: replay protection (the store's seen-set and the message id do that),
hiding the size bucket, or hiding that *some* message exists.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from crypto import primitives as p
from crypto.errors import AuthenticationError, DecodeError, SignatureError
from crypto.identity import Identity, PublicIdentity
from crypto.noise import HandshakeState, KeyPair
from crypto.padding import bucket_for, pad, unpad
from crypto.prekeys import PrekeyRecord, PrekeyRing
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack

PROLOGUE = b"steppe/first-contact/v1|"
OVERHEAD = 32 + 48 + 16  # ephemeral key, encrypted static key + tag, payload tag
INNER_VERSION = 1
MSG_ID_LEN = 16
MAX_CLOCK_SKEW = 86400


@dataclass(frozen=True, slots=True)
class Opened:
    sender: PublicIdentity
    created: int
    msg_id: bytes
    content_type: int
    body: bytes
    prekey_id: int
    receipt_secret: bytes = b""
    session_secret: bytes = b""


def session_secret(hs: HandshakeState) -> bytes:
    """A 32-byte secret both sides share after the X handshake: the root of the pair's
    Double Ratchet, routing tags and envelope keys (:mod:`mesh.core.session`)."""
    return p.blake2b(hs.ss.ck, digest_size=32, person=b"steppe-session")


def _no_rng(n: int) -> bytes:
    raise AssertionError("the responder side of X draws no randomness")


def seal_first_contact(
    sender: Identity,
    recipient: PublicIdentity,
    prekey: PrekeyRecord,
    body: bytes,
    *,
    now: int,
    msg_id: bytes,
    content_type: int,
    header_ad: bytes,
    rng: p.Rng,
    size: int | None = None,
    receipt_secret: bytes = b"",
    secret_out: list[bytes] | None = None,
) -> bytes:
    """Seal ``body`` for ``recipient``; the output is exactly ``size`` bytes, by default the
    smallest bucket it fits (:data:`crypto.padding.BUCKETS`)."""
    recipient.verify()
    prekey.verify(recipient.sign_public, now)
    if len(msg_id) != MSG_ID_LEN:
        raise ValueError("message id is 16 bytes")
    me = sender.public()
    inner = pack(
        [
            INNER_VERSION,
            [me.sign_public, me.cert],
            recipient.fingerprint,
            now,
            msg_id,
            content_type,
            body,
            receipt_secret,
        ]
    )
    if size is None:
        size = bucket_for(OVERHEAD + 4 + len(inner))
    hs = HandshakeState(
        "X",
        True,
        PROLOGUE + header_ad,
        rng=rng,
        s=KeyPair(sender.dh_private, sender.dh_public),
        rs=prekey.public,
    )
    out = hs.write_message(pad(inner, size - OVERHEAD))
    assert len(out) == size
    if secret_out is not None:
        secret_out.append(session_secret(hs))
    return out


def open_first_contact(
    recipient: Identity, ring: PrekeyRing, sealed: bytes, *, header_ad: bytes, now: int
) -> Opened:
    """Open a first-contact message; raises AuthenticationError or DecodeError."""
    if len(sealed) <= OVERHEAD:
        raise DecodeError("sealed body too short")
    for candidate in ring.candidates():
        hs = HandshakeState(
            "X",
            False,
            PROLOGUE + header_ad,
            rng=_no_rng,
            s=KeyPair(candidate.private, candidate.record.public),
        )
        try:
            payload = hs.read_message(sealed)
        except AuthenticationError:
            continue
        assert hs.rs is not None
        opened = _check_inner(recipient, unpad(payload), hs.rs, candidate.prekey_id, now)
        return replace(opened, session_secret=session_secret(hs))
    raise AuthenticationError("no prekey opens this message")


def _check_inner(
    recipient: Identity, inner_raw: bytes, noise_static: bytes, prekey_id: int, now: int
) -> Opened:
    items = expect_list(strict_unpack(inner_raw, max_size=len(inner_raw)), 8, "inner payload")
    if expect_int(items[0], "inner version") != INNER_VERSION:
        raise DecodeError("unknown inner payload version")
    sender_raw = expect_list(items[1], 2, "sender")
    # The sender's DH key is the Noise static key itself (authenticated by the ss DH); the
    # certificate must bind it to the claimed identity key, or the sender is forged.
    sender = PublicIdentity(
        expect_bytes(sender_raw[0], "identity key", size=32),
        noise_static,
        expect_bytes(sender_raw[1], "certificate", size=64),
    )
    try:
        sender.verify()
    except SignatureError as exc:
        raise AuthenticationError("sender certificate does not match the Noise static key") from exc
    to = expect_bytes(items[2], "recipient", size=32)
    if not p.constant_time_equal(to, recipient.fingerprint):
        raise AuthenticationError("message was sealed for someone else")
    created = expect_int(items[3], "created")
    if created > now + MAX_CLOCK_SKEW:
        raise AuthenticationError("message claims to come from the future")
    return Opened(
        sender,
        created,
        expect_bytes(items[4], "message id", size=MSG_ID_LEN),
        expect_int(items[5], "content type", hi=255),
        expect_bytes(items[6], "body"),
        prekey_id,
        expect_bytes(items[7], "receipt secret", max_size=16),
    )
