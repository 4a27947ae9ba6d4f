"""Groups in the node (private to :mod:`mesh.core.node`): the events that make and change
groups, the control records that travel over pairwise sessions, and the group messages.

How a group grows (every step is a :class:`~mesh.core.groups.Control` in a pairwise
message, sealed in a session or as a first contact):

- the inviter sends the invitee the epoch record and its own sender key, and every other
  member the record with the invitee's card (identity and signed prekey);
- each other member accepts the record and hands the invitee its sender key, as a first
  contact to the card's prekey if it has no session with them;
- the invitee joins (only at a contact's invitation) and queues its own sender key, taken
  once at index 0, for every other member: it goes to each as soon as there is a session
  (the first one usually comes with that member's own sender key).

A removal (or a plain re-key) sends the new epoch record and the remover's new sender key
to each remaining member; each of them accepts it and sends its own new sender key to the
others. A member who leaves sends a "leave" group message and forgets the keys; the
remaining member with the lowest identity key re-keys without it when the message comes
(anyone may remove it too). Control records for a member we cannot reach yet wait in the
group's row, and are retried after every control record and at every sweep.

Rules that keep a stranger out: an invitation is taken only from a contact; records for a
group we are not in are held (bounded) only until an invitation comes; the sender-keys
state checks that every record comes from a member (:mod:`crypto.sender_keys`).
"""

from __future__ import annotations

from collections.abc import Callable

from crypto.errors import CryptoError, DecodeError
from crypto.receipts import SECRET_LEN, receipt_hash
from crypto.sender_keys import EpochRecord, EpochUpdate, Group, SenderKey
from crypto.sender_keys_state import MAX_MEMBERS
from mesh.core._context import Context
from mesh.core._index import EnvelopeIndex
from mesh.core.config import EMPTY_TEXT, MAX_BODY
from mesh.core.envelope import Envelope, Kind, coarse_expiry, decode, header_bytes, make
from mesh.core.events import (
    Action,
    CreateGroup,
    GroupChanged,
    GroupMessageDelivered,
    InviteMember,
    LeaveGroup,
    MessageQueued,
    RemoveMembers,
    SendFailed,
    SendGroupMessage,
)
from mesh.core.groups import (
    INNER_LEAVE,
    INNER_TEXT,
    MAX_EARLY,
    MAX_GROUPS,
    MAX_NAME,
    MAX_WAITING,
    Control,
    GroupEntry,
    GroupView,
    MemberCard,
    inner_message,
    read_inner,
    view_of,
)
from mesh.core.messages import frame_bound, is_blank, stamped
from mesh.core.session import message_tag
from mesh.core.stats import Stat
from mesh.core.store import PutStatus

SendControl = Callable[[bytes, bytes, int], list[Action] | None]
Offer = Callable[[list[bytes]], list[Action]]
MAX_EARLY_GROUPS = 8  # groups we hold early records for, not joined (oldest goes)


