"""The honest run: two contacts between V and A, back to back, recorded from V's side.

Contact 1 (link 1): A dials, V answers. Handshake, HELLO, SYMBOLS with MORE rounds, TRADE,
ENVELOPE of every kind, RECEIPTS both ways as the receipt delay passes, a message sent
while the link is open, a resync; then the link goes down. Between the contacts both sides
write session messages and take in more relayed mail. Contact 2 (link 2): V dials, so V
now receives MORE instead of SYMBOLS. A final tick after both links are gone.

Every event V is fed is a :class:`Step`, labelled with the stage it belongs to (the
protocol message its record carries, decrypted with V's own receive key before V reads
it; or ``before`` / ``idle`` / ``closed`` for events outside a record). The run is
deterministic: the same world and link parameters give the same steps, so a step index is
a reproducible position. :func:`honest_run` snapshots V and A just before the steps it is
asked for.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from crypto.noise import CipherState
from mesh.core import envelope as E
from mesh.core import link as L
from mesh.core import protocol as P
from mesh.core.events import (
    Action,
    CloseLink,
    Event,
    FrameReceived,
    LinkDown,
    LinkUp,
    SendMessage,
    Tick,
    Transmit,
)
from mesh.core.node import Node
from tests.fuzzing.world import World, relayed, restore, snapshot

LinkParams = Mapping[str, Any]  # LinkUp fields besides link and initiator (mtu, ...)
_NAMES = {
    P.Hello: "hello",
    P.Links: "links",
    P.SymbolsMsg: "symbols",
    P.More: "more",
    P.Trade: "trade",
    P.EnvelopeMsg: "envelope",
    P.Receipts: "receipts",
}
MESSAGE_STAGES = tuple(_NAMES.values())


@dataclass(frozen=True, slots=True)
class Step:
    event: Event
    now: int
    contact: int  # 1 or 2; 0 before the first contact
    link: int  # V's link of that contact
    label: str  # handshake, hello, ..., or before / idle / closed
    boundary: bool  # a frame that starts a record
    hello_seen: bool  # V had A's HELLO on this link before the step
    record: int = -1  # index in Trace.records of the payload its record carries

    @property
    def stage(self) -> str:
        return f"c{self.contact}-{self.label}"


@dataclass(slots=True)
class Trace:
    """What the honest run recorded."""

    params: LinkParams
    steps: list[Step] = field(default_factory=list)
    messages: list[tuple[str, bytes]] = field(default_factory=list)  # (type, one message)
    records: list[tuple[str, bytes]] = field(default_factory=list)  # (label, batch payload)
    frames: dict[int, list[bytes]] = field(default_factory=dict)  # link -> frames A sent V
    sent_by_v: dict[int, list[bytes]] = field(default_factory=dict)  # link -> V's frames
    snapshots: dict[int, tuple[bytes, bytes | None]] = field(default_factory=dict)  # V, A
    _envelopes: list[bytes] | None = None
    _stages: dict[str, list[int]] | None = None

    @property
    def framing(self) -> Framing:
        return Framing(self.params)

    def envelopes(self) -> list[bytes]:
        """The envelope frames A handed V (every kind)."""
        if self._envelopes is None:
            out = []
            for label, m in self.messages:
                msg = P.decode(m) if label == "envelope" else None
                if isinstance(msg, P.EnvelopeMsg):
                    out.append(msg.frame)
            out = list(dict.fromkeys(out))  # each envelope once
            self._envelopes = out
        return self._envelopes

    def honest_of(self, kind: E.Kind) -> list[E.Envelope]:
        return [e for e in map(E.decode, self.envelopes()) if e.kind is kind]

    def stages(self) -> dict[str, list[int]]:
        """Stage -> the indices of its steps."""
        if self._stages is None:
            self._stages = {}
            for i, s in enumerate(self.steps):
                self._stages.setdefault(s.stage, []).append(i)
        return self._stages


def record_label(session: L.LinkSession, record: bytes) -> tuple[str, bytes | None]:
    """The stage of a whole record V is about to read (the type of the first message of
    its batch), and its payload."""
    if session.state is L.LinkState.HANDSHAKE:
        return "handshake", None
    recv = session._recv  # the same key and counter V will decrypt this record with
    assert recv is not None
    plain = CipherState(recv.k, recv.n).decrypt_with_ad(b"", record)
    if plain[0] != 1:
        return "close", None
    payload = plain[5 : 5 + int.from_bytes(plain[1:5], "big")]
    return _NAMES[type(P.decode_record(payload)[0])], payload


class Framing:
    """How a link mode carries records: MTU-sized fragments, or a byte stream (records
    framed by length) that the driver reads ``mtu`` bytes at a time."""

    def __init__(self, params: LinkParams) -> None:
        self.mtu: int = params["mtu"]
        self.stream: bool = bool(params.get("stream", False))

    def frames(self, record: bytes, record_no: int = 0) -> list[bytes]:
        """What a sender puts on the wire for one record, as the reader gets it."""
        if not self.stream:
            return L.fragment(record, record_no, self.mtu)
        data = L.frame_stream(record)
        return [data[i : i + self.mtu] for i in range(0, len(data), self.mtu)]

    def split(self, transmitted: bytes) -> list[bytes]:
        """A transmitted frame as the reader gets it (a stream arrives in reads)."""
        if not self.stream:
            return [transmitted]
        return [transmitted[i : i + self.mtu] for i in range(0, len(transmitted), self.mtu)]

    def padded(self, plain_len: int) -> int:
        """The record size a plaintext of ``plain_len`` bytes is padded to (tag included)."""
        if self.stream:
            size = plain_len + L.TAG
            return L.record_bucket(size) if size <= L.RECORD_BUCKETS[-1] else size
        chunk = self.mtu - L.HEADER
        return max(1, -(-(plain_len + L.TAG) // chunk)) * chunk

    def reader(self) -> Reader:
        return Reader(self)


class Reader:
    """Whole records out of frames, as the victim's link session cuts them."""

    def __init__(self, framing: Framing) -> None:
        self._reasm = None if framing.stream else L.Reassembler(framing.mtu)
        self._deframer = L.Deframer()

    def feed(self, frame: bytes) -> list[bytes]:
        if self._reasm is None:
            return self._deframer.feed(frame)
        record = self._reasm.feed(frame, 0)
        return [] if record is None else [record]

    def at_start(self, frame: bytes) -> bool:
        """Does this frame start a record?"""
        if self._reasm is None:
            return self._deframer.buffered == 0
        return int.from_bytes(frame[2:4], "big") == 0


