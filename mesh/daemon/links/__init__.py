"""The daemon's links: every transport moves opaque frames between the node and one
neighbour; all protocol meaning lives in the node.

- :mod:`~mesh.daemon.links.tcp`: running one TCP link (reader, feeder, writer, with
  :mod:`mesh.daemon.flow` backpressure), the table of live links and its caps;
- :mod:`~mesh.daemon.links.lan`: discovery beacons turned into dials;
- :mod:`~mesh.daemon.links.gateway`: the configured internet peers, their key pins, and
  the one dial-with-backoff both it and the LAN use.

Bluetooth LE will be one more module here, whose links are :class:`FrameLink` too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol


class LinkKind(StrEnum):
    """Where a link comes from (the spelling shown by ``status``, ``peers`` and stats)."""

    LAN = "lan"  # a neighbour heard by discovery beacon, dialled by us
    GATEWAY = "gateway"  # a configured ``gateway.peers`` entry, dialled by us
    INCOMING = "incoming"  # anything that connected to our listener


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
