"""Helpers for Bluetooth LE tests: daemons on Bumble virtual controllers (``local:NAME``
radios on process-wide LocalLinks), with real node, real daemon, real Bumble stack."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os

from bumble import hci
from bumble.att import AttributeValue
from bumble.controller import Controller
from bumble.core import UUID, BaseBumbleError
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import (
    GATT_DEVICE_NAME_CHARACTERISTIC,
    GATT_GENERIC_ACCESS_SERVICE,
    Characteristic,
    Service,
)
from bumble.host import Host
from bumble.transport.common import AsyncPipeSink

from mesh.daemon.config import Config
from mesh.daemon.links.ble import gatt
from mesh.daemon.links.ble.bumble import advertises_steppe, local_link
from tests.daemon_helpers import loopback_config

_names = itertools.count(1)


def radio_name() -> str:
    """A LocalLink name no other test in this process uses."""
    return f"test-{os.getpid()}-{next(_names)}"


def ble_config(adapter: str, **changes: object) -> Config:
    """Bluetooth LE on the given Bumble radios, no LAN; loopback for the rest."""
    base: dict[str, object] = {
        "lan": False,
        "ble": True,
        "ble_backend": "bumble",
        "ble_adapter": adapter,
        "ble_advertise_interval": 50,
        "ble_scan_interval": 50,
        "ble_scan_window": 25,
    }
    base.update(changes)
    return loopback_config(**base)


# ---- hostile peers: raw Bumble devices (none of our backend code) on a LocalLink ------
# They run on the process's asyncio thread (mesh.daemon.links.ble.bridge), driven from the
# trio test with bridge.call.


class RawPeer:
    """A Bumble device on a virtual radio link that plays a hostile Steppe peer."""

    def __init__(self, link_name: str, address: str) -> None:
        self.link_name = link_name
        self.address = address
        self.device: Device | None = None
        self.controller: Controller | None = None
        self.written: list[bytes] = []  # what centrals wrote to our RX (peripheral role)
        self.notified: list[bytes] = []  # what the peripheral notified us (central role)
        self.connections: list[Connection] = []
        self.disconnected = 0
        self.serving = False
        self.heard: list[tuple[str, bytes]] = []  # what find_steppe heard on air
        self.device_name = b"?"  # the GAP device name the peer we connected to serves
        self._tasks: set[asyncio.Task[None]] = set()

    async def power_on(self) -> None:
        link = local_link(self.link_name)
        self.controller = Controller("raw", link=link, public_address=self.address)
        host = Host(self.controller, AsyncPipeSink(self.controller))
        self.device = Device(name="raw", address=hci.Address(self.address), host=host)
        self.device.on("connection", self._connected)
        await self.device.power_on()

    def _connected(self, conn: Connection) -> None:
        self.connections.append(conn)
        conn.on("disconnection", lambda _reason: self._gone())
        if self.serving:  # advertising stopped on this connection: more may come
            task = asyncio.get_running_loop().create_task(self._advertise())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _gone(self) -> None:
        self.disconnected += 1

    async def serve_silently(self) -> None:
        """Advertise Steppe's service and serve it; take writes, never answer."""
        assert self.device is not None
        rx: Characteristic[bytes] = Characteristic(
            UUID(str(gatt.RX_UUID)),
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            AttributeValue(write=lambda _conn, value: self.written.append(bytes(value))),
        )
        tx: Characteristic[bytes] = Characteristic(
            UUID(str(gatt.TX_UUID)),
            Characteristic.Properties.NOTIFY,
            Characteristic.READABLE,
            b"",
        )
        self.device.add_service(Service(UUID(str(gatt.SERVICE_UUID)), [rx, tx]))
        self.serving = True
        await self._advertise()

    async def _advertise(self) -> None:
        assert self.device is not None
        await self.device.start_advertising(
            advertising_data=gatt.advertising_data(),
            scan_response_data=b"",
            advertising_interval_min=50,
            advertising_interval_max=50,
        )

    async def find_steppe(self) -> hci.Address:
        """Scan until a Steppe advertiser is heard; its address."""
        assert self.device is not None
        found: asyncio.Future[hci.Address] = asyncio.get_running_loop().create_future()

        def heard(adv: Advertisement) -> None:
            if adv.is_scan_response:
                self.heard.append(("scan response", adv.data_bytes))
            elif not found.done() and advertises_steppe(adv):
                self.heard.append(("advertisement", adv.data_bytes))
                found.set_result(adv.address)

        self.device.on("advertisement", heard)
        await self.device.start_scanning(filter_duplicates=False)
        try:
            return await asyncio.wait_for(found, 10)
        finally:
            self.device.remove_listener("advertisement", heard)
            await self.device.stop_scanning()

    async def connect_and_write(self, address: hci.Address, frames: list[bytes]) -> int:
        """As central: MTU 247, subscribe to TX, write ``frames``; the frame size."""
        assert self.device is not None
        conn = await self.device.connect(address, timeout=5)
        peer = Peer(conn)
        await peer.request_mtu(247)
        service_uuid = UUID(str(gatt.SERVICE_UUID))
        await peer.discover_service(service_uuid)
        service = peer.get_services_by_uuid(service_uuid)[0]
        await service.discover_characteristics()
        rx = service.get_characteristics_by_uuid(UUID(str(gatt.RX_UUID)))[0]
        tx = service.get_characteristics_by_uuid(UUID(str(gatt.TX_UUID)))[0]
        await tx.subscribe(lambda value: self.notified.append(bytes(value)), prefer_notify=True)
        await peer.discover_service(GATT_GENERIC_ACCESS_SERVICE)
        gap = peer.get_services_by_uuid(GATT_GENERIC_ACCESS_SERVICE)[0]
        await gap.discover_characteristics()
        name = gap.get_characteristics_by_uuid(GATT_DEVICE_NAME_CHARACTERISTIC)[0]
        self.device_name = bytes(await name.read_value())
        for frame in frames:
            if conn.handle not in self.device.connections:
                break
            await rx.write_value(frame, with_response=False)
        return gatt.frame_size(conn.att_mtu)

    async def close(self) -> None:
        if self.device is not None:
            for conn in list(self.device.connections.values()):
                with contextlib.suppress(BaseBumbleError, asyncio.TimeoutError):
                    await asyncio.wait_for(conn.disconnect(), 2)
            await self.device.stop_advertising()
        link = local_link(self.link_name)
        if self.controller in link.controllers:
            link.remove_controller(self.controller)
