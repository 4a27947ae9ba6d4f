"""The node's durable state, kept as rows so a driver saves only what changed.

Theory of operation
-------------------
Besides the envelope store a node must keep across a restart: its end-to-end sessions (the
ratchets), the prekeys it learned for contacts, receipts (its own mail's, released by
others, its own waiting to be released), the exactly-once guard and the newest bulletin of
each slot. Each item is one *row*: a key (a kind byte from :class:`RowKind`, then the
item's own id) and a msgpack value. Whatever changes an item marks its key in
:class:`Changes`; a driver that persists the state (the daemon) takes the changed rows
after each step (:meth:`Durable.take_changes`, a deleted row maps to ``None``) and writes
just those, so a send or a delivery costs a few rows, not the whole state.

Tracking is off until the driver starts it (the simulator never saves, so it keeps no set
of changed keys). A whole snapshot is :meth:`Durable.rows` (a migration, a test).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from typing import assert_never

from crypto.errors import DecodeError
from crypto.identity import PublicIdentity
from crypto.prekeys import PrekeyRecord
from crypto.wire import expect_bytes, expect_int, expect_list, pack, strict_unpack
from mesh.core.attachments import Incoming
from mesh.core.bulletin_slots import BulletinSlots
from mesh.core.groups import GroupEntry, MemberCard
from mesh.core.session import Session

STATE_VERSION = 4  # 4: rows; 3: one blob with the newest bulletin per slot


class RowKind(bytes, Enum):
    VERSION = b"v"
    SESSION = b"s"  # sid -> Session.to_list()
    PREKEY = b"p"  # contact identity key -> PrekeyRecord.encode()
    OWN = b"o"  # receipt hash of our message -> [msg id, expiry]
    RECEIPT = b"r"  # receipt hash -> [secret, expiry]
    PENDING = b"q"  # receipt secret we release later -> [release at, expiry]
    DELIVERED = b"d"  # msg id -> expiry (the exactly-once guard)
    SLOT = b"b"  # bulletin slot -> its newest sequence (BulletinSlots)
    STRANGER = b"i"  # identity key of someone not a contact who wrote -> PublicIdentity
    FILE = b"f"  # file id of an attachment being received -> Incoming.to_list()
    GROUP = b"g"  # group id -> GroupEntry.to_list() (every key of the group)
    CARD = b"m"  # identity key of a group member met through a group -> MemberCard


class Changes:
    """The keys of rows changed since the driver last took them (``None``: not tracking)."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: set[bytes] | None = None

    def touch(self, key: bytes) -> None:
        if self.keys is not None:
            self.keys.add(key)


def _unpack(value: bytes) -> object:
    return strict_unpack(value, max_size=len(value), max_array_len=1 << 16, max_map_len=0)


def _pair(value: bytes, what: str) -> tuple[bytes, int]:
    a, b = expect_list(_unpack(value), 2, what)
    return expect_bytes(a, what), expect_int(b, what)


