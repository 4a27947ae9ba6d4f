"""The Noise Protocol Framework (revision 34) for ``25519_ChaChaPoly_BLAKE2b``.

Theory of operation
-------------------
A :class:`HandshakeState` runs one handshake pattern from the table :data:`PATTERNS`. Each
message is a tuple of tokens; each token maps, through :data:`_WRITE` and :data:`_READ`, to
one function, so the state machine is data (STYLE.md 1 and 4). ``write_message`` and
``read_message`` take and return bytes; nothing here touches a socket or a clock, and the
ephemeral key comes from an injected :data:`~crypto.primitives.Rng` (or is fixed, for the
test vectors). After the last message, :meth:`HandshakeState.split` returns the two
:class:`CipherState` objects for transport.

Why not a library: the Python Noise packages on PyPI are unmaintained and built on other
primitive libraries; this module is ~250 lines over PyNaCl and passes the public cacophony
vectors for every pattern we use (``tests/test_noise.py``).

Patterns provided: ``X`` (one-way; Steppe's first-contact seal) and ``XX`` (link sessions).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from types import MappingProxyType

from crypto import primitives as p
from crypto.errors import AuthenticationError, DecodeError

DHLEN = 32
HASHLEN = 64
MAX_NONCE = 2**64 - 1
MAX_MESSAGE = 65535

PatternSpec = tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, ...], ...]]
PATTERNS: MappingProxyType[str, PatternSpec] = MappingProxyType(
    {
        # name: (initiator pre-messages, responder pre-messages, messages)
        "X": ((), ("s",), (("e", "es", "s", "ss"),)),
        "XX": ((), (), (("e",), ("e", "ee", "s", "es"), ("s", "se"))),
    }
)


@dataclass(slots=True)
class KeyPair:
    private: bytes
    public: bytes

    @classmethod
    def from_private(cls, private: bytes) -> KeyPair:
        return cls(private, p.x25519_base(private))

    @classmethod
    def generate(cls, rng: p.Rng) -> KeyPair:
        return cls.from_private(rng(32))


def _nonce(n: int) -> bytes:
    return b"\x00\x00\x00\x00" + n.to_bytes(8, "little")


@dataclass(slots=True)
class CipherState:
    """A key and a 64-bit counter nonce. ``k is None`` means 'no key yet': identity cipher."""

    k: bytes | None = None
    n: int = 0

    def has_key(self) -> bool:
        return self.k is not None

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        if self.k is None:
            return plaintext
        if self.n >= MAX_NONCE:
            raise AuthenticationError("Noise nonce exhausted")
        out = p.chacha_encrypt(self.k, _nonce(self.n), plaintext, ad)
        self.n += 1
        return out

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        if self.k is None:
            return ciphertext
        if self.n >= MAX_NONCE:
            raise AuthenticationError("Noise nonce exhausted")
        out = p.chacha_decrypt(self.k, _nonce(self.n), ciphertext, ad)
        self.n += 1  # only after a successful decrypt, as the spec requires
        return out

    def rekey(self) -> None:
        """Noise ``REKEY``: k = first 32 bytes of ENCRYPT(k, maxnonce, zerolen, zeros)."""
        if self.k is None:
            return
        self.k = p.chacha_encrypt(self.k, _nonce(MAX_NONCE), bytes(32), b"")[:32]


def _hkdf(chaining_key: bytes, ikm: bytes, outputs: int) -> list[bytes]:
    temp = p.hmac_blake2b(chaining_key, ikm)
    out1 = p.hmac_blake2b(temp, b"\x01")
    out2 = p.hmac_blake2b(temp, out1 + b"\x02")
    if outputs == 2:
        return [out1, out2]
    return [out1, out2, p.hmac_blake2b(temp, out2 + b"\x03")]


@dataclass(slots=True)
class SymmetricState:
    ck: bytes
    h: bytes
    cipher: CipherState = field(default_factory=CipherState)

    @classmethod
    def initialize(cls, protocol_name: bytes) -> SymmetricState:
        if len(protocol_name) <= HASHLEN:
            h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            h = p.blake2b(protocol_name)
        return cls(ck=h, h=h)

    def mix_key(self, ikm: bytes) -> None:
        self.ck, temp_k = _hkdf(self.ck, ikm, 2)
        self.cipher = CipherState(temp_k[:32])

    def mix_hash(self, data: bytes) -> None:
        self.h = p.blake2b(self.h + data)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        ciphertext = self.cipher.encrypt_with_ad(self.h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        plaintext = self.cipher.decrypt_with_ad(self.h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        k1, k2 = _hkdf(self.ck, b"", 2)
        return CipherState(k1[:32]), CipherState(k2[:32])


class HandshakeState:
    """One Noise handshake. Build with :meth:`initiator` or :meth:`responder`."""

    def __init__(
        self,
        pattern: str,
        initiator: bool,
        prologue: bytes,
        *,
        rng: p.Rng,
        s: KeyPair | None = None,
        e: KeyPair | None = None,
        rs: bytes | None = None,
    ) -> None:
        if pattern not in PATTERNS:
            raise ValueError(f"unsupported Noise pattern {pattern!r}")
        self.pattern = pattern
        self.protocol_name = f"Noise_{pattern}_25519_ChaChaPoly_BLAKE2b".encode()
        self.initiator = initiator
        self.rng = rng
        self.s, self.e, self.rs = s, e, rs
        self.re: bytes | None = None
        self.ss = SymmetricState.initialize(self.protocol_name)
        self.ss.mix_hash(prologue)
        init_pre, resp_pre, self._messages = PATTERNS[pattern]
        for token in init_pre:
            self.ss.mix_hash(self._pre_key(token, mine=initiator))
        for token in resp_pre:
            self.ss.mix_hash(self._pre_key(token, mine=not initiator))
        self._index = 0

    def _pre_key(self, token: str, *, mine: bool) -> bytes:
        if token != "s":  # noqa: S105 (a Noise token, not a password)
            raise ValueError("only 's' pre-messages are supported")
        key = (self.s.public if self.s else None) if mine else self.rs
        if key is None:
            raise ValueError("the pattern needs a static key that was not given")
        return key

    @property
    def finished(self) -> bool:
        return self._index >= len(self._messages)

    @property
    def handshake_hash(self) -> bytes:
        return self.ss.h

    def _my_turn(self) -> bool:
        return (self._index % 2 == 0) == self.initiator

    def write_message(self, payload: bytes = b"") -> bytes:
        if self.finished or not self._my_turn():
            raise ValueError("not this side's turn to write")
        out = bytearray()
        for token in self._messages[self._index]:
            _WRITE[token](self, out)
        out += self.ss.encrypt_and_hash(payload)
        self._index += 1
        if len(out) > MAX_MESSAGE:
            raise ValueError("Noise message too long")
        return bytes(out)

    def read_message(self, message: bytes) -> bytes:
        if self.finished or self._my_turn():
            raise ValueError("not this side's turn to read")
        if len(message) > MAX_MESSAGE:
            raise DecodeError("Noise message too long")
        view = memoryview(message)
        for token in self._messages[self._index]:
            view = _READ[token](self, view)
        payload = self.ss.decrypt_and_hash(bytes(view))
        self._index += 1
        return payload

    def split(self) -> tuple[CipherState, CipherState]:
        """``(send, receive)`` cipher states for this side, once the handshake finished."""
        if not self.finished:
            raise ValueError("handshake not finished")
        c1, c2 = self.ss.split()
        return (c1, c2) if self.initiator else (c2, c1)

    # --- DH helpers: which key pair meets which remote key, by token and role ---------
    def _dh(self, local: KeyPair | None, remote: bytes | None) -> None:
        if local is None or remote is None:
            raise ValueError("missing key for DH")
        self.ss.mix_key(p.x25519(local.private, remote))


def _write_e(hs: HandshakeState, out: bytearray) -> None:
    if hs.e is None:
        hs.e = KeyPair.generate(hs.rng)
    out += hs.e.public
    hs.ss.mix_hash(hs.e.public)


def _write_s(hs: HandshakeState, out: bytearray) -> None:
    if hs.s is None:
        raise ValueError("pattern sends a static key but none was given")
    out += hs.ss.encrypt_and_hash(hs.s.public)


def _read_e(hs: HandshakeState, view: memoryview) -> memoryview:
    if len(view) < DHLEN:
        raise DecodeError("Noise message too short for an ephemeral key")
    hs.re = bytes(view[:DHLEN])
    hs.ss.mix_hash(hs.re)
    return view[DHLEN:]


def _read_s(hs: HandshakeState, view: memoryview) -> memoryview:
    n = DHLEN + (p.TAG_LEN if hs.ss.cipher.has_key() else 0)
    if len(view) < n:
        raise DecodeError("Noise message too short for a static key")
    hs.rs = hs.ss.decrypt_and_hash(bytes(view[:n]))
    return view[n:]


def _token_dh(first: str, second: str) -> Callable[[HandshakeState], None]:
    """``first`` is the initiator's key, ``second`` the responder's, as in the spec."""

    def run(hs: HandshakeState) -> None:
        mine, theirs = (first, second) if hs.initiator else (second, first)
        local = hs.e if mine == "e" else hs.s
        remote = hs.re if theirs == "e" else hs.rs
        hs._dh(local, remote)

    return run


_DH: MappingProxyType[str, Callable[[HandshakeState], None]] = MappingProxyType(
    {
        "ee": _token_dh("e", "e"),
        "es": _token_dh("e", "s"),
        "se": _token_dh("s", "e"),
        "ss": _token_dh("s", "s"),
    }
)


def _writer_dh(name: str) -> Callable[[HandshakeState, bytearray], None]:
    return lambda hs, _out: _DH[name](hs)


def _reader_dh(name: str) -> Callable[[HandshakeState, memoryview], memoryview]:
    def run(hs: HandshakeState, view: memoryview) -> memoryview:
        _DH[name](hs)
        return view

    return run


_WRITE: MappingProxyType[str, Callable[[HandshakeState, bytearray], None]] = MappingProxyType(
    {
        "e": _write_e,
        "s": _write_s,
        **{name: _writer_dh(name) for name in _DH},
    }
)
_READ: MappingProxyType[str, Callable[[HandshakeState, memoryview], memoryview]] = MappingProxyType(
    {
        "e": _read_e,
        "s": _read_s,
        **{name: _reader_dh(name) for name in _DH},
    }
)
