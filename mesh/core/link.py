"""Link sessions: a Noise XX handshake, then encrypted, counted, padded records, fragmented
to the link's MTU.

Theory of operation
-------------------
Layers, bottom up:

1. **Frames** (clear), in one of two modes chosen by the driver:

   *Message links* (Bluetooth LE, radio; ``stream=False``). Every wire frame is exactly
   ``mtu`` bytes:
   ``record_no (u16) | index (u16) | count (u16) | chunk`` — records are padded so every
   chunk is full. A :class:`Reassembler` rebuilds records with hard bounds: at most
   :data:`MAX_CONCURRENT` records in flight, :data:`MAX_RECORD` bytes per record,
   :data:`MAX_BUFFERED` bytes in total, :data:`REASSEMBLY_TIMEOUT` seconds per record.
   Exceeding a bound is the peer breaking the protocol: the link closes.

   *Stream links* (TCP; ``stream=True``). A record travels whole as ``length (u24) |
   record``; the driver hands over bytes as they come, in chunks of any size, and a
   :class:`Deframer` cuts records out of them. A declared length above
   :data:`MAX_STREAM_RECORD` closes the link before anything is buffered. Records after
   the handshake are padded to one of :data:`RECORD_BUCKETS` (powers of two and 1.5 times
   them), not to an MTU: an observer of the stream learns each record's size bucket, and
   so roughly how much was said, which it would learn from the stream's volume and timing
   anyway; it learns nothing of how many messages or envelopes a record holds.
2. **Records**. During the handshake a record is one Noise XX message. Afterwards a record
   is ``ChaCha20-Poly1305(counter nonce, type | length | payload | zero padding)``, padded so
   that the ciphertext fills whole fragments. The counter is implicit (links deliver in
   order), so a replayed, dropped, reordered or altered record fails to decrypt, and any
   decryption failure closes the link. Both directions rekey (Noise ``REKEY``) every
   :data:`REKEY_EVERY` records, at the same record number on both sides.
3. **Messages**: the payloads handed to the node.

Keys: laptops and phones use a fresh static key per connection (nothing to track across
contacts); relays may use a long-term key that users pin. Whatever the link-layer key, the
end-to-end keys a message is sealed to are chosen from contact cards, never from the link.

Everything is sans-I/O: :meth:`LinkSession.receive_frame` and :meth:`LinkSession.send`
return :class:`LinkOutput` (frames to transmit, messages received, a close reason).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from crypto.errors import CryptoError
from crypto.noise import CipherState, HandshakeState, KeyPair
from crypto.primitives import Rng
from mesh.core.errors import ConfigError, LocalError, PeerError

PROLOGUE = b"steppe/link/v1"
HEADER = 6
TAG = 16
MIN_MTU = 20
MAX_MTU = 65535
MAX_CONCURRENT = 8
MAX_RECORD = 64 * 1024
MAX_BUFFERED = 256 * 1024
REASSEMBLY_TIMEOUT = 30
HANDSHAKE_TIMEOUT = 30
REKEY_EVERY = 1 << 16
STREAM_HEADER = 3
MAX_STREAM_RECORD = MAX_RECORD + TAG
RECORD_BUCKETS: tuple[int, ...] = tuple(
    sorted(b for k in range(6, 17) for b in (1 << k, 3 << (k - 1)) if b <= MAX_STREAM_RECORD)
)
_REC_DATA = 1
_REC_CLOSE = 2


class LinkState(Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class CloseReason(Enum):
    LOCAL = "closed locally"
    PEER = "closed by peer"
    DECRYPT_FAILED = "decryption failed (tampered, replayed or reordered record)"
    BAD_FRAME = "malformed frame"
    LIMIT = "reassembly limit exceeded"
    TIMEOUT = "timed out"


@dataclass(slots=True)
class LinkOutput:
    frames: list[bytes] = field(default_factory=list)
    messages: list[bytes] = field(default_factory=list)
    closed: CloseReason | None = None
    opened: bool = False


class ProtocolViolation(PeerError):
    def __init__(self, reason: CloseReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(slots=True)
class _Partial:
    count: int
    started: int
    chunks: dict[int, bytes] = field(default_factory=dict)
    size: int = 0


class Reassembler:
    """Bounded reassembly of fragments into records."""

    def __init__(self, mtu: int) -> None:
        self.chunk = mtu - HEADER
        self._partials: dict[int, _Partial] = {}
        self._buffered = 0

    def feed(self, frame: bytes, now: int) -> bytes | None:
        if len(frame) != self.chunk + HEADER:
            raise ProtocolViolation(CloseReason.BAD_FRAME, "frame is not MTU-sized")
        rec = int.from_bytes(frame[0:2], "big")
        index = int.from_bytes(frame[2:4], "big")
        count = int.from_bytes(frame[4:6], "big")
        if count == 0 or index >= count:
            raise ProtocolViolation(CloseReason.BAD_FRAME, "bad fragment index")
        if count * self.chunk > MAX_RECORD + self.chunk:
            raise ProtocolViolation(CloseReason.LIMIT, "record too large")
        chunk = frame[HEADER:]
        if count == 1:
            return chunk
        part = self._partials.get(rec)
        if part is None:
            if len(self._partials) >= MAX_CONCURRENT:
                raise ProtocolViolation(CloseReason.LIMIT, "too many concurrent records")
            part = self._partials[rec] = _Partial(count, now)
        if part.count != count or index in part.chunks:
            raise ProtocolViolation(CloseReason.BAD_FRAME, "inconsistent fragments")
        if self._buffered + len(chunk) > MAX_BUFFERED:
            raise ProtocolViolation(CloseReason.LIMIT, "reassembly buffer full")
        part.chunks[index] = chunk
        part.size += len(chunk)
        self._buffered += len(chunk)
        if len(part.chunks) < count:
            return None
        del self._partials[rec]
        self._buffered -= part.size
        return b"".join(part.chunks[i] for i in range(count))

    def expire(self, now: int) -> int:
        """Drop records older than the timeout; return how many were dropped."""
        dead = [r for r, p in self._partials.items() if now - p.started >= REASSEMBLY_TIMEOUT]
        for r in dead:
            self._buffered -= self._partials.pop(r).size
        return len(dead)

    def next_deadline(self) -> int | None:
        if not self._partials:
            return None
        return min(p.started for p in self._partials.values()) + REASSEMBLY_TIMEOUT

    @property
    def buffered(self) -> int:
        return self._buffered


class Deframer:
    """Records out of a byte stream: ``length (u24) | record``, bounded."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= STREAM_HEADER:
            n = int.from_bytes(self._buf[:STREAM_HEADER], "big")
            if n == 0 or n > MAX_STREAM_RECORD:
                raise ProtocolViolation(CloseReason.LIMIT, "stream record too large")
            if len(self._buf) < STREAM_HEADER + n:
                break
            out.append(bytes(self._buf[STREAM_HEADER : STREAM_HEADER + n]))
            del self._buf[: STREAM_HEADER + n]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


