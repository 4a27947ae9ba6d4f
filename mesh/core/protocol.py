"""Messages between two nodes over an open link session, and their strict codec.

Every message is a canonical msgpack array ``[type, ...]``; a link record carries a batch
of them, ``[message, ...]`` (:func:`batch`, :func:`decode_record`), so many small offers,
asks and envelopes share one record's AEAD tag and padding. Encoding and decoding are
tables (:data:`_ENCODERS`, :data:`_DECODERS`); decoding raises :class:`ProtocolError` for
anything malformed, and the node closes the link when a peer sends one.

- ``HELLO   [0, version, strategy, routing_info, difficulty]`` ``difficulty``: the stamp
    bits the sender requires now of strangers' envelopes (it rises with its store's load)
- ``SYMBOLS [1, depth, prefix, start, blob, counts]`` rateless IBLT symbols ``start..`` of
    the ids in range ``(depth, prefix)`` (:mod:`mesh.core.sync`), in answer to a MORE
- ``MORE    [2, depth, prefix, start, upto]`` the decoder asks for symbols ``[start, upto)``
- ``TRADE   [3, offer, need_dest, want, mine, ask]``
    ``offer`` [[id, tag]...] envelopes the sender can give; ``need_dest`` the sender's
    strategy wants destination marks; ``want`` ids the sender asks for; ``mine`` the subset
    of ``want`` addressed to the sender (only when the other side set ``need_dest``);
    ``ask`` ids the sender lacks (from reconciliation) and would like offered.
- ``ENVELOPE [4, frame]``                one envelope (only ever in answer to a ``want``)
- ``RECEIPTS [5, [secret...]]``          released delivery-receipt secrets
- ``LINKS   [6, [tag...]]``   8-byte proofs of the sender's other open links
    (:mod:`mesh.core._duplicates`): at most 64, sent when a link opens
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from crypto.errors import CryptoError
from crypto.stamp import MAX_DIFFICULTY as MAX_STAMP
from crypto.wire import pack, strict_unpack
from mesh.core._duplicates import MAX_TAGS, TAG_LEN
from mesh.core.envelope import MAX_TAG
from mesh.core.errors import PeerError
from mesh.core.riblt import SYMBOL_LEN
from mesh.core.sync import MAX_DEPTH, MAX_SERVE

VERSION = 1
MAX_LIST = 1024
MAX_SYMBOLS_PER_MESSAGE = 256
MAX_MESSAGE = 60 * 1024  # below the link's 64 KiB record limit
BATCH_BYTES = 16 * 1024  # messages are gathered into records of about this size
MAX_BATCH = 1024  # messages per record


class ProtocolError(PeerError):
    """The peer sent a message that breaks the protocol."""


@dataclass(frozen=True, slots=True)
class Hello:
    version: int
    strategy: str
    routing_info: bytes
    difficulty: int = 0  # stamp bits the sender requires now of strangers' envelopes


@dataclass(frozen=True, slots=True)
class SymbolsMsg:
    depth: int
    prefix: int
    start: int
    blob: bytes
    counts: list[int]


@dataclass(frozen=True, slots=True)
class More:
    depth: int
    prefix: int
    start: int
    upto: int


@dataclass(frozen=True, slots=True)
class Trade:
    offer: list[tuple[bytes, bytes]]
    need_dest: bool
    want: list[bytes]
    mine: list[bytes]
    ask: list[bytes]


@dataclass(frozen=True, slots=True)
class EnvelopeMsg:
    frame: bytes


@dataclass(frozen=True, slots=True)
class Receipts:
    secrets: list[bytes]


@dataclass(frozen=True, slots=True)
class Links:
    tags: list[bytes]


Message = Hello | SymbolsMsg | More | Trade | EnvelopeMsg | Receipts | Links


_ENCODERS: MappingProxyType[type, Callable[[Any], list[Any]]] = MappingProxyType(
    {
        Hello: lambda m: [0, m.version, m.strategy, m.routing_info, m.difficulty],
        SymbolsMsg: lambda m: [1, m.depth, m.prefix, m.start, m.blob, m.counts],
        More: lambda m: [2, m.depth, m.prefix, m.start, m.upto],
        Trade: lambda m: [3, [[i, t] for i, t in m.offer], m.need_dest, m.want, m.mine, m.ask],
        EnvelopeMsg: lambda m: [4, m.frame],
        Receipts: lambda m: [5, m.secrets],
        Links: lambda m: [6, m.tags],
    }
)


def encode(msg: Message) -> bytes:
    return pack(_ENCODERS[type(msg)](msg))


def _ids(obj: Any, what: str) -> list[bytes]:
    if not isinstance(obj, list) or len(obj) > MAX_LIST:
        raise ProtocolError(f"{what}: expected a list of at most {MAX_LIST} ids")
    for x in obj:
        if not isinstance(x, bytes) or len(x) != 32:
            raise ProtocolError(f"{what}: ids are 32 bytes")
    return obj


def _int(obj: Any, what: str, hi: int) -> int:
    if type(obj) is not int or not 0 <= obj <= hi:
        raise ProtocolError(f"{what}: integer out of range")
    return obj


def _hello(f: list[Any]) -> Message:
    if len(f) != 5 or not isinstance(f[2], str) or not isinstance(f[3], bytes):
        raise ProtocolError("bad HELLO")
    return Hello(_int(f[1], "version", 255), f[2], f[3], _int(f[4], "difficulty", MAX_STAMP))


def _range(f: list[Any]) -> tuple[int, int]:
    depth = _int(f[1], "range depth", MAX_DEPTH)
    return depth, _int(f[2], "range prefix", (1 << depth) - 1)


def _symbols(f: list[Any]) -> Message:
    if len(f) != 6 or not isinstance(f[4], bytes) or not isinstance(f[5], list):
        raise ProtocolError("bad SYMBOLS")
    counts = f[5]
    if len(counts) > MAX_SYMBOLS_PER_MESSAGE or len(f[4]) != SYMBOL_LEN * len(counts):
        raise ProtocolError("SYMBOLS: sizes disagree")
    if not all(type(c) is int and 0 <= c < 2**32 for c in counts):
        raise ProtocolError("SYMBOLS: bad counts")
    return SymbolsMsg(*_range(f), _int(f[3], "start", MAX_SERVE), f[4], counts)


def _more(f: list[Any]) -> Message:
    if len(f) != 5:
        raise ProtocolError("bad MORE")
    return More(*_range(f), _int(f[3], "start", MAX_SERVE), _int(f[4], "upto", MAX_SERVE))


def _trade(f: list[Any]) -> Message:
    if len(f) != 6 or not isinstance(f[1], list) or type(f[2]) is not bool:
        raise ProtocolError("bad TRADE")
    if len(f[1]) > MAX_LIST:
        raise ProtocolError("TRADE: offer too long")
    offer: list[tuple[bytes, bytes]] = []
    for entry in f[1]:
        if (
            not isinstance(entry, list)
            or len(entry) != 2
            or not isinstance(entry[0], bytes)
            or len(entry[0]) != 32
            or not isinstance(entry[1], bytes)
            or len(entry[1]) > MAX_TAG
        ):
            raise ProtocolError("TRADE: bad offer entry")
        offer.append((entry[0], entry[1]))
    return Trade(offer, f[2], _ids(f[3], "want"), _ids(f[4], "mine"), _ids(f[5], "ask"))


def _envelope(f: list[Any]) -> Message:
    if len(f) != 2 or not isinstance(f[1], bytes):
        raise ProtocolError("bad ENVELOPE")
    return EnvelopeMsg(f[1])


def _receipts(f: list[Any]) -> Message:
    if len(f) != 2 or not isinstance(f[1], list) or len(f[1]) > MAX_LIST:
        raise ProtocolError("bad RECEIPTS")
    if not all(isinstance(s, bytes) and len(s) == 16 for s in f[1]):
        raise ProtocolError("RECEIPTS: secrets are 16 bytes")
    return Receipts(f[1])


def _links(f: list[Any]) -> Message:
    if len(f) != 2 or not isinstance(f[1], list) or len(f[1]) > MAX_TAGS:
        raise ProtocolError("bad LINKS")
    if not all(isinstance(t, bytes) and len(t) == TAG_LEN for t in f[1]):
        raise ProtocolError(f"LINKS: tags are {TAG_LEN} bytes")
    return Links(f[1])


_DECODERS: MappingProxyType[int, Callable[[list[Any]], Message]] = MappingProxyType(
    {0: _hello, 1: _symbols, 2: _more, 3: _trade, 4: _envelope, 5: _receipts, 6: _links}
)


def batch(encoded: list[bytes], target: int = BATCH_BYTES) -> list[bytes]:
    """Record payloads holding the encoded messages in order, each about ``target`` bytes
    or less (a message larger than ``target`` travels alone)."""
    out: list[bytes] = []
    group: list[bytes] = []
    size = 0
    for m in encoded:
        if group and (size + len(m) > target or len(group) >= MAX_BATCH):
            out.append(_array(group))
            group, size = [], 0
        group.append(m)
        size += len(m)
    if group:
        out.append(_array(group))
    return out


def _array(items: list[bytes]) -> bytes:
    """A msgpack array of already-encoded items: canonical, as ``pack`` would write it."""
    n = len(items)
    head = bytes([0x90 | n]) if n < 16 else b"\xdc" + n.to_bytes(2, "big")
    return head + b"".join(items)


def decode_record(data: bytes) -> list[Message]:
    """The messages of one record; any malformation is a :class:`ProtocolError`."""
    try:
        obj = strict_unpack(
            data, max_size=MAX_MESSAGE, max_array_len=MAX_LIST, max_str_len=32, max_map_len=0
        )
    except CryptoError as exc:
        raise ProtocolError(str(exc)) from exc
    if not isinstance(obj, list) or not obj or len(obj) > MAX_BATCH:
        raise ProtocolError(f"a record holds 1 to {MAX_BATCH} messages")
    return [_message(m) for m in obj]


def decode(data: bytes) -> Message:
    """One message on its own (outside a record)."""
    try:
        obj = strict_unpack(
            data, max_size=MAX_MESSAGE, max_array_len=MAX_LIST, max_str_len=32, max_map_len=0
        )
    except CryptoError as exc:
        raise ProtocolError(str(exc)) from exc
    return _message(obj)


def _message(obj: Any) -> Message:
    if not isinstance(obj, list) or not obj or type(obj[0]) is not int:
        raise ProtocolError("a message is a non-empty array with a type")
    decoder = _DECODERS.get(obj[0])
    if decoder is None:
        raise ProtocolError(f"unknown message type {obj[0]}")
    return decoder(obj)
