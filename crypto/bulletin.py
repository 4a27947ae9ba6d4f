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


# ---- endorsements ---------------------------------------------------------------------
# An endorsement is a bulletin of its own: type ENDORSE, key the endorsed post's id in hex,
# an empty body, signed by the endorser's identity key. It floods, verifies, supersedes
# and expires as any bulletin, so relays need nothing new; what it means is decided by
# the reader (mesh.daemon.endorsements): only endorsements by the reader's verified
# contacts count. The post id covers every signed field of the post (persona, type, key,
# sequence, created, expiry, body hash), so an endorsement cannot be moved to another
# post, to another version of the same topic, or to a copy re-signed by someone else.
ENDORSE = "endorse"
POST = "post"


def post_id(b: Bulletin) -> bytes:
    """The 32-byte id an endorsement names: a hash of everything the post's signature
    covers."""
    return p.blake2b(b.signed_bytes(), digest_size=32, person=b"steppe-post-id")


def endorsement(endorser_seed: bytes, post: Bulletin, now: int) -> Bulletin:
    """A signed endorsement of ``post``, living as long as the post."""
    if post.type != POST:
        raise ValueError("only posts can be endorsed")
    if now >= post.expiry:
        raise ValueError("that post has expired")
    return Bulletin.create(
        endorser_seed,
        type=ENDORSE,
        key=post_id(post).hex(),
        sequence=now,
        created=now,
        expiry=post.expiry,
        body=b"",
    )


def endorsed_id(b: Bulletin) -> bytes | None:
    """The post id ``b`` endorses, or None if ``b`` is not a well-formed endorsement
    (another type, a body, a key that is not 64 hex digits)."""
    if b.type != ENDORSE or b.body or len(b.key) != 64:
        return None
    try:
        ident = bytes.fromhex(b.key)
    except ValueError:
        return None
    return ident if ident.hex() == b.key else None  # 32 bytes, lowercase, no spaces
