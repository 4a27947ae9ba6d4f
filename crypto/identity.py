"""Identities, fingerprints, safety numbers and contact cards.

An identity is an Ed25519 key (the *identity key*) that signs a certificate for an X25519
key (the *static DH key*). The fingerprint is BLAKE2b-256 of the Ed25519 public key.

The *safety number* of two identities is derived from both fingerprints sorted, so both
sides compute the same value; it is shown as 60 digits (12 groups of 5) and as 8 words of
the BIP-39 English list (88 bits). Comparing it in person defeats a man in the middle who
swapped cards; names on cards are self-asserted and never trusted.

A *contact card* is the public identity plus a self-chosen display name and a creation
time, signed by the identity key, encoded as ``STEPPE1:`` + unpadded base32. Base32 upper
case is in the QR code alphanumeric set, so a card fits a small terminal QR code.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from functools import cache

from crypto import primitives as p
from crypto.errors import DecodeError
from crypto.wire import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_seq,
    expect_str,
    pack,
    strict_unpack,
)

CARD_PREFIX = "STEPPE1:"
CARD_VERSION = 2  # 1: no prekey (still read and written for cards without one)
MAX_NAME = 64
MAX_CARD_BYTES = 512
MAX_CARD_PREKEY = 160  # a compact prekey record is about 115 bytes
_CERT_DOMAIN = b"steppe/dh-cert/v1"
_CARD_DOMAIN = b"steppe/card/v1"


def fingerprint(identity_public: bytes) -> bytes:
    """BLAKE2b-256 of the Ed25519 identity public key."""
    return p.blake2b(identity_public, digest_size=32)


def short_fingerprint(identity_public: bytes) -> str:
    """First 10 bytes of the fingerprint as 5 groups of 4 hex digits (for display only)."""
    hexed = fingerprint(identity_public)[:10].hex()
    return " ".join(hexed[i : i + 4] for i in range(0, 20, 4))


@dataclass(frozen=True, slots=True)
class PublicIdentity:
    """What others know about an identity: both public keys and the certificate."""

    sign_public: bytes
    dh_public: bytes
    cert: bytes  # Ed25519(sign key) over _CERT_DOMAIN || dh_public

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.sign_public)

    def verify(self) -> None:
        """Raise :class:`~crypto.errors.SignatureError` unless the cert binds the DH key."""
        p.ed25519_verify(self.sign_public, _CERT_DOMAIN + self.dh_public, self.cert)

    def to_list(self) -> list[bytes]:
        return [self.sign_public, self.dh_public, self.cert]

    @classmethod
    def from_list(cls, obj: object) -> PublicIdentity:
        items = expect_list(obj, 3, "public identity")
        return cls(
            expect_bytes(items[0], "identity key", size=32),
            expect_bytes(items[1], "dh key", size=32),
            expect_bytes(items[2], "dh certificate", size=64),
        )


@dataclass(frozen=True, slots=True)
class Identity:
    """The private half: an Ed25519 seed and an X25519 private key (public parts derived)."""

    sign_seed: bytes
    dh_private: bytes
    sign_public: bytes = field(init=False, repr=False)
    sign_secret: bytes = field(init=False, repr=False)
    _public: PublicIdentity = field(init=False, repr=False)

    def __post_init__(self) -> None:
        sign_public, sign_secret = p.ed25519_keypair(self.sign_seed)
        dh_public = p.x25519_base(self.dh_private)
        cert = p.ed25519_sign(sign_secret, _CERT_DOMAIN + dh_public)
        object.__setattr__(self, "sign_public", sign_public)
        object.__setattr__(self, "sign_secret", sign_secret)
        object.__setattr__(self, "_public", PublicIdentity(sign_public, dh_public, cert))

    @classmethod
    def generate(cls, rng: p.Rng) -> Identity:
        return cls(rng(32), rng(32))

    @property
    def dh_public(self) -> bytes:
        return self._public.dh_public

    @property
    def fingerprint(self) -> bytes:
        return fingerprint(self.sign_public)

    def public(self) -> PublicIdentity:
        return self._public

    def sign(self, message: bytes) -> bytes:
        return p.ed25519_sign(self.sign_secret, message)


# --- safety numbers -------------------------------------------------------------------


def _safety_digest(a: bytes, b: bytes) -> bytes:
    lo, hi = sorted((fingerprint(a), fingerprint(b)))
    return p.blake2b(lo + hi, digest_size=64, person=b"steppe-safetynum")


def safety_digits(a: bytes, b: bytes) -> str:
    """60 decimal digits in 12 groups of 5, from both identity keys (order-independent)."""
    digest = _safety_digest(a, b)
    groups = [int.from_bytes(digest[i * 5 : i * 5 + 5], "big") % 100000 for i in range(12)]
    return " ".join(f"{g:05d}" for g in groups)


@cache
def _wordlist() -> tuple[str, ...]:
    from mnemonic import Mnemonic  # BIP-39: 2048 words chosen to be unambiguous

    return tuple(Mnemonic("english").wordlist)


def safety_words(a: bytes, b: bytes, count: int = 8) -> list[str]:
    """``count`` words (11 bits each) from the same digest as :func:`safety_digits`."""
    value = int.from_bytes(_safety_digest(a, b), "big")
    words = _wordlist()
    return [words[(value >> (512 - 11 * (i + 1))) & 0x7FF] for i in range(count)]


def fingerprint_words(key: bytes) -> list[str]:
    """One identity key as 8 words (its safety number with itself), to read aloud."""
    return safety_words(key, key)


# --- contact cards ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactCard:
    """Who someone is, to swap in person (text or QR): name, public identity, and since
    version 2 their current signed prekey (:func:`crypto.prekeys.card_prekey`), so a
    first message can be sealed at once instead of waiting for the prekey to travel. The
    card signature covers the prekey bytes; the prekey keeps its own signature too."""

    name: str
    identity: PublicIdentity
    created: int
    signature: bytes
    prekey: bytes = b""  # an encoded compact prekey record; b"": a version-1 card

    def _signed_bytes(self) -> bytes:
        fields: list[object] = [self.name, *self.identity.to_list(), self.created]
        if self.prekey:
            fields.append(self.prekey)
        return _CARD_DOMAIN + pack(fields)

    @classmethod
    def create(cls, identity: Identity, name: str, now: int, prekey: bytes = b"") -> ContactCard:
        name = clean_name(name)
        pub = identity.public()
        unsigned = cls(name, pub, now, b"", prekey)
        return cls(name, pub, now, identity.sign(unsigned._signed_bytes()), prekey)

    def verify(self) -> None:
        """Check the card signature and the DH certificate (SignatureError if forged)."""
        self.identity.verify()
        p.ed25519_verify(self.identity.sign_public, self._signed_bytes(), self.signature)

    def encode(self) -> str:
        head = [self.name, *self.identity.to_list(), self.created, self.signature]
        fields = [CARD_VERSION, *head, self.prekey] if self.prekey else [1, *head]
        return CARD_PREFIX + base64.b32encode(pack(fields)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> ContactCard:
        """Parse and verify a card; raises DecodeError or SignatureError."""
        text = "".join(text.split()).upper()
        if not text.startswith(CARD_PREFIX):
            raise DecodeError(f"a contact card starts with {CARD_PREFIX}")
        body = text[len(CARD_PREFIX) :]
        if len(body) > MAX_CARD_BYTES * 2:
            raise DecodeError("contact card too long")
        try:
            raw = base64.b32decode(body + "=" * (-len(body) % 8))
        except ValueError as exc:
            raise DecodeError("contact card is not valid base32") from exc
        items = expect_seq(strict_unpack(raw, max_size=MAX_CARD_BYTES), "contact card", 8)
        version = items[0] if items else None
        if version not in (1, CARD_VERSION) or len(items) != 6 + version:
            raise DecodeError(f"unsupported contact card version {version!r}")
        card = cls(
            name=clean_name(expect_str(items[1], "name", max_len=MAX_NAME)),
            identity=PublicIdentity.from_list(items[2:5]),
            created=expect_int(items[5], "created"),
            signature=expect_bytes(items[6], "signature", size=64),
            prekey=expect_bytes(items[7], "prekey", max_size=MAX_CARD_PREKEY)
            if version == 2
            else b"",
        )
        if version == 2 and not card.prekey:
            raise DecodeError("a version-2 contact card carries a prekey")
        card.verify()
        return card


def clean_name(name: str) -> str:
    cleaned = "".join(ch for ch in name if ch.isprintable()).strip()
    if not cleaned or len(cleaned) > MAX_NAME:
        raise DecodeError(f"a name has 1 to {MAX_NAME} printable characters")
    return cleaned
