"""Link rotation: a device at its Bluetooth LE link cap makes room for devices it has not
linked with.

Theory of operation
-------------------
With every device's slots full, a crowd that stands still settles into groups that never
link with each other: ten devices with four links each can end as two complete groups
of five, and mail written in one group never reaches the other. Radios cannot tell
whom they would be missing, but they can tell that someone is asking: a Steppe device
advertising that we cannot dial because we are at ``ble.max_links``, or a link refused
for the cap.

On such a sign, :class:`Rotation` picks one link to close: open for at least
``ble.rotate_after`` seconds, silent (no frame either way) for :data:`QUIET` seconds, and
of those the one silent longest. Its address is then held off for :data:`HOLD_FACTOR`
times ``ble.rotate_after``: not dialled, and refused if it dials us, so the slot goes to
someone else. Closing a silent link loses nothing: reconciliation has run, nothing is in
flight, and what either side receives later reaches the other through whoever links
next. A sign is good for ``ble.rotate_after`` seconds (a device that went away stops
asking). ``ble.rotate_after = 0`` turns rotation off.

Addresses are what the radio shows: on real radios they rotate (resolvable private
addresses, every 15 minutes by default on BlueZ), so a hold is best effort, and a link
of a device we held may still come up under its next address.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

QUIET = 5.0  # seconds without a frame before a link may be rotated out
HOLD_FACTOR = 5  # a rotated-out address is held off for this many rotate_after periods
HELD_KEPT = 1024  # held addresses remembered before expired ones are forgotten


class Rotatable(Protocol):
    """What rotation needs to know of a link (a :class:`.link.BleLink`)."""

    @property
    def remote(self) -> str: ...

    @property
    def opened(self) -> bool: ...

    @property
    def began(self) -> float: ...

    @property
    def last_frame(self) -> float: ...


L = TypeVar("L", bound="Rotatable")


@dataclass
class Rotation:
    """Signs of demand, and the addresses held off after a rotation (times in seconds
    on one monotonic clock)."""

    after: float  # ble.rotate_after; 0: never rotate
    wanted_at: float | None = None
    held: dict[str, float] = field(default_factory=dict)  # address -> held until

    def want(self, now: float) -> None:
        """Someone asked for a link we had no room for."""
        if self.after > 0:
            self.wanted_at = now

    def holds(self, address: str, now: float) -> bool:
        until = self.held.get(address)
        return until is not None and until > now

    def pick(self, links: Iterable[L], now: float) -> L | None:
        """The link to close now to make room (None: no sign of demand, or none may go).
        The caller closes it; the demand is then met and its address held."""
        if self.wanted_at is None or now - self.wanted_at > self.after:
            self.wanted_at = None
            return None
        ready = [
            x
            for x in links
            if x.opened and now - x.began >= self.after and now - x.last_frame >= QUIET
        ]
        if not ready:
            return None
        chosen = min(ready, key=lambda x: x.last_frame)
        self.wanted_at = None
        if len(self.held) >= HELD_KEPT:
            self.held = {a: t for a, t in self.held.items() if t > now}
        self.held[chosen.remote] = now + HOLD_FACTOR * self.after
        return chosen
