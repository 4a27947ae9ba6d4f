"""The UI's two connections to the profile's daemon: one for requests, one subscribed to
events, so a slow answer never holds up an event (as :mod:`mesh.ipc.asyncio_client`
advises).

:meth:`DaemonLink.run` keeps them up: it connects, subscribes, posts
:class:`~tui.messages.DaemonUp`, then posts each event as a
:class:`~tui.messages.MeshEvent`; when the daemon goes away (restart, crash) it posts
:class:`~tui.messages.DaemonDown` with the reason and tries again every
:data:`RETRY` seconds, for as long as the app runs. A request while the daemon is away
raises :class:`~mesh.ipc.schema.IpcError` with a readable line; the caller keeps what
the user typed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from textual.message import Message
from textual.widget import Widget

from mesh.ipc.asyncio_client import AsyncioClient
from mesh.ipc.calls import Call, Subscribe
from mesh.ipc.schema import IpcError
from tui.messages import DaemonDown, DaemonUp, MeshEvent

R = TypeVar("R")
RETRY = 1.0  # seconds between attempts to reach a daemon that went away


def refusal(widget: Widget, what: str) -> Callable[[str], None]:
    """What :meth:`DaemonLink.attempt` calls on failure: one error notice, ``what: why``
    (plain text: the reason may quote mesh strings)."""
    return lambda why: widget.notify(f"{what}: {why}", severity="error", markup=False)


class DaemonLink:
    def __init__(self, profile_dir: Path, post: Callable[[Message], object]) -> None:
        self.profile_dir = profile_dir
        self._post = post
        self._requests: AsyncioClient | None = None
        self._lock = asyncio.Lock()  # one request at a time on the requests connection
        self.up = False

    async def run(self) -> None:
        """Connect, carry events, reconnect; until cancelled."""
        while True:
            reason = await self._carry()
            self._post(DaemonDown(reason))
            await asyncio.sleep(RETRY)

    async def _carry(self) -> str:
        """One life of the connections: why it ended."""
        events: AsyncioClient | None = None
        try:
            events = await AsyncioClient.for_profile(self.profile_dir)
            await events.request(Subscribe())
            self._requests = await AsyncioClient.for_profile(self.profile_dir)
            self.up = True
            self._post(DaemonUp())
            while True:
                self._post(MeshEvent(await events.events()))
        except IpcError as exc:
            return str(exc)
        except (OSError, EOFError, asyncio.IncompleteReadError) as exc:
            return f"the connection to the daemon broke: {exc!r}"
        finally:
            self.up = False
            for client in (events, self._requests):
                if client is not None:
                    client.close()  # no await: the app may be cancelling this task
            self._requests = None

    async def attempt(self, call: Call[R], failed: Callable[[str], object]) -> R | None:
        """The answer, or None after handing ``failed`` the one line saying why."""
        try:
            return await self.request(call)
        except IpcError as exc:
            failed(str(exc))
            return None

    async def request(self, call: Call[R]) -> R:
        """One typed request; :class:`IpcError` if the daemon is away or refuses."""
        async with self._lock:
            client = self._requests
            if client is None:
                raise IpcError("the daemon is not running: it will be reached when it is back")
            return await client.request(call)
