"""Fuzz cases: a position in the honest run, a family of mutation, and what is fed.

Families, from the outside in:

- ``frame``: one wire frame mutated as bytes (truncation, extension, bit flips, splices,
  fragment-header edits, random bytes of the right and wrong size), replayed, reflected
  (the victim's own frame), duplicated, reordered or sent on another link id;
- ``record``: a whole record re-fragmented after mutation: the handshake record's length
  field (the truncated-tag attack of issue 10) and Noise message, dropped, duplicated or
  reordered fragments, a fragment count that never completes;
- ``message``: a protocol message sealed under the victim's own receive key, so it passes
  the AEAD: tree, non-canonical and byte mutations of every honest message type, bad
  record headers and padding, honest messages out of place; then the honest rest;
- ``envelope``: a mutated envelope frame (re-stamped when it still decodes) offered in a
  TRADE, so the victim asks for it, then sent in an ENVELOPE;
- ``inner``: envelopes whose signed or sealed content is mutated behind valid signatures
  and keys: bulletins, prekey records (the peer's and the offline contact's), first
  contacts sealed to the victim's prekey, session messages sealed with the peer's ratchet;
- ``attacker``: the harness itself runs the peer's side of the Noise XX handshake (fresh
  keys, low-order keys, lying lengths, odd payloads), then talks protocol.

While the link stays open, up to three more mutations follow the first (stacked: each
meets the state the previous one left). After the case the victim gets a short aftermath
(ticks past the reassembly and ask timeouts, sends to its contacts, bulletins, state
export, link down), so state that a peer poisoned is exercised too.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from crypto.errors import CryptoError
from crypto.identity import Identity
from crypto.noise import CipherState, HandshakeState, KeyPair
from mesh.core import envelope as E
from mesh.core import link as L
from mesh.core import messages as M
from mesh.core import protocol as P
from mesh.core import session as S
from mesh.core.config import ASK_TIMEOUT
from mesh.core.events import FrameReceived, LinkDown, SendMessage, Tick
from mesh.core.node import Node
from mesh.core.session import ROUTE_KEY_LEN
from mesh.core.wirecodec import pack_routing
from tests.fuzzing import craft
from tests.fuzzing.honest import Framing, Step, Trace, peer, victim
from tests.fuzzing.mutate import mutate_bytes, mutate_encoded, near_value, pack_or, random_value
from tests.fuzzing.probe import Probe
from tests.fuzzing.world import DIFFICULTY

FAMILIES = ("frame", "record", "message", "envelope", "inner", "attacker")
_WEIGHTS = {"frame": 2.0, "record": 1.5, "message": 3.0, "envelope": 1.5, "inner": 2.5}
# The handshake also carries the HELLOs, which only the attacker (who writes its own
# handshake messages) can vary: it gets the handshake stage's cases most often.
_WEIGHTS["attacker"] = 4.0


@dataclass(frozen=True, slots=True)
class Plan:
    case: int
    stage: str
    index: int  # the step of the honest run the case starts before
    family: str
    stack: tuple[str, ...] = ()  # families that follow while the link stays open

    @property
    def needs_peer(self) -> bool:
        """Does it seal with the peer's sessions (so A's snapshot is needed)?"""
        return "inner" in (self.family, *self.stack)


@dataclass(frozen=True, slots=True)
class Statics:
    """What the harness knows as the peer, besides the snapshots."""

    persona_a: bytes
    a_identity: Identity
    c_identity: Identity


@dataclass
class Ctx:
    trace: Trace
    plan: Plan
    step: Step
    v: Node
    probe: Probe
    r: random.Random
    statics: Statics
    _a: Node | None = None

    @property
    def framing(self) -> Framing:
        return self.trace.framing

    @property
    def mtu(self) -> int:
        return self.framing.mtu

    @property
    def a(self) -> Node:
        if self._a is None:
            self._a = peer(self.trace, self.plan.index)
        return self._a


def plan_case(trace: Trace, case: int, r: random.Random) -> Plan:
    """Stage first (every stage equally likely), then family, position and what follows."""
    plan = _plan(trace, case, r)
    stack = tuple(r.choice(STACKED) for _ in range(r.choice((0, 1, 2, 3))))
    return Plan(plan.case, plan.stage, plan.index, plan.family, stack)


def _plan(trace: Trace, case: int, r: random.Random) -> Plan:
    stages = trace.stages()
    stage = r.choice(sorted(stages))
    steps = stages[stage]
    label = stage.split("-", 1)[1]
    if label in ("before", "closed"):
        families = ["frame"]
    elif label == "handshake":
        families = ["frame", "record", "attacker"]
    elif label == "idle":
        families = ["frame", "message", "envelope", "inner"]
    else:
        families = ["frame", "record", "message", "envelope", "inner"]
    family = r.choices(families, [_WEIGHTS[f] for f in families])[0]
    if family == "attacker":
        return Plan(case, stage, steps[0], family)
    if family != "frame" and label != "idle":
        bounds = [i for i in steps if trace.steps[i].boundary]
        if not bounds:
            return Plan(case, stage, r.choice(steps), "frame")
        return Plan(case, stage, r.choice(bounds), family)
    return Plan(case, stage, r.choice(steps), family)


def make_ctx(trace: Trace, plan: Plan, r: random.Random, statics: Statics) -> Ctx:
    v = victim(trace, plan.index)
    step = trace.steps[plan.index]
    return Ctx(trace, plan, step, v, Probe(v, step.link, step.now), r, statics)


# ---- frame ----------------------------------------------------------------------------------


def _basis(ctx: Ctx) -> bytes:
    if isinstance(ctx.step.event, FrameReceived):
        return ctx.step.event.data
    frames = ctx.trace.frames.get(ctx.step.link) or next(iter(ctx.trace.frames.values()))
    return ctx.r.choice(frames)


def _record_end(ctx: Ctx, start: int) -> int:
    """The index after the last fragment of the record whose fragment is at ``start``."""
    end = start + 1
    steps = ctx.trace.steps
    while end < len(steps) and isinstance(steps[end].event, FrameReceived):
        if steps[end].boundary or steps[end].link != steps[start].link:
            break
        end += 1
    return end


def _honest_rest_of_record(ctx: Ctx, start: int) -> None:
    """The honest fragments after ``start`` of the same record, so the victim decides."""
    for s in ctx.trace.steps[start + 1 : _record_end(ctx, start)]:
        if not ctx.probe.open:
            return
        assert isinstance(s.event, FrameReceived)
        ctx.probe.feed(s.event, crafted=False)


FRAME_KINDS = (
    *("bytes", "bytes", "bytes", "header", "random", "size", "replay", "reflect"),
    *("other-link", "duplicate", "skip", "zeros"),
)


def _header_edit(ctx: Ctx, basis: bytes) -> tuple[str, bytes]:
    """A fragment header field (record number, index, count), or on a stream the length
    prefix, set to an edge value."""
    r = ctx.r
    if ctx.framing.stream:
        value = r.choice((0, 1, len(basis), len(basis) + 1, (1 << 24) - 1, r.randrange(1 << 24)))
        return "hdr-length", value.to_bytes(3, "big") + basis[3:]
    field = r.randrange(3)
    value = r.choice((0, 1, 2, 0xFFFF, r.randrange(0x10000), int.from_bytes(basis[4:6], "big") + 1))
    frame = basis[: 2 * field] + value.to_bytes(2, "big") + basis[2 * field + 2 :]
    return ("hdr-record", "hdr-index", "hdr-count")[field], frame


def run_frame(ctx: Ctx) -> str:
    r, mtu, basis = ctx.r, ctx.mtu, _basis(ctx)
    kind = r.choice(FRAME_KINDS)
    link: int | None = None
    if kind == "bytes":
        corpus = [f for fs in ctx.trace.frames.values() for f in fs]
        kind, frame = mutate_bytes(basis, r, corpus)
    elif kind == "header":
        kind, frame = _header_edit(ctx, basis)
    elif kind == "random":
        frame = r.randbytes(mtu)
    elif kind == "size":
        frame = r.randbytes(r.choice((0, 1, 5, 6, mtu - 1, mtu + 1, 2 * mtu, r.randrange(5000))))
    elif kind == "replay":
        frame = r.choice([f for fs in ctx.trace.frames.values() for f in fs])
    elif kind == "reflect":
        frame = r.choice([f for fs in ctx.trace.sent_by_v.values() for f in fs])
    elif kind == "other-link":
        frame, link = basis, r.choice((1, 2, 3, 0, 2**31 - 1))
    elif kind == "duplicate":
        ctx.probe.frames_in([basis])
        frame = basis
    elif kind == "skip":
        end = _record_end(ctx, ctx.plan.index)
        nxt = ctx.trace.steps[end].event if end < len(ctx.trace.steps) else None
        frame = nxt.data if isinstance(nxt, FrameReceived) else basis
    else:
        frame = bytes(len(basis))
    ctx.probe.frames_in([frame], link=link)
    if link is None and isinstance(ctx.step.event, FrameReceived):
        _honest_rest_of_record(ctx, ctx.plan.index)
    return "frame-" + kind


# ---- record ---------------------------------------------------------------------------------


def run_record(ctx: Ctx) -> str:
    r, framing = ctx.r, ctx.framing
    steps = ctx.trace.steps[ctx.plan.index : _record_end(ctx, ctx.plan.index)]
    frames = [s.event.data for s in steps if isinstance(s.event, FrameReceived)]
    record_no = int.from_bytes(frames[0][:2], "big")
    if framing.stream:
        record = b"".join(frames)[L.STREAM_HEADER :]
    else:
        record = b"".join(f[L.HEADER :] for f in frames)
    op = r.randrange(4)
    if op == 0 and ctx.step.label == "handshake":
        n = int.from_bytes(record[:2], "big")
        noise = record[2 : 2 + n]
        name = "hs-length"
        if r.random() < 0.5:
            name, noise = mutate_bytes(noise, r, ())
            name = "hs-" + name
        lied, rec = craft.handshake_record(noise, r)
        out = framing.frames(rec, record_no)
        name = lied if lied == "hs-length" else name
    elif op == 1:
        name, rec = mutate_bytes(record, r, ())
        out, name = framing.frames(rec, record_no), "rec-" + name
    else:
        out = list(frames)
        name = r.choice(("frag-drop", "frag-dup", "frag-reorder", "frag-count"))
        i = r.randrange(len(out))
        if name == "frag-drop":
            del out[i]
        elif name == "frag-dup":
            out.insert(i, out[i])
        elif name == "frag-reorder":
            r.shuffle(out)
        elif framing.stream:  # a length prefix that lies
            size = (len(record) + r.choice((1, 2, -1, 100, 1 << 23))) % (1 << 24)
            out = framing.split(size.to_bytes(3, "big") + record)
        else:
            count = (len(out) + r.choice((1, 2, 100))).to_bytes(2, "big")
            out = [f[:4] + count + f[6:] for f in out]
    ctx.probe.frames_in(out)
    return name


# ---- message --------------------------------------------------------------------------------


def _cipher(ctx: Ctx) -> CipherState | None:
    ln = ctx.v.links.get(ctx.step.link)
    if ln is None or ln.session.state is not L.LinkState.OPEN:
        return None
    return craft.recv_cipher(ln.session)


def _record_no(ctx: Ctx) -> int:
    ev = ctx.step.event
    return int.from_bytes(ev.data[:2], "big") if isinstance(ev, FrameReceived) else 0x7FFF


def send_records(ctx: Ctx, cipher: CipherState, payloads: list[bytes]) -> None:
    """Records with these payloads (batches of messages), sealed as the peer seals them."""
    no = _record_no(ctx)
    for i, payload in enumerate(payloads):
        if not ctx.probe.open:
            return
        record = craft.data_record(cipher, payload[: craft.MAX_CRAFTED], ctx.framing)
        ctx.probe.frames_in(ctx.framing.frames(record, (no + i) & 0xFFFF))


def send_messages(ctx: Ctx, cipher: CipherState, messages: list[bytes]) -> None:
    """Each message in a record of its own, or all in one batch."""
    if ctx.r.random() < 0.3:
        send_records(ctx, cipher, [craft.batch_variant(messages, ctx.r)[1]])
    else:
        send_records(ctx, cipher, [P.batch([m])[0] for m in messages])


def _honest_message(ctx: Ctx) -> bytes:
    """A message A sent V, most often one of the type the stage is about."""
    same = [m for label, m in ctx.trace.messages if label == ctx.step.label]
    pool = same if same and ctx.r.random() < 0.75 else [m for _l, m in ctx.trace.messages]
    return ctx.r.choice(pool)


def _routing_info(r: random.Random) -> bytes:
    """Well-formed PRoPHET routing info (the honest peer runs epidemic and sends none), so
    mutations of it reach the strategy's parser."""
    own = [r.randbytes(ROUTE_KEY_LEN) for _ in range(r.randrange(4))]
    table = [(r.randbytes(ROUTE_KEY_LEN), r.uniform(1e-12, 1.0)) for _ in range(r.randrange(6))]
    return pack_routing(own, table)