class _Run:
    def __init__(
        self, world: World, params: LinkParams, want: frozenset[int], peer: frozenset[int]
    ) -> None:
        self.w = world
        self.params = params
        self.want = want
        self.want_peer = peer
        self.trace = Trace(params)
        self.queue: deque[tuple[str, int, bytes]] = deque()  # (to "v" | "a", link, frame)
        self.contact = 0
        self.link = 0
        self.framing = Framing(params)
        self.mirror = self.framing.reader()
        self.pending: list[Step] = []  # frames of the record being assembled

    # -- feeding ------------------------------------------------------------------------
    def to_v(self, event: Event) -> None:
        if isinstance(event, FrameReceived):
            self._frame_to_v(event)
            return
        ln = self.w.v.links.get(self.link)
        label = "idle" if ln is not None else ("closed" if self.contact else "before")
        if isinstance(event, LinkUp):
            label = "before"
        hello = ln is not None and ln.hello is not None
        self._step(Step(event, self.w.now, self.contact, self.link, label, False, hello))

    def _frame_to_v(self, ev: FrameReceived) -> None:
        ln = self.w.v.links[ev.link]
        boundary = self.mirror.at_start(ev.data)
        hello = ln.hello is not None
        records = self.mirror.feed(ev.data)
        self.trace.frames.setdefault(ev.link, []).append(ev.data)
        if not records:  # labelled when its record is complete
            self.pending.append(Step(ev, self.w.now, self.contact, ev.link, "", boundary, hello))
            self._snap(len(self.trace.steps) + len(self.pending) - 1)
            self.route("v", self.w.v.handle(ev, self.w.now))
            return
        (record,) = records  # the driver cuts one transmitted record into reads
        label, payload = record_label(ln.session, record)
        index = -1
        if payload is not None:
            index = len(self.trace.records)
            self.trace.records.append((label, payload))
            for msg in P.decode_record(payload):
                self.trace.messages.append((_NAMES[type(msg)], P.encode(msg)))
        for step in self.pending:
            self.trace.steps.append(_relabel(step, label, index))
        self.pending = []
        opening = ln.session.state is L.LinkState.HANDSHAKE
        self._step(Step(ev, self.w.now, self.contact, ev.link, label, boundary, hello, index))
        if opening and ln.session.state is L.LinkState.OPEN and ln.session.peer_hello:
            # A's HELLO came inside its handshake message: traced as a message, so the
            # cases that send messages (and the attacker's handshake) can use it
            for msg in P.decode_record(ln.session.peer_hello):
                self.trace.messages.append((_NAMES[type(msg)], P.encode(msg)))

    def _snap(self, index: int) -> None:
        if index in self.want:
            a = snapshot(self.w.a) if index in self.want_peer else None
            self.trace.snapshots[index] = (snapshot(self.w.v), a)

    def _step(self, step: Step) -> None:
        assert not self.pending, "an event between the fragments of a record"
        self._snap(len(self.trace.steps))
        self.trace.steps.append(step)
        self.route("v", self.w.v.handle(step.event, step.now))

    def to_a(self, event: Event) -> None:
        self.route("a", self.w.a.handle(event, self.w.now))

    def route(self, side: str, actions: list[Action]) -> None:
        for act in actions:
            if isinstance(act, Transmit):
                if side == "v":
                    self.trace.sent_by_v.setdefault(act.link, []).append(act.data)
                    self.queue.append(("a", act.link, act.data))
                else:  # V reads it as the driver would hand it over
                    self.queue.extend(("v", act.link, f) for f in self.framing.split(act.data))
            elif isinstance(act, CloseLink):
                raise RuntimeError(f"the honest run closed a link ({side}): {act.reason}")

    def pump(self) -> None:
        while self.queue:
            side, link, frame = self.queue.popleft()
            if side == "v":
                self.to_v(FrameReceived(link, frame))
            else:
                self.to_a(FrameReceived(link, frame))

    # -- the script -----------------------------------------------------------------------
    def tick(self, seconds: int) -> None:
        for _ in range(seconds):
            self.w.now += 1
            self.to_a(Tick())
            self.to_v(Tick())
            self.pump()

    def contact_(self, number: int, v_dials: bool) -> None:
        self.contact, self.link = number, number
        self.mirror = self.framing.reader()
        self.to_v(LinkUp(number, initiator=v_dials, **self.params))
        self.to_a(LinkUp(number, initiator=not v_dials, **self.params))
        self.pump()
        self.tick(6)  # receipts are released and passed on
        self.to_a(SendMessage(self.w.v.identity.sign_public, b"while the link is open"))
        self.pump()
        self.w.now += self.w.v.config.resync_every
        self.tick(2)  # a resync
        self.to_a(LinkDown(number))
        self.to_v(LinkDown(number))