class Durable:
    """Sessions, receipts and the exactly-once guard, with every change marked."""

    def __init__(self, prekey_of: Callable[[bytes], PrekeyRecord | None], max_ttl: int) -> None:
        self.changes = Changes()
        self.sessions: dict[bytes, Session] = {}
        self.own: dict[bytes, tuple[bytes, int]] = {}  # receipt hash -> (msg id, expiry)
        self.receipts: dict[bytes, tuple[bytes, int]] = {}  # hash -> (secret, expiry)
        self.known_secrets: set[bytes] = set()  # the secrets in receipts: skip re-hashing
        self.pending: dict[bytes, tuple[int, int]] = {}  # secret -> (release at, expiry)
        self.delivered: dict[bytes, int] = {}  # msg id -> expiry
        # Who opened a session with us without being a contact (verified by the seal of
        # their first contact): kept while a session of theirs is, so they can be added.
        self.strangers: dict[bytes, PublicIdentity] = {}
        self.slots = BulletinSlots(max_ttl, self._touch_slot)
        self.files: dict[bytes, Incoming] = {}  # file id -> an attachment being received
        self.groups: dict[bytes, GroupEntry] = {}  # group id -> its state (mesh.core.groups)
        self.cards: dict[bytes, MemberCard] = {}  # members we may write to for a group
        self._prekey_of = prekey_of

    # ---- changes ----------------------------------------------------------------------
    def track(self) -> None:
        """Start marking changes (from the state as it is now)."""
        self.changes.keys = set()

    def take_changes(self) -> dict[bytes, bytes | None]:
        """The rows changed since the last call: key -> value, ``None`` if deleted."""
        keys = self.changes.keys
        if not keys:
            return {}
        self.changes.keys = set()
        return {k: self.row(k) for k in sorted(keys)}

    def row(self, key: bytes) -> bytes | None:
        """The value of one row now (``None``: it does not exist)."""
        kind, ident = RowKind(key[:1]), key[1:]
        match kind:
            case RowKind.VERSION:
                return pack(STATE_VERSION)
            case RowKind.SESSION:
                sess = self.sessions.get(ident)
                return None if sess is None else pack(sess.to_list())
            case RowKind.PREKEY:
                rec = self._prekey_of(ident)
                return None if rec is None else rec.encode()
            case RowKind.OWN:
                return _packed(self.own.get(ident))
            case RowKind.RECEIPT:
                return _packed(self.receipts.get(ident))
            case RowKind.PENDING:
                return _packed(self.pending.get(ident))
            case RowKind.DELIVERED:
                return _packed(self.delivered.get(ident))
            case RowKind.SLOT:
                return self.slots.row(ident)
            case RowKind.STRANGER:
                who = self.strangers.get(ident)
                return None if who is None else pack(who.to_list())
            case RowKind.FILE:
                inc = self.files.get(ident)
                return None if inc is None else pack(inc.to_list())
            case RowKind.GROUP:
                entry = self.groups.get(ident)
                return None if entry is None else pack(entry.to_list())
            case RowKind.CARD:
                card = self.cards.get(ident)
                return None if card is None else pack(card.to_list())
        assert_never(kind)

    def _touch_slot(self, ident: bytes) -> None:
        self.changes.touch(RowKind.SLOT.value + ident)

    def rows(self, contacts: Iterable[bytes]) -> dict[bytes, bytes]:
        """Every row (``contacts``: whose learned prekeys to include)."""
        keys = [RowKind.VERSION.value]
        keys += [RowKind.SESSION.value + sid for sid in self.sessions]
        keys += [RowKind.PREKEY.value + k for k in contacts]
        for kind, table in (
            (RowKind.OWN, self.own),
            (RowKind.RECEIPT, self.receipts),
            (RowKind.PENDING, self.pending),
            (RowKind.DELIVERED, self.delivered),
        ):
            keys += [kind.value + k for k in table]
        keys += [RowKind.SLOT.value + i for i in self.slots.row_ids()]
        keys += [RowKind.STRANGER.value + k for k in self.strangers]
        keys += [RowKind.FILE.value + k for k in self.files]
        keys += [RowKind.GROUP.value + k for k in self.groups]
        keys += [RowKind.CARD.value + k for k in self.cards]
        rows = {k: self.row(k) for k in sorted(keys)}
        return {k: v for k, v in rows.items() if v is not None}

    # ---- loading ----------------------------------------------------------------------
    def load(self, rows: Mapping[bytes, bytes]) -> list[tuple[bytes, bytes]]:
        """Replace the state with saved rows; returns the learned prekeys as (contact
        key, encoded record) for the node to match against its contacts. Raises
        :class:`DecodeError` if a row is malformed."""
        self.sessions.clear()
        self.own, self.receipts, self.pending, self.delivered = {}, {}, {}, {}
        self.strangers = {}
        self.files = {}
        self.groups, self.cards = {}, {}
        self.slots.load([])
        prekeys: list[tuple[bytes, bytes]] = []
        for key, value in rows.items():
            try:
                kind = RowKind(key[:1])
            except ValueError:
                raise DecodeError(f"unknown node state row kind {key[:1]!r}") from None
            ident = key[1:]
            match kind:
                case RowKind.VERSION:
                    if _unpack(value) != STATE_VERSION:
                        raise DecodeError(f"node state version is not {STATE_VERSION}")
                case RowKind.SESSION:
                    sess = Session.from_list(_unpack(value))
                    self.sessions[sess.sid] = sess
                case RowKind.PREKEY:
                    prekeys.append((ident, value))
                case RowKind.OWN:
                    self.own[ident] = _pair(value, "own message")
                case RowKind.RECEIPT:
                    self.receipts[ident] = _pair(value, "receipt")
                case RowKind.PENDING:
                    a, b = expect_list(_unpack(value), 2, "pending receipt")
                    self.pending[ident] = (expect_int(a, "at"), expect_int(b, "expiry"))
                case RowKind.DELIVERED:
                    self.delivered[ident] = expect_int(_unpack(value), "expiry")
                case RowKind.SLOT:
                    self.slots.load_row(ident, _unpack(value))
                case RowKind.STRANGER:
                    who = PublicIdentity.from_list(_unpack(value))
                    if who.sign_public != ident:
                        raise DecodeError("a stranger's row is not theirs")
                    self.strangers[ident] = who
                case RowKind.FILE:
                    inc = Incoming.from_list(_unpack(value))
                    if inc.manifest.file_id != ident:
                        raise DecodeError("an incoming file's row is not its own")
                    self.files[ident] = inc
                case RowKind.GROUP:
                    self.groups[ident] = GroupEntry.from_list(_unpack(value))
                case RowKind.CARD:
                    card = MemberCard.from_list(_unpack(value))
                    if card.identity.sign_public != ident:
                        raise DecodeError("a member card's row is not theirs")
                    self.cards[ident] = card
        self.known_secrets = {s for s, _e in self.receipts.values()}
        return prekeys

    # ---- changing ---------------------------------------------------------------------
    def touch_session(self, sess: Session) -> None:
        self.changes.touch(RowKind.SESSION.value + sess.sid)

    def add_session(self, sess: Session) -> None:
        self.sessions[sess.sid] = sess
        self.touch_session(sess)

    def drop_session(self, sid: bytes) -> None:
        self.sessions.pop(sid, None)
        self.changes.touch(RowKind.SESSION.value + sid)

    def meet_stranger(self, who: PublicIdentity) -> None:
        if self.strangers.get(who.sign_public) != who:
            self.strangers[who.sign_public] = who
            self.changes.touch(RowKind.STRANGER.value + who.sign_public)

    def forget_stranger(self, key: bytes) -> None:
        if self.strangers.pop(key, None) is not None:
            self.changes.touch(RowKind.STRANGER.value + key)

    def touch_file(self, file_id: bytes) -> None:
        self.changes.touch(RowKind.FILE.value + file_id)

    def drop_file(self, file_id: bytes) -> None:
        if self.files.pop(file_id, None) is not None:
            self.touch_file(file_id)

    def touch_group(self, gid: bytes) -> None:
        self.changes.touch(RowKind.GROUP.value + gid)

    def keep_card(self, card: MemberCard) -> None:
        key = card.identity.sign_public
        if self.cards.get(key) != card:
            self.cards[key] = card
            self.changes.touch(RowKind.CARD.value + key)

    def drop_card(self, key: bytes) -> None:
        if self.cards.pop(key, None) is not None:
            self.changes.touch(RowKind.CARD.value + key)

    def touch_prekey(self, contact: bytes) -> None:
        self.changes.touch(RowKind.PREKEY.value + contact)

    def expect_receipt(self, h: bytes, msg_id: bytes, expiry: int) -> None:
        self.own[h] = (msg_id, expiry)
        self.changes.touch(RowKind.OWN.value + h)

    def pop_own(self, h: bytes) -> tuple[bytes, int] | None:
        own = self.own.pop(h, None)
        if own is not None:
            self.changes.touch(RowKind.OWN.value + h)
        return own

    def add_receipt(self, h: bytes, secret: bytes, expiry: int) -> None:
        self.receipts[h] = (secret, expiry)
        self.known_secrets.add(secret)
        self.changes.touch(RowKind.RECEIPT.value + h)

    def first_delivery(self, msg_id: bytes, expiry: int) -> bool:
        """Record a delivery; False if this message was delivered before."""
        if msg_id in self.delivered:
            return False
        self.delivered[msg_id] = expiry
        self.changes.touch(RowKind.DELIVERED.value + msg_id)
        return True

    def hold_receipt(self, secret: bytes, at: int, expiry: int) -> None:
        self.pending[secret] = (at, expiry)
        self.changes.touch(RowKind.PENDING.value + secret)

    def due_receipts(self, now: int) -> list[tuple[bytes, int]]:
        """The held receipts due for release by ``now`` (removed): (secret, expiry)."""
        due = [(s, e) for s, (at, e) in self.pending.items() if at <= now]
        for secret, _e in due:
            del self.pending[secret]
            self.changes.touch(RowKind.PENDING.value + secret)
        return due

    def next_release(self) -> int | None:
        return min((at for at, _e in self.pending.values()), default=None)

    def expire(self, now: int) -> None:
        """Forget receipts, awaited receipts and delivered ids past their expiry."""
        for kind, table in (
            (RowKind.RECEIPT, self.receipts),
            (RowKind.OWN, self.own),
        ):
            for k in [k for k, (_x, exp) in table.items() if exp <= now]:
                del table[k]
                self.changes.touch(kind.value + k)
        for m in [m for m, exp in self.delivered.items() if exp <= now]:
            del self.delivered[m]
            self.changes.touch(RowKind.DELIVERED.value + m)
        self.known_secrets = {s for s, _e in self.receipts.values()}
        self.slots.expire(now)

    # ---- the whole state as one blob (tests, the fuzz harness, older daemons) ---------
    def export(self, contacts: Iterable[bytes]) -> bytes:
        return pack([STATE_VERSION, [[k, v] for k, v in self.rows(contacts).items()]])