def _hello_fields(hello: P.Hello, info: bytes) -> list[object]:
    return [0, hello.version, "prophet", info, hello.difficulty]


def _mutated_message(ctx: Ctx, honest: bytes) -> tuple[str, bytes]:
    r = ctx.r
    roll = r.random()
    hello = P.decode(honest)
    if isinstance(hello, P.Hello) and roll < 0.5:  # a valid HELLO, its routing info mutated
        info = _routing_info(r)
        name, info = ("routing", info) if r.random() < 0.3 else mutate_encoded(info, r, ())
        if r.random() < 0.3:  # the stamp work it announces too
            hello = replace(hello, difficulty=near_value(hello.difficulty, r))
        return "msg-hello-" + name, pack_or(_hello_fields(hello, info), honest)
    if roll < 0.2:
        return "msg-out-of-place", honest
    if roll < 0.27:
        t = r.choice((0, 1, 2, 3, 4, 5, 6, -1, 255))
        return "msg-random", pack_or([t, *(random_value(r) for _ in range(r.randrange(7)))], honest)
    name, message = mutate_encoded(honest, r, [m for _l, m in ctx.trace.messages])
    return "msg-" + name, message[: craft.MAX_CRAFTED]


def run_message(ctx: Ctx) -> str:
    cipher = _cipher(ctx)
    if cipher is None:
        return run_frame(ctx)
    honest = _honest_message(ctx)
    if ctx.r.random() < 0.12:
        rec = craft.odd_record(cipher, P.batch([honest])[0], ctx.framing, ctx.r)
        ctx.probe.frames_in(ctx.framing.frames(rec, _record_no(ctx)))
        return "msg-record"
    name, message = _mutated_message(ctx, honest)
    if ctx.r.random() < 0.2:  # the record's batch mutated as a whole
        name, payload = mutate_encoded(P.batch([message, honest])[0], ctx.r, ())
        send_records(ctx, cipher, [payload, *_honest_after(ctx)])
        return "rec-batch-" + name
    send_messages(ctx, cipher, [message])
    send_records(ctx, cipher, _honest_after(ctx))
    return name