def _relabel(step: Step, label: str, record: int) -> Step:
    s = step
    return Step(s.event, s.now, s.contact, s.link, label, s.boundary, s.hello_seen, record)


def honest_run(
    world_blob: bytes,
    params: LinkParams,
    want: frozenset[int] = frozenset(),
    peer: frozenset[int] = frozenset(),
) -> Trace:
    """Run the script from a pickled :class:`World`; snapshot V before the steps in
    ``want``, and A too before those in ``peer``."""
    run = _Run(restore(world_blob), params, want, peer)
    w = run.w
    w.now += 10
    run.to_v(Tick())
    run.contact_(1, v_dials=False)
    w.now += 60
    run.to_a(SendMessage(w.v.identity.sign_public, b"between contacts, from A"))
    run.to_v(SendMessage(w.a.identity.sign_public, b"between contacts, from V"))
    r = random.Random(w.now)
    w.a.courier.import_frames(relayed(r, 4, w.now), b"relay", w.now)
    w.v.courier.import_frames(relayed(r, 4, w.now), b"relay", w.now)
    run.tick(1)
    run.contact_(2, v_dials=True)
    w.now += 30
    run.to_v(Tick())
    return run.trace


def victim(trace: Trace, index: int) -> Node:
    v = restore(trace.snapshots[index][0])
    assert isinstance(v, Node)
    return v


def peer(trace: Trace, index: int) -> Node:
    """A as it was at the same moment (its keys and sessions: the harness plays A)."""
    blob = trace.snapshots[index][1]
    assert blob is not None, "A was not snapshot here: the plan did not need it"
    a = restore(blob)
    assert isinstance(a, Node)
    return a
