"""What the daemon tells a subscriber as it happens (sans-I/O): frozen, slotted
dataclasses, one per kind, each what a UI needs to update without asking again.

On the wire an event is ``{"event": KIND, "data": {field: value, ...}}``. A client that
meets a kind it does not know skips it (a newer daemon may say more), but a known kind
whose data does not fit is the daemon breaking the protocol (:class:`IpcError`).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any, ClassVar

from mesh.ipc.schema import IpcError, dump, load


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message was delivered to us (it is in the history already)."""

    KIND: ClassVar[str] = "message"
    msg_id: bytes
    contact: bytes  # the sender's identity key
    contact_name: str  # as ``messages`` names them (a fingerprint if not a contact)
    created: int  # the sender's clock, seconds
    text: str
    file: bool = False  # a file was offered: ``text`` is its name (state: ``files``)


@dataclass(frozen=True, slots=True)
class MessageStateChanged:
    """A message's state changed: one of ours reached its recipient (``acked``), or a
    file being received ended (``received``, ``damaged``, ``dropped``)."""

    KIND: ClassVar[str] = "acked"
    msg_id: bytes
    state: str = "acked"


@dataclass(frozen=True, slots=True)
class FileProgress:
    """One more chunk of a file being received is here (and in the history)."""

    KIND: ClassVar[str] = "file_progress"
    msg_id: bytes
    received: int
    count: int


@dataclass(frozen=True, slots=True)
class MessageCarried:
    """One of our messages, not yet delivered, was handed to one more neighbour
    (``carriers`` in all; see :mod:`mesh.daemon.carried`)."""

    KIND: ClassVar[str] = "carried"
    msg_id: bytes
    carriers: int


@dataclass(frozen=True, slots=True)
class BulletinStored:
    """A bulletin that verifies was stored: new, or a newer post on its topic (ours too)."""

    KIND: ClassVar[str] = "bulletin"
    persona: bytes  # the signing key
    signer: str  # the trust label, as ``bulletin_list`` gives it
    topic: str
    created: int
    expiry: int
    text: str
    post_id: str = ""  # hex, as bulletin_list gives it (what bulletin_endorse names)


@dataclass(frozen=True, slots=True)
class BulletinEndorsed:
    """One of our verified contacts (or we) endorsed a post: its endorsers changed. Sent
    whether or not the node holds the post yet; bulletin_list has the post's new level."""

    KIND: ClassVar[str] = "endorsed"
    post_id: str  # hex
    endorser: str  # "you" or the contact's name


@dataclass(frozen=True, slots=True)
class LinkChanged:
    """A link to a neighbour finished its handshake (``up``) or closed."""

    KIND: ClassVar[str] = "peer"
    link: int
    kind: str  # "lan", "gateway" or "incoming"
    up: bool


class ContactChange(enum.StrEnum):
    ADDED = "added"
    VERIFIED = "verified"
    REPLACED = "replaced"  # a new key under a known name: frozen until verified
    REMOVED = "removed"
    RENAMED = "renamed"


@dataclass(frozen=True, slots=True)
class ContactChanged:
    """The contacts changed through this daemon (the change is in the keystore)."""

    KIND: ClassVar[str] = "contact"
    change: ContactChange
    name: str  # the contact's name now (a removed one: the name they had)
    fingerprint: str  # hex, 64 digits
    old_name: str = ""  # renamed: the name before


Event = (
    MessageReceived
    | MessageStateChanged
    | MessageCarried
    | FileProgress
    | BulletinStored
    | BulletinEndorsed
    | LinkChanged
    | ContactChanged
)
EVENTS: dict[str, type[Event]] = {
    cls.KIND: cls
    for cls in (
        MessageReceived,
        MessageStateChanged,
        MessageCarried,
        FileProgress,
        BulletinStored,
        BulletinEndorsed,
        LinkChanged,
        ContactChanged,
    )
}


def event_map(event: Event) -> dict[str, Any]:
    return {"event": event.KIND, "data": dump(event)}


def parse_event(obj: dict[str, Any]) -> Event | None:
    """The event in a map from the daemon; None for a kind this client does not know."""
    kind = obj.get("event")
    cls = EVENTS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        return None
    if not isinstance(obj.get("data"), dict):
        raise IpcError(f"event {kind!r} without a data map")
    return load(cls, obj["data"], f"event {kind}")
