"""The local API between the daemon and its clients (the ``steppe`` CLI, the TUI): framing,
requests, replies and the client's side of a connection, sans-I/O.

Transport: a Unix stream socket in the profile's runtime directory, mode 0600, so only the
profile's owner can talk to the daemon. Framing: a 4-byte big-endian length, then one
canonical msgpack map (:mod:`crypto.wire`), at most :data:`MAX_FRAME` bytes.

Messages::

    request   {"id": n, "op": "send", "args": {...}}
    response  {"id": n, "ok": true, "result": ...}   or   {"id": n, "ok": false, "error": "..."}
    event     {"event": "message", "data": {...}}     (only after a "subscribe" request)

Theory of operation
-------------------
The operations are a table of typed requests (:mod:`mesh.ipc.calls`: arguments, their
types and bounds, and the result each answers with). :func:`parse_request` checks a
request map against it and makes the request's dataclass, so the daemon never sees a
malformed one. A frame the daemon cannot read is answered with
``{"id": 0, "ok": false, ...}`` and the connection is closed; a subscriber that falls
:data:`mesh.daemon.local_api.QUEUE` frames behind is disconnected (it reconnects and
subscribes again) rather than missing events silently.

:class:`ClientConnection` is a client's state for one connection, h11-style: it turns a
request into bytes to write, is fed the bytes that arrive, and hands out the answer to the
request in flight and the events (:mod:`mesh.ipc.events`) in the order they came, those
that arrived while a request waited included. The trio and asyncio clients
(:mod:`mesh.ipc.trio_client`, :mod:`mesh.ipc.asyncio_client`) only move its bytes.
"""

from __future__ import annotations

import collections
import dataclasses
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crypto.errors import DecodeError
from crypto.wire import pack, strict_unpack
from mesh.ipc.calls import CALLS, LIMITS, MAX_STR, OPS, PATHS, AnyCall, Call
from mesh.ipc.events import Event, parse_event
from mesh.ipc.schema import IpcError

MAX_FRAME = 1 << 20
SOCKET_NAME = "daemon.sock"
REFUSED = "the daemon refused the request"


@dataclass(frozen=True, slots=True)
class Request:
    id: int
    call: AnyCall

    @property
    def op(self) -> str:
        return self.call.OP

    @property
    def args(self) -> dict[str, Any]:
        return call_args(self.call)


@dataclass(frozen=True, slots=True)
class Reply:
    id: int
    result: Any  # the result as it travels (maps, lists, scalars); Call.decode types it


@dataclass(frozen=True, slots=True)
class Failure:
    id: int
    error: str  # one readable line


Answer = Reply | Failure


def call_args(call: Call[Any]) -> dict[str, Any]:
    return {f.name: getattr(call, f.name) for f in dataclasses.fields(call)}  # type: ignore[arg-type]


def encode_frame(obj: dict[str, Any]) -> bytes:
    data = pack(obj)
    if len(data) > MAX_FRAME:
        raise IpcError(f"IPC message of {len(data)} bytes exceeds {MAX_FRAME}")
    return len(data).to_bytes(4, "big") + data


class FrameReader:
    """Sans-I/O: ``feed(bytes)`` returns the complete maps received so far."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes | bytearray) -> list[dict[str, Any]]:
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


# ---- requests ---------------------------------------------------------------------------


def request(req_id: int, op: str, **args: Any) -> dict[str, Any]:
    """A request map as it travels, unchecked (tests send malformed ones on purpose)."""
    return {"id": req_id, "op": op, "args": args}


def request_map(req_id: int, call: Call[Any]) -> dict[str, Any]:
    return request(req_id, call.OP, **call_args(call))


def parse_request(obj: dict[str, Any]) -> Request:
    """Check a request map against the operation table; raise :class:`IpcError` naming the
    problem."""
    req_id, op, args = obj.get("id"), obj.get("op"), obj.get("args", {})
    if type(req_id) is not int or not isinstance(op, str) or not isinstance(args, dict):
        raise IpcError("a request needs an integer id, an op name and an args map")
    cls = CALLS.get(op)
    if cls is None:
        raise IpcError(f"unknown operation {op!r}")
    spec = OPS[op]
    for name in args:
        if name not in spec:
            raise IpcError(f"{op}: unexpected argument {name!r}")
    for f in dataclasses.fields(cls):
        if f.name not in args:
            if f.default is not dataclasses.MISSING:
                continue
            raise IpcError(f"{op}: missing argument {f.name!r}")
        kind = spec[f.name]
        if type(args[f.name]) is not kind:
            raise IpcError(f"{op}: argument {f.name!r} must be {kind.__name__}")
        _check_bounds(op, f.name, args[f.name])
    return Request(req_id, cls(**args))


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


# ---- replies ----------------------------------------------------------------------------


def answer_map(answer: Answer) -> dict[str, Any]:
    if isinstance(answer, Failure):
        return {"id": answer.id, "ok": False, "error": answer.error}
    return {"id": answer.id, "ok": True, "result": answer.result}


def parse_answer(obj: dict[str, Any]) -> Answer | None:
    """The reply in a map from the daemon; None if it has no integer id."""
    req_id = obj.get("id")
    if type(req_id) is not int:
        return None
    if obj.get("ok") is True:
        return Reply(req_id, obj.get("result"))
    return Failure(req_id, str(obj.get("error", REFUSED)))


def unwrap(answer: Answer) -> Any:
    """The result of a reply, or :class:`IpcError` with the daemon's reason."""
    if isinstance(answer, Failure):
        raise IpcError(answer.error)
    return answer.result


def no_daemon(path: Path) -> IpcError:
    return IpcError(
        f"no daemon is running for this profile (no socket at {path}); "
        "start one with 'steppe daemon'"
    )


def socket_path(runtime_dir: Path) -> Path:
    return runtime_dir / SOCKET_NAME


# ---- the client's side of one connection ------------------------------------------------


class ClientConnection:
    """Sans-I/O: one request in flight at a time; events kept in order until taken."""

    def __init__(self) -> None:
        self._reader = FrameReader()
        self._ids = itertools.count(1)
        self._waiting = -1
        self._answer: Answer | None = None
        self._events: collections.deque[Event] = collections.deque()

    def send(self, op: str, args: dict[str, Any]) -> bytes:
        """The bytes of a new request; the answer to an earlier one is not waited for."""
        req_id = next(self._ids)
        self._waiting, self._answer = req_id, None
        return encode_frame(request(req_id, op, **args))

    def receive_data(self, data: bytes | bytearray) -> None:
        """What arrived from the daemon; ``b""``: it closed the connection."""
        if not data:
            raise IpcError("the daemon closed the connection")
        for obj in self._reader.feed(data):
            if "event" in obj:
                event = parse_event(obj)
                if event is not None:
                    self._events.append(event)
                continue
            answer = parse_answer(obj)
            if answer is not None and answer.id in (self._waiting, 0):
                self._answer = answer  # id 0: the daemon could not read what we sent

    def take_answer(self) -> Answer | None:
        """The answer to the request in flight, once it arrived (see :func:`unwrap`)."""
        answer, self._answer = self._answer, None
        if answer is not None:
            self._waiting = -1
        return answer

    def next_event(self) -> Event | None:
        return self._events.popleft() if self._events else None