def _packed(value: object | None) -> bytes | None:
    return None if value is None else pack(list(value) if isinstance(value, tuple) else value)


def strangers_in(rows: Mapping[bytes, bytes]) -> list[PublicIdentity]:
    """The strangers' identities among saved rows (read without a node: offline)."""
    found = []
    for key, value in rows.items():
        if key[:1] == RowKind.STRANGER.value:
            who = PublicIdentity.from_list(_unpack(value))
            if who.sign_public == key[1:]:
                found.append(who)
    return found


def rows_from_blob(data: bytes) -> dict[bytes, bytes]:
    """The rows of a whole exported state: version 4 (rows) or 3 (the earlier single
    blob, converted). Raises :class:`DecodeError` if it is malformed."""
    obj = strict_unpack(data, max_size=len(data), max_array_len=1 << 20, max_map_len=0)
    if not isinstance(obj, list) or not obj:
        raise DecodeError("node state is not a list")
    if obj[0] == STATE_VERSION:
        _v, raw = expect_list(obj, 2, "node state")
        pairs = [expect_list(x, 2, "node state row") for x in raw]
        return {expect_bytes(k, "row key"): expect_bytes(v, "row") for k, v in pairs}
    if obj[0] == 3:
        return _rows_from_v3(expect_list(obj, 8, "node state"))
    raise DecodeError(f"node state version {obj[0]!r} is not {STATE_VERSION}")


