"""Building and reading the envelopes a node sends: prekeys, first contact, bulletins.

Pure functions: they combine :mod:`crypto` with :mod:`mesh.core.envelope` and take ``now``
and ``rng`` as arguments. The daemon, the simulator and the demo all call these.
"""

from __future__ import annotations

import unicodedata

from crypto.bulletin import Bulletin
from crypto.identity import Identity, PublicIdentity
from crypto.padding import MAX_BODY, bucket_for, pad, unpad
from crypto.prekeys import PrekeyRecord, PrekeyRing
from crypto.primitives import Rng
from crypto.receipts import SECRET_LEN, receipt_hash
from crypto.seal import MSG_ID_LEN, Opened, open_first_contact, seal_first_contact
from crypto.stamp import mint_stamp, verify_stamp
from mesh.core import envelope
from mesh.core.session import Inner, Session

DEFAULT_BUDGET = 8
CONTENT_TEXT = 1
# What sealing adds to a text, the larger of the two kinds (a first contact; a session
# message adds 143): crypto.padding's measured figures, checked in tests/test_outbox_room.py.
SEAL_OVERHEAD = 282


def frame_bound(text_len: int) -> int:
    """The most bytes the stored frame of a message of ``text_len`` bytes of text can take,
    whichever kind it is sealed as: known before sealing, so a full store can refuse a
    send before any session state moves."""
    header = envelope.MAX_FRAME - MAX_BODY  # the most an envelope adds to its body
    return bucket_for(min(text_len + SEAL_OVERHEAD, MAX_BODY)) + header


def is_blank(body: bytes) -> bool:
    """A text body a reader would see nothing in: empty, or only whitespace and invisible
    format characters (zero-width space, BOM). Other control characters are shown escaped,
    so they are not blank; not UTF-8: not text, not blank."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(ch.isspace() or unicodedata.category(ch) == "Cf" for ch in text)


def stamped(env: envelope.Envelope, difficulty: int, rng: Rng) -> envelope.Envelope:
    """The envelope with a hashcash stamp of ``difficulty`` bits over its id."""
    start = int.from_bytes(rng(8), "big")
    return env.with_stamp(mint_stamp(env.id(), difficulty, start=start))


def stamp_ok(env: envelope.Envelope, difficulty: int) -> bool:
    return verify_stamp(env.id(), env.stamp, difficulty)


def prekey_envelope(record: PrekeyRecord, budget: int = DEFAULT_BUDGET) -> envelope.Envelope:
    raw = record.encode()
    return envelope.make(
        envelope.Kind.PREKEY,
        record.expires // 3600,
        b"",
        pad(raw, bucket_for(len(raw) + 4)),
        budget,
    )


def read_prekey_envelope(env: envelope.Envelope) -> PrekeyRecord:
    if env.kind is not envelope.Kind.PREKEY:
        raise envelope.MalformedEnvelope("not a prekey envelope")
    return PrekeyRecord.decode(unpad(env.body))


def bulletin_envelope(bulletin: Bulletin, budget: int = DEFAULT_BUDGET) -> envelope.Envelope:
    raw = bulletin.encode()
    return envelope.make(
        envelope.Kind.BULLETIN,
        envelope.coarse_expiry(bulletin.expiry, 0),
        b"",
        pad(raw, bucket_for(len(raw) + 4)),
        budget,
    )


def read_bulletin_envelope(env: envelope.Envelope) -> Bulletin:
    if env.kind is not envelope.Kind.BULLETIN:
        raise envelope.MalformedEnvelope("not a bulletin envelope")
    return Bulletin.decode(unpad(env.body))


def first_contact_envelope(
    sender: Identity,
    recipient: PublicIdentity,
    prekey: PrekeyRecord,
    body: bytes,
    *,
    now: int,
    ttl: int,
    rng: Rng,
    content_type: int = CONTENT_TEXT,
    budget: int = DEFAULT_BUDGET,
    tag: bytes = b"",
    msg_id: bytes | None = None,
    receipt_secret: bytes | None = None,
    secret_out: list[bytes] | None = None,
) -> envelope.Envelope:
    """Seal ``body`` to ``recipient``'s prekey inside a FIRST_CONTACT envelope (unstamped),
    with a delivery-receipt hash in the header and its secret inside the seal.
    The expiry never outlives the prekey, which may be deleted after it."""
    expiry_hour = envelope.coarse_expiry(now, min(ttl, max(prekey.expires - now, 0)))
    secret = rng(SECRET_LEN) if receipt_secret is None else receipt_secret
    receipt = receipt_hash(secret)
    header = envelope.header_bytes(envelope.Kind.FIRST_CONTACT, expiry_hour, tag, receipt)
    sealed = seal_first_contact(
        sender,
        recipient,
        prekey,
        body,
        now=now,
        msg_id=rng(MSG_ID_LEN) if msg_id is None else msg_id,
        content_type=content_type,
        header_ad=header,
        rng=rng,
        receipt_secret=secret,
        secret_out=secret_out,
    )
    return envelope.make(
        envelope.Kind.FIRST_CONTACT, expiry_hour, tag, sealed, budget, receipt=receipt
    )


def open_first_contact_envelope(
    recipient: Identity, ring: PrekeyRing, env: envelope.Envelope, now: int
) -> Opened:
    if env.kind is not envelope.Kind.FIRST_CONTACT:
        raise envelope.MalformedEnvelope("not a first-contact envelope")
    return open_first_contact(recipient, ring, env.body, header_ad=env.header(), now=now)


def session_envelope(
    session: Session,
    body: bytes,
    *,
    now: int,
    ttl: int,
    rng: Rng,
    msg_id: bytes,
    content_type: int = CONTENT_TEXT,
    budget: int = DEFAULT_BUDGET,
    route: bytes = b"",
) -> envelope.Envelope:
    """A SESSION envelope: a fresh per-message tag, a receipt hash, the ratchet message
    sealed under the session's envelope key (unstamped). ``route`` (a routing strategy's
    destination key, :func:`mesh.core.session.route_key`) follows the per-message tag."""
    tag = session.next_tag() + route
    secret = rng(SECRET_LEN)
    receipt = receipt_hash(secret)
    expiry_hour = envelope.coarse_expiry(now, ttl)
    header = envelope.header_bytes(envelope.Kind.SESSION, expiry_hour, tag, receipt)
    inner = Inner(msg_id, now, content_type, body, secret)
    sealed = session.seal(inner, header, rng)
    return envelope.make(envelope.Kind.SESSION, expiry_hour, tag, sealed, budget, receipt=receipt)
