"""Flow control between a link's byte stream and the node (issue 11: bulk traffic stalled
the daemon, a full send queue dropped the link, peers reconnected and resent).

Theory of operation
-------------------
Each link has two :class:`ByteQueue` s, counted in bytes, and three tasks::

    stream -read_in-> inbox -feed_in-> node -Transmit (any step)-> outbox -write_out-> stream

- The *outbox* takes every frame the node sends on the link, from any step: this link's
  input, another link's, the timer, the local API. Putting never waits: the daemon carries
  out the node's actions synchronously, inside a store transaction.
- :func:`feed_in` hands the node what the peer sent, one read (at most
  :data:`READ_BYTES`) per step, and waits while the outbox holds :data:`HIGH_WATER`
  bytes or more, until the writer has drained it below :data:`LOW_WATER`. The peer's
  input is what makes the node send most (its asks, each answered by an envelope), so a
  peer that reads slowly slows down what it is sent (backpressure) instead of losing
  the link.
- :func:`read_in` goes on reading while the feeder waits, up to :data:`INBOX_MAX` bytes,
  and only then stops, so that TCP flow control pushes back on the peer. Reading on is
  what keeps two daemons that both send in bulk from waiting on each other for ever: if
  both stopped reading as soon as their outboxes were full, neither outbox could drain.
  The inbox holds what a paused peer can still have on its way (its outbox above its low
  watermark, and what one step adds).
- :func:`write_out` sends the oldest frames, up to :data:`WRITE_BATCH` bytes in one
  ``send_all``; they count as queued until they are written.

The feeder cannot pause everything. One step can queue more than :data:`HIGH_WATER` at
once: a read of asks, from a peer that lifted its flood limit, is answered in one step
(64 KiB holds 1,927 asks: 1.2 MiB of the smallest envelopes, 45 MiB of the largest, each
in a 24 KiB record). And other links, the timer and local sends keep offering to a link
whose peer has stopped reading. The daemon bounds both (``Daemon._queue``): a frame that
would take one link's outbox past :data:`SLOW_CAP` (above the high watermark plus that
largest step) drops that link, and one that would take all links' outboxes together
past :data:`ALL_LINKS_CAP` drops the link holding the most; both count
``links_dropped_slow``. A peer that sends but never reads is dropped there, or closed by
the node's idle timeout (its input is not fed, so the node hears nothing from it). So the
links' queues hold at most ``ALL_LINKS_CAP`` plus, per link, ``INBOX_MAX + READ_BYTES``
and the ``WRITE_BATCH`` being written: 64 MiB + 64 x 1.19 MiB with the shipped 64 links,
140 MiB, which fits a Raspberry Pi relay's ``MemoryMax=256M`` next to the 76 MiB it
peaks at otherwise.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import trio

READ_BYTES = 64 * 1024  # one read from a peer, and the most one step of the node is fed
WRITE_BATCH = 128 * 1024  # bytes of frames joined into one send_all
HIGH_WATER = 1 << 20  # outbox bytes at which the peer's input stops being fed...
LOW_WATER = 512 * 1024  # ...until the writer has drained the outbox below this
INBOX_MAX = 1 << 20  # peer bytes held unfed while paused before reading stops
SLOW_CAP = 48 << 20  # outbox bytes beyond which a link is dropped as slow
ALL_LINKS_CAP = 64 << 20  # all links' outboxes together: beyond, the fullest is dropped


class ByteQueue:
    """Byte strings in arrival order and their total size. :meth:`put` never waits; a task
    waits with :meth:`wait_until` for the queue to fill or to drain."""

    def __init__(self) -> None:
        self._items: deque[bytes] = deque()
        self.bytes = 0
        self._lot = trio.lowlevel.ParkingLot()

    def __len__(self) -> int:
        return len(self._items)

    def put(self, data: bytes) -> None:
        self._items.append(data)
        self.bytes += len(data)
        self._lot.unpark_all()

    def peek(self, limit: int) -> list[bytes]:
        """The oldest items, together at most ``limit`` bytes (at least one, if any)."""
        out: list[bytes] = []
        size = 0
        for item in self._items:
            if out and size + len(item) > limit:
                break
            out.append(item)
            size += len(item)
        return out

    def drop(self, count: int) -> None:
        """Forget the oldest ``count`` items (written, fed, or all of them after clear)."""
        for _ in range(min(count, len(self._items))):
            self.bytes -= len(self._items.popleft())
        self._lot.unpark_all()

    def pop(self) -> bytes:
        """The oldest item, removed (the queue must not be empty)."""
        item = self._items[0]
        self.drop(1)
        return item

    def clear(self) -> None:
        self.drop(len(self._items))

    async def wait_until(self, ready: Callable[[], bool]) -> None:
        """Return once ``ready()`` holds, checked after every change (always a checkpoint)."""
        if ready():
            await trio.lowlevel.checkpoint()
        while not ready():
            await self._lot.park()


async def read_in(
    stream: trio.abc.ReceiveStream, inbox: ByteQueue, alive: Callable[[], bool]
) -> None:
    """Move the peer's bytes into ``inbox`` until the end of the stream, waiting while the
    inbox holds :data:`INBOX_MAX` bytes (the feeder is paused and so much is waiting)."""
    while alive():
        await inbox.wait_until(lambda: inbox.bytes < INBOX_MAX)
        data = await stream.receive_some(READ_BYTES)
        if not data:
            return
        inbox.put(bytes(data))


async def feed_in(
    inbox: ByteQueue,
    outbox: ByteQueue,
    feed: Callable[[bytes], object],
    paused: Callable[[], None],
) -> None:
    """Hand ``feed`` the peer's input in order, one read a step (as it came, so what waited
    is not fed in larger steps than what did not); while the outbox holds
    :data:`HIGH_WATER` bytes or more, call ``paused`` and wait for the writer to drain it
    below :data:`LOW_WATER`."""
    while True:
        await inbox.wait_until(lambda: len(inbox) > 0)
        if outbox.bytes >= HIGH_WATER:
            paused()
            await outbox.wait_until(lambda: outbox.bytes < LOW_WATER)
            continue  # look again: the link may have been dropped (its inbox emptied)
        feed(inbox.pop())


async def write_out(stream: trio.abc.SendStream, outbox: ByteQueue) -> None:
    """Send the outbox's frames in order, up to :data:`WRITE_BATCH` bytes in one write;
    a frame leaves the outbox (and its count) once it is written."""
    while True:
        await outbox.wait_until(lambda: len(outbox) > 0)
        batch = outbox.peek(WRITE_BATCH)
        await stream.send_all(b"".join(batch))
        outbox.drop(len(batch))
