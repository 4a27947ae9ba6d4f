"""Signed, rotating X25519 prekeys for first contact.

A user publishes a :class:`PrekeyRecord` — ``(identity key, prekey id, X25519 public,
created, expires)`` signed by the identity key — which floods the mesh. A sender seals a
first-contact message to it (:mod:`crypto.seal`). The :class:`PrekeyRing` holds the private
halves: :meth:`PrekeyRing.rotate` makes a new prekey when the newest is older than the
rotation interval, and :meth:`PrekeyRing.prune` deletes a private prekey once it expired
more than ``grace`` seconds ago. After that, messages sealed to it cannot be opened by
anyone, including a thief who images the device later (forward secrecy per prekey period).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import primitives as p
from crypto.errors import AuthenticationError, CryptoError, DecodeError, ExpiredError
from crypto.identity import ContactCard, Identity
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack

_DOMAIN = b"steppe/prekey/v1"
MAX_RECORD = 256
DEFAULT_LIFETIME = 7 * 86400
DEFAULT_ROTATE = 2 * 86400
DEFAULT_GRACE = 7 * 86400
_PROBE = b"\x01" * 32  # any scalar: X25519 refuses a small-order point with every one


@dataclass(frozen=True, slots=True)
class PrekeyRecord:
    identity_key: bytes
    prekey_id: int
    public: bytes
    created: int
    expires: int
    signature: bytes

    def _signed(self) -> bytes:
        return _DOMAIN + pack(
            [self.identity_key, self.prekey_id, self.public, self.created, self.expires]
        )

    def verify(self, identity_key: bytes, now: int) -> None:
        """Check it belongs to ``identity_key``, is signed, and has not expired."""
        if not p.constant_time_equal(identity_key, self.identity_key):
            raise DecodeError("prekey record is for a different identity")
        p.ed25519_verify(self.identity_key, self._signed(), self.signature)
        if now >= self.expires:
            raise ExpiredError("prekey record has expired")

    def encode(self) -> bytes:
        return pack(
            [
                self.identity_key,
                self.prekey_id,
                self.public,
                self.created,
                self.expires,
                self.signature,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> PrekeyRecord:
        """Raises :class:`DecodeError` if malformed, or if the prekey is a small-order
        X25519 point: nothing could be sealed to it (and a record its owner signed with
        one would make every sender's first contact fail)."""
        items = expect_list(strict_unpack(data, max_size=MAX_RECORD), 6, "prekey record")
        public = expect_bytes(items[2], "prekey", size=32)
        try:
            p.x25519(_PROBE, public)
        except AuthenticationError as exc:
            raise DecodeError("prekey is a small-order X25519 point") from exc
        return cls(
            expect_bytes(items[0], "identity key", size=32),
            expect_int(items[1], "prekey id", hi=2**32 - 1),
            public,
            expect_int(items[3], "created"),
            expect_int(items[4], "expires"),
            expect_bytes(items[5], "signature", size=64),
        )


def card_prekey(record: PrekeyRecord) -> bytes:
    """A prekey record as a contact card carries it: without the identity key, which the
    card already holds (:class:`crypto.identity.ContactCard`)."""
    return pack([record.prekey_id, record.public, record.created, record.expires, record.signature])


def prekey_from_card(card: ContactCard, now: int) -> PrekeyRecord | None:
    """The prekey a card carries, checked like one from the mesh (signed by the card's
    identity, not a small-order point); None if it has none or it has expired. Raises
    :class:`DecodeError` for a prekey that does not decode or verify."""
    if not card.prekey:
        return None
    items = expect_list(strict_unpack(card.prekey, max_size=MAX_RECORD), 5, "card prekey")
    record = PrekeyRecord.decode(pack([card.identity.sign_public, *items]))
    try:
        record.verify(card.identity.sign_public, now)
    except ExpiredError:
        return None
    except CryptoError as exc:
        raise DecodeError("the prekey on this contact card is not signed by its owner") from exc
    return record


@dataclass(slots=True)
class PrivatePrekey:
    prekey_id: int
    private: bytes
    record: PrekeyRecord


@dataclass(slots=True)
class PrekeyRing:
    """The private prekeys an identity still holds, newest last."""

    keys: list[PrivatePrekey] = field(default_factory=list)
    lifetime: int = DEFAULT_LIFETIME
    rotate_every: int = DEFAULT_ROTATE
    grace: int = DEFAULT_GRACE

    def current(self, now: int) -> PrivatePrekey | None:
        live = [k for k in self.keys if k.record.expires > now]
        return live[-1] if live else None

    def create(self, identity: Identity, now: int, rng: p.Rng) -> PrivatePrekey:
        prekey_id = int.from_bytes(rng(4), "big")
        private = rng(32)
        unsigned = PrekeyRecord(
            identity.sign_public, prekey_id, p.x25519_base(private), now, now + self.lifetime, b""
        )
        record = PrekeyRecord(
            unsigned.identity_key,
            prekey_id,
            unsigned.public,
            now,
            unsigned.expires,
            identity.sign(unsigned._signed()),
        )
        key = PrivatePrekey(prekey_id, private, record)
        self.keys.append(key)
        return key

    def rotate(self, identity: Identity, now: int, rng: p.Rng) -> PrivatePrekey | None:
        """Create a new prekey if none is current or the newest is due; return it if made."""
        newest = self.keys[-1] if self.keys else None
        if (
            newest is None
            or newest.record.expires <= now
            or now - newest.record.created >= self.rotate_every
        ):
            return self.create(identity, now, rng)
        return None

    def prune(self, now: int) -> list[int]:
        """Delete private prekeys that expired more than ``grace`` ago; return their ids."""
        dead = [k.prekey_id for k in self.keys if k.record.expires + self.grace <= now]
        self.keys = [k for k in self.keys if k.record.expires + self.grace > now]
        return dead

    def candidates(self) -> list[PrivatePrekey]:
        """Keys to try when opening, newest first."""
        return list(reversed(self.keys))

    def to_list(self) -> list[object]:
        return [
            self.lifetime,
            self.rotate_every,
            self.grace,
            [[k.prekey_id, k.private, k.record.encode()] for k in self.keys],
        ]

    @classmethod
    def from_list(cls, obj: object) -> PrekeyRing:
        items = expect_list(obj, 4, "prekey ring")
        keys_raw = items[3]
        if not isinstance(keys_raw, list):
            raise DecodeError("prekey ring: keys")
        keys = []
        for entry in keys_raw:
            e = expect_list(entry, 3, "prekey")
            keys.append(
                PrivatePrekey(
                    expect_int(e[0], "id"),
                    expect_bytes(e[1], "key", size=32),
                    PrekeyRecord.decode(expect_bytes(e[2], "record")),
                )
            )
        return cls(
            keys,
            expect_int(items[0], "lifetime"),
            expect_int(items[1], "rotate"),
            expect_int(items[2], "grace"),
        )
