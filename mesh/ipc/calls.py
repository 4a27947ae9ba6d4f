"""The local API's operations: one frozen, slotted dataclass per request, the typed
result each one answers with, and the bounds every argument is checked against (sans-I/O).

A request class names its operation (``OP``), its arguments (its fields, with their types
and defaults: an argument with a default may be left out) and their bounds (field
metadata: strings by their length in UTF-8 bytes, integers by an inclusive range; a string
without bounds is at most :data:`MAX_STR` bytes, an integer without them any size msgpack
carries; a path may not contain NUL). :data:`CALLS` is the table of them by name; the
dicts :data:`OPS`, :data:`OPTIONAL`, :data:`LIMITS` and :data:`PATHS` are views of it.
``call.decode(raw)`` turns the daemon's answer into the result type.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from mesh.ipc.schema import check, hints, load, load_list

R = TypeVar("R")

MAX_TEXT = 12_000  # message and bulletin text (mesh.core.node.MAX_BODY, crypto.bulletin.MAX_BODY)
MAX_TOPIC = 128  # a bulletin's topic (its key in crypto.bulletin)
MAX_NAME = 256
MAX_CARD = 2048  # a contact card's text (crypto.identity.MAX_CARD_BYTES, base32, spaces)
MAX_PATH = 4096
MAX_STR = 65536
MAX_LIMIT = 10_000


def bounded(low: int, high: int, default: Any = dataclasses.MISSING, path: bool = False) -> Any:
    """A field whose value must lie in ``[low, high]`` (a string: its UTF-8 length)."""
    meta = {"bounds": (low, high), "path": path}
    return field(default=default, metadata=meta)


# ---- results ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StatusInfo:
    name: str
    fingerprint: str
    mode: str
    link_key: str  # a relay's long-term link key (hex), "" for a user's daemon
    uptime: int
    tcp_port: int
    links: int
    open_links: int
    envelopes: int
    store_bytes: int
    node_stats: dict[str, int]
    daemon_stats: dict[str, int]


@dataclass(frozen=True, slots=True)
class PeerRow:
    link: int
    kind: str
    remote: str
    open: bool
    seconds: int


@dataclass(frozen=True, slots=True)
class ContactRow:
    name: str
    verified: bool
    key_changed: bool
    fingerprint: str  # hex, 64 digits
    can_write: bool  # a message to them can be sealed now (a session or a prekey)


@dataclass(frozen=True, slots=True)
class MessageRow:
    contact: bytes  # the contact's identity key
    contact_name: str  # what the daemon calls them now (a fingerprint if not a contact)
    outgoing: bool
    msg_id: bytes
    created: int
    text: str
    state: str  # outgoing: queued / acked; incoming: received
    carriers: int = 0  # outgoing, queued: neighbours it was handed to (an older daemon: 0)
    file: bool = False  # a file: ``text`` is its name, ``files`` has the rest


@dataclass(frozen=True, slots=True)
class Card:
    """This profile's own contact card, to show or hand over."""

    name: str
    fingerprint: str  # hex, 64 digits
    words: str  # the fingerprint as 8 words
    text: str  # the card, as `steppe id show` prints it


@dataclass(frozen=True, slots=True)
class Safety:
    """The safety number shared with one contact (both identity keys, order-free)."""

    name: str
    fingerprint: str  # the contact's key the number was made with (hex): verify that one
    digits: str  # 60 digits in 12 groups of 5
    words: str  # the same number as 8 words


@dataclass(frozen=True, slots=True)
class Sent:
    msg_id: bytes


@dataclass(frozen=True, slots=True)
class FileSent:
    msg_id: bytes
    name: str
    size: int  # bytes sent (after stripping metadata)
    mime: str
    removed: tuple[str, ...]  # the metadata stripped before sending
    note: str  # one line saying what was done to the file


