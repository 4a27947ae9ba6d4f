"""The daemon's links: every transport moves opaque frames between the node and one
neighbour; all protocol meaning lives in the node.

- :mod:`~mesh.daemon.links.tcp`: running one TCP link (reader, feeder, writer, with
  :mod:`mesh.daemon.flow` backpressure), the table of live links and its caps;
- :mod:`~mesh.daemon.links.lan`: discovery beacons turned into dials;
- :mod:`~mesh.daemon.links.gateway`: the configured internet peers, their key pins, and
  the one dial-with-backoff both it and the LAN use.

Each transport keeps its own live links and is one :class:`Transport` in the daemon's
:class:`LinkTable`, which hands out the link ids the node knows links by (one counter
for all transports) and routes what the node sends or closes to the transport that
carries the link. Bluetooth LE is one more transport, whose links are :class:`FrameLink`
too.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from enum import StrEnum
from typing import Protocol


class LinkKind(StrEnum):
    """Where a link comes from (the spelling shown by ``status``, ``peers`` and stats)."""

    LAN = "lan"  # a neighbour heard by discovery beacon, dialled by us
    GATEWAY = "gateway"  # a configured ``gateway.peers`` entry, dialled by us
    INCOMING = "incoming"  # anything that connected to our listener
    BLE = "ble"  # a Bluetooth LE connection, either role


class FrameLink(Protocol):
    """What the driver and the local API see of one link, whatever carries it."""

    id: int
    kind: LinkKind
    remote: str  # the peer's address (never logged at the default level)
    since: float  # when the link started (the daemon's clock)
    opened: bool  # the Noise handshake finished
    pin: bytes  # the link key this peer must show, b"": any
    label: str  # how logs name the peer without its address

    @property
    def closing(self) -> bool:
        """The link is being torn down: nothing more is sent on it."""
        ...


class Transport(Protocol):
    """One kind of carrier (TCP, Bluetooth LE): its live links and how to reach them."""

    @property
    def links(self) -> Mapping[int, FrameLink]: ...

    def send(self, link: int, frame: bytes, /) -> None:
        """Queue one frame on a link; never waits (a link that cannot keep up is dropped
        by its transport)."""
        ...

    def drop(self, link: int, /) -> None:
        """Stop a link now; the node is not told (it closed the link, or will be)."""
        ...


class LinkTable:
    """Every live link of every transport, by the id the node knows it by."""

    def __init__(self) -> None:
        self.transports: list[Transport] = []
        self._ids = itertools.count(1)

    def next_id(self) -> int:
        """A link id no transport has used in this process."""
        return next(self._ids)

    def add(self, transport: Transport) -> None:
        self.transports.append(transport)

    def _owner(self, link: int) -> Transport | None:
        for transport in self.transports:
            if link in transport.links:
                return transport
        return None

    def get(self, link: int) -> FrameLink | None:
        owner = self._owner(link)
        return None if owner is None else owner.links[link]

    def __len__(self) -> int:
        return sum(len(t.links) for t in self.transports)

    def __iter__(self) -> Iterator[FrameLink]:
        for transport in self.transports:
            yield from transport.links.values()

    def send(self, link: int, frame: bytes) -> None:
        owner = self._owner(link)
        if owner is not None:
            owner.send(link, frame)

    def drop(self, link: int) -> None:
        owner = self._owner(link)
        if owner is not None:
            owner.drop(link)
