"""Groups in the node: the records a driver sees and the node keeps (the logic is in
:mod:`mesh.core._groups`, the cryptography in :mod:`crypto.sender_keys`).

Theory of operation
-------------------
A group is a conversation of up to 64 people, each a member by their identity key. The
node keeps, per group, a :class:`GroupEntry`: the sender-keys state (every key of the
group, so it is a durable row kept encrypted like the sessions), the name the creator
gave, the members who said they left, and the control records still waiting for a way to
reach a member.

Control records travel inside ordinary pairwise messages (content type
:data:`CONTENT_GROUP`, in a Double Ratchet session or a first contact), so relays see a
pairwise message like any other; their receipts work as for text. A :class:`Control`
carries some of: the group's name, an epoch record (a new member list, or a re-key), the
sender's own sender key, and *member cards* (identity and prekey of a member the
recipient may not know, so it can open a session to hand that member its sender key).

A group message is a SESSION envelope: the per-message group tag where a session tag
would be (the same 8 bytes, with the same route part a routing strategy appends), a
receipt hash whose secret nobody holds, and the sender-keys ciphertext in a size bucket.
A relay cannot tell it from a pairwise message. There is no delivery receipt for it: a
released receipt purges every copy, so the first member to read it would take it from
the others. Copies live until they expire, as in The ONE without ``deleteDelivered``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto.errors import DecodeError
from crypto.identity import PublicIdentity
from crypto.prekeys import PrekeyRecord
from crypto.sender_keys import Group
from crypto.sender_keys_state import GROUP_ID_LEN, MAX_MEMBERS
from crypto.wire import (
    expect_bytes,
    expect_int,
    expect_list,
    expect_seq,
    expect_str,
    pack,
    strict_unpack,
)

CONTENT_GROUP = 3  # a Control inside a pairwise message (text is 1, a file manifest 2)
MAX_GROUPS = 32  # groups a node is in, or holds early records for
MAX_NAME = 64  # characters of a group's name
MAX_WAITING = 4 * MAX_MEMBERS  # control records waiting for a way to reach a member
MAX_EARLY = 2 * MAX_MEMBERS  # records for a group we have not joined yet (out of order)
MAX_CONTROL = 11_000  # bytes of one encoded Control: fits a pairwise message
INNER_TEXT = 1  # a group message with text
INNER_LEAVE = 2  # "I left": the lowest remaining member re-keys without the author


@dataclass(frozen=True, slots=True)
class MemberCard:
    """What it takes to write to a member: their identity and a prekey record signed by
    it (checked before use), so a first contact can open a session."""

    identity: PublicIdentity
    prekey: PrekeyRecord | None

    def to_list(self) -> list[object]:
        pre = None if self.prekey is None else self.prekey.encode()
        return [self.identity.to_list(), pre]

    @classmethod
    def from_list(cls, obj: object) -> MemberCard:
        who, pre = expect_list(obj, 2, "member card")
        identity = PublicIdentity.from_list(who)
        prekey = None if pre is None else PrekeyRecord.decode(expect_bytes(pre, "prekey"))
        if prekey is not None and prekey.identity_key != identity.sign_public:
            raise DecodeError("a member card's prekey is someone else's")
        return cls(identity, prekey)


@dataclass(frozen=True, slots=True)
class Control:
    """One control record for one group (see the module's description)."""

    group_id: bytes
    name: str = ""
    epoch: bytes | None = None  # EpochRecord.encode()
    sender_key: bytes | None = None  # SenderKey.encode(), the sender's own
    cards: tuple[MemberCard, ...] = ()

    def encode(self) -> bytes:
        cards = [c.to_list() for c in self.cards]
        return pack([1, self.group_id, self.name, self.epoch, self.sender_key, cards])

    @classmethod
    def decode(cls, data: bytes) -> Control:
        """Strict: raises :class:`DecodeError`, and nothing else, on any malformed input."""
        obj = strict_unpack(data, max_size=MAX_CONTROL, max_array_len=MAX_MEMBERS, max_map_len=0)
        f = expect_list(obj, 6, "group control")
        if expect_int(f[0], "group control version") != 1:
            raise DecodeError("unknown group control version")
        gid = expect_bytes(f[1], "group id", size=GROUP_ID_LEN)
        name = expect_str(f[2], "group name", max_len=MAX_NAME)
        epoch = None if f[3] is None else expect_bytes(f[3], "epoch record")
        key = None if f[4] is None else expect_bytes(f[4], "sender key")
        cards = tuple(MemberCard.from_list(c) for c in expect_seq(f[5], "cards", MAX_MEMBERS))
        return cls(gid, name, epoch, key, cards)


@dataclass(slots=True)
class GroupEntry:
    """A node's row for one group. ``group`` is None while only early records are held
    (a member's sender key that came before the invitation)."""

    group: Group | None
    name: str = ""
    departed: set[bytes] = field(default_factory=set)  # members who said they left
    waiting: list[tuple[bytes, bytes]] = field(default_factory=list)  # (member, Control)
    early: list[tuple[bytes, bytes]] = field(default_factory=list)  # (from, Control)

    def to_list(self) -> list[object]:
        state = None if self.group is None else self.group.to_list()
        return [
            state,
            self.name,
            sorted(self.departed),
            [[m, c] for m, c in self.waiting],
            [[m, c] for m, c in self.early],
        ]

    @classmethod
    def from_list(cls, obj: object) -> GroupEntry:
        f = expect_list(obj, 5, "group entry")
        group = None if f[0] is None else Group.from_list(f[0])
        name = expect_str(f[1], "group name", max_len=MAX_NAME)
        departed = {expect_bytes(m, "member", size=32) for m in expect_seq(f[2], "departed", 64)}
        return cls(group, name, departed, _pairs(f[3], MAX_WAITING), _pairs(f[4], MAX_EARLY))


def _pairs(obj: object, limit: int) -> list[tuple[bytes, bytes]]:
    out = []
    for raw in expect_seq(obj, "group records", limit):
        who, data = expect_list(raw, 2, "group record")
        out.append((expect_bytes(who, "member", size=32), expect_bytes(data, "record")))
    return out


@dataclass(frozen=True, slots=True)
class GroupView:
    """A group as a driver shows it. ``members`` includes us; ``departed`` are members
    who said they left and are not removed yet; ``left``: we left (nothing more comes)."""

    group_id: bytes
    name: str
    epoch: int
    members: tuple[bytes, ...]
    departed: tuple[bytes, ...] = ()
    left: bool = False


def view_of(gid: bytes, entry: GroupEntry) -> GroupView:
    group = entry.group
    if group is None or group.left:
        return GroupView(gid, entry.name, -1, (), (), True)
    members = tuple(sorted(group.members))
    departed = tuple(sorted(entry.departed & group.members))
    return GroupView(gid, entry.name, group.epoch, members, departed)


def inner_message(msg_id: bytes, created: int, kind: int, body: bytes) -> bytes:
    """What a group message seals: its id (the exactly-once guard), time, kind, body."""
    return pack([msg_id, created, kind, body])


def read_inner(data: bytes) -> tuple[bytes, int, int, bytes]:
    obj = strict_unpack(data, max_size=len(data), max_array_len=4, max_map_len=0)
    f = expect_list(obj, 4, "group message")
    msg_id = expect_bytes(f[0], "message id", size=16)
    created = expect_int(f[1], "created")
    kind = expect_int(f[2], "kind", lo=INNER_TEXT, hi=INNER_LEAVE)
    return msg_id, created, kind, expect_bytes(f[3], "body")
