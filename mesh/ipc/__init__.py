"""The local API between the daemon and its clients (the ``steppe`` CLI, the TUI).

- :mod:`mesh.ipc.protocol`: framing, requests, replies, a client's connection state;
  :mod:`mesh.ipc.calls` the operation table (typed requests and results);
  :mod:`mesh.ipc.events` what a subscriber is told. All sans-I/O: no trio, asyncio or
  socket (tests/test_architecture.py checks).
- :mod:`mesh.ipc.trio_client` (the daemon's side and the CLI are trio) and
  :mod:`mesh.ipc.asyncio_client` (the Textual UI) move its bytes.

``from mesh import ipc`` gives the protocol's names and, loaded on first use so an asyncio
program does not import trio, the trio client's (``ipc.Client``, ``ipc.call_daemon``,
``ipc.call_daemon_sync``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mesh.ipc.calls import (
    CALLS,
    LIMITS,
    MAX_CARD,
    MAX_LIMIT,
    MAX_NAME,
    MAX_PATH,
    MAX_STR,
    MAX_TEXT,
    MAX_TOPIC,
    OPS,
    OPTIONAL,
    PATHS,
    AnyCall,
    Call,
)
from mesh.ipc.events import Event, event_map, parse_event
from mesh.ipc.protocol import (
    MAX_FRAME,
    SOCKET_NAME,
    Answer,
    ClientConnection,
    Failure,
    FrameReader,
    Reply,
    Request,
    answer_map,
    encode_frame,
    parse_request,
    request,
    request_map,
    socket_path,
)
from mesh.ipc.schema import IpcError

if TYPE_CHECKING:
    from mesh.ipc.trio_client import Client, call_daemon, call_daemon_sync, request_sync

_TRIO = frozenset({"Client", "call_daemon", "call_daemon_sync", "request_sync"})

__all__ = [
    "CALLS",
    "LIMITS",
    "MAX_CARD",
    "MAX_FRAME",
    "MAX_LIMIT",
    "MAX_NAME",
    "MAX_PATH",
    "MAX_STR",
    "MAX_TEXT",
    "MAX_TOPIC",
    "OPS",
    "OPTIONAL",
    "PATHS",
    "SOCKET_NAME",
    "Answer",
    "AnyCall",
    "Call",
    "Client",
    "ClientConnection",
    "Event",
    "Failure",
    "FrameReader",
    "IpcError",
    "Reply",
    "Request",
    "answer_map",
    "call_daemon",
    "call_daemon_sync",
    "encode_frame",
    "event_map",
    "parse_event",
    "parse_request",
    "request",
    "request_map",
    "request_sync",
    "socket_path",
]


def __getattr__(name: str) -> object:
    if name in _TRIO:
        return getattr(importlib.import_module("mesh.ipc.trio_client"), name)
    raise AttributeError(f"module 'mesh.ipc' has no attribute {name!r}")
