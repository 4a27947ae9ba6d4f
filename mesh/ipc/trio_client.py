"""A trio client of the local API (the ``steppe`` commands, tests, benchmarks), over the
sans-I/O :class:`mesh.ipc.protocol.ClientConnection`."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import trio

from mesh.ipc.calls import Call
from mesh.ipc.events import Event
from mesh.ipc.protocol import ClientConnection, call_args, no_daemon, socket_path, unwrap

R = TypeVar("R")
RECEIVE = 65536


class Client:
    """A connection to a running daemon. ``await request(call)`` returns the typed result
    (``await call(op, **args)`` the result as it travels) or raises :class:`IpcError` with
    the daemon's one-line reason; ``await events()`` the next event after ``Subscribe``."""

    def __init__(self, stream: trio.abc.Stream) -> None:
        self._stream = stream
        self._conn = ClientConnection()

    @classmethod
    async def connect(cls, path: Path) -> Client:
        try:
            stream = await trio.open_unix_socket(str(path))
        except OSError:
            raise no_daemon(path) from None
        return cls(stream)

    async def call(self, op: str, **args: Any) -> Any:
        await self._stream.send_all(self._conn.send(op, args))
        while (answer := self._conn.take_answer()) is None:
            self._conn.receive_data(await self._stream.receive_some(RECEIVE))
        return unwrap(answer)

    async def request(self, call: Call[R]) -> R:
        return call.decode(await self.call(call.OP, **call_args(call)))

    async def events(self) -> Event:
        """The next event, in the order the daemon sent them, including those that
        arrived while a call waited for its answer."""
        while (event := self._conn.next_event()) is None:
            self._conn.receive_data(await self._stream.receive_some(RECEIVE))
        return event

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


def request_sync(profile_dir: Path, call: Call[R]) -> R:
    """One typed request, for code outside trio."""
    return call.decode(call_daemon_sync(profile_dir, call.OP, **call_args(call)))