class Groups:
    def __init__(self, ctx: Context, index: EnvelopeIndex) -> None:
        self._ctx = ctx
        self._state = ctx.state
        self._index = index
        self._send_control: SendControl = lambda _m, _b, _n: None  # both bound by the node
        self._offer: Offer = lambda _ids: []
        self._tags: dict[bytes, bytes] = {}  # expected group tag -> group id
        self._of: dict[bytes, set[bytes]] = {}  # group id -> its expected tags
        self._woken: list[bytes] = []

    def bind(self, send_control: SendControl, offer: Offer) -> None:
        """The outbox's pairwise send and the trader's offer (built after this part)."""
        self._send_control, self._offer = send_control, offer

    @property
    def _me(self) -> bytes:
        return self._ctx.identity.sign_public

    # ---- views ------------------------------------------------------------------------
    def views(self) -> list[GroupView]:
        return [view_of(g, e) for g, e in self._state.groups.items() if e.group is not None]

    def members_anywhere(self) -> set[bytes]:
        """Everyone in a group we are in (their sessions are not strangers' sessions)."""
        out: set[bytes] = set()
        for entry in self._state.groups.values():
            if entry.group is not None and not entry.group.left:
                out |= entry.group.members
        return out

    def expects(self, tag: bytes) -> bool:
        return message_tag(tag) in self._tags

    # ---- the user's events ------------------------------------------------------------
    def _live(self, gid: bytes) -> tuple[GroupEntry, Group] | str:
        entry = self._state.groups.get(gid)
        if entry is None or entry.group is None:
            return "no such group"
        if entry.group.left:
            return "you left this group"
        return entry, entry.group

    def create(self, ev: CreateGroup, now: int) -> list[Action]:
        name = " ".join(ev.name.split())
        joined = [e for e in self._state.groups.values() if e.group is not None]
        if not name or len(name) > MAX_NAME:
            why = f"a group's name is 1 to {MAX_NAME} characters"
        elif len(joined) >= MAX_GROUPS:
            why = f"you are in {MAX_GROUPS} groups already (leave one first)"
        else:
            group = Group.create(self._me, self._ctx.rng)  # its id: random, 16 bytes
            gid = group.group_id
            entry = GroupEntry(group, name)
            self._state.groups[gid] = entry
            self._state.touch_group(gid)
            return [GroupChanged(view_of(gid, entry), ref=ev.ref)]
        return [SendFailed(b"", why, ev.ref)]

    def invite(self, ev: InviteMember, now: int) -> list[Action]:
        live = self._live(ev.group_id)
        contact = self._ctx.contacts.get(ev.member)
        if isinstance(live, str):
            return [SendFailed(ev.group_id, live, ev.ref)]
        entry, group = live
        if contact is None:
            return [SendFailed(ev.group_id, "only a contact can be invited", ev.ref)]
        if ev.member in group.members:
            return [SendFailed(ev.group_id, "already a member", ev.ref)]
        if len(group.members) >= MAX_MEMBERS:
            return [SendFailed(ev.group_id, f"a group has at most {MAX_MEMBERS}", ev.ref)]
        record = group.invite(ev.member).encode()
        gid = ev.group_id
        card = MemberCard(contact.identity, contact.prekey)
        out = [(ev.member, Control(gid, entry.name, record, group.sender_key().encode()))]
        others = group.members - {self._me, ev.member}
        out += [(m, Control(gid, "", record, None, (card,))) for m in sorted(others)]
        actions = self._send_all(gid, entry, out, now)
        return [GroupChanged(view_of(gid, entry), ref=ev.ref), *actions]

    def remove(self, ev: RemoveMembers, now: int) -> list[Action]:
        live = self._live(ev.group_id)
        if isinstance(live, str):
            return [SendFailed(ev.group_id, live, ev.ref)]
        entry, group = live
        gone = set(ev.members)
        if self._me in gone or not gone <= group.members:
            why = "name members of the group other than you (to go yourself, leave)"
            return [SendFailed(ev.group_id, why, ev.ref)]
        actions = self._rekey(ev.group_id, entry, group, gone, now)
        return [GroupChanged(view_of(ev.group_id, entry), ref=ev.ref), *actions]

    def _rekey(
        self, gid: bytes, entry: GroupEntry, group: Group, gone: set[bytes], now: int
    ) -> list[Action]:
        record, key = group.remove(gone, self._ctx.rng, now)
        entry.departed -= gone
        control = Control(gid, "", record.encode(), key.encode())
        out = [(m, control) for m in sorted(group.members - {self._me})]
        entry.waiting = [(m, c) for m, c in entry.waiting if m not in gone]
        self._retag(gid, now)
        return self._send_all(gid, entry, out, now)

    def leave(self, ev: LeaveGroup, now: int) -> list[Action]:
        live = self._live(ev.group_id)
        if isinstance(live, str):
            return [SendFailed(ev.group_id, live, ev.ref)]
        entry, group = live
        actions: list[Action] = []
        if len(group.members) > 1:  # tell the others, under the keys we are about to forget
            sent = self._post(ev.group_id, group, INNER_LEAVE, b"", 3 * 86400, now)
            actions += sent[1] if sent is not None else []
        group.leave()
        entry.waiting, entry.departed = [], set()
        self._state.touch_group(ev.group_id)
        self._retag(ev.group_id, now)
        return [GroupChanged(view_of(ev.group_id, entry), ref=ev.ref), *actions]

    def send(self, ev: SendGroupMessage, now: int) -> list[Action]:
        live = self._live(ev.group_id)
        if isinstance(live, str):
            return [SendFailed(ev.group_id, live, ev.ref)]
        _entry, group = live
        if is_blank(ev.body):
            return [SendFailed(ev.group_id, EMPTY_TEXT, ev.ref)]
        if len(ev.body) > MAX_BODY:
            why = f"message too long ({len(ev.body)} bytes, at most {MAX_BODY})"
            return [SendFailed(ev.group_id, why, ev.ref)]
        if not self._ctx.store.would_admit_protected(frame_bound(len(ev.body))):
            return [SendFailed(ev.group_id, "the envelope store is full of your own mail", ev.ref)]
        sent = self._post(ev.group_id, group, INNER_TEXT, ev.body, ev.ttl, now)
        if sent is None:  # cannot happen after the room check
            return [SendFailed(ev.group_id, "the envelope store has no room", ev.ref)]
        (msg_id, eid), offers = sent
        return [MessageQueued(msg_id, eid, ev.ref), *offers]

    def _post(
        self, gid: bytes, group: Group, kind: int, body: bytes, ttl: int, now: int
    ) -> tuple[tuple[bytes, bytes], list[Action]] | None:
        """Seal, stamp, store (ours, protected) and offer one group message."""
        ctx = self._ctx
        msg_id = ctx.rng(16)
        expiry_hour = coarse_expiry(now, min(ttl, ctx.config.max_ttl))
        tag = group.next_tag() + ctx.strategy.route_for(ctx.rng(32), now)  # no destination
        receipt = receipt_hash(ctx.rng(SECRET_LEN))  # looks like any; nobody holds it
        header = header_bytes(Kind.SESSION, expiry_hour, tag, receipt)
        sealed = group.seal(inner_message(msg_id, now, kind, body), header)
        self._state.touch_group(gid)  # the chain moved: saved before the envelope leaves
        budget = min(ctx.strategy.INITIAL_BUDGET, ctx.config.max_budget)
        env = make(Kind.SESSION, expiry_hour, tag, sealed, budget, receipt=receipt)
        env = stamped(env, ctx.config.mint_difficulty, ctx.rng)
        if self._index.store_local(env, now) is not PutStatus.STORED:
            return None
        return (msg_id, env.id()), self._offer([env.id()])

    # ---- control records from members -------------------------------------------------
    def control(self, sender: bytes, body: bytes, now: int) -> list[Action]:
        """A control record that came in a pairwise message from ``sender``."""
        try:
            c = Control.decode(body)
        except DecodeError:
            self._ctx.stats.count(Stat.GROUP_CONTROL_REFUSED)
            return []
        entry = self._state.groups.get(c.group_id)
        try:
            if entry is None or entry.group is None:
                actions = self._before_joining(sender, c, body, now)
            else:
                actions = self._apply(c.group_id, entry, entry.group, sender, c, now)
        except (CryptoError, ValueError):  # not from a member, a second key, a full group
            self._ctx.stats.count(Stat.GROUP_CONTROL_REFUSED)
            return []
        return actions + self.flush(now) + self.deliver_waiting(now)

    def _before_joining(self, sender: bytes, c: Control, body: bytes, now: int) -> list[Action]:
        gid = c.group_id
        entry = self._state.groups.get(gid)
        if c.epoch is None or EpochRecord.decode(c.epoch).group_id != gid:
            return self._hold_early(gid, sender, body)
        if sender not in self._ctx.contacts:
            self._ctx.stats.count(Stat.GROUP_INVITES_REFUSED)
            return []
        if sum(1 for e in self._state.groups.values() if e.group is not None) >= MAX_GROUPS:
            self._ctx.stats.count(Stat.GROUP_INVITES_REFUSED)
            return []
        record = EpochRecord.decode(c.epoch)
        group = Group.join(record, self._me, sender, self._ctx.rng)
        early = entry.early if entry is not None else []
        name = " ".join(c.name.split()) or "(a group)"
        entry = GroupEntry(group, name)
        self._state.groups[gid] = entry
        mine = Control(gid, "", None, group.sender_key().encode())  # index 0, once for all
        out = [(m, mine) for m in sorted(group.members - {self._me})]
        actions = self._apply(gid, entry, group, sender, Control(gid, "", None, c.sender_key), now)
        for who, raw in early:  # what came before the invitation
            try:
                actions += self._apply(gid, entry, group, who, Control.decode(raw), now)
            except (CryptoError, ValueError):
                self._ctx.stats.count(Stat.GROUP_CONTROL_REFUSED)
        self._keep_cards(group, c.cards, now)
        sent = self._send_all(gid, entry, out, now)
        return [GroupChanged(view_of(gid, entry), by=sender), *actions, *sent]

    def _hold_early(self, gid: bytes, sender: bytes, body: bytes) -> list[Action]:
        """A record of a group we are not in (its invitation may still be on its way)."""
        groups = self._state.groups
        entry = groups.get(gid)
        if entry is None:
            early = [g for g, e in groups.items() if e.group is None]
            if len(early) >= MAX_EARLY_GROUPS:
                del groups[early[0]]  # the oldest held goes
                self._state.touch_group(early[0])
                self._ctx.stats.count(Stat.GROUP_RECORDS_DROPPED)
            entry = groups[gid] = GroupEntry(None)
        entry.early.append((sender, body))
        if len(entry.early) > MAX_EARLY:
            del entry.early[0]
            self._ctx.stats.count(Stat.GROUP_RECORDS_DROPPED)
        self._state.touch_group(gid)
        return []

    def _apply(
        self, gid: bytes, entry: GroupEntry, group: Group, sender: bytes, c: Control, now: int
    ) -> list[Action]:
        if group.left:
            return []
        out: list[tuple[bytes, Control]] = []
        actions: list[Action] = []
        lost: tuple[bytes, ...] = ()
        if c.epoch is not None:
            update = group.accept_epoch(EpochRecord.decode(c.epoch), sender, self._ctx.rng, now)
            out += self._answer(gid, group, update, now)
            lost = update.lost_removals
            actions.append(GroupChanged(view_of(gid, entry), by=sender))
        if c.sender_key is not None:
            group.accept_sender_key(SenderKey.decode(c.sender_key), sender, now)
        self._keep_cards(group, c.cards, now)
        self._state.touch_group(gid)
        self._retag(gid, now)
        actions += self._send_all(gid, entry, out, now)
        if lost:
            actions += self._rekey(gid, entry, group, set(lost), now)
        return actions

    def _answer(
        self, gid: bytes, group: Group, update: EpochUpdate, now: int
    ) -> list[tuple[bytes, Control]]:
        """What accepting an epoch record asks us to send (crypto.sender_keys.EpochUpdate)."""
        out = []
        if update.sender_key is not None:
            mine = Control(gid, "", None, update.sender_key.encode())
            out += [(m, mine) for m in sorted(group.members - {self._me})]
        if update.added:  # with our card: a newcomer has no other way to write to us
            mine = Control(gid, "", None, group.sender_key().encode(), self._my_card(now))
            out += [(m, mine) for m in update.added if m != self._me]
        return out

    def _my_card(self, now: int) -> tuple[MemberCard, ...]:
        key = self._ctx.ring.current(now)
        card = MemberCard(self._ctx.identity.public(), None if key is None else key.record)
        return (card,)

    def _keep_cards(self, group: Group, cards: tuple[MemberCard, ...], now: int) -> None:
        """Cards of current members we could not write to otherwise, checked."""
        for card in cards:
            key = card.identity.sign_public
            if key == self._me or key not in group.members or key in self._ctx.contacts:
                continue
            try:
                card.identity.verify()
                if card.prekey is not None:
                    card.prekey.verify(key, now)
            except CryptoError:
                self._ctx.stats.count(Stat.GROUP_CONTROL_REFUSED)
                continue
            self._state.keep_card(card)

    # ---- sending control records ------------------------------------------------------
    def _send_all(
        self, gid: bytes, entry: GroupEntry, out: list[tuple[bytes, Control]], now: int
    ) -> list[Action]:
        actions: list[Action] = []
        for member, control in out:
            sent = self._send_control(member, control.encode(), now)
            if sent is not None:
                actions += sent
                continue
            entry.waiting.append((member, control.encode()))
            if len(entry.waiting) > MAX_WAITING:
                del entry.waiting[0]
                self._ctx.stats.count(Stat.GROUP_RECORDS_DROPPED)
        if out:
            self._state.touch_group(gid)
        return actions

    def flush(self, now: int) -> list[Action]:
        """Send the waiting control records that can go now (a session or a prekey)."""
        actions: list[Action] = []
        for gid, entry in self._state.groups.items():
            if not entry.waiting:
                continue
            kept = []
            for member, raw in entry.waiting:
                sent = self._send_control(member, raw, now)
                if sent is None:
                    kept.append((member, raw))
                else:
                    actions += sent
            if len(kept) != len(entry.waiting):
                entry.waiting = kept
                self._state.touch_group(gid)
        return actions

    # ---- group messages ---------------------------------------------------------------
    def open(self, env: Envelope, eid: bytes, now: int) -> list[Action]:
        tag = message_tag(env.tag)
        gid = self._tags[tag]
        entry = self._state.groups[gid]
        group = entry.group
        assert group is not None
        try:
            opened = group.open(env.body, tag, now, env.header())
            msg_id, created, kind, body = read_inner(opened.body)
        except CryptoError:
            self._ctx.stats.count(Stat.GROUP_OPEN_FAILED)
            return []
        self._state.touch_group(gid)
        self._retag(gid, now)
        self._ctx.store.protect(eid)  # a member's copy, carried on for the others
        if not self._state.first_delivery(msg_id, env.expiry):
            return []
        self._ctx.stats.count(Stat.DELIVERED)
        if kind == INNER_LEAVE:
            return self._departed(gid, entry, group, opened.author, now)
        return [GroupMessageDelivered(gid, opened.author, created, msg_id, body)]

    def _departed(
        self, gid: bytes, entry: GroupEntry, group: Group, who: bytes, now: int
    ) -> list[Action]:
        entry.departed.add(who)
        staying = group.members - entry.departed
        actions: list[Action] = [GroupChanged(view_of(gid, entry), by=who)]
        if staying and min(staying) == self._me:  # the lowest remaining member re-keys
            actions += self._rekey(gid, entry, group, entry.departed & group.members, now)
            actions.append(GroupChanged(view_of(gid, entry)))
        return actions

    # ---- tags -------------------------------------------------------------------------
    def _retag(self, gid: bytes, now: int) -> None:
        entry = self._state.groups.get(gid)
        group = entry.group if entry is not None else None
        new = set() if group is None or group.left else set(group.expected_tags(now))
        old = self._of.pop(gid, set())
        for tag in old - new:
            self._tags.pop(tag, None)
        store = self._ctx.store
        for tag in new - old:
            self._tags[tag] = gid
            if store.ids_with_tag(tag):
                self._woken.append(tag)
        if new:
            self._of[gid] = new

    def index(self, now: int) -> None:
        """After a start: the tag table from the groups' states (waking stored ones)."""
        self._tags, self._of = {}, {}
        for gid in list(self._state.groups):
            self._retag(gid, now)

    def deliver_waiting(self, now: int) -> list[Action]:
        """Open stored group envelopes whose tags became expected."""
        actions: list[Action] = []
        store = self._ctx.store
        while self._woken:
            tag = self._woken.pop()
            for eid in store.ids_with_tag(tag):
                if tag not in self._tags:
                    break  # opened: other copies with this tag are junk or duplicates
                frame = store.get(eid)
                if frame is not None:
                    actions += self.open(decode(frame), eid, now)
        return actions

    def expire(self, now: int) -> list[Action]:
        """At each sweep: old epochs and skipped keys go, waiting records are retried."""
        for gid, entry in self._state.groups.items():
            if entry.group is not None and not entry.group.left:
                entry.group.expire(now)
                self._state.touch_group(gid)
            self._retag(gid, now)
        return self.flush(now) + self.deliver_waiting(now)