def _honest_after(ctx: Ctx) -> list[bytes]:
    """The honest messages the victim would have read from here (the one replaced first)."""
    i = ctx.step.record
    if i < 0 or not isinstance(ctx.step.event, FrameReceived):
        return []
    return [payload for _l, payload in ctx.trace.records[i : i + ctx.r.choice((0, 1, 3))]]


# ---- envelopes ------------------------------------------------------------------------------


def deliver_envelope(ctx: Ctx, cipher: CipherState, frame: bytes) -> None:
    offer = craft.trade_offer(frame) if ctx.r.random() < 0.9 else None
    msgs = [offer] if offer is not None else []
    send_messages(ctx, cipher, [*msgs, P.encode(P.EnvelopeMsg(frame))])


def run_envelope(ctx: Ctx) -> str:
    cipher = _cipher(ctx)
    if cipher is None:
        return run_frame(ctx)
    frame = ctx.r.choice(ctx.trace.envelopes())
    name, out = craft.envelope_variant(frame, ctx.r, DIFFICULTY)
    deliver_envelope(ctx, cipher, out)
    return name


def _peer_sessions(ctx: Ctx) -> list[S.Session]:
    """A's sessions towards V that V knows too (the harness seals with A's ratchet)."""
    v = ctx.v
    mine = v.identity.sign_public
    return [
        s
        for s in ctx.a.saved.sessions.values()
        if s.peer == mine and s.can_send and s.sid in v.saved.sessions
    ]


