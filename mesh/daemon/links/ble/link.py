"""Bluetooth LE links on the trio side: one :class:`BleLinks` transport over one backend.

Theory of operation
-------------------
The backend (:mod:`.backend`; Bumble, BlueZ, CoreBluetooth) runs on the process's one
asyncio thread (:mod:`.bridge`). What it reports goes through :class:`_Events`, on the
asyncio side, to handlers here, posted in order with ``TrioToken.run_sync_soon``:

- ``seen``: an advertiser of our service; the dialling policy below decides;
- ``link_up``: a link in either role, MTU settled: a :class:`BleLink` (kind
  ``LinkKind.BLE``, an id from the daemon's ``LinkTable``) and a task that feeds the node
  ``LinkUp(initiator=central, mtu=frame, stream=False)``, every frame, then ``LinkDown``;
- ``frame``: kept in the link's backlog on the asyncio side, and moved to trio in
  batches (one ``run_sync_soon`` for all the frames that arrived in one turn of the
  asyncio loop) into the link's bounded channel. Each link has :data:`CHANNEL` credits,
  one per frame, taken when a frame is posted and given back once it is in the link's
  inbox; a batch holds at least one frame, so the channel (sized in batches) is never
  full and nothing is dropped. A backlog of more than :data:`BACKLOG_BYTES` closes the
  link (``ble_overflow``): ATT cannot tell a peer to slow down, and the core closes a
  link on any lost frame anyway;
- ``link_down``: the channel is closed; the task feeds what is left, then ``LinkDown``.

Flow control is :mod:`mesh.daemon.flow`'s, as on TCP: :meth:`BleLinks.send` puts the
node's frames in the link's outbox and never waits (a link whose outbox would pass
``flow.SLOW_CAP`` is dropped, ``links_dropped_slow``); a writer task hands the backend
batches of up to :data:`SEND_BATCH` frames and waits for its flow control; the feeder
stops feeding the peer's input while the outbox is full, and the inbox fills up to
``flow.INBOX_MAX`` before the credits run out. One node step takes every frame waiting
(up to ``flow.READ_BYTES``), as one TCP read does.

Dialling: on ``seen``, after a random delay of up to :data:`DIAL_DELAY` seconds, unless
a link to that address is up or being dialled, ``ble.max_links`` links are up or being
made, or the address is backing off: a failed dial, a link the node closed, or a link
we dialled that ended within ``gateway.LIVED`` before its handshake finished backs off
the address (``gateway.Backoff``); a link that opened, or lasted, resets it. Duplicate
links between two devices still happen (fresh link keys and rotating addresses hide who
a peer is): once both are open the node finds the pair and closes one
(:mod:`mesh.core._duplicates`), and meanwhile reconciliation is idempotent.
Links that come up beyond ``ble.max_links``, or while ``limits.max_handshakes`` BLE
links are in their handshake, are closed (``links_refused_total``,
``links_refused_handshakes``). At the cap, a device asking for a link (an advertiser we
may not dial for the cap, a link refused for it) makes a quiet link rotate out
(:mod:`.rotation`, ``ble_links_rotated``), whose address is then held off (not dialled,
its links refused: ``links_refused_held``).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import trio

from mesh.core.events import Action, Event, FrameReceived, LinkDown, LinkUp
from mesh.core.node import Node
from mesh.daemon import flow
from mesh.daemon.config import Config
from mesh.daemon.links import FrameLink, LinkKind
from mesh.daemon.links.ble import bridge, open_backend
from mesh.daemon.links.ble.backend import Backend, BackendError, Timing
from mesh.daemon.links.ble.rotation import Rotation
from mesh.daemon.links.gateway import LIVED, Backoff

log = logging.getLogger(__name__)

CHANNEL = 256  # frames of one link between the asyncio side and its inbox (credits)
BACKLOG_BYTES = 256 * 1024  # bytes one link may hold on the asyncio side for trio
SEEN_CREDITS = 32  # advertisements on their way to trio (more are ignored: they repeat)
SEND_BATCH = 32  # frames handed to the backend in one call
DIAL_DELAY = 0.5  # seconds: the most a dial waits after an advertisement
DIAL_BACKOFF = 5.0  # seconds: the first back-off of an address (then doubling)
STOP_TIMEOUT = 5.0  # seconds the backend has to stop
BACKOFF_KEPT = 1024  # addresses remembered for back-off before expired ones go


class BleHost(Protocol):
    """What BLE links need of the driver (as :class:`.tcp.LinkHost`)."""

    config: Config

    node: Node

    def feed(self, event: Event, /) -> object: ...

    def call_node(self, step: Callable[[int], list[Action]], /) -> list[Action]: ...

    def count(self, key: str, /) -> None: ...

    def link_gone(self, info: FrameLink, /) -> None: ...

    def source_label(self, remote: str, /) -> bytes: ...


@dataclass(slots=True, eq=False)
class BleLink:
    """One Bluetooth LE link (a :class:`~mesh.daemon.links.FrameLink`)."""

    id: int
    remote: str  # the peer's Bluetooth address as seen on air
    since: float
    backend_link: int
    central: bool
    frame: int
    channel: trio.MemorySendChannel[list[bytes]]
    arrivals: trio.MemoryReceiveChannel[list[bytes]]
    kind: LinkKind = LinkKind.BLE
    scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    opened: bool = False
    pin: bytes = b""
    label: str = ""
    down: bool = False  # the backend said the link is gone
    began: float = field(default_factory=trio.current_time)  # trio's clock, for back-off
    last_frame: float = field(default_factory=trio.current_time)  # one either way (rotation)
    outbox: flow.ByteQueue = field(default_factory=flow.ByteQueue)
    inbox: flow.ByteQueue = field(default_factory=flow.ByteQueue)

    @property
    def closing(self) -> bool:
        return self.scope.cancel_called


def timing(config: Config) -> Timing:
    return Timing(
        advertise_interval=config.ble_advertise_interval,
        scan_interval=config.ble_scan_interval,
        scan_window=config.ble_scan_window,
    )


def source_remote(address: str) -> str:
    """What the daemon's source label hashes for a BLE peer: its whole address (the label
    drops whatever follows the last colon, a TCP port)."""
    return f"ble:{address}:0"


class BleLinks:
    """The live Bluetooth LE links, by the link id the node knows them by."""

    def __init__(
        self,
        host: BleHost,
        clock: Callable[[], float],
        new_id: Callable[[], int],
        rng: random.Random,
        backend: Backend | None = None,
    ) -> None:
        self.host = host
        self.clock = clock
        self.links: dict[int, BleLink] = {}
        self.backend = backend  # None: made from the config when started
        self.running = False
        self._new_id = new_id
        self._rng = rng
        self._by_backend: dict[int, BleLink] = {}
        self._dialling: set[str] = set()
        self._backoff: dict[str, tuple[Backoff, float]] = {}  # address -> (its, not before)
        self._rotation = Rotation(host.config.ble_rotate_after)
        self._nursery: trio.Nursery | None = None
        self._aio: bridge.AsyncioThread | None = None
        self._events: _Events | None = None

    # ---- frames out (from the node's actions; never waits) ------------------------------
    def send(self, link: int, frame: bytes) -> None:
        info = self.links.get(link)
        if info is None or info.closing:
            return
        if info.outbox.bytes + len(frame) > flow.SLOW_CAP:
            self.host.count("links_dropped_slow")
            log.info("BLE link %d dropped: its peer reads too slowly", link)
            self.drop(link)
            return
        info.outbox.put(frame)

    def drop(self, link: int) -> None:
        """Stop a link now; the node is not told (it closed the link, or will be). Its
        address backs off: a peer the node closes is not dialled again at once."""
        info = self.links.pop(link, None)
        if info is not None:
            info.scope.cancel()
            info.outbox.clear()
            info.inbox.clear()
            if info.central:
                self._back_off(info.remote)

    # ---- running ----------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start the backend and carry its links until cancelled. A stack that cannot be
        used is one log line (and started() all the same): the daemon runs on without."""
        try:
            backend = self.backend or open_backend(self.host.config)
        except BackendError as exc:
            log.warning("Bluetooth LE is off: %s", exc)
            task_status.started()
            return
        self.backend = backend
        aio = self._aio = bridge.acquire()
        events = self._events = _Events(self, bridge.ToTrio(trio.lowlevel.current_trio_token()))
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await bridge.call(aio, backend.start(events, timing(self.host.config)))
                except BackendError as exc:
                    log.warning("Bluetooth LE is off: %s", exc)
                    task_status.started()
                    return
                self._nursery = nursery
                self.running = True
                log.info("Bluetooth LE up (%s)", type(backend).__name__)
                task_status.started()
                await trio.sleep_forever()
        finally:
            self.running = False
            self._nursery = None
            with trio.CancelScope(shield=True):
                try:
                    await bridge.call(aio, _bounded(backend.stop(), STOP_TIMEOUT))
                except (BackendError, TimeoutError) as exc:
                    log.info("Bluetooth LE did not stop cleanly: %r", exc)
                events.to_trio.finished = True
                await bridge.release(aio)

    # ---- what the backend reports (posted by _Events; run on the trio thread) ----------
    def on_seen(self, address: str) -> None:
        if self._events is not None:
            self._events.give_back(None, 1)
        if not self.running or self._nursery is None:
            return
        if self._may_dial(address):
            if self._start(self._dial, address):
                self._dialling.add(address)
        elif self._at_cap() and self._unlinked(address):
            self._make_room()

    def _at_cap(self) -> bool:
        return len(self.links) + len(self._dialling) >= self.host.config.ble_max_links

    def _unlinked(self, address: str) -> bool:
        """Neither linked, nor being dialled, nor held off after a rotation."""
        if address in self._dialling or any(x.remote == address for x in self.links.values()):
            return False
        return not self._rotation.holds(address, trio.current_time())

    def _make_room(self) -> None:
        """Someone wants a link we have no room for: rotate out a quiet one, if any (its
        task feeds the node LinkDown)."""
        now = trio.current_time()
        self._rotation.want(now)
        chosen = self._rotation.pick(self.links.values(), now)
        if chosen is not None:
            self.host.count("ble_links_rotated")
            log.debug("BLE link %d rotated out to make room", chosen.id)
            chosen.scope.cancel()

    def on_link_up(self, backend_link: int, central: bool, frame: int, address: str) -> None:
        refused = self._refuse(address)
        if refused:
            self.host.count(f"links_refused_{refused}")
            self._close_backend_link(backend_link)
            if refused == "total":
                self._make_room()
            return
        send, receive = trio.open_memory_channel[list[bytes]](CHANNEL)
        link = self._new_id()
        info = BleLink(link, address, self.clock(), backend_link, central, frame, send, receive)
        if not self._start(self._run_link, info):
            self._close_backend_link(backend_link)
            return
        self.links[link] = info
        self._by_backend[backend_link] = info

    def _refuse(self, address: str) -> str:
        """Why a link that came up must be closed ("" if it may stay): the caps on BLE
        links and on links still in their handshake (each costs a Noise handshake), and
        an address held off after a rotation."""
        cfg = self.host.config
        if not self.running:
            return "stopping"
        if self._rotation.holds(address, trio.current_time()):
            return "held"
        if len(self.links) >= cfg.ble_max_links:
            return "total"
        if sum(1 for x in self.links.values() if not x.opened) >= cfg.max_handshakes:
            return "handshakes"
        return ""

    def _start(self, task: Callable[[Any], Awaitable[None]], arg: Any) -> bool:
        """A task in the transport's nursery, unless it is closing (these handlers run
        from ``run_sync_soon``, where an exception would stop trio)."""
        if self._nursery is None:
            return False
        try:
            self._nursery.start_soon(task, arg)
        except RuntimeError:  # closed to new arrivals: shutting down
            return False
        return True

    def on_frames(self, backend_link: int, frames: list[bytes]) -> None:
        info = self._by_backend.get(backend_link)
        if info is not None:
            info.channel.send_nowait(frames)  # credits were taken for them: there is room

    def on_link_down(self, backend_link: int, reason: str) -> None:
        info = self._by_backend.pop(backend_link, None)
        if info is not None:
            info.down = True
            info.channel.close()
            log.debug("BLE link %d down: %s", info.id, reason)

    def on_overflow(self, backend_link: int) -> None:
        info = self._by_backend.get(backend_link)
        if info is not None:
            self.host.count("ble_overflow")
            log.info("BLE link %d closed: its peer sent more than we could take", info.id)

    # ---- one link ---------------------------------------------------------------------
    async def _run_link(self, info: BleLink) -> None:
        """Carry one link: LinkUp, every frame in order, LinkDown."""
        feed = self.host.feed
        kind = "central" if info.central else "peripheral"
        log.debug(
            "BLE link %d (%s, %d-byte frames) with %s", info.id, kind, info.frame, info.remote
        )
        self.host.count("links_ble")
        try:
            with info.scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, info)
                    nursery.start_soon(self._feeder, info)
                    source = self.host.source_label(source_remote(info.remote))
                    feed(LinkUp(info.id, info.central, info.frame, False, source))
                    await self._reader(info)
                    while info.inbox and info.id in self.links:  # gone: feed the rest
                        feed(FrameReceived(info.id, info.inbox.pop()))
                    nursery.cancel_scope.cancel()
        except* (BackendError, TimeoutError) as group:
            log.info("BLE link %d broke: %r", info.id, group.exceptions[0])
        except* Exception:  # a bug on one link must not stop the others
            self.host.count("links_internal_error")
            log.exception("BLE link %d: internal error; link dropped", info.id)
        finally:
            self._by_backend.pop(info.backend_link, None)
            if not info.down:
                self._close_backend_link(info.backend_link)
            if info.central and info.id in self.links:  # not dropped (that backed off)
                if info.opened or trio.current_time() - info.began > LIVED:
                    self._backoff.pop(info.remote, None)  # a peer that works
                else:  # short, and never opened: refused?
                    self._back_off(info.remote)
            if self.links.pop(info.id, None) is not None:
                feed(LinkDown(info.id))
                self.host.link_gone(info)

    async def _reader(self, info: BleLink) -> None:
        """Frames from the channel into the inbox, their credits given back; waits while
        the inbox is full (the feeder is paused), until the link is down."""
        async for frames in info.arrivals:
            info.last_frame = trio.current_time()
            await info.inbox.wait_until(lambda: info.inbox.bytes < flow.INBOX_MAX)
            for data in frames:
                info.inbox.put(data)
            if self._events is not None:
                self._events.give_back(info.backend_link, len(frames))

    async def _feeder(self, info: BleLink) -> None:
        """The peer's input to the node, paused while the outbox is full (as
        ``flow.feed_in``), but one step takes every frame waiting, up to
        ``flow.READ_BYTES``: frames are small (20 bytes at the minimum MTU) and each step
        costs a store transaction."""
        node = self.host.node
        while True:
            await info.inbox.wait_until(lambda: len(info.inbox) > 0)
            if info.outbox.bytes >= flow.HIGH_WATER:
                self.host.count("backpressure_pauses")
                await info.outbox.wait_until(lambda: info.outbox.bytes < flow.LOW_WATER)
                continue  # look again: the link may have been dropped (its inbox emptied)
            frames = [FrameReceived(info.id, x) for x in info.inbox.peek(flow.READ_BYTES)]
            info.inbox.drop(len(frames))
            self.host.call_node(functools.partial(_handle_all, node, frames))

    async def _writer(self, info: BleLink) -> None:
        """The outbox to the backend in batches; a frame leaves it once sent."""
        assert self.backend is not None
        assert self._aio is not None
        while True:
            await info.outbox.wait_until(lambda: len(info.outbox) > 0)
            batch = info.outbox.peek(SEND_BATCH * info.frame)
            await bridge.call(self._aio, self.backend.send(info.backend_link, batch))
            info.outbox.drop(len(batch))
            info.last_frame = trio.current_time()

    def _close_backend_link(self, backend_link: int) -> None:
        if self.backend is not None and self._aio is not None:
            close = self.backend.close(backend_link)
            bridge.submit(self._aio, close, f"closing BLE link {backend_link}")

    # ---- dialling ---------------------------------------------------------------------
    def _may_dial(self, address: str) -> bool:
        if not self._unlinked(address) or self._at_cap():
            return False
        held = self._backoff.get(address)
        return held is None or held[1] <= trio.current_time()

    async def _dial(self, address: str) -> None:
        assert self.backend is not None
        assert self._aio is not None
        try:
            await trio.sleep(self._rng.uniform(0, DIAL_DELAY))
            if any(x.remote == address for x in self.links.values()):
                return  # it dialled us meanwhile
            await bridge.call(self._aio, self.backend.dial(address))
        except (BackendError, TimeoutError) as exc:
            self.host.count("ble_dial_failures")
            log.debug("BLE dial to %s failed: %s", address, exc)
            self._back_off(address)
        finally:
            self._dialling.discard(address)

    def _back_off(self, address: str) -> None:
        now = trio.current_time()
        if len(self._backoff) >= BACKOFF_KEPT:
            self._backoff = {a: h for a, h in self._backoff.items() if h[1] > now}
        backoff = self._backoff.get(address, (None, 0.0))[0]
        if backoff is None:
            backoff = Backoff(DIAL_BACKOFF, self.host.config.backoff_max, self._rng)
        self._backoff[address] = (backoff, now + backoff.next_delay())