def _rows_from_v3(f: list[object]) -> dict[bytes, bytes]:
    rows = {RowKind.VERSION.value: pack(STATE_VERSION)}
    for raw in _seq(f[1]):
        sess = Session.from_list(raw)
        rows[RowKind.SESSION.value + sess.sid] = pack(sess.to_list())
    for raw in _seq(f[2]):
        key, rec = expect_list(raw, 2, "learned prekey")
        rows[RowKind.PREKEY.value + expect_bytes(key, "key")] = expect_bytes(rec, "prekey")
    for kind, i, width in ((RowKind.OWN, 3, 3), (RowKind.RECEIPT, 4, 3)):
        for raw in _seq(f[i]):
            h, x, e = expect_list(raw, width, kind.name.lower())
            rows[kind.value + expect_bytes(h, "hash")] = pack([x, e])
    for raw in _seq(f[5]):
        at, secret, expiry = expect_list(raw, 3, "pending")
        rows[RowKind.PENDING.value + expect_bytes(secret, "secret")] = pack([at, expiry])
    for raw in _seq(f[6]):
        m, e = expect_list(raw, 2, "delivered")
        rows[RowKind.DELIVERED.value + expect_bytes(m, "msg id")] = pack(e)
    slots = BulletinSlots(0, lambda _k: None)
    slots.load(f[7])
    for ident in slots.row_ids():
        value = slots.row(ident)
        assert value is not None
        rows[RowKind.SLOT.value + ident] = value
    return rows


def _seq(obj: object) -> list[object]:
    if not isinstance(obj, list):
        raise DecodeError("node state part is not a list")
    return obj