def run_inner(ctx: Ctx) -> str:
    cipher = _cipher(ctx)
    if cipher is None:
        return run_frame(ctx)
    r, now, statics = ctx.r, ctx.step.now, ctx.statics
    what = r.choice(("bulletin", "prekey", "first-contact", "session", "session"))
    sessions = _peer_sessions(ctx) if what == "session" else []
    bulletins, prekeys = ctx.trace.honest_of(E.Kind.BULLETIN), ctx.trace.honest_of(E.Kind.PREKEY)
    if sessions:
        name, env = craft.session_variant(r.choice(sessions), now, r)
    elif what == "bulletin" and bulletins:
        b = bulletins[0]
        honest = M.read_bulletin_envelope(b)
        name, env = craft.bulletin_variant(honest, statics.persona_a, r, b.expiry_hour)
    elif what == "prekey" and prekeys:
        rec_env = r.choice(prekeys)
        rec = M.read_prekey_envelope(rec_env)
        owner = statics.c_identity if rec.identity_key == statics.c_identity.sign_public else None
        owner = owner or statics.a_identity
        name, env = craft.prekey_variant(rec, owner, r, rec_env.expiry_hour)
    else:
        prekey = ctx.v.ring.keys[-1].record
        stranger = r.random() < 0.3  # first contact is how strangers reach us too
        sender = Identity.generate(r.randbytes) if stranger else statics.a_identity
        name, env = craft.first_contact_variant(sender, ctx.v.identity, prekey, now, r)
    frame = craft.stamped_frame(env, DIFFICULTY, r) if r.random() < 0.9 else E.encode(env)
    deliver_envelope(ctx, cipher, frame)
    return name


