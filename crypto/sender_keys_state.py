"""The records of one member's group state (:mod:`crypto.sender_keys`) and their strict
serialization.

The public records (:class:`SenderKey`, :class:`EpochRecord`) travel between members over
pairwise sessions, encoded with :func:`crypto.wire.pack`. The private ones (an epoch, an
outbound chain, an inbound chain with its skipped keys) make up a :class:`Group
<crypto.sender_keys.Group>`, which saves itself as plain values
(:meth:`~crypto.sender_keys.Group.to_list`, to be stored encrypted: it holds every chain
key) and loads strictly (:meth:`~crypto.sender_keys.Group.from_list`): every field's type,
size and range is checked, and so is every invariant the code relies on (members sorted
and distinct, skipped counters below their chain, a signing key that matches its seed,
the bounds on members, epochs, skipped and pending keys), so a damaged or truncated state
raises :class:`~crypto.errors.DecodeError` and nothing else. What is derived (an epoch's
id and tag key, the chains' tag caches) is not saved but computed again on loading.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from crypto import primitives as p
from crypto.errors import AuthenticationError, CryptoError, DecodeError
from crypto.group_tag import WINDOW, message_tag
from crypto.megolm import MAX_INDEX, MESSAGE_KEY_LEN, RATCHET_LEN, MegolmRatchet, message_key
from crypto.wire import expect_bytes, expect_int, expect_list, expect_seq, pack, strict_unpack

VERSION = 1
STATE_VERSION = 1  # of a saved Group (Group.to_list)
GROUP_ID_LEN = 16
EPOCH_ID_LEN = 16
MEMBER_ID_LEN = 32  # the caller's id of a member (e.g. its Ed25519 identity key)
MAX_MEMBERS = 64
MAX_SKIPPED_PER_CHAIN = 2000
MAX_SKIPPED_PER_GROUP = 16000
MAX_SKIPPED_AGE = 8 * 86400  # longer than any envelope lives
EPOCH_GRACE = 8 * 86400
MAX_EPOCHS = 4
MAX_PENDING = 2 * MAX_MEMBERS  # sender keys held until their epoch or author is known
_SENDER_KEY_MAX = 256
_EPOCH_RECORD_MAX = 64 + MAX_MEMBERS * (MEMBER_ID_LEN + 2)


class ReplayError(AuthenticationError):
    """The message's tag is not one we expect: its key was used already (a duplicate),
    expired, or never given to us (another group, a chain we lack, beyond the window)."""


class MembershipError(CryptoError):
    """A record or operation that membership does not allow (a stranger, a removed member,
    another group, a member who left)."""


def _kdf(secret: bytes, label: bytes, size: int = p.KEY_LEN) -> bytes:
    return p.blake2b(label, key=secret, digest_size=size, person=b"steppe-grp-kdf")


def epoch_id(secret: bytes) -> bytes:
    return _kdf(secret, b"epoch-id", EPOCH_ID_LEN)


def _member(x: object, what: str) -> bytes:
    return expect_bytes(x, what, size=MEMBER_ID_LEN)


@dataclass(frozen=True, slots=True)
class SenderKey:
    """A member's sender chain for one epoch, at ``index``: what another member needs to
    open its messages from ``index`` on. Secret: send it only over a pairwise session."""

    group_id: bytes
    epoch_id: bytes
    author: bytes
    signing_public: bytes
    index: int
    ratchet: bytes

    def encode(self) -> bytes:
        return pack(
            [
                *(VERSION, self.group_id, self.epoch_id, self.author),
                *(self.signing_public, self.index, self.ratchet),
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> SenderKey:
        obj = strict_unpack(data, max_size=_SENDER_KEY_MAX, max_array_len=7, max_map_len=0)
        f = expect_list(obj, 7, "sender key")
        if expect_int(f[0], "sender key version") != VERSION:
            raise DecodeError("unknown sender key version")
        return cls(
            expect_bytes(f[1], "group id", size=GROUP_ID_LEN),
            expect_bytes(f[2], "epoch id", size=EPOCH_ID_LEN),
            _member(f[3], "author"),
            expect_bytes(f[4], "signing key", size=p.KEY_LEN),
            expect_int(f[5], "chain index", hi=MAX_INDEX - 1),
            expect_bytes(f[6], "ratchet", size=RATCHET_LEN),
        )


@dataclass(frozen=True, slots=True)
class EpochRecord:
    """An epoch: its secret and members (sorted, distinct). Secret, like :class:`SenderKey`."""

    group_id: bytes
    number: int
    secret: bytes
    members: tuple[bytes, ...]

    @property
    def epoch_id(self) -> bytes:
        return epoch_id(self.secret)

    def encode(self) -> bytes:
        return pack([VERSION, self.group_id, self.number, self.secret, list(self.members)])

    @classmethod
    def decode(cls, data: bytes) -> EpochRecord:
        obj = strict_unpack(
            data, max_size=_EPOCH_RECORD_MAX, max_array_len=MAX_MEMBERS, max_map_len=0
        )
        f = expect_list(obj, 5, "epoch record")
        if expect_int(f[0], "epoch record version") != VERSION:
            raise DecodeError("unknown epoch record version")
        members = tuple(_member(m, "member") for m in expect_seq(f[4], "members", MAX_MEMBERS))
        if not members or list(members) != sorted(set(members)):
            raise DecodeError("members must be distinct, sorted and at least one")
        return cls(
            expect_bytes(f[1], "group id", size=GROUP_ID_LEN),
            expect_int(f[2], "epoch number", hi=2**32 - 1),
            expect_bytes(f[3], "epoch secret", size=p.KEY_LEN),
            members,
        )


def _ratchet(index: object, data: object) -> MegolmRatchet:
    return MegolmRatchet(
        expect_int(index, "chain index", hi=MAX_INDEX - 1),
        expect_bytes(data, "ratchet", size=RATCHET_LEN),
    )


def _members(obj: object, me: bytes) -> set[bytes]:
    members = [_member(m, "member") for m in expect_seq(obj, "members", MAX_MEMBERS)]
    if members != sorted(set(members)) or me not in members:
        raise DecodeError("members must be distinct, sorted and include us")
    return set(members)


@dataclass(slots=True)
class _Outbound:
    signing_secret: bytes
    signing_public: bytes
    ratchet: MegolmRatchet

    @classmethod
    def fresh(cls, rng: p.Rng) -> _Outbound:
        public, secret = p.ed25519_keypair(rng(32))
        return cls(secret, public, MegolmRatchet(0, rng(RATCHET_LEN)))

    def to_list(self) -> list[object]:
        seed = self.signing_secret[:32]  # libsodium's secret key is seed || public key
        return [seed, self.ratchet.index, self.ratchet.data]

    @classmethod
    def from_list(cls, obj: object) -> _Outbound:
        f = expect_list(obj, 3, "outbound chain")
        public, secret = p.ed25519_keypair(expect_bytes(f[0], "signing seed", size=32))
        return cls(secret, public, _ratchet(f[1], f[2]))


@dataclass(slots=True)
class _Inbound:
    author: bytes
    tag_key: bytes  # the epoch's
    signing_public: bytes
    ratchet: MegolmRatchet  # the value at the lowest index not derived yet
    skipped: dict[int, tuple[bytes, int]] = field(default_factory=dict)  # seq -> (key, time)
    _tags: dict[bytes, int] | None = None  # tag -> counter expected; None: stale
    _memo: dict[int, bytes] = field(default_factory=dict)  # counter -> tag, computed once

    def tags(self) -> dict[bytes, int]:
        """tag -> counter for the skipped counters kept and the :data:`WINDOW` from the
        next one (a counter the sender can still use)."""
        if self._tags is None:
            top = min(self.ratchet.index + WINDOW, MAX_INDEX - 1)
            memo, tag = self._memo, message_tag
            wanted = [*self.skipped, *range(self.ratchet.index, top)]
            self._memo = {c: memo.get(c) or tag(self.tag_key, self.author, c) for c in wanted}
            self._tags = {t: c for c, t in self._memo.items()}
        return self._tags

    def to_list(self) -> list[object]:
        skipped = [[seq, key, t] for seq, (key, t) in self.skipped.items()]
        r = self.ratchet
        return [self.author, self.signing_public, r.index, r.data, skipped]

    @classmethod
    def from_list(cls, obj: object, tag_key: bytes) -> _Inbound:
        """An inbound chain; its skipped counters ascending and below its next one."""
        f = expect_list(obj, 5, "inbound chain")
        ratchet = _ratchet(f[2], f[3])
        skipped: dict[int, tuple[bytes, int]] = {}
        for item in expect_seq(f[4], "skipped keys", MAX_SKIPPED_PER_CHAIN):
            seq, key, t = expect_list(item, 3, "skipped key")
            seq = expect_int(seq, "skipped counter", hi=ratchet.index - 1)
            if skipped and seq <= next(reversed(skipped)):
                raise DecodeError("skipped counters must ascend")
            skipped[seq] = (
                expect_bytes(key, "skipped key", size=MESSAGE_KEY_LEN),
                expect_int(t, "time"),
            )
        author = _member(f[0], "author")
        return cls(
            author, tag_key, expect_bytes(f[1], "signing key", size=p.KEY_LEN), ratchet, skipped
        )

    def fresh(self, seq: int, now: int) -> bool:
        return seq not in self.skipped or now - self.skipped[seq][1] <= MAX_SKIPPED_AGE

    def expire(self, now: int) -> None:
        """Keys are stored in counter order, at non-decreasing times: expire from the front."""
        while self.skipped:
            seq, (_key, t) = next(iter(self.skipped.items()))
            if now - t <= MAX_SKIPPED_AGE:
                return
            del self.skipped[seq]
            self._tags = None

    def drop_oldest(self) -> None:
        del self.skipped[next(iter(self.skipped))]
        self._tags = None

    def lookup(self, seq: int) -> tuple[bytes, MegolmRatchet | None, list[tuple[int, bytes]]]:
        """``(message key, ratchet after it or None, keys skipped on the way)``; nothing
        changes until :meth:`commit`."""
        if seq in self.skipped:
            return self.skipped[seq][0], None, []
        if seq < self.ratchet.index:
            raise ReplayError("message key already used, expired, or from before we joined")
        if seq - self.ratchet.index >= WINDOW:
            raise ReplayError("message beyond the window of its chain")
        r, skipped = self.ratchet, []
        while r.index < seq:
            skipped.append((r.index, message_key(r)))
            r = r.advanced()
        return message_key(r), r.advanced(), skipped

    def commit(
        self, seq: int, after: MegolmRatchet | None, skipped: list[tuple[int, bytes]], now: int
    ) -> None:
        self._tags = None
        if after is None:
            del self.skipped[seq]
            return
        self.ratchet = after
        for i, key in skipped:
            self.skipped[i] = (key, now)
        while len(self.skipped) > MAX_SKIPPED_PER_CHAIN:
            self.drop_oldest()


@dataclass(slots=True)
class _Epoch:
    number: int
    secret: bytes
    members: set[bytes]
    ended: int | None = None
    inbound: dict[bytes, _Inbound] = field(default_factory=dict)
    eid: bytes = field(init=False)
    tag_key: bytes = field(init=False)

    def __post_init__(self) -> None:
        self.eid = epoch_id(self.secret)
        self.tag_key = _kdf(self.secret, b"tag")

    def record(self, gid: bytes) -> EpochRecord:
        return EpochRecord(gid, self.number, self.secret, tuple(sorted(self.members)))

    def to_list(self) -> list[object]:
        chains = [chain.to_list() for chain in self.inbound.values()]
        return [self.number, self.secret, sorted(self.members), self.ended, chains]

    @classmethod
    def from_list(cls, obj: object, me: bytes) -> _Epoch:
        """An epoch of ``me``'s: it names us, and holds chains of other members only."""
        f = expect_list(obj, 5, "epoch")
        ended = None if f[3] is None else expect_int(f[3], "epoch end")
        epoch = cls(
            expect_int(f[0], "epoch number", hi=2**32 - 1),
            expect_bytes(f[1], "epoch secret", size=p.KEY_LEN),
            _members(f[2], me),
            ended,
        )
        for raw in expect_seq(f[4], "inbound chains", MAX_MEMBERS - 1):
            chain = _Inbound.from_list(raw, epoch.tag_key)
            if chain.author not in epoch.members or chain.author == me:
                raise DecodeError("an inbound chain of someone not another member")
            if chain.author in epoch.inbound:
                raise DecodeError("two inbound chains of one author")
            epoch.inbound[chain.author] = chain
        return epoch
