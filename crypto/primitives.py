"""The primitives Steppe uses, as thin typed wrappers over libsodium (via PyNaCl) and hashlib.

Every other module calls these functions and no others, so the RFC test vectors in
``tests/test_vectors.py`` check the primitives exactly as the protocol calls them.

- X25519 (RFC 7748): :func:`x25519`, :func:`x25519_base`
- Ed25519 (RFC 8032): :func:`ed25519_keypair`, :func:`ed25519_sign`, :func:`ed25519_verify`
- ChaCha20-Poly1305 IETF (RFC 8439): :func:`chacha_encrypt`, :func:`chacha_decrypt`
- XChaCha20-Poly1305 (draft-irtf-cfrg-xchacha): :func:`xchacha_encrypt`, :func:`xchacha_decrypt`
- BLAKE2b (RFC 7693): :func:`blake2b`
- HMAC (RFC 2104) over BLAKE2b-512 (:func:`hmac_blake2b`, Noise's HMAC-HASH) and over
  SHA-256 (:func:`hmac_sha256`, RFC 4231, Megolm's ratchet)
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable

import nacl.bindings as sodium
import nacl.exceptions

from crypto.errors import AuthenticationError, SignatureError

Rng = Callable[[int], bytes]
"""A source of random bytes: ``rng(n)`` returns ``n`` bytes. ``os.urandom`` in production."""

KEY_LEN = 32
SIG_LEN = 64
TAG_LEN = 16
XNONCE_LEN = 24


def x25519_base(private: bytes) -> bytes:
    """The X25519 public key for a 32-byte private scalar (clamped by libsodium)."""
    return bytes(sodium.crypto_scalarmult_base(private))


def x25519(private: bytes, public: bytes) -> bytes:
    """X25519 Diffie-Hellman. Raises :class:`AuthenticationError` on a low-order point."""
    if len(private) != KEY_LEN or len(public) != KEY_LEN:
        raise AuthenticationError("X25519 keys are 32 bytes")
    try:
        return bytes(sodium.crypto_scalarmult(private, public))
    except nacl.exceptions.RuntimeError as exc:  # all-zero output: low-order public key
        raise AuthenticationError("X25519 with a low-order public key") from exc


def ed25519_keypair(seed: bytes) -> tuple[bytes, bytes]:
    """``(public, secret)`` for a 32-byte seed; ``secret`` is libsodium's 64-byte form."""
    public, secret = sodium.crypto_sign_seed_keypair(seed)
    return bytes(public), bytes(secret)


def ed25519_sign(secret: bytes, message: bytes) -> bytes:
    """A detached 64-byte Ed25519 signature."""
    return bytes(sodium.crypto_sign(message, secret)[:SIG_LEN])


def ed25519_verify(public: bytes, message: bytes, signature: bytes) -> None:
    """Raise :class:`SignatureError` unless ``signature`` is valid for ``message``."""
    if len(public) != KEY_LEN or len(signature) != SIG_LEN:
        raise SignatureError("malformed Ed25519 key or signature")
    try:
        sodium.crypto_sign_open(signature + message, public)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise SignatureError("Ed25519 signature does not verify") from exc


def ed25519_public_to_x25519(public: bytes) -> bytes:
    """Birational map of an Ed25519 public key to X25519 (used only for tests of binding)."""
    return bytes(sodium.crypto_sign_ed25519_pk_to_curve25519(public))


def chacha_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """ChaCha20-Poly1305 (IETF, 12-byte nonce). Returns ciphertext || 16-byte tag."""
    return bytes(sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key))


def chacha_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Inverse of :func:`chacha_encrypt`; raises :class:`AuthenticationError` on a bad tag
    or a ciphertext too short to hold one (libsodium's binding raises a bare ValueError)."""
    if len(ciphertext) < TAG_LEN:
        raise AuthenticationError("ChaCha20-Poly1305 ciphertext shorter than its tag")
    try:
        return bytes(sodium.crypto_aead_chacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
        raise AuthenticationError("ChaCha20-Poly1305 tag mismatch") from exc


def xchacha_encrypt(key: bytes, nonce: bytes, plaintext: bytes, ad: bytes) -> bytes:
    """XChaCha20-Poly1305 (24-byte nonce, safe to draw at random). Ciphertext || tag."""
    return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, ad, nonce, key))


def xchacha_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    """Inverse of :func:`xchacha_encrypt`; raises :class:`AuthenticationError` on a bad tag
    or a ciphertext too short to hold one."""
    if len(ciphertext) < TAG_LEN:
        raise AuthenticationError("XChaCha20-Poly1305 ciphertext shorter than its tag")
    try:
        return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ciphertext, ad, nonce, key))
    except (nacl.exceptions.CryptoError, nacl.exceptions.ValueError) as exc:
        raise AuthenticationError("XChaCha20-Poly1305 tag mismatch") from exc


def blake2b(data: bytes, *, digest_size: int = 64, key: bytes = b"", person: bytes = b"") -> bytes:
    """BLAKE2b with optional key and personalisation (domain separation, <= 16 bytes)."""
    return hashlib.blake2b(data, digest_size=digest_size, key=key, person=person).digest()


def blake2b_prefix_search(
    prefix: bytes, suffixes: Iterable[bytes], below: int, *, digest_size: int, person: bytes
) -> bytes | None:
    """The first suffix ``s`` with ``BLAKE2b(prefix || s)`` below ``below`` as a big-endian
    integer (what :func:`blake2b` would give), hashing ``prefix`` once: a stamp search is
    three times faster than one :func:`blake2b` call per candidate."""
    start = hashlib.blake2b(prefix, digest_size=digest_size, person=person)
    for suffix in suffixes:
        h = start.copy()
        h.update(suffix)
        if int.from_bytes(h.digest(), "big") < below:
            return suffix
    return None


def hmac_blake2b(key: bytes, data: bytes) -> bytes:
    """HMAC over BLAKE2b-512 (block length 128), as the Noise framework defines HMAC-HASH."""
    return hmac.new(key, data, hashlib.blake2b).digest()


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    """HMAC-SHA-256 (RFC 2104 over FIPS 180-4; vectors in RFC 4231), as Megolm's ratchet
    uses it (:mod:`crypto.megolm`). From the standard library: libsodium has it, but
    PyNaCl does not expose its HMAC."""
    return hmac.new(key, data, hashlib.sha256).digest()


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)
