"""LAN links: :mod:`mesh.daemon.discovery` beacons (no identity) turned into dials. Of
two daemons that hear each other, the one with the lower beacon instance dials, the
other accepts. A failed dial (or a link that died young) keeps the address blocked for
an exponentially growing, jittered delay (:mod:`mesh.daemon.links.gateway`'s backoff)."""

from __future__ import annotations

import random
from collections.abc import Callable

import trio

from mesh.daemon.discovery import Discovery
from mesh.daemon.links import LinkKind
from mesh.daemon.links.gateway import Backoff, dial_once
from mesh.daemon.links.tcp import TcpLinks

Rng = Callable[[int], bytes]


class Lan:
    """Dials the neighbours that discovery hears."""

    def __init__(self, links: TcpLinks, jitter: random.Random) -> None:
        self.links = links
        self.jitter = jitter
        self.discovery: Discovery | None = None
        self.nursery: trio.Nursery | None = None
        self._dialing: set[tuple[str, int]] = set()
        self._backoff: dict[tuple[str, int], Backoff] = {}

    async def start(self, nursery: trio.Nursery, tcp_port: int, rng: Rng) -> None:
        """Beacon our TCP port and listen for others' (once the socket is bound)."""
        cfg = self.links.host.config
        self.nursery = nursery
        self.discovery = Discovery(
            cfg.discovery_group,
            cfg.discovery_port,
            tcp_port,
            cfg.beacon_interval,
            rng,
            self.on_beacon,
            cfg.interfaces,
        )
        await nursery.start(self.discovery.run)

    def on_beacon(self, ip: str, port: int, instance: bytes) -> None:
        """A neighbour's beacon: dial it unless it dials us, we already are, or a cap
        says no."""
        if self.discovery is None or self.nursery is None or self.links.refuse(f"{ip}:{port}"):
            return
        addr = (ip, port)
        if self.discovery.instance > instance or addr in self._dialing:
            return  # the other side dials, or we are already connected
        self._dialing.add(addr)
        self.nursery.start_soon(self._dial, addr)

    async def _dial(self, addr: tuple[str, int]) -> None:
        """Dial a neighbour heard by beacon. A failed dial (or a link that died young)
        keeps the address blocked for an exponentially growing, jittered delay."""
        backoff = self._backoff.setdefault(
            addr, Backoff(base=2.0, cap=self.links.host.config.backoff_max, rng=self.jitter)
        )
        try:
            if not await dial_once(lambda: self.links.dial(*addr, LinkKind.LAN), backoff):
                await trio.sleep(backoff.next_delay())
        finally:
            self._dialing.discard(addr)
