"""The local API between the daemon and its clients (the ``steppe`` CLI, the TUI).

Transport: a Unix stream socket in the profile's runtime directory, mode 0600, so only the
profile's owner can talk to the daemon. Framing: a 4-byte big-endian length, then one
canonical msgpack map (:mod:`crypto.wire`), at most :data:`MAX_FRAME` bytes.

Messages::

    request   {"id": n, "op": "send", "args": {...}}
    response  {"id": n, "ok": true, "result": ...}   or   {"id": n, "ok": false, "error": "..."}
    event     {"event": "message", "data": {...}}     (only after a "subscribe" request)

:data:`OPS` lists every operation with its argument types and :data:`LIMITS` their bounds;
:func:`parse_request` checks a request against both, so the daemon never sees a malformed
one. A frame the daemon cannot read is answered with ``{"id": 0, "ok": false, ...}`` and
the connection is closed; a subscriber that falls :data:`mesh.daemon.local_api.QUEUE`
frames behind is disconnected (it reconnects and subscribes again) rather than missing
events silently. The codec is sans-I/O
(:class:`FrameReader`); :class:`Client` is a small trio client over it.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import trio

from crypto.errors import DecodeError
from crypto.wire import pack, strict_unpack

MAX_FRAME = 1 << 20
SOCKET_NAME = "daemon.sock"

# op -> {argument: type}; every argument is required unless listed in OPTIONAL.
OPS: dict[str, dict[str, type]] = {
    "status": {},
    "peers": {},
    "contacts": {},
    "contact_add": {"card": str, "name": str, "replace": bool},
    "contact_verify": {"name": str, "fingerprint": str},
    "contact_add_sender": {"fingerprint": str, "name": str},
    "conversations": {},
    "messages": {"contact": str, "limit": int},
    "send": {"contact": str, "text": str},
    "subscribe": {},
    "bulletin_post": {"text": str, "topic": str, "hours": int},
    "bulletin_list": {"limit": int},
    "export": {"path": str, "max_bytes": int},
    "import": {"path": str},
    "panic": {},
}
OPTIONAL: dict[str, frozenset[str]] = {
    "messages": frozenset({"contact", "limit"}),
    "bulletin_list": frozenset({"limit"}),
    "bulletin_post": frozenset({"topic", "hours"}),
    "export": frozenset({"max_bytes"}),
    "contact_add": frozenset({"name", "replace"}),
}


# Bounds checked before a request reaches the daemon: strings by their length in UTF-8
# bytes, integers by an inclusive range. Arguments not listed: strings up to MAX_STR bytes,
# integers of any size msgpack carries. PATHS may not contain NUL.
MAX_TEXT = 12_000  # message and bulletin text (mesh.core.node.MAX_BODY, crypto.bulletin.MAX_BODY)
MAX_TOPIC = 128  # a bulletin's topic (its key in crypto.bulletin)
MAX_NAME = 256
MAX_CARD = 2048  # a contact card's text (crypto.identity.MAX_CARD_BYTES, base32, spaces)
MAX_PATH = 4096
MAX_STR = 65536
MAX_LIMIT = 10_000
LIMITS: dict[tuple[str, str], tuple[int, int]] = {
    ("messages", "contact"): (0, MAX_NAME),
    ("messages", "limit"): (1, MAX_LIMIT),
    ("send", "contact"): (1, MAX_NAME),
    ("contact_add", "card"): (1, MAX_CARD),
    ("contact_add", "name"): (0, MAX_NAME),
    ("contact_verify", "name"): (1, MAX_NAME),
    ("contact_verify", "fingerprint"): (64, 64),
    ("contact_add_sender", "fingerprint"): (1, 160),
    ("contact_add_sender", "name"): (1, MAX_NAME),
    ("send", "text"): (0, MAX_TEXT),
    ("bulletin_post", "text"): (0, MAX_TEXT),
    ("bulletin_post", "topic"): (0, MAX_TOPIC),
    ("bulletin_post", "hours"): (1, 7 * 24),
    ("bulletin_list", "limit"): (1, MAX_LIMIT),
    ("export", "path"): (1, MAX_PATH),
    ("export", "max_bytes"): (0, 1 << 40),
    ("import", "path"): (1, MAX_PATH),
}
PATHS = frozenset({("export", "path"), ("import", "path")})


class IpcError(Exception):
    """The other side broke the local protocol, or the daemon refused a request."""


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    op: str
    args: dict[str, Any]


def encode_frame(obj: dict[str, Any]) -> bytes:
    data = pack(obj)
    if len(data) > MAX_FRAME:
        raise IpcError(f"IPC message of {len(data)} bytes exceeds {MAX_FRAME}")
    return len(data).to_bytes(4, "big") + data


class FrameReader:
    """Sans-I/O: ``feed(bytes)`` returns the complete maps received so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        self._buf += data
        out: list[dict[str, Any]] = []
        while len(self._buf) >= 4:
            size = int.from_bytes(self._buf[:4], "big")
            if size > MAX_FRAME:
                raise IpcError(f"IPC frame of {size} bytes exceeds {MAX_FRAME}")
            if len(self._buf) < 4 + size:
                break
            raw = bytes(self._buf[4 : 4 + size])
            del self._buf[: 4 + size]
            try:
                obj = strict_unpack(
                    raw, max_size=MAX_FRAME, max_array_len=10000, max_map_len=64, max_str_len=65536
                )
            except DecodeError as exc:
                raise IpcError(f"malformed IPC message: {exc}") from None
            if not isinstance(obj, dict):
                raise IpcError("IPC message is not a map")
            out.append(obj)
        return out