class _Events:
    """The backend's callbacks (asyncio side) posted to :class:`BleLinks` with credits."""

    def __init__(self, links: BleLinks, to_trio: bridge.ToTrio) -> None:
        self.links = links
        self.to_trio = to_trio
        self.seen_credits = bridge.Credits(SEEN_CREDITS)
        self.inflow: dict[int, _Inflow] = {}
        self._closing: set[asyncio.Task[None]] = set()

    def seen(self, address: str, /) -> None:
        if self.seen_credits.take():
            self.to_trio.post(self.links.on_seen, address)

    def link_up(self, link: int, central: bool, frame: int, address: str, /) -> None:
        self.inflow[link] = _Inflow()
        self.to_trio.post(self.links.on_link_up, link, central, frame, address)

    def frame(self, link: int, data: bytes, /) -> None:
        inflow = self.inflow.get(link)
        if inflow is None or inflow.overflowed:
            return
        if inflow.held + len(data) > BACKLOG_BYTES:
            inflow.overflowed = True
            inflow.backlog.clear()
            self.to_trio.post(self.links.on_overflow, link)
            if self.links.backend is not None:
                bridge.asyncio_spawn(self._closing, self.links.backend.close(link))
            return
        inflow.backlog.append(data)
        inflow.held += len(data)
        self._flush_soon(link, inflow)

    def _flush_soon(self, link: int, inflow: _Inflow) -> None:
        if not inflow.flushing and inflow.backlog and inflow.credits.left > 0:
            inflow.flushing = True
            asyncio.get_running_loop().call_soon(self._flush, link)

    def _flush(self, link: int) -> None:
        """Post what waits, as far as the credits go, in one batch."""
        inflow = self.inflow.get(link)
        if inflow is None:
            return
        inflow.flushing = False
        batch: list[bytes] = []
        while inflow.backlog and inflow.credits.take():
            batch.append(inflow.backlog.popleft())
        if batch:
            inflow.held -= sum(len(x) for x in batch)
            self.to_trio.post(self.links.on_frames, link, batch)

    def link_down(self, link: int, reason: str, /) -> None:
        self._flush(link)  # what arrived before the link went down goes first
        self.inflow.pop(link, None)
        self.to_trio.post(self.links.on_link_down, link, reason)

    def give_back(self, link: int | None, count: int) -> None:
        """From the trio thread: credits back (``None``: an advertisement's)."""
        loop = self.links._aio.loop if self.links._aio is not None else None
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._credit, link, count)

    def _credit(self, link: int | None, count: int) -> None:
        if link is None:
            self.seen_credits.give_back()
            return
        inflow = self.inflow.get(link)
        if inflow is None:
            return
        for _ in range(count):
            inflow.credits.give_back()
        self._flush_soon(link, inflow)


@dataclass(slots=True)
class _Inflow:
    """One link's frames on the asyncio side: its credits and what waits for one."""

    credits: bridge.Credits = field(default_factory=lambda: bridge.Credits(CHANNEL))
    backlog: deque[bytes] = field(default_factory=deque)
    held: int = 0  # bytes in the backlog
    flushing: bool = False  # a flush is scheduled
    overflowed: bool = False


def _handle_all(node: Node, events: list[FrameReceived], now: int) -> list[Action]:
    """One node step for several events, their actions in order."""
    return [action for event in events for action in node.handle(event, now)]


async def _bounded(coro: Coroutine[Any, Any, None], seconds: float) -> None:
    """On the asyncio side: ``coro`` given at most ``seconds``."""
    await asyncio.wait_for(coro, seconds)
