"""The node's counters, and what became of an imported bundle.

:class:`Stat` names every counter the node keeps (:attr:`mesh.core.node.Node.stats`); its
values are the keys ``steppe status`` shows, so they stay stable. Counters that depend on
an outcome (a refusal, a store status, a link close reason) come from the tables here, not
from strings built at the call site. :class:`Refusal` is why the admission checks turned
an arriving envelope away. :class:`ImportResult` is what an imported bundle did, counted
as it happened (no diffing of counters).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import Enum, StrEnum
from types import MappingProxyType

from mesh.core.link import CloseReason
from mesh.core.store import PutStatus


class Stat(StrEnum):
    BAD_ENVELOPES = "bad_envelopes"
    BULLETINS_SUPERSEDED = "bulletins_superseded"
    CHUNKS_RECEIVED = "chunks_received"
    CHUNKS_REFUSED = "chunks_refused"  # for a file of ours, but did not open as its manifest says
    DELIVERED = "delivered"
    ENVELOPES_SENT = "envelopes_sent"
    GROUP_CONTROL_REFUSED = "group_control_refused"  # malformed, or breaks a group's rules
    GROUP_INVITES_REFUSED = "group_invites_refused"  # from someone who is not a contact
    GROUP_OPEN_FAILED = "group_open_failed"  # a group tag we expect, but it did not open
    GROUP_RECORDS_DROPPED = "group_records_dropped"  # early or waiting records over the bound
    EVICTED = "evicted"
    MANIFESTS_REFUSED = "manifests_refused"
    PROTOCOL_BYTES_SENT = "protocol_bytes_sent"
    PROTOCOL_ERRORS = "protocol_errors"
    PURGED_BY_RECEIPT = "purged_by_receipt"
    RATE_LIMITED = "rate_limited"
    RECEIPTS_UNMATCHED = "receipts_unmatched"
    RESTAMPED = "restamped"
    SESSION_OPEN_FAILED = "session_open_failed"
    STRANGER_SESSIONS_DROPPED = "stranger_sessions_dropped"
    SYMBOLS_SENT = "symbols_sent"
    SYNC_ROUNDS = "sync_rounds"
    SYNCS = "syncs"
    TRIALS_DEFERRED = "trials_deferred"
    UNSOLICITED = "unsolicited"
    WITHHELD = "withheld"
    WITHHELD_STAMP = "withheld_stamp"
    # links the node closed, by why
    LINKS_CLOSED_IDLE = "links_closed_idle"
    LINKS_CLOSED_LOCAL = "links_closed_local"
    LINKS_CLOSED_PEER = "links_closed_peer"
    LINKS_CLOSED_DECRYPT_FAILED = "links_closed_decrypt_failed"
    LINKS_CLOSED_BAD_FRAME = "links_closed_bad_frame"
    LINKS_CLOSED_LIMIT = "links_closed_limit"
    LINKS_CLOSED_TIMEOUT = "links_closed_timeout"
    LINKS_CLOSED_DUPLICATE = "links_closed_duplicate"  # a second link to the same node
    LINKS_CLOSED_SELF = "links_closed_self"  # both ends were ours
    # what the store did with an admitted envelope
    PUT_STORED = "put_stored"
    PUT_DUPLICATE = "put_duplicate"
    PUT_SEEN = "put_seen"
    PUT_EXPIRED = "put_expired"
    PUT_QUOTA = "put_quota"
    # envelopes the admission checks refused, by why
    REJECTED_EXPIRED = "rejected_expired"
    REJECTED_EXPIRY_TOO_FAR = "rejected_expiry_too_far"
    REJECTED_ALREADY_RECEIPTED = "rejected_already_receipted"
    REJECTED_STAMP = "rejected_stamp"
    REJECTED_BAD_SIGNATURE = "rejected_bad_signature"
    REJECTED_SUPERSEDED = "rejected_superseded"
    REJECTED_BULLETIN_RATE = "rejected_bulletin_rate"
    REJECTED_CHUNKS_NOT_CARRIED = "rejected_chunks_not_carried"


class Refusal(StrEnum):
    """Why an arriving envelope was not admitted."""

    EXPIRED = "expired"
    EXPIRY_TOO_FAR = "expiry_too_far"
    ALREADY_RECEIPTED = "already_receipted"
    STAMP = "stamp"
    BAD_SIGNATURE = "bad_signature"
    SUPERSEDED = "superseded"  # an older bulletin than its slot's newest
    BULLETIN_RATE = "bulletin_rate"
    CHUNKS_NOT_CARRIED = "chunks_not_carried"  # a relay configured to carry no attachments


class Outcome(Enum):
    """What became of one envelope of an imported bundle."""

    STORED = "stored"
    KNOWN = "known"
    EXPIRED = "expired"
    INVALID = "invalid"
    OVER_QUOTA = "over_quota"


REFUSED: Mapping[Refusal, Stat] = MappingProxyType(
    {r: Stat("rejected_" + r.value) for r in Refusal}
)
PUT: Mapping[PutStatus, Stat] = MappingProxyType({s: Stat("put_" + s.value) for s in PutStatus})
CLOSED: Mapping[CloseReason, Stat] = MappingProxyType(
    {c: Stat("links_closed_" + c.name.lower()) for c in CloseReason}
)
REFUSAL_OUTCOME: Mapping[Refusal, Outcome] = MappingProxyType(
    {
        Refusal.EXPIRED: Outcome.EXPIRED,
        Refusal.EXPIRY_TOO_FAR: Outcome.INVALID,
        Refusal.ALREADY_RECEIPTED: Outcome.KNOWN,
        Refusal.STAMP: Outcome.INVALID,
        Refusal.BAD_SIGNATURE: Outcome.INVALID,
        Refusal.SUPERSEDED: Outcome.KNOWN,
        Refusal.BULLETIN_RATE: Outcome.OVER_QUOTA,
        Refusal.CHUNKS_NOT_CARRIED: Outcome.OVER_QUOTA,
    }
)
PUT_OUTCOME: Mapping[PutStatus, Outcome] = MappingProxyType(
    {
        PutStatus.STORED: Outcome.STORED,
        PutStatus.DUPLICATE: Outcome.KNOWN,
        PutStatus.SEEN: Outcome.KNOWN,
        PutStatus.EXPIRED: Outcome.EXPIRED,
        PutStatus.QUOTA: Outcome.OVER_QUOTA,
    }
)


class Counters:
    """The node's counters: :class:`Stat` -> count, kept as a plain ``dict[str, int]``
    (:attr:`values`) in the order they first counted, as ``steppe status`` shows them."""

    __slots__ = ("values",)

    def __init__(self) -> None:
        self.values: dict[str, int] = {}

    def count(self, stat: Stat, n: int = 1) -> None:
        key = stat.value
        self.values[key] = self.values.get(key, 0) + n


@dataclass(slots=True)
class ImportResult:
    """What an imported bundle did: its envelopes by outcome (``delivered`` ones are not
    also counted as ``stored``), its receipts that are now held, and our own messages they
    acknowledged."""

    stored: int = 0
    delivered: int = 0
    known: int = 0
    expired: int = 0
    invalid: int = 0
    over_quota: int = 0
    other: int = 0
    receipts: int = 0
    acked: int = 0

    def add(self, outcome: Outcome | None) -> None:
        if outcome is not None:
            name = outcome.value
            setattr(self, name, getattr(self, name) + 1)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)
