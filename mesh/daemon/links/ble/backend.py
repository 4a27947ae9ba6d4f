"""The asyncio side of a Bluetooth LE link: what every backend (Bumble, BlueZ,
CoreBluetooth) offers the trio side, which sees none of it but through the bridge.

A backend plays both roles at once: it advertises :mod:`~.gatt`'s service and serves it
(peripheral), and scans for it and connects (central). Each connection, in either role,
is one link, named by an opaque int the backend chooses (unique for the backend's
lifetime: handles repeat across adapters and are reused after a disconnection).

Callbacks (:class:`BackendEvents`) are plain functions called on the asyncio loop; they
must not block and never await. The order a backend reports things in is:

1. ``seen(address)`` for an advertiser of our service (central role; may repeat);
2. ``link_up(link, central, frame)`` once the MTU is settled and the central has
   subscribed to TX: every frame on the link then has exactly ``frame`` bytes;
3. ``frame(link, data)`` for each frame received, in order, never dropped;
4. ``link_down(link, reason)`` once, after which the link id is not used again.

``send`` returns when the backend's flow control has taken the frame; a backend never
drops a frame silently: if it cannot send, the link goes down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class BackendError(Exception):
    """The Bluetooth stack cannot be used (no adapter, adapter off, BlueZ refusing us):
    one readable line; the daemon carries on without Bluetooth."""


@dataclass(frozen=True, slots=True)
class Timing:
    """How often a backend advertises and scans (milliseconds)."""

    advertise_interval: int = 100
    scan_interval: int = 100
    scan_window: int = 50
    connect_timeout: float = 5.0  # seconds a dial may take before it is given up


class BackendEvents(Protocol):
    """What a backend tells the link layer (called on the asyncio loop, never blocking)."""

    def seen(self, address: str, /) -> None: ...

    def link_up(self, link: int, central: bool, frame: int, address: str, /) -> None: ...

    def frame(self, link: int, data: bytes, /) -> None: ...

    def link_down(self, link: int, reason: str, /) -> None: ...


class Backend(Protocol):
    """One Bluetooth stack, both roles."""

    async def start(self, events: BackendEvents, timing: Timing) -> None:
        """Power on, serve the GATT service, advertise and scan. Raises
        :class:`BackendError` with a readable reason if the stack cannot be used."""
        ...

    async def stop(self) -> None:
        """Stop advertising and scanning, close every link (``link_down`` for each)."""
        ...

    async def dial(self, address: str) -> None:
        """Connect to an advertiser as central; ``link_up`` follows when it is ready.
        Raises :class:`BackendError` (or ``TimeoutError``) if it cannot be made."""
        ...

    async def send(self, link: int, frames: Sequence[bytes]) -> None:
        """Send frames in order on a link, waiting for flow control; each exactly the
        link's frame size. On a link that is gone or breaks: returns (``link_down``
        says so); never drops a frame and carries on."""
        ...

    async def close(self, link: int) -> None:
        """Disconnect one link (``link_down`` follows)."""
        ...