@dataclass(frozen=True, slots=True)
class FileRow:
    msg_id: bytes  # the file's message: its hex is what ``file_save`` names
    contact: bytes
    contact_name: str
    outgoing: bool
    name: str  # as the sender wrote it: render it inert
    mime: str
    size: int
    count: int  # chunks
    received: int  # chunks here (ours: 0)
    state: str  # ours: queued / acked; theirs: receiving / received / damaged / dropped / refused
    note: str
    created: int


@dataclass(frozen=True, slots=True)
class Saved:
    path: str
    size: int


@dataclass(frozen=True, slots=True)
class Posted:
    topic: str
    expires: int


@dataclass(frozen=True, slots=True)
class BulletinRow:
    signer: str  # the trust label: "you", "NAME (verified contact)", "unknown key ..."
    topic: str
    created: int
    expiry: int
    text: str
    persona: bytes = b""  # the signing key
    post_id: str = ""  # hex: what `bulletin endorse` names
    level: str = ""  # TRUST_LEVELS (mesh.daemon.endorsements)
    endorsed_by: tuple[str, ...] = ()  # the reader's verified contacts (and "you") who endorsed


@dataclass(frozen=True, slots=True)
class Endorsed:
    post_id: str
    expires: int


@dataclass(frozen=True, slots=True)
class PersonaRow:
    name: str
    persona: bytes  # the public key its posts are signed with


@dataclass(frozen=True, slots=True)
class Exported:
    envelopes: int
    receipts: int
    bytes: int


# ---- requests ---------------------------------------------------------------------------


class Call(Generic[R]):
    """A request to the daemon whose answer is an ``R``."""

    __slots__ = ()
    OP: ClassVar[str]

    def decode(self, raw: object) -> R:
        raise NotImplementedError


class _Flag(Call[bool]):
    __slots__ = ()

    def decode(self, raw: object) -> bool:
        return bool(check(bool, raw, self.OP))


@dataclass(frozen=True, slots=True)
class Status(Call[StatusInfo]):
    OP: ClassVar[str] = "status"

    def decode(self, raw: object) -> StatusInfo:
        return load(StatusInfo, raw)


@dataclass(frozen=True, slots=True)
class Peers(Call[list[PeerRow]]):
    OP: ClassVar[str] = "peers"

    def decode(self, raw: object) -> list[PeerRow]:
        return load_list(PeerRow, raw)


@dataclass(frozen=True, slots=True)
class Contacts(Call[list[ContactRow]]):
    OP: ClassVar[str] = "contacts"

    def decode(self, raw: object) -> list[ContactRow]:
        return load_list(ContactRow, raw)


class _ContactCall(Call[ContactRow]):
    __slots__ = ()

    def decode(self, raw: object) -> ContactRow:
        return load(ContactRow, raw)


@dataclass(frozen=True, slots=True)
class ContactAdd(_ContactCall):
    """Add a contact from their card; ``replace``: a new key under a known name."""

    OP: ClassVar[str] = "contact_add"
    card: str = bounded(1, MAX_CARD)
    name: str = bounded(0, MAX_NAME, default="")
    replace: bool = False


@dataclass(frozen=True, slots=True)
class ContactVerify(_ContactCall):
    """Mark verified the key whose fingerprint the user compared."""

    OP: ClassVar[str] = "contact_verify"
    name: str = bounded(1, MAX_NAME)
    fingerprint: str = bounded(64, 64)


@dataclass(frozen=True, slots=True)
class Me(Call[Card]):
    OP: ClassVar[str] = "me"

    def decode(self, raw: object) -> Card:
        return load(Card, raw)


@dataclass(frozen=True, slots=True)
class SafetyNumber(Call[Safety]):
    """What to compare in person before ``contact_verify`` (with its ``fingerprint``)."""

    OP: ClassVar[str] = "safety_number"
    name: str = bounded(1, MAX_NAME)

    def decode(self, raw: object) -> Safety:
        return load(Safety, raw)


@dataclass(frozen=True, slots=True)
class ContactAddSender(_ContactCall):
    OP: ClassVar[str] = "contact_add_sender"
    fingerprint: str = bounded(1, 160)
    name: str = bounded(1, MAX_NAME)


