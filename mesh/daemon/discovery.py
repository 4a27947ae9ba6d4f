"""Zero-configuration LAN discovery: UDP multicast beacons that carry no identity.

A beacon is 15 bytes: ``b"STPB" | version (1) | TCP port (2) | instance (8)``. The
instance is a random value that changes every :data:`INSTANCE_LIFETIME` seconds; it only
lets a daemon ignore its own beacons and decide which side of a pair dials (the lower
instance dials), and it links a device's beacons for at most that long. No key, name or
fingerprint is ever in a beacon; who a peer is becomes known only inside the Noise XX link
handshake, and even that key is fresh per connection unless the node is a relay.

Beacons go to a multicast group (TTL 1, so they never leave the local network) on every
IPv4 interface, or on the configured ones; membership is refreshed as interfaces come and
go. A malformed datagram is ignored and counted.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import trio

log = logging.getLogger(__name__)

MAGIC = b"STPB"
VERSION = 1
BEACON_LEN = 15
INSTANCE_LIFETIME = 600.0


@dataclass(frozen=True, slots=True)
class Beacon:
    port: int
    instance: bytes

    def encode(self) -> bytes:
        return MAGIC + bytes([VERSION]) + self.port.to_bytes(2, "big") + self.instance

    @classmethod
    def decode(cls, data: bytes) -> Beacon | None:
        if len(data) != BEACON_LEN or data[:4] != MAGIC or data[4] != VERSION:
            return None
        port = int.from_bytes(data[5:7], "big")
        return cls(port, data[7:15]) if port else None


def interface_addresses(names: tuple[str, ...] = ()) -> dict[str, str]:
    """interface name -> its first IPv4 address (only ``names`` if given)."""
    out: dict[str, str] = {}
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if names and name not in names:
            continue
        for a in addrs:
            if a.family == socket.AF_INET:
                out[name] = a.address
                break
    return out


@dataclass
class Discovery:
    """Sends beacons and reports peers: ``on_peer(ip, tcp_port, instance)``."""

    group: str
    port: int
    tcp_port: int
    interval: float
    rng: Callable[[int], bytes]
    on_peer: Callable[[str, int, bytes], None]
    interfaces: tuple[str, ...] = ()
    malformed: int = 0
    instance: bytes = b""
    _joined: set[str] = field(default_factory=set)
    _instance_since: float = -1e18

    def _rotate(self) -> None:
        now = trio.current_time()
        if now - self._instance_since >= INSTANCE_LIFETIME:
            self.instance = self.rng(8)
            self._instance_since = now

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self._rotate()
        recv = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        send = trio.socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        with recv, send:
            recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            recv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            await recv.bind(("", self.port))
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
            send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 1)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._listen, recv)
                task_status.started()
                while True:
                    self._rotate()
                    await self._beacon(recv, send)
                    await trio.sleep(self.interval)

    async def _beacon(self, recv: trio.socket.SocketType, send: trio.socket.SocketType) -> None:
        data = Beacon(self.tcp_port, self.instance).encode()
        for name, addr in interface_addresses(self.interfaces).items():
            if name not in self._joined:
                mreq = socket.inet_aton(self.group) + socket.inet_aton(addr)
                try:
                    recv.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
                    self._joined.add(name)
                except OSError as exc:
                    log.debug("cannot join %s on %s: %s", self.group, name, exc)
                    continue
            try:
                send.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(addr))
                await send.sendto(data, (self.group, self.port))
            except OSError as exc:  # interface went away or has no multicast route
                log.debug("beacon on %s failed: %s", name, exc)

    async def _listen(self, sock: trio.socket.SocketType) -> None:
        while True:
            data, (ip, _port) = await sock.recvfrom(64)
            beacon = Beacon.decode(data)
            if beacon is None:
                self.malformed += 1
                continue
            if beacon.instance != self.instance:
                self.on_peer(ip, beacon.port, beacon.instance)
