"""Real nodes on a Bluetooth LE backend, driven directly on asyncio (no trio bridge):
the backend's events go into :meth:`Node.handle`, the node's actions come back out as
sends and closes on the backend. For tests of a backend under the real protocol.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from mesh.core.driver import carry_out
from mesh.core.events import (
    Action,
    BulletinStored,
    CloseLink,
    Event,
    FileAction,
    FrameReceived,
    GroupAction,
    LinkDown,
    LinkOpened,
    LinkUp,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    Tick,
    Transmit,
)
from mesh.core.node import Node
from mesh.daemon.links.ble.backend import Backend

T0 = 1_700_000_000


@dataclass(eq=False)
class BleNode:
    """One node on one backend: the backend's :class:`BackendEvents` and the node's
    :class:`ActionSink`. Frames for a link are sent in order by one writer task."""

    node: Node
    backend: Backend
    delivered: list[MessageDelivered] = field(default_factory=list)
    acked: list[bytes] = field(default_factory=list)
    seen_addresses: set[str] = field(default_factory=set)
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    _outboxes: dict[int, asyncio.Queue[bytes | None]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def now(self) -> int:
        return T0 + int(asyncio.get_running_loop().time())

    def step(self, ev: Event) -> None:
        self.apply(self.node.handle(ev, self.now()))

    def apply(self, actions: list[Action]) -> None:
        carry_out(actions, self)
        self.changed.set()

    async def ticking(self) -> None:
        while True:
            self.step(Tick())
            await asyncio.sleep(0.2)

    # BackendEvents
    def seen(self, address: str, /) -> None:
        self.seen_addresses.add(address)
        self.changed.set()

    def link_up(self, link: int, central: bool, frame: int, address: str, /) -> None:
        queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._outboxes[link] = queue
        self._spawn(self._writer(link, queue))
        self.step(LinkUp(link, initiator=central, mtu=frame, source=address.encode()))

    def frame(self, link: int, data: bytes, /) -> None:
        self.step(FrameReceived(link, data))

    def link_down(self, link: int, reason: str, /) -> None:
        queue = self._outboxes.pop(link, None)
        if queue is not None:
            queue.put_nowait(None)
        self.closed.append(link)
        self.step(LinkDown(link))

    # ActionSink
    def on_transmit(self, act: Transmit, /) -> None:
        queue = self._outboxes.get(act.link)
        if queue is not None:
            queue.put_nowait(act.data)

    def on_close_link(self, act: CloseLink, /) -> None:
        self._spawn(self.backend.close(act.link))

    def on_link_opened(self, act: LinkOpened, /) -> None:
        self.opened.append(act.link)

    def on_message_delivered(self, act: MessageDelivered, /) -> None:
        self.delivered.append(act)

    def on_message_queued(self, act: MessageQueued, /) -> None:
        return

    def on_message_acked(self, act: MessageAcked, /) -> None:
        self.acked.append(act.msg_id)

    def on_bulletin_stored(self, act: BulletinStored, /) -> None:
        return  # no bulletins in these tests

    def on_file(self, act: FileAction, /) -> None:
        return  # no attachments in these tests

    def on_group(self, act: GroupAction, /) -> None:
        return  # no groups in these tests

    def on_send_failed(self, act: SendFailed, /) -> None:
        raise AssertionError(f"send failed: {act}")

    async def _writer(self, link: int, queue: asyncio.Queue[bytes | None]) -> None:
        """Send what the node transmits on a link, in order, as batches; ``None``: down."""
        while (data := await queue.get()) is not None:
            batch, down = [data], False
            while not queue.empty():
                more = queue.get_nowait()
                if more is None:
                    down = True
                    break
                batch.append(more)
            await self.backend.send(link, batch)
            if down:
                return

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
