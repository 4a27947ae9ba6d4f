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
from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus

from mesh.core.events import SendMessage
from mesh.daemon.links.ble import bluez_io, gatt
from mesh.daemon.links.ble.backend import BackendError, Timing
from mesh.daemon.links.ble.bluez import BluezBackend
from mesh.daemon.links.ble.bluez_gatt import ADV_PATH, Advertisement
from tests.ble_bluez_world import ADDRESSES, World, missing_tools, mock_bluez
from tests.ble_nodes import BleNode
from tests.netsim import Net

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
        assert link in self.ups
        assert link not in self.downs
        self.frames[link].append(data)
        self.changed.set()

    def link_down(self, link: int, reason: str, /) -> None:
        assert link in self.ups
        assert link not in self.downs
        self.downs[link] = reason
        self.changed.set()

    async def until(self, done: Callable[[], bool], within: float = WAIT) -> None:
        async with asyncio.timeout(within):
            while not done():
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with mock_bluez() as w:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", w.address)
        yield w
        print(w.bluezoo_log()[-8000:])  # pytest shows it when the test failed


def frames_of(size: int, count: int, tag: int) -> list[bytes]:
    return [
        bytes([tag, i % 256, i // 256]) + bytes([(i * 7) % 256]) * (size - 3) for i in range(count)
    ]


async def _pair(one_central: bool = False) -> tuple[BluezBackend, Recorder, BluezBackend, Recorder]:
    p, pe = BluezBackend("hci0", one_central), Recorder()
    c, ce = BluezBackend("hci1", one_central), Recorder()
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


async def _linked(
    one_central: bool = False,
) -> tuple[BluezBackend, Recorder, int, BluezBackend, Recorder, int]:
    """hci0 serving, hci1 dialled in: (peripheral, its events, its link, central, ...)."""
    p, pe, c, ce = await _pair(one_central)
    await ce.until(lambda: PERIPHERAL in ce.seen_addresses)
    await c.dial(PERIPHERAL)
    await pe.until(lambda: len(pe.ups) == 1)
    return p, pe, next(iter(pe.ups)), c, ce, next(iter(ce.ups))


def test_peripheral_close_is_link_down(world: World) -> None:
    """The peripheral closing a link calls Device1.Disconnect on the central's device.
    (bluezoo does not carry a disconnection asked for on the peripheral's side over to
    the central's adapter, so only the peripheral's side is checked here; a real BlueZ
    drops the LE connection, which both sides see.)"""

    async def main() -> None:
        p, pe, plink, c, _ce, _clink = await _linked()
        try:
            await p.close(plink)
            await pe.until(lambda: plink in pe.downs)
            await p.send(plink, frames_of(509, 1, 3))  # a link that is gone: returns
        finally:
            await c.stop()
            await p.stop()

    asyncio.run(main())


def test_one_central_at_a_time_pauses_advertising_while_serving(world: World) -> None:
    """For a BlueZ that shares one socket among centrals: no advertisement while a
    central is served, advertising again once it has gone (bluezoo's ActiveInstances)."""

    async def main() -> None:
        p, pe, plink, c, _ce, clink = await _linked(one_central=True)
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            await _until_instances(bus, 0)
            await c.close(clink)
            await pe.until(lambda: plink in pe.downs)
            await _until_instances(bus, 1)
        finally:
            bus.disconnect()
            await c.stop()
            await p.stop()

    asyncio.run(main())


async def _until_instances(bus: MessageBus, wanted: int) -> None:
    """Poll hci0's count of registered advertisements until it is ``wanted``."""
    async with asyncio.timeout(WAIT):
        while True:
            reply = await bus.call(
                Message(
                    destination="org.bluez",
                    path="/org/bluez/hci0",
                    interface="org.freedesktop.DBus.Properties",
                    member="Get",
                    signature="ss",
                    body=["org.bluez.LEAdvertisingManager1", "ActiveInstances"],
                )
            )
            if reply.body[0].value == wanted:
                return
            await asyncio.sleep(0.05)


def test_a_full_socket_waits_and_drops_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 notifications (1 MB) written at once: bluezoo relays each one over D-Bus,
    far slower than we write, so the TX socket fills and send waits for it (counted by
    a spy on the backend's writability wake-up, which it leaves working)."""
    wakes: list[None] = []
    real_wake = bluez_io._wake

    def counting_wake(fut: asyncio.Future[None]) -> None:
        wakes.append(None)
        real_wake(fut)

    monkeypatch.setattr(bluez_io, "_wake", counting_wake)

    async def main() -> None:
        p, pe, plink, c, ce, clink = await _linked()
        try:
            burst = frames_of(509, 2000, 4)
            await p.send(plink, burst)
            await ce.until(lambda: len(ce.frames[clink]) == len(burst), within=60)
            assert ce.frames[clink] == burst
            assert plink not in pe.downs
            assert wakes, "the socket never filled: the test did not test backpressure"
        finally:
            await c.stop()
            await p.stop()

    asyncio.run(main())


def test_a_wrong_sized_write_is_passed_up_as_it_is(world: World) -> None:
    """A peer that ignores the frame size (a raw bleak client on hci1): the backend hands
    its packets to the link layer unchanged, for the core to refuse, and carries on."""

    async def main() -> None:
        p, pe = BluezBackend("hci0"), Recorder()
        await p.start(pe, TIMING)
        try:
            device = await _find(PERIPHERAL, "hci1")
            async with BleakClient(device, bluez={"adapter": "hci1"}) as raw:
                await raw.start_notify(str(gatt.TX_UUID), lambda _c, _d: None)
                await pe.until(lambda: len(pe.ups) == 1)
                (plink,) = pe.ups
                for size in (7, 509, 300):
                    await raw.write_gatt_char(str(gatt.RX_UUID), bytes(size), response=False)
                await pe.until(lambda: len(pe.frames[plink]) == 3)
                assert [len(f) for f in pe.frames[plink]] == [7, 509, 300]
            await pe.until(lambda: plink in pe.downs)
        finally:
            await p.stop()

    asyncio.run(main())


async def _find(address: str, adapter: str) -> BLEDevice:
    """Scan until ``address`` shows up. (Not ``find_device_by_address``: it listens only
    once its scan has started, and bluezoo announces a device once, so it can miss it.)"""
    found: asyncio.Future[BLEDevice] = asyncio.get_running_loop().create_future()

    def detected(device: BLEDevice, _adv: AdvertisementData) -> None:
        if device.address == address and not found.done():
            found.set_result(device)

    async with BleakScanner(detected, bluez={"adapter": adapter}), asyncio.timeout(WAIT):
        return await found


def test_the_advertisement_names_no_one(world: World) -> None:
    """bluezoo builds no advertising bytes, so read what BlueZ builds them from: our
    LEAdvertisement1's properties, as BlueZ reads them over D-Bus."""

    async def main() -> None:
        p, pe = BluezBackend("hci0"), Recorder()
        await p.start(pe, TIMING)
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            props = await _get_all(bus, p, ADV_PATH, "org.bluez.LEAdvertisement1")
            assert {k: v.value for k, v in props.items()} == {
                "Type": "peripheral",
                "ServiceUUIDs": [str(gatt.SERVICE_UUID)],
                "Includes": [],
                "Discoverable": True,
            }
            # What BlueZ makes of that: flags + the complete 128-bit UUID list, 21 bytes.
            data = gatt.advertising_data()
            assert len(data) == 21 <= gatt.LEGACY_ADV_MAX
            assert data[3:5] == bytes([17, 0x07])
            assert data[5:] == gatt.SERVICE_UUID.bytes[::-1]
        finally:
            bus.disconnect()
            await p.stop()

    asyncio.run(main())


async def _get_all(bus: MessageBus, p: BluezBackend, path: str, iface: str) -> dict[str, Variant]:
    assert p._bus is not None  # the backend's own connection: its unique name serves the tree
    reply = await bus.call(
        Message(
            destination=p._bus.unique_name,
            path=path,
            interface="org.freedesktop.DBus.Properties",
            member="GetAll",
            signature="s",
            body=[iface],
        )
    )
    assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    result: dict[str, Variant] = reply.body[0]
    return result


def test_no_bus_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/steppe-bus")
    _refused(BluezBackend(), "^no D-Bus system bus: ")


def test_no_adapter_is_one_line(world: World) -> None:
    _refused(BluezBackend("hci7"), "^no Bluetooth adapter hci7 ")


def test_adapter_off_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_bluez(powered=False) as w:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", w.address)
        _refused(BluezBackend("hci0"), r"^Bluetooth adapter hci0 is off \(bluetoothctl power on")


def test_no_bluez_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    with mock_bluez(adapters=(), run_bluezoo=False) as w:
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", w.address)
        _refused(BluezBackend("hci0"), r"^BlueZ is not running \(no org.bluez on the system bus\)$")


def test_bluez_refusing_the_advertisement_is_one_line(world: World) -> None:
    """bluezoo has 15 advertising instances per adapter; take them all first."""

    async def main() -> None:
        bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
        try:
            for i in range(15):
                bus.export(f"/test/adv{i}", Advertisement(lambda: None))
                reply = await bus.call(
                    Message(
                        destination="org.bluez",
                        path="/org/bluez/hci0",
                        interface="org.bluez.LEAdvertisingManager1",
                        member="RegisterAdvertisement",
                        signature="oa{sv}",
                        body=[f"/test/adv{i}", {}],
                    )
                )
                assert reply.message_type == MessageType.METHOD_RETURN
            p = BluezBackend("hci0")
            with pytest.raises(BackendError) as refused:
                await p.start(Recorder(), TIMING)
            assert str(refused.value).startswith("BlueZ refused RegisterAdvertisement on hci0: ")
            assert "\n" not in str(refused.value)
            assert p._bus is None  # stopped: nothing left registered or connected
        finally:
            bus.disconnect()

    asyncio.run(main())


def _refused(backend: BluezBackend, pattern: str) -> None:
    async def main() -> None:
        with pytest.raises(BackendError, match=pattern) as refused:
            await backend.start(Recorder(), TIMING)
        assert "\n" not in str(refused.value)

    asyncio.run(main())


def test_two_nodes_exchange_messages_over_bluez(world: World) -> None:
    """The real protocol over the backend: two nodes (Noise handshake, reconciliation,
    sealed messages, receipts) on hci0 and hci1, each driven on asyncio by BleNode."""
    net = Net(seed=13)
    a, b = net.add(), net.add()
    net.introduce_all()

    async def main() -> None:
        pa, pb = BluezBackend("hci0"), BluezBackend("hci1")
        na, nb = BleNode(net.nodes[a], pa), BleNode(net.nodes[b], pb)
        await pa.start(na, TIMING)
        await pb.start(nb, TIMING)
        tickers = [asyncio.create_task(n.ticking()) for n in (na, nb)]
        try:
            for sender, to, text in ((na, nb, b"salem from hci0"), (nb, na, b"hello from hci1")):
                sender.step(SendMessage(to.node.identity.sign_public, text))
            await _until(nb, lambda: PERIPHERAL in nb.seen_addresses)
            await pb.dial(PERIPHERAL)
            await _until(na, lambda: [d.body for d in na.delivered] == [b"hello from hci1"])
            await _until(nb, lambda: [d.body for d in nb.delivered] == [b"salem from hci0"])
            assert (len(na.opened), len(nb.opened)) == (1, 1)  # Noise finished on both ends
            assert (na.closed, nb.closed) == ([], [])  # no frame refused, no link cut
        finally:
            for t in tickers:
                t.cancel()
            await pb.stop()
            await pa.stop()
            await na.close()
            await nb.close()

    asyncio.run(main())


async def _until(n: BleNode, done: Callable[[], bool], within: float = 30) -> None:
    async with asyncio.timeout(within):
        while not done():
            n.changed.clear()
            await n.changed.wait()
