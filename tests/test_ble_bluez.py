"""The BlueZ backend (mesh/daemon/links/ble/bluez.py) against a mock BlueZ.

Real stack everywhere but the radio: our dbus-fast GATT application and advertisement,
bleak's central, the acquired SOCK_SEQPACKET sockets and D-Bus itself are real; bluezoo
(in its own process, on a private dbus-daemon) is the radio between adapters hci0 and
hci1. What bluezoo does, checked here and relied on:

- it reports an advertiser of our service to a scanning adapter every ``--scan-interval``;
- a write-without-response from the central calls our ``AcquireWrite`` with ``device``,
  ``mtu`` and ``link`` and writes the value into the socket (it asks again on every
  write, since ``WriteAcquired`` stays false: the backend hands back the same socket);
- the central's subscription calls our ``AcquireNotify`` once and bluezoo relays each
  packet it reads from that socket as a notification;
- its ATT MTU is 512 (it has no MTU exchange), so frames are 509 bytes;
- it builds no advertising bytes: it copies the advertisement's D-Bus properties (and
  shows the adapter's alias as the name when there is no LocalName), so the "no name in
  31 bytes" check is on the properties BlueZ builds the payload from.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from mesh.daemon.links.ble import gatt
from mesh.daemon.links.ble.backend import BackendError, Timing
from mesh.daemon.links.ble.bluez import BluezBackend
from tests.ble_bluez_world import ADDRESSES, World, missing_tools, mock_bluez

pytestmark = pytest.mark.skipif(missing_tools() is not None, reason=str(missing_tools()))

WAIT = 15.0
TIMING = Timing(connect_timeout=10.0)
PERIPHERAL, CENTRAL = ADDRESSES  # hci0, hci1


@dataclass
class Recorder:
    """BackendEvents that keep what happened, and wake waiters."""

    seen_addresses: set[str] = field(default_factory=set)
    ups: dict[int, tuple[bool, int, str]] = field(default_factory=dict)
    frames: dict[int, list[bytes]] = field(default_factory=dict)
    downs: dict[int, str] = field(default_factory=dict)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def seen(self, address: str, /) -> None:
        self.seen_addresses.add(address)
        self.changed.set()

    def link_up(self, link: int, central: bool, frame: int, address: str, /) -> None:
        assert link not in self.ups
        self.ups[link] = (central, frame, address)
        self.frames[link] = []
        self.changed.set()

    def frame(self, link: int, data: bytes, /) -> None:
        assert link in self.ups and link not in self.downs
        self.frames[link].append(data)
        self.changed.set()

    def link_down(self, link: int, reason: str, /) -> None:
        assert link in self.ups and link not in self.downs
        self.downs[link] = reason
        self.changed.set()

    async def until(self, done: Callable[[], bool], timeout: float = WAIT) -> None:
        async with asyncio.timeout(timeout):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_bluez() as w:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", w.address)
        yield w


def frames_of(size: int, count: int, tag: int) -> list[bytes]:
    return [bytes([tag, i % 256, i // 256]) + bytes([(i * 7) % 256]) * (size - 3) for i in range(count)]


async def _pair() -> tuple[BluezBackend, Recorder, BluezBackend, Recorder]:
    p, pe = BluezBackend("hci0"), Recorder()
    c, ce = BluezBackend("hci1"), Recorder()
    await p.start(pe, TIMING)
    await c.start(ce, TIMING)
    return p, pe, c, ce


def test_connect_and_exchange_frames_both_ways(world: World) -> None:
    async def main() -> None:
        p, pe, c, ce = await _pair()
        try:
            await ce.until(lambda: PERIPHERAL in ce.seen_addresses)
            await c.dial(PERIPHERAL)
            (clink,) = ce.ups
            assert ce.ups[clink] == (True, 509, PERIPHERAL)
            await pe.until(lambda: len(pe.ups) == 1)
            (plink,) = pe.ups
            assert pe.ups[plink] == (False, 509, CENTRAL)
            down = frames_of(509, 50, 1)
            up = frames_of(509, 50, 2)
            await asyncio.gather(p.send(plink, down), c.send(clink, up))
            await ce.until(lambda: len(ce.frames[clink]) == len(down))
            await pe.until(lambda: len(pe.frames[plink]) == len(up))
            assert ce.frames[clink] == down
            assert pe.frames[plink] == up
            await c.close(clink)
            await ce.until(lambda: clink in ce.downs)
            await pe.until(lambda: plink in pe.downs)
        finally:
            await c.stop()
            await p.stop()

    asyncio.run(main())


def test_no_bus_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/steppe-bus")

    async def main() -> None:
        with pytest.raises(BackendError, match="no D-Bus system bus"):
            await BluezBackend().start(Recorder(), TIMING)

    asyncio.run(main())