# ---- the harness as the peer's handshake ----------------------------------------------------


def _reply_record(ctx: Ctx, since: int) -> bytes | None:
    """The first whole record the victim sent us since reply ``since``."""
    try:
        return _first_record(ctx.probe.replies[since:], ctx.framing)
    except L.ProtocolViolation:
        return None


def _first_record(frames: list[bytes], framing: Framing) -> bytes | None:
    reader = framing.reader()
    for f in frames:
        for record in reader.feed(f):
            return record
    return None


def _noise(record: bytes | None) -> bytes | None:
    if record is None:
        return None
    return record[2 : 2 + int.from_bytes(record[:2], "big")]


def _write(ctx: Ctx, hs: HandshakeState, record_no: int) -> str:
    """Write our next handshake message: honest, or with a small-order static or ephemeral
    key, an odd payload, or a record length that lies. Our last message (the second as
    responder, the third as initiator) carries our HELLO, as an honest peer's does: A's,
    sometimes mutated; or the odd payload."""
    r = ctx.r
    names = []
    if hs.s is not None and r.random() < 0.1:
        hs.s = KeyPair(hs.s.private, r.choice(craft.LOW_ORDER))
        names.append("low-order-s")
    payload = r.choice((b"", b"", b"", r.randbytes(r.randrange(1, 200)), r.randbytes(2000)))
    last = not (hs.initiator and hs.e is None)
    hellos = [m for label, m in ctx.trace.messages if label == "hello"]
    if last and hellos and r.random() < 0.8:
        hello = r.choice(hellos)
        if r.random() < 0.7:
            name, hello = _mutated_message(ctx, hello)
            names.append(name)
        payload = P.batch([hello])[0]
    starts_with_e = hs.e is None  # XX messages 1 and 2 open with the ephemeral key
    message = hs.write_message(payload)
    if starts_with_e and r.random() < 0.1:
        message = r.choice(craft.LOW_ORDER) + message[32:]
        names.append("low-order-e")
    rec = len(message).to_bytes(2, "big") + message
    if r.random() < 0.2:
        lied, rec = craft.handshake_record(message, r)
        names.append(lied)
    ctx.probe.frames_in(ctx.framing.frames(rec, record_no))
    return "+".join(names) or "ok"