def request(req_id: int, op: str, **args: Any) -> dict[str, Any]:
    return {"id": req_id, "op": op, "args": args}


def parse_request(obj: dict[str, Any]) -> Request:
    """Check a request map against :data:`OPS`; raise :class:`IpcError` naming the problem."""
    req_id, op, args = obj.get("id"), obj.get("op"), obj.get("args", {})
    if type(req_id) is not int or not isinstance(op, str) or not isinstance(args, dict):
        raise IpcError("a request needs an integer id, an op name and an args map")
    spec = OPS.get(op)
    if spec is None:
        raise IpcError(f"unknown operation {op!r}")
    for name in args:
        if name not in spec:
            raise IpcError(f"{op}: unexpected argument {name!r}")
    for name, kind in spec.items():
        if name not in args:
            if name in OPTIONAL.get(op, frozenset()):
                continue
            raise IpcError(f"{op}: missing argument {name!r}")
        if type(args[name]) is not kind:
            raise IpcError(f"{op}: argument {name!r} must be {kind.__name__}")
        _check_bounds(op, name, args[name])
    return Request(req_id, op, dict(args))


def _check_bounds(op: str, name: str, value: object) -> None:
    low, high = LIMITS.get((op, name), (0, MAX_STR))
    if isinstance(value, str):
        size = len(value.encode("utf-8", errors="surrogatepass"))
        if not low <= size <= high:
            need = "may not be empty" if size < low else f"is at most {high} bytes"
            raise IpcError(f"{op}: {name} {need} ({size} given)")
        if (op, name) in PATHS and "\x00" in value:
            raise IpcError(f"{op}: {name} contains a NUL character")
    elif type(value) is int and (op, name) in LIMITS and not low <= value <= high:
        raise IpcError(f"{op}: {name} must be between {low} and {high}")


def socket_path(runtime_dir: Path) -> Path:
    return runtime_dir / SOCKET_NAME


class Client:
    """A connection to a running daemon. ``await call(op, **args)`` returns the result or
    raises :class:`IpcError` with the daemon's one-line reason."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self._stream = stream
        self._reader = FrameReader()
        self._ids = itertools.count(1)
        self._queue: list[dict[str, Any]] = []
        self._events: collections.deque[dict[str, Any]] = collections.deque()

    @classmethod
    async def connect(cls, path: Path) -> Client:
        try:
            stream = await trio.open_unix_socket(str(path))
        except OSError:
            raise IpcError(
                f"no daemon is running for this profile (no socket at {path}); "
                "start one with 'steppe daemon'"
            ) from None
        return cls(stream)

    async def _next(self) -> dict[str, Any]:
        while not self._queue:
            data = await self._stream.receive_some(65536)
            if not data:
                raise IpcError("the daemon closed the connection")
            self._queue.extend(self._reader.feed(data))
        return self._queue.pop(0)

    async def call(self, op: str, **args: Any) -> Any:
        req_id = next(self._ids)
        await self._stream.send_all(encode_frame(request(req_id, op, **args)))
        while True:
            msg = await self._next()
            if "event" in msg:
                self._events.append(msg)  # arrived before the answer: kept for events()
                continue
            if msg.get("id") not in (req_id, 0):
                continue  # the answer to an earlier call that was given up on
            if msg.get("ok"):
                return msg.get("result")
            raise IpcError(str(msg.get("error", "the daemon refused the request")))

    async def events(self) -> dict[str, Any]:
        """The next event (after ``call("subscribe")``), in the order the daemon sent
        them, including those that arrived while a call waited for its answer."""
        if self._events:
            return self._events.popleft()
        while True:
            msg = await self._next()
            if "event" in msg:
                return msg

    async def aclose(self) -> None:
        await self._stream.aclose()


async def call_daemon(profile_dir: Path, op: str, **args: Any) -> Any:
    """One request to the daemon of a profile, on a connection of its own."""
    client = await Client.connect(socket_path(profile_dir))
    try:
        return await client.call(op, **args)
    finally:
        await client.aclose()


def call_daemon_sync(profile_dir: Path, op: str, **args: Any) -> Any:
    """:func:`call_daemon` for code outside trio (the CLI, scripts)."""
    return trio.run(partial(call_daemon, profile_dir, op, **args))
