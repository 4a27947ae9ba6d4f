"""TCP links: one task group per link (reader, feeder, writer) and the table of them.

A TCP link is a byte stream: the node's link layer cuts length-framed records out of
whatever arrives (``LinkUp(stream=True)``), bounded before anything is buffered.

Flow control (:mod:`mesh.daemon.flow`): what the node sends on a link goes into that
link's outbox, counted in bytes, which never makes a step wait. While a link's outbox
holds 1 MiB or more, the peer's input is read but not fed to the node until the writer
has drained it below half that: a peer that reads slowly is sent less, not cut off, and
TCP pushes back once 1 MiB of its input waits. Only a link whose outbox would pass
48 MiB (a peer that has stopped reading while other links and local sends keep offering
to it), or the fullest link when all outboxes together would pass 64 MiB, is dropped as
slow (``links_dropped_slow``); each pause counts ``backpressure_pauses``. Nothing waits
on a slow link but that link's own input.

The caps on links in all, per address and in their handshake are checked before a link
starts (:meth:`TcpLinks.refuse`): a flood of connections costs a Noise handshake each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from crypto.primitives import blake2b
from mesh.core.events import Event, FrameReceived, LinkDown, LinkUp
from mesh.daemon import flow
from mesh.daemon.config import Config
from mesh.daemon.links import LinkKind

log = logging.getLogger(__name__)

TCP_MTU = 4096  # unused on stream links beyond the link layer's bounds check


@dataclass(slots=True)
class LinkInfo:
    """One TCP link (a :class:`~mesh.daemon.links.FrameLink`)."""

    id: int
    kind: LinkKind
    remote: str
    since: float
    scope: trio.CancelScope
    opened: bool = False
    pin: bytes = b""  # the link key this peer must have (gateway.peers), b"": any
    label: str = ""  # how logs name the peer without its address
    outbox: flow.ByteQueue = field(default_factory=flow.ByteQueue)  # frames to send
    inbox: flow.ByteQueue = field(default_factory=flow.ByteQueue)  # read, not yet fed

    @property
    def host(self) -> str:
        return self.remote.rsplit(":", 1)[0]

    @property
    def closing(self) -> bool:
        return self.scope.cancel_called


class LinkHost(Protocol):
    """What links need of the driver: its configuration (read when used: it may be
    replaced), the node fed one event at a time, counters, and word of a link gone."""

    config: Config

    def feed(self, event: Event, /) -> object: ...

    def count(self, key: str, /) -> None: ...

    def link_gone(self, info: LinkInfo, /) -> None: ...

    def source_label(self, remote: str, /) -> bytes: ...


def source_label(remote: str, data_key: bytes) -> bytes:
    """What per-source quotas and token buckets count a link against: its remote
    address (not the port, not the link key: both are free to change), as a keyed hash
    so the store holds no address of anyone who was near."""
    host = remote.rsplit(":", 1)[0]
    key = blake2b(b"steppe source labels", key=data_key, digest_size=32)
    return blake2b(host.encode(), key=key, digest_size=16)


class TcpLinks:
    """The live TCP links, by the link id the node knows them by."""

    def __init__(
        self, host: LinkHost, clock: Callable[[], float], new_id: Callable[[], int]
    ) -> None:
        self.host = host
        self.clock = clock
        self.links: dict[int, LinkInfo] = {}
        self._new_id = new_id  # the daemon's LinkTable.next_id: one id space for all links

    # ---- frames out (from the node's actions; never waits) ------------------------------
    def send(self, link: int, frame: bytes) -> None:
        info = self.links.get(link)
        if info is not None and not info.closing:
            self._queue(info, frame)

    def _queue(self, info: LinkInfo, frame: bytes) -> None:
        """Put a frame on a link's outbox. A frame that would take the link's outbox
        past ``flow.SLOW_CAP`` drops the link, and one that would take all outboxes
        together past ``flow.ALL_LINKS_CAP`` drops the link holding the most (this one,
        or another): their peers read too little of what they are sent."""
        if info.outbox.bytes + len(frame) > flow.SLOW_CAP:
            self._drop_slow(info)
            return
        while sum(x.outbox.bytes for x in self.links.values()) + len(frame) > flow.ALL_LINKS_CAP:
            fullest = max(self.links.values(), key=lambda x: x.outbox.bytes)
            self._drop_slow(fullest)
            if fullest is info:
                return
        info.outbox.put(frame)

    def _drop_slow(self, info: LinkInfo) -> None:
        self.host.count("links_dropped_slow")
        log.info(
            "link %d dropped: its peer reads too slowly (%d bytes queued)",
            info.id,
            info.outbox.bytes,
        )
        self.drop(info.id)

    def drop(self, link: int) -> None:
        """Stop a link now; the node is not told (it closed the link, or will be)."""
        info = self.links.pop(link, None)
        if info is not None:
            info.scope.cancel()
            info.outbox.clear()  # nothing more is written: free it now
            info.inbox.clear()

    # ---- starting links ---------------------------------------------------------------
    def refuse(self, remote: str) -> str:
        """Why a new link must not start now ("" if it may): the caps on links in all,
        from one address and in their handshake (a flood of connections costs a Noise
        handshake each; a Pi relay has 256 MiB)."""
        cfg = self.host.config
        if len(self.links) >= cfg.max_links:
            return "total"
        host = remote.rsplit(":", 1)[0]
        if sum(1 for x in self.links.values() if x.host == host) >= cfg.max_links_per_address:
            return "per_address"
        if sum(1 for x in self.links.values() if not x.opened) >= cfg.max_handshakes:
            return "handshakes"
        return ""

    async def incoming(self, stream: trio.SocketStream) -> None:
        """A connection to our listener (``trio.serve_listeners``'s handler)."""
        remote = peer_name(stream)
        refused = self.refuse(remote)
        if refused:
            self.host.count(f"links_refused_{refused}")
            log.debug("refused a connection from %s: %s", remote, refused)
            await trio.aclose_forcefully(stream)
            return
        await self.run(stream, initiator=False, kind=LinkKind.INCOMING, remote=remote)

    async def dial(
        self, host: str, port: int, kind: LinkKind, *, pin: bytes = b"", label: str = ""
    ) -> bool:
        """Connect and run one link; False if the connection could not be made. ``label``
        names the peer in logs (which hold no addresses at the default level); ``pin``:
        the link key it must show, if any."""
        try:
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as exc:
            log.info("cannot reach %s (%s)", label or f"a {kind} peer", reason(exc))
            log.debug("cannot reach %s:%d: %s", host, port, exc)
            return False
        remote = f"{host}:{port}"
        await self.run(stream, initiator=True, kind=kind, remote=remote, pin=pin, label=label)
        return True

    # ---- running one link ---------------------------------------------------------------
    async def run(
        self,
        stream: trio.abc.Stream,
        initiator: bool,
        kind: LinkKind,
        remote: str,
        *,
        pin: bytes = b"",
        label: str = "",
    ) -> None:
        """Carry one link until either side closes it; frames in, frames out."""
        link = self._new_id()
        scope = trio.CancelScope()
        info = LinkInfo(link, kind, remote, self.clock(), scope, pin=pin, label=label)
        self.links[link] = info
        log.debug("link %d (%s) with %s", link, kind, remote)
        self.host.count(f"links_{kind}")
        feed = self.host.feed
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(flow.write_out, stream, info.outbox)
                    nursery.start_soon(self._feeder, info)
                    feed(LinkUp(link, initiator, TCP_MTU, True, self.host.source_label(remote)))
                    await flow.read_in(stream, info.inbox, lambda: link in self.links)
                    while info.inbox and link in self.links:  # the peer is done: feed the rest
                        feed(FrameReceived(link, info.inbox.pop()))
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            log.info("link %d (%s) broke: %s", link, kind, reason(group.exceptions[0]))
        except* Exception:  # a bug on one link must not stop the others
            self.host.count("links_internal_error")
            log.exception("link %d (%s): internal error; link dropped", link, kind)
        finally:
            if self.links.pop(link, None) is not None:
                feed(LinkDown(link))
                self.host.link_gone(info)
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _feeder(self, info: LinkInfo) -> None:
        """The peer's input to the node, paused while the link's outbox is full."""
        await flow.feed_in(
            info.inbox,
            info.outbox,
            lambda data: self.host.feed(FrameReceived(info.id, data)),
            lambda: self.host.count("backpressure_pauses"),
        )


def reason(exc: BaseException) -> str:
    """Why a connection failed, without the addresses some exceptions' text holds."""
    while exc.__cause__ is not None and not (isinstance(exc, OSError) and exc.errno):
        exc = exc.__cause__  # trio wraps the OSError (several, for each address tried)
        if isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    return type(exc).__name__


def peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "?"
