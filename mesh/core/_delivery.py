"""Sessions, tags and delivery (private to :mod:`mesh.core.node`).

The end-to-end sessions (durable rows) and the table of routing tags they expect next
(tag -> session, counter; rebuilt from the sessions on start). An envelope is opened when
its tag is expected (a session message) or when its 1-byte hint is one of our prekeys' (a
first contact, bounded by a token bucket: junk can carry our public hint). A message is
delivered once (the exactly-once guard), its receipt held for release. Envelopes that
arrived before their session existed wait in the store and are woken when their tag
becomes expected.
"""

from __future__ import annotations

from crypto.errors import CryptoError
from crypto.noise import KeyPair
from mesh.core._context import Context
from mesh.core._groups import Groups
from mesh.core._incoming import IncomingFiles
from mesh.core._kinds import POLICY
from mesh.core._receipts import Receipts
from mesh.core.attachments import CONTENT_FILE
from mesh.core.config import MAX_UNTRIED, hint_for
from mesh.core.envelope import Envelope, EnvelopeError, decode
from mesh.core.events import Action, MessageDelivered
from mesh.core.flood import TokenBucket
from mesh.core.groups import CONTENT_GROUP
from mesh.core.messages import CONTENT_TEXT, open_first_contact_envelope
from mesh.core.session import Session, message_tag
from mesh.core.stats import Stat


