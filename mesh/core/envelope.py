"""The envelope: the only structure relays and neighbours ever see.

Wire form (canonical msgpack array)::

    [version, kind, expiry_hour, tag, receipt, body, budget, stamp]

- ``version``: 1. Anything else raises :class:`UnknownVersion`.
- ``kind``: a :class:`Kind`. Anything else raises :class:`UnknownKind`.
- ``expiry_hour``: hours since the Unix epoch (coarse on purpose: no precise timestamps).
- ``tag``: 0-16 bytes routing tag (rotating pairwise tag, or empty for first contact).
- ``receipt``: empty or the 16-byte hash of a delivery-receipt secret that only the
  recipient can learn (inside the sealed body); releasing the secret purges relays' copies.
- ``body``: opaque, exactly one of the size buckets in :data:`crypto.padding.BUCKETS`.
- ``budget``: hop/copy budget 0-255. Relays change it, so it is *not* covered by the id.
- ``stamp``: 8-byte hashcash stamp over the id (:mod:`crypto.stamp`).

No sender, no recipient, no stable identifier, no compression.

The id is ``BLAKE2b-256(person="steppe-env-id", header || body)`` with ``header`` the
canonical encoding of ``[version, kind, expiry_hour, tag, receipt]``: tampering with
anything but the budget and stamp changes the id, and duplicates are detected by id. The
same ``header`` bytes are the associated data of the sealed body, so a header spliced onto
another body does not open.

Decoding is strict (:func:`decode`): the size limit is checked before parsing, msgpack is
bounded with no ext types and no maps, and the input must be canonical. Every failure is an
:class:`EnvelopeError`; nothing else escapes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from enum import IntEnum
from typing import Any

from crypto.errors import DecodeError
from crypto.padding import BUCKETS, MAX_BODY
from crypto.stamp import STAMP_LEN
from crypto.wire import pack, strict_unpack
from mesh.core.errors import PeerError

VERSION = 1
MAX_TAG = 16
RECEIPT_LEN = 16
MAX_BUDGET = 255
MAX_FRAME = MAX_BODY + 64
_BUCKET_SET = frozenset(BUCKETS)
_ID_PERSON = b"steppe-env-id"


class Kind(IntEnum):
    FIRST_CONTACT = 1  # Noise X to a prekey (crypto.seal)
    SESSION = 2  # per-contact ratchet message (reserved for the node issue)
    BULLETIN = 3  # signed public post (crypto.bulletin)
    PREKEY = 4  # signed prekey record (crypto.prekeys)
    CHUNK = 5  # one 16 KiB piece of an attachment (crypto.attachment)


_KINDS = frozenset(int(k) for k in Kind)


class EnvelopeError(PeerError):
    """The peer sent something that is not a valid envelope."""


class MalformedEnvelope(EnvelopeError):
    pass


class UnknownVersion(EnvelopeError):
    pass


class UnknownKind(EnvelopeError):
    pass


def coarse_expiry(now: int, ttl: int) -> int:
    """The expiry hour for a lifetime of ``ttl`` seconds from ``now`` (rounded up)."""
    return -(-(now + ttl) // 3600)


@dataclass(frozen=True, slots=True)
class Envelope:
    version: int
    kind: Kind
    expiry_hour: int
    tag: bytes
    body: bytes
    budget: int
    stamp: bytes
    receipt: bytes = b""

    @property
    def expiry(self) -> int:
        """Expiry in Unix seconds."""
        return self.expiry_hour * 3600

    def header(self) -> bytes:
        """The immutable header as bytes: covered by the id and bound into the seal."""
        return header_bytes(self.kind, self.expiry_hour, self.tag, self.receipt)

    def id(self) -> bytes:
        h = hashlib.blake2b(digest_size=32, person=_ID_PERSON)
        h.update(self.header())
        h.update(self.body)
        return h.digest()

    def with_budget(self, budget: int) -> Envelope:
        return replace(self, budget=budget)

    def with_stamp(self, stamp: bytes) -> Envelope:
        return replace(self, stamp=stamp)


def header_bytes(kind: int, expiry_hour: int, tag: bytes, receipt: bytes = b"") -> bytes:
    return pack([VERSION, int(kind), expiry_hour, tag, receipt])


def make(
    kind: Kind,
    expiry_hour: int,
    tag: bytes,
    body: bytes,
    budget: int,
    stamp: bytes = bytes(STAMP_LEN),
    receipt: bytes = b"",
) -> Envelope:
    """Build an envelope, checking the same invariants :func:`decode` checks."""
    env = Envelope(VERSION, kind, expiry_hour, tag, body, budget, stamp, receipt)
    _validate(env)
    return env


def encode(env: Envelope) -> bytes:
    return pack(
        [
            env.version,
            int(env.kind),
            env.expiry_hour,
            env.tag,
            env.receipt,
            env.body,
            env.budget,
            env.stamp,
        ]
    )


def rebudget(frame: bytes, budget: int) -> bytes:
    """The canonical frame of the same envelope with another budget, without building an
    :class:`Envelope` (a relay does this for every copy it hands over). ``frame`` must be
    one :func:`decode` accepted, such as a stored frame. The budget is outside the id."""
    if not 0 <= budget <= MAX_BUDGET:
        raise MalformedEnvelope("budget out of range")
    fields = _fields(frame)
    fields[6] = budget
    return pack(fields)


def _validate(env: Envelope) -> None:
    if not 0 <= env.expiry_hour < 2**32:
        raise MalformedEnvelope("expiry out of range")
    if len(env.tag) > MAX_TAG:
        raise MalformedEnvelope("routing tag too long")
    if len(env.receipt) not in (0, RECEIPT_LEN):
        raise MalformedEnvelope("receipt hash must be empty or 16 bytes")
    if len(env.body) not in _BUCKET_SET:
        raise MalformedEnvelope(f"body of {len(env.body)} bytes is not a size bucket")
    if not 0 <= env.budget <= MAX_BUDGET:
        raise MalformedEnvelope("budget out of range")
    if len(env.stamp) != STAMP_LEN:
        raise MalformedEnvelope("stamp must be 8 bytes")


def _fields(data: bytes) -> list[Any]:
    """The 8 fields of a frame, through the strict msgpack gate (types not checked yet)."""
    if not isinstance(data, bytes):
        raise MalformedEnvelope("frame is not bytes")
    if len(data) > MAX_FRAME:
        raise MalformedEnvelope(f"frame of {len(data)} bytes exceeds {MAX_FRAME}")
    try:
        obj = strict_unpack(
            data,
            max_size=MAX_FRAME,
            max_bin_len=MAX_BODY,
            max_str_len=0,
            max_array_len=8,
            max_map_len=0,
        )
    except DecodeError as exc:
        raise MalformedEnvelope(f"not a canonical msgpack envelope ({exc})") from exc
    if type(obj) is not list or len(obj) != 8:
        raise MalformedEnvelope("an envelope is an array of 8 fields")
    return obj


def decode(data: bytes) -> Envelope:
    """Strictly decode one envelope; raises only :class:`EnvelopeError` subclasses."""
    version, kind, expiry_hour, tag, receipt, body, budget, stamp = _fields(data)
    if type(version) is not int:
        raise MalformedEnvelope("version is not an integer")
    if version != VERSION:
        raise UnknownVersion(f"envelope version {version}")
    if type(kind) is not int:
        raise MalformedEnvelope("kind is not an integer")
    if kind not in _KINDS:
        raise UnknownKind(f"envelope kind {kind}")
    if type(expiry_hour) is not int or type(budget) is not int:
        raise MalformedEnvelope("expiry and budget are integers")
    if (
        type(tag) is not bytes
        or type(body) is not bytes
        or type(stamp) is not bytes
        or type(receipt) is not bytes
    ):
        raise MalformedEnvelope("tag, receipt, body and stamp are bytes")
    env = Envelope(version, Kind(kind), expiry_hour, tag, body, budget, stamp, receipt)
    _validate(env)
    return env
