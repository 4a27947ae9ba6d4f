"""Signed bulletins: public posts by a persona key.

The signature covers ``(type, key, sequence, created, expiry, BLAKE2b-256(body))`` with a
domain separator, so a relay can verify a bulletin (and drop forgeries) while storing and
forwarding it, and a reader knows exactly which persona key wrote it. A higher sequence
for the same ``(persona, type, key)`` supersedes a lower one. Names are not part of trust:
trust is decided by who holds the persona key (verified contact, endorsed, unknown).
"""

from __future__ import annotations

from dataclasses import dataclass

from crypto import primitives as p
from crypto.errors import DecodeError, ExpiredError
from crypto.wire import expect_bytes, expect_int, expect_list, expect_str, pack, strict_unpack

_DOMAIN = b"steppe/bulletin/v1"
MAX_BULLETIN = 16384
MAX_BODY = 12000


def body_hash(body: bytes) -> bytes:
    return p.blake2b(body, digest_size=32, person=b"steppe-bulletin")


@dataclass(frozen=True, slots=True)
class Bulletin:
    persona: bytes  # Ed25519 public key
    type: str
    key: str
    sequence: int
    created: int
    expiry: int
    body: bytes
    signature: bytes

    def signed_bytes(self) -> bytes:
        return _DOMAIN + pack(
            [
                self.persona,
                self.type,
                self.key,
                self.sequence,
                self.created,
                self.expiry,
                body_hash(self.body),
            ]
        )

    @classmethod
    def create(
        cls,
        persona_seed: bytes,
        *,
        type: str,
        key: str,
        sequence: int,
        created: int,
        expiry: int,
        body: bytes,
    ) -> Bulletin:
        if len(body) > MAX_BODY:
            raise ValueError(f"bulletin body is at most {MAX_BODY} bytes")
        if expiry <= created:
            raise ValueError("expiry must be after creation")
        public, secret = p.ed25519_keypair(persona_seed)
        unsigned = cls(public, type, key, sequence, created, expiry, body, b"")
        return cls(
            public,
            type,
            key,
            sequence,
            created,
            expiry,
            body,
            p.ed25519_sign(secret, unsigned.signed_bytes()),
        )

    def verify(self, now: int) -> None:
        """SignatureError if forged or altered, ExpiredError if past its expiry."""
        p.ed25519_verify(self.persona, self.signed_bytes(), self.signature)
        if now >= self.expiry:
            raise ExpiredError("bulletin has expired")

    def encode(self) -> bytes:
        return pack(
            [
                self.persona,
                self.type,
                self.key,
                self.sequence,
                self.created,
                self.expiry,
                self.body,
                self.signature,
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> Bulletin:
        items = expect_list(strict_unpack(data, max_size=MAX_BULLETIN), 8, "bulletin")
        return cls(
            expect_bytes(items[0], "persona", size=32),
            expect_str(items[1], "type", max_len=32),
            expect_str(items[2], "key", max_len=128),
            expect_int(items[3], "sequence"),
            expect_int(items[4], "created"),
            expect_int(items[5], "expiry"),
            expect_bytes(items[6], "body", max_size=MAX_BODY),
            expect_bytes(items[7], "signature", size=64),
        )

    def supersedes(self, other: Bulletin) -> bool:
        if (self.persona, self.type, self.key) != (other.persona, other.type, other.key):
            raise DecodeError("bulletins are for different slots")
        return self.sequence > other.sequence