class Delivery:
    def __init__(self, ctx: Context, receipts: Receipts, groups: Groups) -> None:
        self._ctx = ctx
        self._state = ctx.state
        self._receipts = receipts
        self.files = IncomingFiles(ctx, receipts)
        self.groups = groups
        self._tags: dict[bytes, tuple[bytes, int]] = {}  # expected tag -> (sid, counter)
        self._woken: list[bytes] = []  # newly expected tags: stored envelopes may carry one
        self._maybe_mine: list[bytes] = []  # after a start: stored first contacts with our hints
        cfg = ctx.config
        self._trials = TokenBucket(cfg.trial_rate, cfg.trial_burst)
        self._untried: list[bytes] = []  # first contacts with our hint waiting for a trial
        self._hints: frozenset[bytes] = frozenset()
        self._hints_for: tuple[int, ...] | None = None

    # ---- what is ours -----------------------------------------------------------------
    def expects(self, tag: bytes) -> bool:
        """Is this the routing tag of a session or group message we expect?"""
        return message_tag(tag) in self._tags or self.groups.expects(tag)

    def expected_tags(self) -> int:
        return len(self._tags)

    def my_hints(self) -> frozenset[bytes]:
        ring = self._ctx.ring
        ids = tuple(k.prekey_id for k in ring.keys)
        if ids != self._hints_for:
            self._hints = frozenset(hint_for(k.record.public) for k in ring.keys)
            self._hints_for = ids
        return self._hints

    def is_mine(self, tag: bytes) -> bool:
        return self.expects(tag) or (len(tag) == 1 and tag in self.my_hints())

    def receive_keys(self) -> list[bytes]:
        """The tag keys of the sessions we receive in, most recently used first."""
        ordered = sorted(self._state.sessions.values(), key=lambda s: (-s.last_used, s.sid))
        return [s.recv_tag_key for s in ordered]

    def session_for(self, peer: bytes) -> Session | None:
        usable = [s for s in self._state.sessions.values() if s.peer == peer and s.can_send]
        return max(usable, key=lambda s: s.last_used) if usable else None

    # ---- opening (mesh.core._kinds.Opener) --------------------------------------------
    def maybe_deliver(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        return POLICY[env.kind].open(self, env, eid, now)

    def open_session(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        """A SESSION envelope: a pairwise message, or a group's (mesh.core._groups)."""
        if message_tag(env.tag) in self._tags:
            return self._deliver_session(env, eid, now) + self.deliver_waiting(now)
        if self.groups.expects(env.tag):
            return self.groups.open(env, eid, now) + self.groups.deliver_waiting(now)
        return []

    def open_first_contact(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        if env.tag not in self.my_hints():
            return []
        ctx = self._ctx
        if not self._trials.take(now):  # junk can carry our public hint: bound the work
            if len(self._untried) < MAX_UNTRIED:
                self._untried.append(eid)
            ctx.stats.count(Stat.TRIALS_DEFERRED)
            return []
        try:
            opened = open_first_contact_envelope(ctx.identity, ctx.ring, env, now)
        except (CryptoError, EnvelopeError):
            return []  # a hint collision: someone else's message
        key = next((k for k in ctx.ring.keys if k.prekey_id == opened.prekey_id), None)
        if key is not None and opened.session_secret:
            sess = Session.as_bob(
                opened.session_secret,
                opened.sender.sign_public,
                KeyPair(key.private, key.record.public),
                now,
            )
            if sess.sid not in self._state.sessions:
                self._state.add_session(sess)
                if opened.sender.sign_public not in ctx.contacts:
                    self._state.meet_stranger(opened.sender)
                self.expect(sess, sess.expected_tags())
                self.bound_stranger_sessions()
        ctx.store.protect(eid)
        sender = opened.sender.sign_public
        actions = self._finish(
            env,
            eid,
            now,
            sender,
            opened.created,
            opened.msg_id,
            opened.body,
            opened.receipt_secret,
            opened.content_type,
        )
        return actions + self.deliver_waiting(now)

    def awaits_chunk(self, eid: bytes) -> bool:
        return self.files.awaits(eid)

    def open_chunk(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        return self.files.open_chunk(env, eid, now)

    def _deliver_session(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        tag = message_tag(env.tag)
        sid, counter = self._tags[tag]
        sess = self._state.sessions[sid]
        try:
            inner, fresh = sess.open(env.body, env.header(), counter, now, self._ctx.rng)
        except (CryptoError, EnvelopeError):
            self._ctx.stats.count(Stat.SESSION_OPEN_FAILED)
            return []
        del self._tags[tag]
        self._state.touch_session(sess)
        self.expect(sess, sess.tags_for(fresh))
        self._ctx.store.protect(eid)
        return self._finish(
            env,
            eid,
            now,
            sess.peer,
            inner.created,
            inner.msg_id,
            inner.body,
            inner.receipt_secret,
            inner.content_type,
        )

    def _finish(
        self,
        env: Envelope,
        eid: bytes,
        now: int,
        sender: bytes,
        created: int,
        msg_id: bytes,
        body: bytes,
        secret: bytes,
        content_type: int = CONTENT_TEXT,
    ) -> list[Action]:
        """Deliver once. Our copy stays in the store, and is offered like any relayed one,
        until the receipt is released (it then purges every copy, ours too): a neighbour
        must not see it vanish the moment it reaches its recipient."""
        if not self._state.first_delivery(msg_id, env.expiry):
            self._ctx.store.delete(eid, now)
            return []
        if content_type == CONTENT_FILE:  # its receipt waits for the whole file
            self._ctx.stats.count(Stat.DELIVERED)
            if not self._receipts.answers(secret, env):
                secret = b""
            return self.files.offered(env, eid, sender, created, msg_id, body, secret, now)
        if not self._receipts.hold(secret, env, now):
            self._ctx.store.delete(eid, now)  # no receipt to wait for
        if content_type == CONTENT_GROUP:  # a group's record (its receipt as for text)
            return self.groups.control(sender, body, now)
        self._ctx.stats.count(Stat.DELIVERED)
        return [MessageDelivered(sender, created, msg_id, body)]

    def deliver_waiting(self, now: int) -> list[Action]:
        """Open stored session envelopes whose tags became expected: they arrived before
        the first contact that set up their session, or too far ahead of the window."""
        actions: list[Action] = []
        store = self._ctx.store
        while self._woken:
            tag = self._woken.pop()
            if tag not in self._tags:
                continue
            for eid in store.ids_with_tag(tag):
                frame = store.get(eid)
                if frame is None:
                    continue
                actions += self._deliver_session(decode(frame), eid, now)
                if tag not in self._tags:
                    break  # opened: other copies with this tag are junk or duplicates
        return actions

    def deliver_stored(self, now: int) -> list[Action]:
        """After :meth:`index_store`: open what is for us and still in the store."""
        actions = self.deliver_waiting(now)  # session envelopes: woken by index_store
        actions += self.groups.deliver_waiting(now)
        actions += self.files.open_all_stored(now)
        mine, self._maybe_mine = self._maybe_mine, []
        for eid in mine:
            frame = self._ctx.store.get(eid)
            if frame is not None:
                actions += self.maybe_deliver(decode(frame), eid, now)
        return actions

    # ---- sessions and tags ------------------------------------------------------------
    def add_session(self, sess: Session) -> None:
        """A session we started (a first contact we sent)."""
        self._state.add_session(sess)
        self.expect(sess, sess.expected_tags())

    def bound_stranger_sessions(self) -> None:
        """At most ``stranger_sessions`` sessions opened by people who are not our
        contacts: the least recently used goes (its tags with it)."""
        sessions, contacts = self._state.sessions, self._ctx.contacts
        members = self.groups.members_anywhere()  # a group's members are not strangers
        known = contacts.keys() | members
        strangers = [x for x in sessions.values() if x.peer not in known]
        excess = len(strangers) - self._ctx.config.stranger_sessions
        for sess in sorted(strangers, key=lambda x: x.last_used)[: max(0, excess)]:
            self._state.drop_session(sess.sid)
            self._tags = {t: v for t, v in self._tags.items() if v[0] != sess.sid}
            self._ctx.stats.count(Stat.STRANGER_SESSIONS_DROPPED)
            if not any(x.peer == sess.peer for x in sessions.values()):
                self._state.forget_stranger(sess.peer)

    def forget_sessions(self) -> None:
        for sid in list(self._state.sessions):
            self._state.drop_session(sid)
        self._tags = {}

    def index_store(self, now: int) -> None:
        """After a start: the tag table from the sessions' windows (waking stored session
        envelopes for us), and the stored first contacts that carry one of our hints."""
        self._tags = {}
        self.files.reindex()
        for sess in self._state.sessions.values():
            sess.window.expire(now)
            self.expect(sess, sess.expected_tags())
        self.groups.index(now)

    def find_first_contacts(self) -> None:
        store = self._ctx.store
        self._maybe_mine = [eid for h in self.my_hints() for eid in store.ids_with_tag(h)]

    def expect(self, sess: Session, tags: dict[bytes, int]) -> None:
        """Add tags a session now expects; stored envelopes carrying one are woken."""
        for tag, counter in tags.items():
            self._tags[tag] = (sess.sid, counter)
            if self._ctx.store.ids_with_tag(tag):
                self._woken.append(tag)

    # ---- time -------------------------------------------------------------------------
    def next_deadline(self, now: int) -> int | None:
        return now + 1 if self._untried else None

    def tick(self, now: int) -> list[Action]:
        """First contacts that waited for trial-decryption budget, as it returns."""
        actions: list[Action] = []
        while self._untried and self._trials.available(now) >= 1:
            eid = self._untried.pop(0)
            frame = self._ctx.store.get(eid)
            if frame is not None:
                actions += self.maybe_deliver(decode(frame), eid, now)
        return actions

    def expire(self, now: int) -> list[Action]:
        """Stop expecting counters whose messages can no longer be alive (at each sweep),
        then open what the sessions' new windows woke."""
        for sess in self._state.sessions.values():
            gone, new = sess.window.expire(now)
            if gone or new:
                self._state.touch_session(sess)
            for tag in sess.tags_for(gone):
                self._tags.pop(tag, None)
            self.expect(sess, sess.tags_for(new))
        return self.deliver_waiting(now)
