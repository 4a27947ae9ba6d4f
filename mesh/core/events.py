"""Events the node is fed and actions it returns: frozen, slotted dataclasses."""

from __future__ import annotations

from dataclasses import dataclass

from crypto.bulletin import Bulletin
from mesh.core.groups import GroupView

# ---- events (driver -> node) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LinkUp:
    """A link came up. ``stream``: a byte stream such as TCP (records travel whole, framed
    by length, padded to a size bucket); otherwise frames of exactly ``mtu`` bytes.
    ``source``: an opaque label of where the link comes from that a flooder cannot mint for
    free (the daemon: a keyed hash of the remote address); per-source quotas and token
    buckets count against it, across reconnects. Empty: the link's own key."""

    link: int
    initiator: bool
    mtu: int = 1400
    stream: bool = False
    source: bytes = b""


@dataclass(frozen=True, slots=True)
class LinkDown:
    link: int


@dataclass(frozen=True, slots=True)
class FrameReceived:
    link: int
    data: bytes


@dataclass(frozen=True, slots=True)
class SendMessage:
    recipient: bytes  # the contact's Ed25519 identity key
    body: bytes
    ttl: int = 3 * 86400
    ref: int = 0  # the caller's reference, echoed in the MessageQueued or SendFailed


@dataclass(frozen=True, slots=True)
class SendFile:
    """Send a file (up to 10 MiB) to a contact as chunks and a manifest message
    (:mod:`mesh.core.attachments`). The driver strips identifying metadata first."""

    recipient: bytes
    name: str
    data: bytes
    mime: str = "application/octet-stream"
    ttl: int = 3 * 86400
    ref: int = 0  # echoed in the MessageQueued or SendFailed


@dataclass(frozen=True, slots=True)
class CreateGroup:
    """Start a group whose only member is us (:mod:`mesh.core.groups`)."""

    name: str
    ref: int = 0  # echoed in the GroupChanged or SendFailed


@dataclass(frozen=True, slots=True)
class InviteMember:
    """Add a contact to a group: the invitation goes to them, the news to the others."""

    group_id: bytes
    member: bytes
    ref: int = 0


@dataclass(frozen=True, slots=True)
class RemoveMembers:
    """Re-key a group without these members (none: a plain re-key)."""

    group_id: bytes
    members: tuple[bytes, ...]
    ref: int = 0


@dataclass(frozen=True, slots=True)
class LeaveGroup:
    """Tell the group we left, then forget its keys."""

    group_id: bytes
    ref: int = 0


@dataclass(frozen=True, slots=True)
class SendGroupMessage:
    group_id: bytes
    body: bytes
    ttl: int = 3 * 86400
    ref: int = 0  # echoed in the MessageQueued or SendFailed (whose recipient is the group)


@dataclass(frozen=True, slots=True)
class Tick:
    pass


GroupEvent = CreateGroup | InviteMember | RemoveMembers | LeaveGroup | SendGroupMessage
Event = LinkUp | LinkDown | FrameReceived | SendMessage | SendFile | GroupEvent | Tick

# ---- actions (node -> driver) -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Transmit:
    link: int
    data: bytes


@dataclass(frozen=True, slots=True)
class CloseLink:
    link: int
    reason: str


@dataclass(frozen=True, slots=True)
class LinkOpened:
    """The Noise handshake finished. ``peer_key`` is the neighbour's link-layer key: fresh
    per connection for phones and laptops, long-term for relays (a UI may pin it)."""

    link: int
    peer_key: bytes


@dataclass(frozen=True, slots=True)
class MessageDelivered:
    sender: bytes  # Ed25519 identity key of the authenticated sender
    created: int
    msg_id: bytes
    body: bytes


@dataclass(frozen=True, slots=True)
class MessageQueued:
    msg_id: bytes
    envelope_id: bytes
    ref: int = 0  # the SendMessage's ``ref``


@dataclass(frozen=True, slots=True)
class MessageAcked:
    msg_id: bytes


@dataclass(frozen=True, slots=True)
class SendFailed:
    recipient: bytes
    reason: str
    ref: int = 0  # the SendMessage's ``ref`` (0 for a refused bulletin)


@dataclass(frozen=True, slots=True)
class BulletinStored:
    """A bulletin entered the store, verified (from a peer, a bundle or our own post):
    the newest of its ``(persona, type, key)`` slot, which it superseded."""

    envelope_id: bytes
    bulletin: Bulletin


@dataclass(frozen=True, slots=True)
class FileOffered:
    """A contact's manifest for a file arrived (``refused``: why it will not be received,
    or empty); its chunks follow as :class:`ChunkReceived`."""

    sender: bytes
    created: int
    msg_id: bytes
    file_id: bytes
    name: str  # as the sender wrote it: render it inert
    mime: str
    size: int
    count: int
    digest: bytes
    refused: str = ""


@dataclass(frozen=True, slots=True)
class ChunkReceived:
    """One chunk of a file being received, checked: the driver keeps ``data`` (the piece
    at ``index * CHUNK_DATA``) before it acknowledges anything."""

    file_id: bytes
    index: int
    data: bytes
    received: int
    count: int


@dataclass(frozen=True, slots=True)
class FileReceived:
    """Every chunk of the file has arrived (the driver checks the whole file's digest)."""

    file_id: bytes
    msg_id: bytes


@dataclass(frozen=True, slots=True)
class FileDropped:
    """A file being received was given up (``reason``: it expired)."""

    file_id: bytes
    reason: str


@dataclass(frozen=True, slots=True)
class GroupChanged:
    """A group we are in was made, joined, changed or left (``ref``: of our event, or 0
    for a change a member made). ``by``: the member whose record caused it (us: empty)."""

    group: GroupView
    by: bytes = b""
    ref: int = 0


@dataclass(frozen=True, slots=True)
class GroupMessageDelivered:
    group_id: bytes
    author: bytes  # the member's identity key, checked by their signature
    created: int
    msg_id: bytes
    body: bytes


FileAction = FileOffered | ChunkReceived | FileReceived | FileDropped
GroupAction = GroupChanged | GroupMessageDelivered

Action = (
    Transmit
    | CloseLink
    | LinkOpened
    | MessageDelivered
    | MessageQueued
    | MessageAcked
    | SendFailed
    | BulletinStored
    | FileOffered
    | ChunkReceived
    | FileReceived
    | FileDropped
    | GroupChanged
    | GroupMessageDelivered
)