def frame_stream(record: bytes) -> bytes:
    """One record as it travels on a stream link."""
    return len(record).to_bytes(STREAM_HEADER, "big") + record


def record_bucket(size: int) -> int:
    """The smallest record size of :data:`RECORD_BUCKETS` that holds ``size`` bytes."""
    for b in RECORD_BUCKETS:
        if size <= b:
            return b
    raise ConfigError("record too large")


def fragment(record: bytes, record_no: int, mtu: int) -> list[bytes]:
    """Split a record (already a multiple of the chunk size) into MTU-sized frames."""
    chunk = mtu - HEADER
    count = max(1, -(-len(record) // chunk))
    record = record.ljust(count * chunk, b"\x00")
    head = (record_no & 0xFFFF).to_bytes(2, "big")
    return [
        head + i.to_bytes(2, "big") + count.to_bytes(2, "big") + record[i * chunk : (i + 1) * chunk]
        for i in range(count)
    ]


class LinkSession:
    """One side of one link. Build it, call :meth:`start`, then feed frames."""

    def __init__(
        self,
        *,
        initiator: bool,
        static: KeyPair,
        mtu: int,
        rng: Rng,
        now: int,
        hello: bytes = b"",
        stream: bool = False,
    ) -> None:
        if not MIN_MTU <= mtu <= MAX_MTU:
            raise ConfigError(f"MTU must be in [{MIN_MTU}, {MAX_MTU}]")
        self.initiator = initiator
        self.mtu = mtu
        self.stream = stream
        self._deframer = Deframer()
        self.state = LinkState.HANDSHAKE
        self.started = now
        self.hello = hello
        self.peer_hello: bytes | None = None
        self._hs = HandshakeState("XX", initiator, PROLOGUE, rng=rng, s=static)
        self._reasm = Reassembler(mtu)
        self._send: CipherState | None = None
        self._recv: CipherState | None = None
        self._sent_records = 0
        self._recv_records = 0
        self._record_no = 0
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def peer_static(self) -> bytes | None:
        """The peer's link-layer Noise key (fresh per connection unless it is a relay)."""
        return self._hs.rs

    @property
    def handshake_hash(self) -> bytes:
        return self._hs.handshake_hash

    def start(self) -> LinkOutput:
        out = LinkOutput()
        if self.initiator:
            self._emit_handshake(out, b"")
        return out

    def _emit(self, out: LinkOutput, record: bytes) -> None:
        if self.stream:
            frames = [frame_stream(record)]
        else:
            frames = fragment(record, self._record_no, self.mtu)
            self._record_no += 1
        self.bytes_sent += sum(map(len, frames))
        out.frames.extend(frames)

    def _emit_handshake(self, out: LinkOutput, payload: bytes) -> None:
        msg = self._hs.write_message(payload)
        self._emit(out, len(msg).to_bytes(2, "big") + msg)
        self._maybe_open(out)

    def _maybe_open(self, out: LinkOutput) -> None:
        if self._hs.finished and self.state is LinkState.HANDSHAKE:
            self._send, self._recv = self._hs.split()
            self.state = LinkState.OPEN
            out.opened = True

    def _close(self, out: LinkOutput, reason: CloseReason) -> LinkOutput:
        self.state = LinkState.CLOSED
        out.closed = reason
        self._send = self._recv = None
        return out

    def receive_frame(self, frame: bytes, now: int) -> LinkOutput:
        out = LinkOutput()
        if self.state is LinkState.CLOSED:
            return out
        self.bytes_received += len(frame)
        try:
            if self.stream:
                for whole in self._deframer.feed(frame):
                    self._on_record(whole, out)
                    if out.closed is not None:
                        break
            else:
                record = self._reasm.feed(frame, now)
                if record is not None:
                    self._on_record(record, out)
        except ProtocolViolation as exc:
            return self._close(out, exc.reason)
        except CryptoError:
            return self._close(out, CloseReason.DECRYPT_FAILED)
        return out

    def _on_record(self, record: bytes, out: LinkOutput) -> None:
        if self.state is LinkState.HANDSHAKE:
            n = int.from_bytes(record[:2], "big")
            if n > len(record) - 2:
                raise ProtocolViolation(CloseReason.BAD_FRAME, "bad handshake length")
            payload = self._hs.read_message(record[2 : 2 + n])
            if self.initiator or self._hs.finished:  # the second or third message
                self.peer_hello = payload or None
            elif payload:  # the first message travels in clear: it carries nothing
                raise ProtocolViolation(CloseReason.BAD_FRAME, "payload in handshake message 1")
            if not self._hs.finished:
                self._emit_handshake(out, self.hello)
            self._maybe_open(out)
            return
        assert self._recv is not None
        plain = self._recv.decrypt_with_ad(b"", record)
        self._recv_records += 1
        if self._recv_records % REKEY_EVERY == 0:
            self._recv.rekey()
        if len(plain) < 5:
            raise ProtocolViolation(CloseReason.BAD_FRAME, "record shorter than its header")
        kind, length = plain[0], int.from_bytes(plain[1:5], "big")
        pad = len(plain) - 5 - length
        if pad < 0 or plain.count(0, 5 + length) != pad:
            raise ProtocolViolation(CloseReason.BAD_FRAME, "bad record padding")
        if kind == _REC_DATA:
            out.messages.append(plain[5 : 5 + length])
        elif kind == _REC_CLOSE:
            self._close(out, CloseReason.PEER)
        else:
            raise ProtocolViolation(CloseReason.BAD_FRAME, "unknown record type")

    def _seal(self, kind: int, payload: bytes) -> bytes:
        assert self._send is not None
        plain_len = 5 + len(payload)
        if self.stream:
            total = record_bucket(plain_len + TAG)
        else:
            chunk = self.mtu - HEADER
            total = max(1, -(-(plain_len + TAG) // chunk)) * chunk
        plain = bytes([kind]) + len(payload).to_bytes(4, "big") + payload
        record = self._send.encrypt_with_ad(b"", plain.ljust(total - TAG, b"\x00"))
        self._sent_records += 1
        if self._sent_records % REKEY_EVERY == 0:
            self._send.rekey()
        return record

    def send(self, message: bytes) -> LinkOutput:
        """Encrypt and fragment one message (the link must be open)."""
        if self.state is not LinkState.OPEN:
            raise LocalError("link is not open")
        if len(message) > MAX_RECORD - 64:
            raise ConfigError("message too large for one record")
        out = LinkOutput()
        self._emit(out, self._seal(_REC_DATA, message))
        return out

    def close(self) -> LinkOutput:
        out = LinkOutput()
        if self.state is LinkState.OPEN:
            self._emit(out, self._seal(_REC_CLOSE, b""))
        return self._close(out, CloseReason.LOCAL)

    def tick(self, now: int) -> LinkOutput:
        out = LinkOutput()
        if self.state is LinkState.HANDSHAKE and now - self.started >= HANDSHAKE_TIMEOUT:
            return self._close(out, CloseReason.TIMEOUT)
        self._reasm.expire(now)
        return out

    def next_deadline(self) -> int | None:
        if self.state is LinkState.CLOSED:
            return None
        deadlines = [d for d in (self._reasm.next_deadline(),) if d is not None]
        if self.state is LinkState.HANDSHAKE:
            deadlines.append(self.started + HANDSHAKE_TIMEOUT)
        return min(deadlines) if deadlines else None