def run_attacker(ctx: Ctx) -> str:
    """Be the peer from the first handshake message on (the victim's LinkUp is honest)."""
    r = ctx.r
    ln = ctx.v.links.get(ctx.step.link)
    if ln is None:
        return run_frame(ctx)
    we_dial = not ln.session.initiator
    hs = craft.attacker_handshake(we_dial, r)
    try:
        if we_dial:
            name = _write(ctx, hs, 0)
            reply = _noise(_reply_record(ctx, 0))
            if reply is None or not ctx.probe.open:
                return "att-" + name
            hs.read_message(reply)
            name += "/" + _write(ctx, hs, 1)
        else:
            first = _noise(_first_record(ctx.trace.sent_by_v[ctx.step.link], ctx.framing))
            if first is None:
                return run_frame(ctx)
            hs.read_message(first)
            seen = len(ctx.probe.replies)
            name = _write(ctx, hs, 0)
            reply = _noise(_reply_record(ctx, seen))
            if reply is None or not ctx.probe.open:
                return "att-" + name
            hs.read_message(reply)
    except (CryptoError, ValueError):
        return "att-diverged"  # our lie made the transcripts differ: the victim decides
    if hs.finished and ctx.probe.open:
        send, _recv = hs.split()
        msgs = [_honest_message(ctx) for _ in range(r.randrange(1, 4))]  # HELLO: in _write
        send_messages(ctx, send, [_mutated_message(ctx, m)[1] for m in msgs])
    return "att-" + name


RUNNERS: dict[str, Callable[[Ctx], str]] = {
    "frame": run_frame,
    "record": run_record,
    "message": run_message,
    "envelope": run_envelope,
    "inner": run_inner,
    "attacker": run_attacker,
}


STACKED = ("frame", "message", "message", "envelope", "inner")


def run_case(ctx: Ctx, done: list[str]) -> None:
    """The planned mutation, then up to three more while the link stays open (each sees
    the state the previous one left), then the aftermath. ``done`` collects their names
    as they finish, so an escape can be told apart from what ran before it."""
    done.append(RUNNERS[ctx.plan.family](ctx))
    for family in ctx.plan.stack:
        if not ctx.probe.open:
            break
        done.append(RUNNERS[family](ctx))
    aftermath(ctx)


def aftermath(ctx: Ctx) -> None:
    """Exercise what the case may have left behind."""
    r, p, v = ctx.r, ctx.probe, ctx.v
    p.now += 1
    p.feed(Tick(), crafted=False)
    if r.random() < 0.3:
        p.now += max(L.REASSEMBLY_TIMEOUT, ASK_TIMEOUT) + 1
        p.feed(Tick(), crafted=False)
    if r.random() < 0.2:  # to the peer (sessions) or the offline contact (its prekey)
        p.feed(SendMessage(r.choice(sorted(v.contacts)), b"after"), crafted=False)
        p.call("bulletins", lambda: v.bulletins(p.now))
        p.call("export_state", v.saved.export)
        p.call("next_deadline", v.next_deadline)
    if r.random() < 0.2:
        p.feed(LinkDown(ctx.step.link), crafted=False)
