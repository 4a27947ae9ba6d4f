"""Per-contact sessions after first contact: Double Ratchet inside an envelope layer with
rotating, per-message routing tags.

Theory of operation
-------------------
First contact (Noise X to a prekey) leaves both sides with a 32-byte session secret ``SK``
(:func:`crypto.seal.session_secret`). From ``SK`` each side derives, per direction
(``a2b`` from the first-contact sender "Alice" to the recipient "Bob", and ``b2a``):

- a *tag key*: the routing tag of the ``c``-th message sent in day-epoch ``e`` is
  ``BLAKE2b-64(key=tag_key, e || c)``. Every envelope carries a different tag, so a relay
  cannot link two envelopes to the same pair, within an epoch or across epochs. The
  recipient precomputes the tags it expects (a window of :data:`WINDOW` counters per
  epoch, for yesterday, today and tomorrow) and recognises its envelopes by table lookup,
  without trial decryption;
- an *envelope key* per epoch, under which the Double Ratchet message (whose header holds
  the ratchet public key and counters) is encrypted with XChaCha20-Poly1305, the envelope
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

EPOCH = 86400
WINDOW = 64
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
    received: set[int] = field(default_factory=set)
    high: int = 0

    def counters(self) -> range:
        return range(max(0, self.high - WINDOW), self.high + WINDOW)


@dataclass(slots=True)
class Session:
    sid: bytes
    peer: bytes  # the contact's Ed25519 identity key
    ratchet: Ratchet
    send_tag_key: bytes
    recv_tag_key: bytes
    send_env_key: bytes
    recv_env_key: bytes
    sent: dict[int, int] = field(default_factory=dict)  # epoch -> next counter
    windows: dict[int, _Window] = field(default_factory=dict)
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
            sorted(self.sent.items()),
            [[e, w.high, sorted(w.received)] for e, w in sorted(self.windows.items())],
            self.last_used,
        ]

    @classmethod
    def from_list(cls, obj: object) -> Session:
        f = expect_list(obj, 10, "session")
        sent = {}
        for item in expect_seq(f[7], "sent counters", 8):
            e, c = expect_list(item, 2, "sent counter")
            sent[expect_int(e, "epoch")] = expect_int(c, "counter")
        windows = {}
        for item in expect_seq(f[8], "windows", 8):
            e, high, received = expect_list(item, 3, "window")
            got = {expect_int(c, "counter") for c in expect_seq(received, "received", 4 * WINDOW)}
            windows[expect_int(e, "epoch")] = _Window(got, expect_int(high, "high"))
        k = [expect_bytes(x, "session key", size=32) for x in f[3:7]]
        return cls(
            expect_bytes(f[0], "sid", size=8),
            expect_bytes(f[1], "peer", size=32),
            Ratchet.from_list(f[2]),
            k[0],
            k[1],
            k[2],
            k[3],
            sent=sent,
            windows=windows,
            last_used=expect_int(f[9], "last used"),
        )

    @property
    def can_send(self) -> bool:
        return self.ratchet.cks is not None

    @staticmethod
    def tag(key: bytes, epoch: int, counter: int) -> bytes:
        return p.blake2b(
            epoch.to_bytes(4, "big") + counter.to_bytes(4, "big"), key=key, digest_size=TAG_LEN
        )

    @staticmethod
    def _env_key(key: bytes, epoch: int) -> bytes:
        return p.blake2b(epoch.to_bytes(4, "big"), key=key, digest_size=32)

    def next_tag(self, now: int) -> tuple[bytes, int]:
        """The tag for the next message and the epoch it belongs to."""
        epoch = now // EPOCH
        counter = self.sent.get(epoch, 0)
        self.sent = {epoch: counter + 1}
        return self.tag(self.send_tag_key, epoch, counter), epoch

    def seal(self, inner: Inner, header_ad_for: bytes, epoch: int, rng: p.Rng) -> bytes:
        """The envelope body: nonce || XChaCha20-Poly1305(env key, padded ratchet message).
        ``header_ad_for`` is the envelope header the body will travel under."""
        message = self.ratchet.encrypt(inner.encode(), _RATCHET_AD)
        size = bucket_for(len(message) + 4 + 24 + 16)
        nonce = rng(24)
        return nonce + p.xchacha_encrypt(
            self._env_key(self.send_env_key, epoch),
            nonce,
            pad(message, size - 24 - 16),
            header_ad_for,
        )

    def expected_tags(self, now: int) -> dict[bytes, tuple[int, int]]:
        """tag -> (epoch, counter) for the messages we may receive next."""
        epoch = now // EPOCH
        out: dict[bytes, tuple[int, int]] = {}
        for e in (epoch - 1, epoch, epoch + 1):
            win = self.windows.get(e, _Window())
            for c in win.counters():
                if c not in win.received:
                    out[self.tag(self.recv_tag_key, e, c)] = (e, c)
        return out

    def open(
        self, body: bytes, header_ad: bytes, epoch: int, counter: int, now: int, rng: p.Rng
    ) -> Inner:
        """Decrypt a body whose tag matched ``(epoch, counter)``; the state only changes if
        it authenticates."""
        if len(body) < 24 + 16:
            raise DecodeError("session body too short")
        key = self._env_key(self.recv_env_key, epoch)
        message = unpad(p.xchacha_decrypt(key, body[:24], body[24:], header_ad))
        inner = Inner.decode(self.ratchet.decrypt(message, _RATCHET_AD, now, rng))
        win = self.windows.setdefault(epoch, _Window())
        win.received.add(counter)
        win.high = max(win.high, counter + 1)
        win.received = {c for c in win.received if c >= win.high - WINDOW}
        self.windows = {e: w for e, w in self.windows.items() if e >= now // EPOCH - 1}
        self.last_used = now
        return inner