@dataclass(frozen=True, slots=True)
class ContactRemove(_ContactCall):
    """Forget a contact (their messages stay, from an unknown sender); the answer is the
    row they had."""

    OP: ClassVar[str] = "contact_remove"
    name: str = bounded(1, MAX_NAME)


@dataclass(frozen=True, slots=True)
class ContactRename(_ContactCall):
    OP: ClassVar[str] = "contact_rename"
    name: str = bounded(1, MAX_NAME)
    new_name: str = bounded(1, MAX_NAME)


@dataclass(frozen=True, slots=True)
class Conversations(Call[list[MessageRow]]):
    """The latest message with each contact."""

    OP: ClassVar[str] = "conversations"

    def decode(self, raw: object) -> list[MessageRow]:
        return load_list(MessageRow, raw)


@dataclass(frozen=True, slots=True)
class Messages(Call[list[MessageRow]]):
    """The last ``limit`` messages (with ``contact`` only, if given), oldest first."""

    OP: ClassVar[str] = "messages"
    contact: str = bounded(0, MAX_NAME, default="")
    limit: int = bounded(1, MAX_LIMIT, default=50)

    def decode(self, raw: object) -> list[MessageRow]:
        return load_list(MessageRow, raw)


@dataclass(frozen=True, slots=True)
class Send(Call[Sent]):
    OP: ClassVar[str] = "send"
    contact: str = bounded(1, MAX_NAME)
    text: str = bounded(0, MAX_TEXT)

    def decode(self, raw: object) -> Sent:
        return load(Sent, raw)


@dataclass(frozen=True, slots=True)
class SendFile(Call[FileSent]):
    """Send a file (at most 10 MiB; a JPEG or PNG without its identifying metadata)."""

    OP: ClassVar[str] = "send_file"
    contact: str = bounded(1, MAX_NAME)
    path: str = bounded(1, MAX_PATH, path=True)  # absolute

    def decode(self, raw: object) -> FileSent:
        return load(FileSent, raw)


@dataclass(frozen=True, slots=True)
class Files(Call[list[FileRow]]):
    """Files sent and received (with ``contact`` only, if given), oldest first."""

    OP: ClassVar[str] = "files"
    contact: str = bounded(0, MAX_NAME, default="")

    def decode(self, raw: object) -> list[FileRow]:
        return load_list(FileRow, raw)


@dataclass(frozen=True, slots=True)
class FileSave(Call[Saved]):
    """Write a received file to ``path`` (absolute; an existing file is not replaced)."""

    OP: ClassVar[str] = "file_save"
    file: str = bounded(4, 32)  # hex, a unique prefix of the file's message id
    path: str = bounded(1, MAX_PATH, path=True)

    def decode(self, raw: object) -> Saved:
        return load(Saved, raw)


@dataclass(frozen=True, slots=True)
class FileDelete(_Flag):
    """Forget a received file's content (its record stays, marked deleted)."""

    OP: ClassVar[str] = "file_delete"
    file: str = bounded(4, 32)  # hex, a unique prefix of the file's message id


@dataclass(frozen=True, slots=True)
class Subscribe(_Flag):
    """From now on this connection also carries events (:mod:`mesh.ipc.events`)."""

    OP: ClassVar[str] = "subscribe"


@dataclass(frozen=True, slots=True)
class BulletinPost(Call[Posted]):
    OP: ClassVar[str] = "bulletin_post"
    text: str = bounded(0, MAX_TEXT)
    topic: str = bounded(0, MAX_TOPIC, default="")
    hours: int = bounded(1, 7 * 24, default=72)
    persona: str = bounded(0, MAX_NAME, default="")  # "": the identity key

    def decode(self, raw: object) -> Posted:
        return load(Posted, raw)


