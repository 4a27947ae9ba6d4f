"""The Double Ratchet (Signal specification, revision 4) over X25519, HMAC-BLAKE2b and
XChaCha20-Poly1305.

Why our own: the ``doubleratchet`` package's current API is asyncio coroutines, which the
sans-I/O core cannot call without an event loop, and it brings a framework of abstract
classes for ~200 lines of logic. This module follows the specification's functions
(``KDF_RK``, ``KDF_CK``, ``RatchetEncrypt``, ``RatchetDecrypt``, ``TrySkippedMessageKeys``,
``SkipMessageKeys``, ``DHRatchet``) one to one, and is tested for out-of-order, duplicate and
forged messages and for the bounds on skipped keys.

What it guarantees: per-message keys (forward secrecy: a key taken from a device later does
not open earlier messages once their keys are deleted) and post-compromise recovery with
each DH ratchet step. The header (ratchet public key, counters) is inside the ciphertext
the caller builds around it (:mod:`mesh.core.session`), so relays never see it.

Bounds: at most :data:`MAX_SKIP` keys are skipped in one chain, at most
:data:`MAX_STORED_SKIPPED` are kept in total, and a skipped key older than
:data:`MAX_SKIPPED_AGE` seconds is deleted. A message needing more is refused.
Replays fail: a message key is deleted once used.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import primitives as p
from crypto.errors import AuthenticationError, DecodeError
from crypto.noise import KeyPair
from crypto.wire import expect_bytes, expect_int, expect_list, expect_seq, pack, strict_unpack

MAX_SKIP = 1000
MAX_STORED_SKIPPED = 2000
MAX_SKIPPED_AGE = 14 * 86400
_INFO = b"steppe/ratchet/v1"
_HEADER_MAX = 64


def _hkdf2(salt: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    temp = p.hmac_blake2b(salt, ikm)
    out1 = p.hmac_blake2b(temp, _INFO + b"\x01")
    out2 = p.hmac_blake2b(temp, out1 + _INFO + b"\x02")
    return out1[:32], out2[:32]


def kdf_rk(rk: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """``(new root key, chain key)``."""
    return _hkdf2(rk, dh_out)


def kdf_ck(ck: bytes) -> tuple[bytes, bytes]:
    """``(next chain key, message key)``."""
    return p.hmac_blake2b(ck, b"\x02")[:32], p.hmac_blake2b(ck, b"\x01")[:32]


def _seal(mk: bytes, plaintext: bytes, ad: bytes) -> bytes:
    key, nonce = _hkdf2(mk, b"message-key")
    return p.xchacha_encrypt(key, nonce[: p.XNONCE_LEN], plaintext, ad)


def _open(mk: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    key, nonce = _hkdf2(mk, b"message-key")
    return p.xchacha_decrypt(key, nonce[: p.XNONCE_LEN], ciphertext, ad)


@dataclass(frozen=True, slots=True)
class Header:
    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        return pack([self.dh, self.pn, self.n])

    @classmethod
    def decode(cls, data: bytes) -> Header:
        items = expect_list(strict_unpack(data, max_size=_HEADER_MAX), 3, "ratchet header")
        return cls(
            expect_bytes(items[0], "ratchet key", size=32),
            expect_int(items[1], "pn", hi=2**32),
            expect_int(items[2], "n", hi=2**32),
        )


@dataclass(slots=True)
class Ratchet:
    rk: bytes
    dhs: KeyPair
    dhr: bytes | None = None
    cks: bytes | None = None
    ckr: bytes | None = None
    ns: int = 0
    nr: int = 0
    pn: int = 0
    skipped: dict[tuple[bytes, int], tuple[bytes, int]] = field(default_factory=dict)

    @classmethod
    def init_alice(cls, sk: bytes, bob_ratchet_public: bytes, rng: p.Rng) -> Ratchet:
        dhs = KeyPair.generate(rng)
        rk, cks = kdf_rk(sk, p.x25519(dhs.private, bob_ratchet_public))
        return cls(rk=rk, dhs=dhs, dhr=bob_ratchet_public, cks=cks)

    @classmethod
    def init_bob(cls, sk: bytes, bob_ratchet_keypair: KeyPair) -> Ratchet:
        return cls(rk=sk, dhs=bob_ratchet_keypair)

    def encrypt(self, plaintext: bytes, ad: bytes) -> bytes:
        """``len(header) (1 byte) | header | ciphertext``."""
        if self.cks is None:
            raise AuthenticationError("no sending chain yet: wait for the first message")
        self.cks, mk = kdf_ck(self.cks)
        header = Header(self.dhs.public, self.pn, self.ns).encode()
        self.ns += 1
        return bytes([len(header)]) + header + _seal(mk, plaintext, ad + header)

    def decrypt(self, message: bytes, ad: bytes, now: int, rng: p.Rng) -> bytes:
        """Decrypt; on any failure the state is left exactly as it was."""
        if not message or message[0] > _HEADER_MAX or len(message) < 1 + message[0] + 16:
            raise DecodeError("ratchet message too short")
        raw_header = message[1 : 1 + message[0]]
        header = Header.decode(raw_header)
        body = message[1 + message[0] :]
        self._expire(now)
        key = (header.dh, header.n)
        if key in self.skipped:
            mk, _t = self.skipped[key]
            plaintext = _open(mk, body, ad + raw_header)
            del self.skipped[key]
            return plaintext
        new_chain = header.dh != self.dhr
        if header.n > MAX_SKIP if new_chain else header.n - self.nr > MAX_SKIP:
            raise AuthenticationError("too many skipped messages")  # before any derivation
        if new_chain and self.ckr is not None and header.pn - self.nr > MAX_SKIP:
            raise AuthenticationError("too many skipped messages")
        trial = self._copy()
        if new_chain:
            trial._skip(header.pn, now)
            trial._dh_ratchet(header, rng)
        trial._skip(header.n, now)
        assert trial.ckr is not None
        trial.ckr, mk = kdf_ck(trial.ckr)
        trial.nr += 1
        plaintext = _open(mk, body, ad + raw_header)
        self._adopt(trial)
        return plaintext

    # -- persistence ---------------------------------------------------------------------
    def to_list(self) -> list[object]:
        """The whole state as plain values (to be stored encrypted: it holds secrets)."""
        skipped = [[dh, n, mk, t] for (dh, n), (mk, t) in sorted(self.skipped.items())]
        return [
            *(self.rk, self.dhs.private, self.dhr, self.cks, self.ckr),
            *(self.ns, self.nr, self.pn, skipped),
        ]

    @classmethod
    def from_list(cls, obj: object) -> Ratchet:
        f = expect_list(obj, 9, "ratchet state")

        def opt(x: object, what: str) -> bytes | None:
            return None if x is None else expect_bytes(x, what, size=32)

        skipped: dict[tuple[bytes, int], tuple[bytes, int]] = {}
        for entry in expect_seq(f[8], "skipped keys", MAX_STORED_SKIPPED):
            e = expect_list(entry, 4, "skipped key")
            skipped[(expect_bytes(e[0], "dh", size=32), expect_int(e[1], "n"))] = (
                expect_bytes(e[2], "mk", size=32),
                expect_int(e[3], "time"),
            )
        return cls(
            expect_bytes(f[0], "rk", size=32),
            KeyPair.from_private(expect_bytes(f[1], "dhs", size=32)),
            opt(f[2], "dhr"),
            opt(f[3], "cks"),
            opt(f[4], "ckr"),
            expect_int(f[5], "ns"),
            expect_int(f[6], "nr"),
            expect_int(f[7], "pn"),
            skipped,
        )

    # -- internals -----------------------------------------------------------------------
    def _copy(self) -> Ratchet:
        return Ratchet(
            self.rk,
            self.dhs,
            self.dhr,
            self.cks,
            self.ckr,
            self.ns,
            self.nr,
            self.pn,
            dict(self.skipped),
        )

    def _adopt(self, other: Ratchet) -> None:
        for name in ("rk", "dhs", "dhr", "cks", "ckr", "ns", "nr", "pn", "skipped"):
            setattr(self, name, getattr(other, name))

    def _skip(self, until: int, now: int) -> None:
        if self.ckr is None:
            return
        if until - self.nr > MAX_SKIP:
            raise AuthenticationError("too many skipped messages")
        while self.nr < until:
            self.ckr, mk = kdf_ck(self.ckr)
            assert self.dhr is not None
            self.skipped[(self.dhr, self.nr)] = (mk, now)
            self.nr += 1
        while len(self.skipped) > MAX_STORED_SKIPPED:
            oldest = min(self.skipped, key=lambda k: self.skipped[k][1])
            del self.skipped[oldest]

    def _dh_ratchet(self, header: Header, rng: p.Rng) -> None:
        self.pn = self.ns
        self.ns = 0
        self.nr = 0
        self.dhr = header.dh
        self.rk, self.ckr = kdf_rk(self.rk, p.x25519(self.dhs.private, self.dhr))
        self.dhs = KeyPair.generate(rng)
        self.rk, self.cks = kdf_rk(self.rk, p.x25519(self.dhs.private, self.dhr))

    def _expire(self, now: int) -> None:
        old = [k for k, (_mk, t) in self.skipped.items() if now - t > MAX_SKIPPED_AGE]
        for k in old:
            del self.skipped[k]
