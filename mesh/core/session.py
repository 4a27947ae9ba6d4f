"""Per-contact sessions after first contact: Double Ratchet inside an envelope layer with
rotating, per-message routing tags.

Theory of operation
-------------------
First contact (Noise X to a prekey) leaves both sides with a 32-byte session secret ``SK``
(:func:`crypto.seal.session_secret`). From ``SK`` each side derives, per direction
(``a2b`` from the first-contact sender "Alice" to the recipient "Bob", and ``b2a``):

- a *tag key*: the routing tag of the ``c``-th message sent in that direction is
  ``BLAKE2b-64(key=tag_key, c)``. Every envelope carries a different tag, so a relay
  cannot link two envelopes to the same pair. The recipient precomputes the tags it
  expects and recognises its envelopes by table lookup, without trial decryption
  (:class:`_Window`): the :data:`WINDOW` counters from the lowest one not received yet,
  minus those received. Recognition therefore depends neither on arrival order (a relay
  hands envelopes over in id order, which is random with respect to the counter) nor on
  time: a message that waited out a five-day blackout in a relay opens like one sent a
  minute ago. A missing counter is given up only once a later message has waited longer
  than any envelope lives (:data:`GAP_LIFETIME`). An envelope :data:`WINDOW` or more
  ahead of the lowest missing counter is not recognised yet; the node keeps it like any
  relayed envelope and tries again each time the window moves (:meth:`Session.open`
  returns the counters that became expected). :data:`WINDOW` stays below the ratchet's
  ``MAX_SKIP``, so whatever the window recognises the ratchet can open;
- an *envelope key*, under which the Double Ratchet message (whose header holds the
  ratchet public key and counters) is encrypted with XChaCha20-Poly1305, the envelope
  header being the associated data. Relays see neither the ratchet header nor its length.

The Double Ratchet (``crypto.ratchet``) gives per-message forward secrecy. Alice's first
ratchet key pair meets Bob's prekey, so Alice can keep writing before Bob answers; Bob's
ratchet starts from the prekey key pair that opened the first contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import primitives as p
from crypto.errors import DecodeError
from crypto.noise import KeyPair
from crypto.padding import bucket_for, pad, unpad
from crypto.ratchet import Ratchet
from crypto.wire import expect_bytes, expect_int, expect_list, expect_seq, pack, strict_unpack

WINDOW = 512  # counters recognised from the lowest one not yet received (< MAX_SKIP)
GAP_LIFETIME = 8 * 86400  # longer than any envelope lives (7 days, rounded up)
TAG_LEN = 8
_RATCHET_AD = b"steppe/session/v1"


def _derive(sk: bytes, label: bytes) -> bytes:
    return p.blake2b(label, key=sk, digest_size=32, person=b"steppe-sess-kdf")


@dataclass(frozen=True, slots=True)
class Inner:
    msg_id: bytes
    created: int
    content_type: int
    body: bytes
    receipt_secret: bytes

    def encode(self) -> bytes:
        return pack([self.msg_id, self.created, self.content_type, self.body, self.receipt_secret])

    @classmethod
    def decode(cls, data: bytes) -> Inner:
        items = expect_list(strict_unpack(data, max_size=len(data)), 5, "session payload")
        return cls(
            expect_bytes(items[0], "msg id", size=16),
            expect_int(items[1], "created"),
            expect_int(items[2], "content type", hi=255),
            expect_bytes(items[3], "body"),
            expect_bytes(items[4], "receipt", max_size=16),
        )


@dataclass(slots=True)
class _Window:
    """The counters a session may still receive: ``[low, low + WINDOW)`` minus those
    already received (counter -> when it arrived). ``low`` is the lowest counter not yet
    received; it moves past a missing one once a later message has waited longer than any
    envelope lives (the missing one has expired on the way)."""

    low: int = 0
    received: dict[int, int] = field(default_factory=dict)

    def counters(self) -> list[int]:
        return [c for c in range(self.low, self.low + WINDOW) if c not in self.received]

    def expects(self, counter: int) -> bool:
        return self.low <= counter < self.low + WINDOW and counter not in self.received

    def receive(self, counter: int, now: int) -> list[int]:
        """Mark ``counter`` received; return the counters that became expected."""
        top = self.low + WINDOW
        self.received[counter] = now
        self._advance()
        return list(range(top, self.low + WINDOW))

    def _advance(self) -> None:
        while self.low in self.received:
            del self.received[self.low]
            self.low += 1

    def expire(self, now: int) -> tuple[list[int], list[int]]:
        """Give up on missing counters below a message older than any envelope lives.
        Returns the counters no longer expected and those newly expected."""
        old = [c for c, t in self.received.items() if t < now - GAP_LIFETIME]
        if not old:
            return [], []
        before = set(self.counters())
        self.low = max(old) + 1
        self.received = {c: t for c, t in self.received.items() if c >= self.low}
        self._advance()
        after = set(self.counters())
        return sorted(before - after), sorted(after - before)


@dataclass(slots=True)
class Session:
    sid: bytes
    peer: bytes  # the contact's Ed25519 identity key
    ratchet: Ratchet
    send_tag_key: bytes
    recv_tag_key: bytes
    send_env_key: bytes
    recv_env_key: bytes
    sent: int = 0  # the counter of the next message we send
    window: _Window = field(default_factory=_Window)
    last_used: int = 0

    @classmethod
    def as_alice(cls, sk: bytes, peer: bytes, bob_prekey: bytes, rng: p.Rng, now: int) -> Session:
        return cls._make(sk, peer, Ratchet.init_alice(sk, bob_prekey, rng), True, now)

    @classmethod
    def as_bob(cls, sk: bytes, peer: bytes, prekey: KeyPair, now: int) -> Session:
        return cls._make(sk, peer, Ratchet.init_bob(sk, prekey), False, now)

    @classmethod
    def _make(cls, sk: bytes, peer: bytes, ratchet: Ratchet, alice: bool, now: int) -> Session:
        a2b, b2a = (b"a2b", b"b2a")
        send, recv = (a2b, b2a) if alice else (b2a, a2b)
        return cls(
            _derive(sk, b"sid")[:8],
            peer,
            ratchet,
            _derive(sk, b"tag" + send),
            _derive(sk, b"tag" + recv),
            _derive(sk, b"env" + send),
            _derive(sk, b"env" + recv),
            last_used=now,
        )

    def to_list(self) -> list[object]:
        keys = (self.send_tag_key, self.recv_tag_key, self.send_env_key, self.recv_env_key)
        return [
            self.sid,
            self.peer,
            self.ratchet.to_list(),
            *keys,
            self.sent,
            [self.window.low, sorted(self.window.received.items())],
            self.last_used,
        ]

    @classmethod
    def from_list(cls, obj: object) -> Session:
        f = expect_list(obj, 10, "session")
        low, raw = expect_list(f[8], 2, "window")
        received = {}
        for item in expect_seq(raw, "received counters", WINDOW):
            c, t = expect_list(item, 2, "received counter")
            received[expect_int(c, "counter")] = expect_int(t, "arrival time")
        k = [expect_bytes(x, "session key", size=32) for x in f[3:7]]
        return cls(
            expect_bytes(f[0], "sid", size=8),
            expect_bytes(f[1], "peer", size=32),
            Ratchet.from_list(f[2]),
            k[0],
            k[1],
            k[2],
            k[3],
            sent=expect_int(f[7], "sent counter"),
            window=_Window(expect_int(low, "low counter"), received),
            last_used=expect_int(f[9], "last used"),
        )

    @property
    def can_send(self) -> bool:
        return self.ratchet.cks is not None

    @staticmethod
    def tag(key: bytes, counter: int) -> bytes:
        return p.blake2b(counter.to_bytes(8, "big"), key=key, digest_size=TAG_LEN)

    def next_tag(self) -> bytes:
        """The tag for the next message we send (each counter is used once)."""
        tag = self.tag(self.send_tag_key, self.sent)
        self.sent += 1
        return tag

    def seal(self, inner: Inner, header_ad_for: bytes, rng: p.Rng) -> bytes:
        """The envelope body: nonce || XChaCha20-Poly1305(env key, padded ratchet message).
        ``header_ad_for`` is the envelope header the body will travel under."""
        message = self.ratchet.encrypt(inner.encode(), _RATCHET_AD)
        size = bucket_for(len(message) + 4 + 24 + 16)
        nonce = rng(24)
        return nonce + p.xchacha_encrypt(
            self.send_env_key, nonce, pad(message, size - 24 - 16), header_ad_for
        )

    def expected_tags(self) -> dict[bytes, int]:
        """tag -> counter for every message we may receive next."""
        return {self.tag(self.recv_tag_key, c): c for c in self.window.counters()}

    def tags_for(self, counters: list[int]) -> dict[bytes, int]:
        return {self.tag(self.recv_tag_key, c): c for c in counters}

    def open(
        self, body: bytes, header_ad: bytes, counter: int, now: int, rng: p.Rng
    ) -> tuple[Inner, list[int]]:
        """Decrypt a body whose tag matched ``counter``; the state only changes if it
        authenticates. Also returns the counters that became expected (the window moved)."""
        if len(body) < 24 + 16:
            raise DecodeError("session body too short")
        if not self.window.expects(counter):
            raise DecodeError("tag counter no longer expected")
        message = unpad(p.xchacha_decrypt(self.recv_env_key, body[:24], body[24:], header_ad))
        inner = Inner.decode(self.ratchet.decrypt(message, _RATCHET_AD, now, rng))
        self.last_used = now
        return inner, self.window.receive(counter, now)


ROUTE_KEY_LEN = 8
_ROUTE_PERSON = b"steppe-route"


def route_key(tag_key: bytes, period: int) -> bytes:
    """A destination key for routing strategies that need one (PRoPHET): the same for
    every message of one direction of one session within one ``period``, and unlinkable
    to the keys of other periods and to the per-message tags (BLAKE2b-64 keyed by the
    direction's tag key, personalised apart from :meth:`Session.tag`). Both ends can
    compute it: the sender from ``send_tag_key``, the recipient from ``recv_tag_key``."""
    return p.blake2b(
        period.to_bytes(8, "big", signed=True),
        key=tag_key,
        digest_size=ROUTE_KEY_LEN,
        person=_ROUTE_PERSON,
    )


def message_tag(envelope_tag: bytes) -> bytes:
    """The per-message part of a session envelope's routing tag, which the recipient
    looks up: its first :data:`TAG_LEN` bytes (a strategy may append a route key)."""
    return envelope_tag[:TAG_LEN]