@dataclass(frozen=True, slots=True)
class BulletinEndorse(Call[Endorsed]):
    OP: ClassVar[str] = "bulletin_endorse"
    post_id: str = bounded(8, 64)  # hex, a unique prefix of at least 8 digits

    def decode(self, raw: object) -> Endorsed:
        return load(Endorsed, raw)


@dataclass(frozen=True, slots=True)
class Personas(Call[list[PersonaRow]]):
    OP: ClassVar[str] = "personas"

    def decode(self, raw: object) -> list[PersonaRow]:
        return load_list(PersonaRow, raw)


@dataclass(frozen=True, slots=True)
class PersonaNew(Call[PersonaRow]):
    OP: ClassVar[str] = "persona_new"
    name: str = bounded(1, MAX_NAME)

    def decode(self, raw: object) -> PersonaRow:
        return load(PersonaRow, raw)


@dataclass(frozen=True, slots=True)
class BulletinList(Call[list[BulletinRow]]):
    OP: ClassVar[str] = "bulletin_list"
    limit: int = bounded(1, MAX_LIMIT, default=50)

    def decode(self, raw: object) -> list[BulletinRow]:
        return load_list(BulletinRow, raw)


@dataclass(frozen=True, slots=True)
class Export(Call[Exported]):
    OP: ClassVar[str] = "export"
    path: str = bounded(1, MAX_PATH, path=True)
    max_bytes: int = bounded(0, 1 << 40, default=0)

    def decode(self, raw: object) -> Exported:
        return load(Exported, raw)


@dataclass(frozen=True, slots=True)
class Import(Call[dict[str, int]]):
    """Merge a bundle file; the answer counts where its envelopes went."""

    OP: ClassVar[str] = "import"
    path: str = bounded(1, MAX_PATH, path=True)

    def decode(self, raw: object) -> dict[str, int]:
        counts: dict[str, int] = check(dict[str, int], raw, self.OP)  # type: ignore[assignment]
        return counts


@dataclass(frozen=True, slots=True)
class Panic(_Flag):
    """Forget the keys in memory and stop at once (``steppe panic`` wipes the files)."""

    OP: ClassVar[str] = "panic"


AnyCall = (
    Status
    | Peers
    | Me
    | SafetyNumber
    | Contacts
    | ContactAdd
    | ContactVerify
    | ContactAddSender
    | ContactRemove
    | ContactRename
    | Conversations
    | Messages
    | Send
    | SendFile
    | Files
    | FileSave
    | FileDelete
    | Subscribe
    | BulletinPost
    | BulletinList
    | BulletinEndorse
    | Personas
    | PersonaNew
    | Export
    | Import
    | Panic
)
CALLS: dict[str, type[AnyCall]] = {
    cls.OP: cls
    for cls in (
        Status,
        Peers,
        Me,
        SafetyNumber,
        Contacts,
        ContactAdd,
        ContactVerify,
        ContactAddSender,
        ContactRemove,
        ContactRename,
        Conversations,
        Messages,
        Send,
        SendFile,
        Files,
        FileSave,
        FileDelete,
        Subscribe,
        BulletinPost,
        BulletinList,
        BulletinEndorse,
        Personas,
        PersonaNew,
        Export,
        Import,
        Panic,
    )
}

# Views of the table: op -> {argument: type}; the arguments that may be left out; bounds
# by (op, argument); the arguments that are paths.
OPS: dict[str, dict[str, type]] = {op: hints(cls) for op, cls in CALLS.items()}
OPTIONAL: dict[str, frozenset[str]] = {
    op: frozenset(f.name for f in dataclasses.fields(cls) if f.default is not dataclasses.MISSING)
    for op, cls in CALLS.items()
}
LIMITS: dict[tuple[str, str], tuple[int, int]] = {
    (op, f.name): f.metadata["bounds"]
    for op, cls in CALLS.items()
    for f in dataclasses.fields(cls)
    if "bounds" in f.metadata
}
PATHS = frozenset(
    (op, f.name)
    for op, cls in CALLS.items()
    for f in dataclasses.fields(cls)
    if f.metadata.get("path")
)
