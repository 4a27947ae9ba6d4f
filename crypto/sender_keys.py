"""Groups of up to 64 members with sender keys (one member's state: :class:`Group`).

Theory of operation
-------------------
A group has a random 16-byte id and a sequence of *epochs*. An epoch is a 32-byte secret,
a number and a member list (:class:`EpochRecord`); from the secret come the epoch id
(which the signatures and associated data name) and a *tag key* (:mod:`crypto.group_tag`).
In each epoch every member has its own *sender chain*: a Megolm hash ratchet
(:mod:`crypto.megolm`) and a fresh Ed25519 signing key. A member hands its
chain (at its current index) and signing key to each other member as a
:class:`SenderKey` record, which the caller sends over the pairwise Double Ratchet
sessions: those authenticate it, and :meth:`Group.accept_sender_key` checks the record's
author is the session's peer. Epoch records travel the same way.

A group message (:meth:`Group.seal`) is encrypted once for everyone. The chain value at
index ``seq`` gives a one-time XChaCha20-Poly1305 key and nonce; the plaintext is the
author's signature over ``(group id, epoch, author, seq, BLAKE2b-256(body))`` and the
padded body; the associated data is ``(group id, epoch, author, seq)`` and the caller's
``ad`` (the envelope header). The message has no header: its routing tag
(:meth:`Group.next_tag`, keyed by the epoch's tag key over ``(author, seq)``) is different
for every message, and a member finds the epoch, author and counter by looking the tag up
in :meth:`Group.expected_tags`, then opens with :meth:`Group.open` given the tag. (An
encrypted header would tell members nothing the tag does not, and cost 76 bytes. A tag
moved onto another envelope names the wrong key, so that envelope does not open.) The
whole message is one of the envelope size buckets, so relays see what they see of a
pairwise message: a size bucket and a routing tag that no other envelope carries.

Properties, exactly:

- Confidentiality against relays, listeners and non-members: a message needs the
  author's chain key, which only members of the epoch received over pairwise sessions.
  Without the tag key nobody learns the author, the counter or the epoch, nor links two
  envelopes of the group (:mod:`crypto.group_tag`).
- Authenticity of the author within the group: every member holds every chain key, so
  the AEAD alone would let one member forge another's messages; the signature stops that
  (only the author holds its signing key). A message re-posted under another group, epoch,
  author or counter is refused: the signature and the associated data name all four.
- Replays and reordering: each chain value opens one message; a used key is deleted, so a
  duplicate is refused (:class:`ReplayError`; its tag is no longer expected). Messages may
  arrive in any order: a chain recognises the :data:`~crypto.group_tag.WINDOW` counters
  from its next one (one further ahead is recognised once the window has moved up to it),
  and the keys of skipped counters are kept, at most
  :data:`MAX_SKIPPED_PER_CHAIN` per chain and :data:`MAX_SKIPPED_PER_GROUP` in all, each
  for :data:`MAX_SKIPPED_AGE` seconds (``now`` comes from the caller; no clock here).
- Forward secrecy within a chain, going forward: the ratchet only moves forward, and a
  ratchet value is deleted once used, so a key taken from a device later does not open the
  messages it had already opened, or had skipped and then used or expired. (vodozemac's
  inbound sessions keep their first ratchet value and give this up; this module does not.)
- Joining: a new member receives every chain at its current index, so it cannot read what
  was sent before it joined. It does learn the epoch's tag key, so of the envelopes of that
  epoch it holds it can tell who sent each and its counter (it can compute every member's
  earlier tags), not the content.
- Removal re-keys everyone (:meth:`Group.remove`): a new epoch, a new secret sent only to
  the remaining members, and a fresh chain and signing key for each of them. A removed
  member cannot read anything sent in the new epoch (it has neither the tag key nor any
  chain, so it does not even recognise the envelopes), and once a member has accepted the
  new epoch it refuses the removed member's messages in the old one. What it could read
  before, it still can.
- No post-compromise security within an epoch: whoever steals a member's state can read
  every later message of that epoch (the chains are hash ratchets, with no fresh secret).
  Security comes back only with the next epoch that the thief is not given, i.e. when the
  compromised member is removed, or by a re-key (``remove([])``) after the device is clean.
- Old epochs: after a new epoch is accepted, the old one's inbound chains of members still
  in the group are kept for :data:`EPOCH_GRACE` seconds (messages in flight), at most
  :data:`MAX_EPOCHS` epochs at once; a member only ever sends in the current epoch.

Saving: :meth:`Group.to_list` gives the whole state as plain values (store it encrypted)
and :meth:`Group.from_list` loads it strictly; the records and their checks are in
:mod:`crypto.sender_keys_state`, whose public names import from here as well.

Why not MLS (RFC 9420): MLS gives post-compromise security in every epoch, but every
member must apply the group's commits in one global order, agreed by a delivery service.
A partitioned mesh cannot give that order: two halves of a city cut off from each other
both change the group, and MLS has no way to merge two commits to one epoch. Here the only
ordered change is a re-key, and a conflict is detectable and repaired without agreement:
members join within an epoch by a grow-only union (:meth:`Group.accept_epoch`), and when
two members re-key concurrently to the same number everyone sends in the same epoch (the
smaller epoch id) and is told which removals the other made (:attr:`EpochUpdate.lost_removals`),
so it can remove those again in the next epoch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crypto import primitives as p
from crypto.errors import AuthenticationError, DecodeError
from crypto.group_tag import TAG_LEN, message_tag
from crypto.megolm import MAX_INDEX, MegolmRatchet, message_key
from crypto.padding import BUCKETS, MAX_BODY, bucket_for, pad, unpad
from crypto.sender_keys_state import (
    EPOCH_GRACE,
    EPOCH_ID_LEN,
    GROUP_ID_LEN,
    MAX_EPOCHS,
    MAX_MEMBERS,
    MAX_PENDING,
    MAX_SKIPPED_AGE,
    MAX_SKIPPED_PER_CHAIN,
    MAX_SKIPPED_PER_GROUP,
    MEMBER_ID_LEN,
    STATE_VERSION,
    VERSION,
    EpochRecord,
    MembershipError,
    ReplayError,
    SenderKey,
    _Epoch,
    _Inbound,
    _member,
    _Outbound,
    epoch_id,
)
from crypto.wire import expect_bytes, expect_int, expect_list, expect_seq, pack

__all__ = (
    "EPOCH_GRACE",
    "EPOCH_ID_LEN",
    "GROUP_ID_LEN",
    "MAX_EPOCHS",
    "MAX_MEMBERS",
    "MAX_PENDING",
    "MAX_SKIPPED_AGE",
    "MAX_SKIPPED_PER_CHAIN",
    "MAX_SKIPPED_PER_GROUP",
    "MAX_TEXT",
    "MEMBER_ID_LEN",
    "OVERHEAD",
    "STATE_VERSION",
    "VERSION",
    "EpochRecord",
    "EpochUpdate",
    "Group",
    "MembershipError",
    "Opened",
    "ReplayError",
    "SenderKey",
    "epoch_id",
)

OVERHEAD = p.SIG_LEN + 4 + p.TAG_LEN  # 84 bytes besides the body: signature, length, tag
MAX_TEXT = MAX_BODY - OVERHEAD


def _signed(gid: bytes, eid: bytes, number: int, author: bytes, seq: int, body: bytes) -> bytes:
    digest = p.blake2b(body, digest_size=32, person=b"steppe-grp-body")
    return pack(["steppe/group-sig/v1", gid, eid, number, author, seq, digest])


def _body_ad(gid: bytes, eid: bytes, number: int, author: bytes, seq: int, ad: bytes) -> bytes:
    return pack(["steppe/group/v1", gid, eid, number, author, seq]) + ad


@dataclass(frozen=True, slots=True)
class Opened:
    """A group message, checked: ``author`` wrote ``body`` as its ``seq``-th in ``epoch``."""

    author: bytes
    seq: int
    epoch: int
    body: bytes


@dataclass(frozen=True, slots=True)
class EpochUpdate:
    """What :meth:`Group.accept_epoch` asks of the caller. ``sender_key``: a new epoch is
    current; send this record (index 0) to every other member of it. ``added``: members new
    to the current epoch; send each of them :meth:`Group.sender_key`. ``lost_removals``: a
    concurrent epoch of the same number removed these, the one kept did not; remove them."""

    sender_key: SenderKey | None = None
    added: tuple[bytes, ...] = ()
    lost_removals: tuple[bytes, ...] = ()


@dataclass(slots=True)
class Group:
    """One member's state of one group. Make it with :meth:`create` or :meth:`join`."""

    group_id: bytes
    me: bytes
    _epochs: dict[bytes, _Epoch]
    _current: bytes
    _outbound: _Outbound | None
    _pending: dict[tuple[bytes, bytes], SenderKey] = field(default_factory=dict)

    # -- making and changing a group -------------------------------------------------------
    @classmethod
    def create(cls, me: bytes, rng: p.Rng) -> Group:
        """A new group whose only member is ``me`` (epoch 0)."""
        return cls._start(rng(GROUP_ID_LEN), me, _Epoch(0, rng(p.KEY_LEN), {me}), rng)

    @classmethod
    def join(cls, record: EpochRecord, me: bytes, from_member: bytes, rng: p.Rng) -> Group:
        """Join with the epoch record an inviter (``from_member``, the peer of the pairwise
        session it came over) sent; then send :meth:`sender_key` to every other member."""
        if me not in record.members or from_member not in record.members or me == from_member:
            raise MembershipError("an invitation names us and comes from a member")
        epoch = _Epoch(record.number, record.secret, set(record.members))
        return cls._start(record.group_id, me, epoch, rng)

    @classmethod
    def _start(cls, gid: bytes, me: bytes, epoch: _Epoch, rng: p.Rng) -> Group:
        if len(me) != MEMBER_ID_LEN:
            raise ValueError("a member id is 32 bytes")
        return cls(gid, me, {epoch.eid: epoch}, epoch.eid, _Outbound.fresh(rng))

    # -- saving and loading ---------------------------------------------------------------
    def to_list(self) -> list[object]:
        """The whole state as plain values, to be stored encrypted (it holds every key):
        the epochs with their inbound chains and skipped keys (with their times), our
        outbound chain and signing key, the sender keys held pending. A member who left
        saves as no epochs, no chain and no pending key (and loads as left)."""
        out = None if self._outbound is None else self._outbound.to_list()
        epochs = [epoch.to_list() for epoch in self._epochs.values()]
        pending = [key.encode() for key in self._pending.values()]
        return [STATE_VERSION, self.group_id, self.me, self._current, out, epochs, pending]

    @classmethod
    def from_list(cls, obj: object) -> Group:
        """Inverse of :meth:`to_list`. Raises :class:`~crypto.errors.DecodeError`, and
        nothing else, on a damaged state; what loads opens and refuses what the saved one
        would (the order of epochs, chains and keys is kept)."""
        f = expect_list(obj, 7, "group state")
        if expect_int(f[0], "group state version") != STATE_VERSION:
            raise DecodeError("unknown group state version")
        gid = expect_bytes(f[1], "group id", size=GROUP_ID_LEN)
        me = _member(f[2], "our member id")
        current = expect_bytes(f[3], "current epoch", size=EPOCH_ID_LEN)
        epochs: dict[bytes, _Epoch] = {}
        for raw in expect_seq(f[5], "epochs", MAX_EPOCHS):
            epoch = _Epoch.from_list(raw, me)
            if epoch.eid in epochs or (epoch.ended is None) != (epoch.eid == current):
                raise DecodeError("epochs must differ, and only the current one not end")
            epochs[epoch.eid] = epoch
        chains = [c for e in epochs.values() for c in e.inbound.values()]
        if sum(len(c.skipped) for c in chains) > MAX_SKIPPED_PER_GROUP:
            raise DecodeError("more skipped keys than a group keeps")
        pending: dict[tuple[bytes, bytes], SenderKey] = {}
        for raw in expect_seq(f[6], "pending sender keys", MAX_PENDING):
            key = SenderKey.decode(expect_bytes(raw, "pending sender key"))
            if key.group_id != gid or key.author == me or (key.epoch_id, key.author) in pending:
                raise DecodeError("a pending sender key of another group, ours, or twice")
            pending[(key.epoch_id, key.author)] = key
        if (current in epochs) != (f[4] is not None) or (not epochs and pending):
            raise DecodeError("a current epoch and an outbound chain go together")
        out = None if f[4] is None else _Outbound.from_list(f[4])
        return cls(gid, me, epochs, current, out, pending)

    def invite(self, member: bytes) -> EpochRecord:
        """Add ``member`` to the current epoch. Send the record returned to it and to every
        other member, and :meth:`sender_key` to it. The newcomer reads from now on only."""
        epoch = self._epoch()
        if len(member) != MEMBER_ID_LEN or member in epoch.members:
            raise ValueError("not a new 32-byte member id")
        if len(epoch.members) >= MAX_MEMBERS:
            raise MembershipError(f"a group has at most {MAX_MEMBERS} members")
        epoch.members.add(member)
        return epoch.record(self.group_id)

    def remove(
        self, members: Iterable[bytes], rng: p.Rng, now: int
    ) -> tuple[EpochRecord, SenderKey]:
        """Re-key without ``members`` (none: a plain re-key). Send the record and the sender
        key (index 0) to every remaining member; never to those removed."""
        epoch = self._epoch()
        gone = set(members)
        if self.me in gone or not gone <= epoch.members:
            raise ValueError("remove other current members (to go yourself, leave)")
        new = _Epoch(epoch.number + 1, rng(p.KEY_LEN), epoch.members - gone)
        self._switch(new, rng, now)
        return new.record(self.group_id), self.sender_key()

    def leave(self) -> None:
        """Forget every key of the group. Tell the others (a group message); one of them
        then removes us, which is what takes our keys away from the group."""
        self._epochs.clear()
        self._outbound = None
        self._pending.clear()

    def accept_epoch(
        self, record: EpochRecord, from_member: bytes, rng: p.Rng, now: int
    ) -> EpochUpdate:
        """An epoch record from ``from_member`` (the pairwise session's peer): more
        members for an epoch we know, or a new epoch."""
        current = self._epoch()
        if record.group_id != self.group_id:
            raise MembershipError("an epoch record of another group")
        if from_member not in record.members or self.me not in record.members:
            raise MembershipError("an epoch record must name its sender and us")
        known = self._epochs.get(record.epoch_id)
        if known is not None:
            return self._merge(known, record, from_member, now)
        if from_member not in current.members:
            raise MembershipError("only a member of the current epoch may start another")
        conflict = record.number == current.number
        if record.number < current.number or (conflict and current.eid < record.epoch_id):
            return self._keep_old(record, current, conflict, now)
        new = _Epoch(record.number, record.secret, set(record.members))
        lost = new.members - current.members if conflict else set()
        self._switch(new, rng, now)
        return EpochUpdate(self.sender_key(), lost_removals=tuple(sorted(lost)))

    def _keep_old(
        self, record: EpochRecord, current: _Epoch, conflict: bool, now: int
    ) -> EpochUpdate:
        """An epoch that is not current: an older one, or the loser of a conflict. Its
        messages stay readable for the grace period, from current members only."""
        if len(self._epochs) >= MAX_EPOCHS:
            self._drop_oldest()
        old = _Epoch(record.number, record.secret, set(record.members) & current.members, now)
        self._epochs[old.eid] = old
        self._apply_pending(old)
        lost = current.members - set(record.members) if conflict else set()
        return EpochUpdate(lost_removals=tuple(sorted(lost)))

    def _merge(
        self, epoch: _Epoch, record: EpochRecord, from_member: bytes, now: int
    ) -> EpochUpdate:
        """Members only grow within an epoch (removal is a new epoch), so records of one
        epoch merge by union in any order."""
        if from_member not in epoch.members:
            raise MembershipError("only a member of an epoch may add to it")
        added = set(record.members) - epoch.members
        if epoch.eid != self._current:
            return EpochUpdate()  # nobody joins an epoch that is over
        if len(epoch.members) + len(added) > MAX_MEMBERS:
            raise MembershipError(f"a group has at most {MAX_MEMBERS} members")
        epoch.members |= added
        self._apply_pending(epoch)
        return EpochUpdate(added=tuple(sorted(added)))

    def _switch(self, new: _Epoch, rng: p.Rng, now: int) -> None:
        """Make ``new`` current: a fresh own chain, the old epochs in their grace period,
        and no chain kept for anyone who is not a member of ``new``."""
        for epoch in self._epochs.values():
            if epoch.ended is None:
                epoch.ended = now
            epoch.members &= new.members
            for author in [a for a in epoch.inbound if a not in new.members]:
                del epoch.inbound[author]
        while len(self._epochs) >= MAX_EPOCHS:
            self._drop_oldest()
        self._epochs[new.eid] = new
        self._current = new.eid
        self._outbound = _Outbound.fresh(rng)
        self._apply_pending(new)

    def _drop_oldest(self) -> None:
        old = [e for e in self._epochs.values() if e.eid != self._current]
        del self._epochs[min(old, key=lambda e: (e.number, e.ended or 0)).eid]

    # -- sender keys ----------------------------------------------------------------------
    def sender_key(self) -> SenderKey:
        """Our chain in the current epoch at its next index: send it to a member over the
        pairwise session. Right after a re-key or join it is at index 0; queue that one
        record for every member rather than calling this again later (a later call starts
        later, and the member could not read what we sent in between)."""
        epoch = self._epoch()
        assert self._outbound is not None
        out = self._outbound
        r = out.ratchet
        return SenderKey(self.group_id, epoch.eid, self.me, out.signing_public, r.index, r.data)

    def accept_sender_key(self, record: SenderKey, from_member: bytes, now: int) -> bool:
        """A member's sender key from the pairwise session with ``from_member``. True if it
        is installed; False if it waits (at most :data:`MAX_PENDING`) for its epoch or for
        its author to become a member. A chain already held is never moved backwards."""
        self._epoch()
        if record.group_id != self.group_id:
            raise MembershipError("a sender key of another group")
        if record.author != from_member or record.author == self.me:
            raise MembershipError("a sender key must come from its author, not from us")
        epoch = self._epochs.get(record.epoch_id)
        if epoch is None or record.author not in epoch.members:
            self._pending.pop((record.epoch_id, record.author), None)
            self._pending[(record.epoch_id, record.author)] = record
            while len(self._pending) > MAX_PENDING:
                del self._pending[next(iter(self._pending))]
            return False
        self._install(epoch, record)
        return True

    def _install(self, epoch: _Epoch, record: SenderKey) -> None:
        held = epoch.inbound.get(record.author)
        if held is not None:
            if held.signing_public != record.signing_public:
                raise AuthenticationError("a second sender key for one author and epoch")
            return  # a copy: keep ours, which may be further on (never re-open a key)
        ratchet = MegolmRatchet(record.index, record.ratchet)
        epoch.inbound[record.author] = _Inbound(
            record.author, epoch.tag_key, record.signing_public, ratchet
        )

    def _apply_pending(self, epoch: _Epoch) -> None:
        for key in [k for k in self._pending if k[0] == epoch.eid and k[1] in epoch.members]:
            self._install(epoch, self._pending.pop(key))

    # -- messages -------------------------------------------------------------------------
    def next_tag(self) -> bytes:
        """The routing tag of the message :meth:`seal` makes next (for the envelope header,
        which is then the ``ad`` of that seal)."""
        epoch, out = self._epoch(), self._outbound
        assert out is not None
        return message_tag(epoch.tag_key, self.me, out.ratchet.index)

    def seal(self, body: bytes, ad: bytes = b"") -> bytes:
        """``body`` as a group message of one size bucket, in the current epoch, to travel
        under the tag :meth:`next_tag` gave just before. ``ad`` is bound too (the envelope
        header it travels under; the reader passes the same)."""
        epoch = self._epoch()
        out = self._outbound
        assert out is not None
        if len(body) > MAX_TEXT:
            raise ValueError(f"a group message holds at most {MAX_TEXT} bytes")
        r = out.ratchet
        if r.index >= MAX_INDEX - 1:
            raise ValueError("this sender chain is used up: re-key")
        seq, mk = r.index, message_key(r)
        out.ratchet = r.advanced()  # the key is gone from here on
        gid, eid, n = self.group_id, epoch.eid, epoch.number
        sig = p.ed25519_sign(out.signing_secret, _signed(gid, eid, n, self.me, seq, body))
        size = bucket_for(len(body) + OVERHEAD)
        plain = sig + pad(body, size - p.SIG_LEN - p.TAG_LEN)
        return p.xchacha_encrypt(mk[:32], mk[32:], plain, _body_ad(gid, eid, n, self.me, seq, ad))

    def open(self, data: bytes, tag: bytes, now: int, ad: bytes = b"") -> Opened:
        """Open a group message that came under ``tag`` (one of :meth:`expected_tags`); the
        state changes only if it is authentic. Raises :class:`~crypto.errors.CryptoError`
        (a subclass) and nothing else on bad input; :class:`ReplayError` if the tag is not
        expected (a duplicate, our own, too far ahead, a chain we lack, not this group)."""
        self._epoch()
        if not isinstance(data, bytes) or len(data) not in BUCKETS:
            raise DecodeError("a group message is one size bucket long")
        if not isinstance(tag, bytes) or len(tag) != TAG_LEN:
            raise DecodeError(f"a group tag is {TAG_LEN} bytes")
        self._expire_epochs(now)
        epoch, chain, seq = self._find(tag)
        chain.expire(now)
        mk, after, skipped = chain.lookup(seq)
        gid, eid, n, author = self.group_id, epoch.eid, epoch.number, chain.author
        plain = p.xchacha_decrypt(mk[:32], mk[32:], data, _body_ad(gid, eid, n, author, seq, ad))
        body = unpad(plain[p.SIG_LEN :])
        p.ed25519_verify(
            chain.signing_public, _signed(gid, eid, n, author, seq, body), plain[: p.SIG_LEN]
        )
        chain.commit(seq, after, skipped, now)
        if skipped:
            self._bound_skipped()
        return Opened(author, seq, n, body)

    def _find(self, tag: bytes) -> tuple[_Epoch, _Inbound, int]:
        for epoch in self._epochs.values():
            for chain in epoch.inbound.values():
                seq = chain.tags().get(tag)
                if seq is not None:
                    return epoch, chain, seq
        raise ReplayError("not a tag we expect: used, ours, too far ahead, or not ours")

    def _bound_skipped(self) -> None:
        chains = [c for e in self._epochs.values() for c in e.inbound.values()]
        total = sum(len(c.skipped) for c in chains)
        while total > MAX_SKIPPED_PER_GROUP:
            max(chains, key=lambda c: len(c.skipped)).drop_oldest()
            total -= 1

    # -- time ---------------------------------------------------------------------------------
    def expire(self, now: int) -> None:
        """Delete old epochs past their grace and skipped keys past their age (call it from
        the node's deadline; :meth:`open` does it for the chain it uses)."""
        self._expire_epochs(now)
        for epoch in self._epochs.values():
            for chain in epoch.inbound.values():
                chain.expire(now)

    def _expire_epochs(self, now: int) -> None:
        for eid in [e.eid for e in self._epochs.values() if e.ended is not None]:
            if now - (self._epochs[eid].ended or 0) > EPOCH_GRACE:
                del self._epochs[eid]

    # -- tags and views -------------------------------------------------------------------
    def expected_tags(self, now: int) -> dict[bytes, tuple[int, bytes, int]]:
        """tag -> ``(epoch number, author, seq)`` for every group message we may open at
        ``now``: per inbound chain, its skipped counters kept and the
        :data:`~crypto.group_tag.WINDOW` from its next counter (at most
        ``(MAX_MEMBERS - 1) * WINDOW`` tags per epoch, plus one per skipped key). It grows
        after an :meth:`open` moves a window and after :meth:`accept_sender_key` or
        :meth:`accept_epoch` installs a chain: look again at envelopes kept unrecognised."""
        self._epoch()
        out: dict[bytes, tuple[int, bytes, int]] = {}
        for epoch in self._epochs.values():
            if epoch.ended is not None and now - epoch.ended > EPOCH_GRACE:
                continue
            for chain in epoch.inbound.values():
                for tag, seq in chain.tags().items():
                    if chain.fresh(seq, now):
                        out[tag] = (epoch.number, chain.author, seq)
        return out

    @property
    def left(self) -> bool:
        return not self._epochs

    @property
    def epoch(self) -> int:
        return self._epoch().number

    @property
    def members(self) -> frozenset[bytes]:
        return frozenset(self._epoch().members)

    def epoch_record(self) -> EpochRecord:
        """The current epoch's record (for an invitee, or to resend to a member)."""
        return self._epoch().record(self.group_id)

    def _epoch(self) -> _Epoch:
        if not self._epochs:
            raise MembershipError("we left this group")
        return self._epochs[self._current]
