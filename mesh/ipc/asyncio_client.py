"""An asyncio client of the local API, for the Textual UI (Textual runs on asyncio), over
the same sans-I/O :class:`mesh.ipc.protocol.ClientConnection` as the trio client.

One request at a time per connection; events that arrive while a request waits are kept
for :meth:`AsyncioClient.events`. A UI typically keeps one subscribed connection for
events and makes its requests on another, so a slow answer never holds up an event.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, TypeVar

from mesh.ipc.calls import Call
from mesh.ipc.events import Event
from mesh.ipc.protocol import ClientConnection, call_args, no_daemon, socket_path, unwrap
from mesh.ipc.schema import IpcError

R = TypeVar("R")
RECEIVE = 65536


class AsyncioClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._conn = ClientConnection()

    @classmethod
    async def connect(cls, path: Path) -> AsyncioClient:
        try:
            reader, writer = await asyncio.open_unix_connection(str(path))
        except OSError:
            raise no_daemon(path) from None
        return cls(reader, writer)

    @classmethod
    async def for_profile(cls, profile_dir: Path) -> AsyncioClient:
        return await cls.connect(socket_path(profile_dir))

    async def _receive(self) -> None:
        try:
            data = await self._reader.read(RECEIVE)
        except OSError as exc:
            raise IpcError(f"the connection to the daemon broke: {exc.strerror}") from None
        self._conn.receive_data(data)

    async def call(self, op: str, **args: Any) -> Any:
        """The result as it travels (maps and lists); :meth:`request` types it."""
        self._writer.write(self._conn.send(op, args))
        try:
            await self._writer.drain()
        except OSError as exc:
            raise IpcError(f"the connection to the daemon broke: {exc.strerror}") from None
        while (answer := self._conn.take_answer()) is None:
            await self._receive()
        return unwrap(answer)

    async def request(self, call: Call[R]) -> R:
        return call.decode(await self.call(call.OP, **call_args(call)))

    async def events(self) -> Event:
        """The next event (after ``Subscribe``), in the order the daemon sent them."""
        while (event := self._conn.next_event()) is None:
            await self._receive()
        return event

    def close(self) -> None:
        """Close at once, without waiting (where a task may be cancelled again)."""
        self._writer.close()

    async def aclose(self) -> None:
        self._writer.close()
        with contextlib.suppress(OSError):  # the daemon went first
            await self._writer.wait_closed()
