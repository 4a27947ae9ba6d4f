"""The Linux backend: BlueZ over D-Bus, both roles.

Peripheral: our own GATT application and LE advertisement (:mod:`.bluez_gatt`) on the
system bus with dbus-fast. BlueZ calls ``AcquireWrite`` / ``AcquireNotify`` with the
central's Device1 path and the ATT MTU; each call gets one end of a fresh
``socketpair(AF_UNIX, SOCK_SEQPACKET)``, and the RX and TX sockets of the same device
make one link. The link is up when the central subscribes (``AcquireNotify``: TX exists
and the MTU is known); BlueZ acquires RX lazily, on the central's first write, which
then joins the link (read from only once the link is up, so nothing is reported before
``link_up``). One packet is one frame; a wrong-sized packet is passed up as it is, for
the core to refuse. A full socket is backpressure (we wait until it is writable, never
drop); EOF, a socket error or the device's ``Connected`` going false is ``link_down``.

Central: bleak. A scan filtered on our service UUID reports ``seen(address)``; a dial
connects, reads the ATT MTU from the RX characteristic's ``MTU`` property (BlueZ 5.62+),
subscribes to TX and writes RX without response, one frame per write, in order.

Per-device sockets need BlueZ's fixes of bluez/bluez#460 (2023) and #820 (2024): older
ones give every central of a characteristic one shared socket. With ``one_central`` (the
default when ``bluetoothctl --version`` is older than :data:`PER_DEVICE_BLUEZ`, or
unknown) the peripheral serves one central at a time: it withdraws its advertisement
while a central is served and advertises again when that link is down
(deploy/ble-bluez.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import socket
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError
from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusFastError

from . import gatt
from .backend import BackendError, BackendEvents, Timing
from .bluez_gatt import (
    ADV_PATH,
    APP_PATH,
    RX_PATH,
    SERVICE_PATH,
    TX_PATH,
    Advertisement,
    GattService,
    RxCharacteristic,
    TxCharacteristic,
)
from .bluez_io import (
    BLUEZ,
    CallError,
    SeqSocket,
    bluez_version,
    call,
    connect_system_bus,
    device_address,
)

log = logging.getLogger(__name__)

PROPERTIES = "org.freedesktop.DBus.Properties"
DEVICE = "org.bluez.Device1"
_REMOTE_LINGER = 1.0  # seconds BlueZ's socket end stays open here after its link is gone
_MTU_SETTLE = 0.5  # seconds to wait for BlueZ to publish the exchanged MTU (central)
_NO_SERVICE = (
    "org.freedesktop.DBus.Error.ServiceUnknown",
    "org.freedesktop.DBus.Error.NameHasNoOwner",
)
ADAPTER = "org.bluez.Adapter1"
GATT_MANAGER = "org.bluez.GattManager1"
ADV_MANAGER = "org.bluez.LEAdvertisingManager1"
PER_DEVICE_BLUEZ = (5, 77)  # a release with both per-device socket fixes (#460, #820)


def _ignore(_data: bytes) -> None:
    """BlueZ writes to a notify socket only to confirm indications (we notify)."""


@dataclass(eq=False)
class _Served:
    """A peripheral-role link: one central's RX and TX sockets."""

    id: int
    device: str
    address: str
    mtu: int
    up: bool = False
    tx: SeqSocket | None = None
    rx: SeqSocket | None = None
    remote: dict[bool, socket.socket] = field(default_factory=dict)  # rx? -> BlueZ's end
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def frame(self) -> int:
        return gatt.frame_size(self.mtu)


@dataclass(eq=False)
class _Dialled:
    """A central-role link: a bleak client."""

    id: int
    address: str
    client: BleakClient
    frame: int = 0
    rx: BleakGATTCharacteristic | None = None
    up: bool = False
    pending: list[bytes] = field(default_factory=list)  # notified before link_up
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class BluezBackend:
    """BlueZ on one adapter, both roles (see the module docstring)."""

    def __init__(self, adapter: str = "hci0", one_central: bool | None = None) -> None:
        self.adapter = adapter
        self.one_central = one_central  # None: from BlueZ's version, at start
        self.adapter_path = f"/org/bluez/{adapter}"
        self._events: BackendEvents | None = None
        self._timing = Timing()
        self._bus: MessageBus | None = None
        self._scanner: BleakScanner | None = None
        self._ids = itertools.count(1)
        self._links: dict[int, _Served | _Dialled] = {}
        self._served: dict[str, _Served] = {}  # device path -> link
        self._seen: dict[str, BLEDevice] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._registered: list[tuple[str, str, str]] = []  # (interface, method, path)
        self._lingering: set[socket.socket] = set()  # BlueZ's ends of links gone
        self._adv_lock = asyncio.Lock()
        self._stopping = False

    # -- Backend -----------------------------------------------------------------------

    async def start(self, events: BackendEvents, timing: Timing) -> None:
        self._events, self._timing, self._stopping = events, timing, False
        bus = await connect_system_bus()
        self._bus = bus
        try:
            await self._check_adapter()
            if self.one_central is None:
                version = await bluez_version()
                self.one_central = version is None or version < PER_DEVICE_BLUEZ
                log.info("BlueZ %s: one central at a time: %s", version, self.one_central)
            self._export(bus)
            await self._register(GATT_MANAGER, "RegisterApplication", APP_PATH)
            await self._register(ADV_MANAGER, "RegisterAdvertisement", ADV_PATH)
            await self._watch_devices()
            await self._start_scan()
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        self._stopping = True
        if self._scanner is not None:
            with contextlib.suppress(BleakError, DBusFastError, OSError):
                await self._scanner.stop()
            self._scanner = None
        for link in list(self._links):
            await self.close(link)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        bus, self._bus = self._bus, None
        if bus is not None:
            for interface, method, path in reversed(self._registered):
                unregister = method.replace("Register", "Unregister")
                with contextlib.suppress(CallError, DBusFastError, OSError, EOFError):
                    await call(bus, self.adapter_path, interface, unregister, "o", [path])
            bus.disconnect()
        self._registered.clear()
        for sock in list(self._lingering):
            self._unlinger(sock)

    async def dial(self, address: str) -> None:
        if self._bus is None:
            raise BackendError("the BlueZ backend is not started")
        lid = next(self._ids)
        link = _Dialled(lid, address, self._client(lid, address))
        try:
            async with asyncio.timeout(self._timing.connect_timeout):
                await self._connect(link)
        except (BleakError, DBusFastError, OSError, EOFError, gatt.GattError) as e:
            await self._abandon(link)
            raise BackendError(f"cannot connect to {address}: {e}") from e
        except BaseException:
            await self._abandon(link)
            raise
        link.up = True
        self._ev.link_up(link.id, True, link.frame, address)
        pending, link.pending = link.pending, []
        for data in pending:
            self._ev.frame(link.id, data)

    async def send(self, link: int, frames: Sequence[bytes]) -> None:
        entry = self._links.get(link)
        if entry is None or not entry.up:
            return
        async with entry.lock:
            for data in frames:
                gatt.check_frame(data, entry.frame)
                if link not in self._links:
                    return
                try:
                    await self._send_one(entry, data)
                except (OSError, BleakError, DBusFastError, EOFError) as e:
                    self._drop(link, f"send failed: {e}")
                    return

    async def close(self, link: int) -> None:
        entry = self._links.get(link)
        if entry is None:
            return
        if isinstance(entry, _Dialled):
            with contextlib.suppress(BleakError, DBusFastError, OSError, EOFError):
                await entry.client.disconnect()
        elif self._bus is not None:
            with contextlib.suppress(CallError, DBusFastError, OSError, EOFError):
                await call(self._bus, entry.device, DEVICE, "Disconnect", "", [])
        self._drop(link, "closed")

    # -- peripheral ----------------------------------------------------------------------

    def acquire(self, rx: bool, device: str, mtu: int) -> int:
        """BlueZ's AcquireWrite (``rx``) / AcquireNotify for a central (bluez_gatt)."""
        if self._bus is None:
            raise ValueError("not serving")
        link = self._served.get(device)
        if self.one_central and any(s.up and s is not link for s in self._served.values()):
            raise ValueError("serving another central")  # one at a time
        if link is None:
            link = _Served(next(self._ids), device, device_address(device), mtu)
            gatt.frame_size(mtu)  # refuse an MTU below the minimum before anything exists
            self._served[device] = link
            self._links[link.id] = link
        if rx in link.remote:  # asked again for the same device (bluezoo does, per write)
            return link.remote[rx].fileno()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        link.remote[rx] = theirs
        lid = link.id
        seq = SeqSocket(
            ours, self._rx_packet(link) if rx else _ignore, lambda why: self._drop(lid, why)
        )
        if rx:
            link.rx = seq
        else:
            link.tx = seq
        if link.up:
            seq.start()
        elif not rx:
            self._serve_up(link)
        log.debug("%s acquired %s for %s (MTU %d)", self.adapter, "RX" if rx else "TX", device, mtu)
        return theirs.fileno()

    def written(self, device: str, value: bytes) -> None:
        """A write BlueZ sent through WriteValue (when AcquireWrite failed)."""
        link = self._served.get(device)
        if link is None or not link.up:
            log.warning("a write from %s with no link up: refused", device)
            return
        self._ev.frame(link.id, value)

    def _rx_packet(self, link: _Served) -> Callable[[bytes], None]:
        def packet(data: bytes) -> None:
            if link.id in self._links:
                self._ev.frame(link.id, data)

        return packet

    def _serve_up(self, link: _Served) -> None:
        link.up = True
        self._ev.link_up(link.id, False, link.frame, link.address)
        for seq in (link.tx, link.rx):
            if seq is not None:
                seq.start()
        if self.one_central:
            self._spawn(self._sync_advertising())

    def _on_signal(self, msg: Message) -> None:
        """A device's ``Connected`` going false, or the device removed: its link is down."""
        if msg.message_type != MessageType.SIGNAL:
            return
        if msg.member == "PropertiesChanged" and msg.body and msg.body[0] == DEVICE:
            connected = msg.body[1].get("Connected")
            if isinstance(connected, Variant) and connected.value is False:
                self._device_gone(msg.path or "")
        elif msg.member == "InterfacesRemoved" and DEVICE in msg.body[1]:
            self._device_gone(msg.body[0])

    def _device_gone(self, device: str) -> None:
        link = self._served.get(device)
        if link is not None:
            self._drop(link.id, "disconnected")

    # -- central -------------------------------------------------------------------------

    def _detected(self, device: BLEDevice, adv: AdvertisementData) -> None:
        if str(gatt.SERVICE_UUID) not in adv.service_uuids:
            return
        self._seen[device.address] = device
        self._ev.seen(device.address)

    def _client(self, lid: int, address: str) -> BleakClient:
        def gone(_client: BleakClient) -> None:
            self._drop(lid, "disconnected")

        target: BLEDevice | str = self._seen.get(address, address)
        return BleakClient(
            target, gone, timeout=self._timing.connect_timeout, bluez={"adapter": self.adapter}
        )

    async def _connect(self, link: _Dialled) -> None:
        await link.client.connect()
        rx = link.client.services.get_characteristic(gatt.RX_UUID)
        tx = link.client.services.get_characteristic(gatt.TX_UUID)
        if rx is None or tx is None:
            raise BackendError(f"{link.address} does not serve the Steppe service")
        link.rx = rx
        link.frame = gatt.frame_size(await _settled_mtu(rx))
        self._links[link.id] = link

        def notified(_char: BleakGATTCharacteristic, data: bytearray) -> None:
            if link.id not in self._links:
                return
            if link.up:
                self._ev.frame(link.id, bytes(data))
            else:
                link.pending.append(bytes(data))

        await link.client.start_notify(tx, notified)

    async def _abandon(self, link: _Dialled) -> None:
        self._links.pop(link.id, None)
        with contextlib.suppress(BleakError, DBusFastError, OSError, EOFError):
            await link.client.disconnect()

    async def _send_one(self, entry: _Served | _Dialled, data: bytes) -> None:
        if isinstance(entry, _Served):
            assert entry.tx is not None  # up means subscribed
            await entry.tx.send(data)
        else:
            assert entry.rx is not None
            await entry.client.write_gatt_char(entry.rx, data, response=False)

    # -- both ----------------------------------------------------------------------------

    @property
    def _ev(self) -> BackendEvents:
        assert self._events is not None, "the backend is not started"
        return self._events

    def _drop(self, link: int, reason: str) -> None:
        """Forget a link (once): close its sockets or its client, report ``link_down``."""
        entry = self._links.pop(link, None)
        if entry is None:
            return
        if isinstance(entry, _Served):
            self._served.pop(entry.device, None)
            for seq in (entry.tx, entry.rx):
                if seq is not None:
                    seq.close()
            for sock in entry.remote.values():  # after any reply still carrying it is out
                self._lingering.add(sock)
                asyncio.get_running_loop().call_later(_REMOTE_LINGER, self._unlinger, sock)
            if self.one_central and entry.up:
                self._spawn(self._sync_advertising())
        elif entry.client.is_connected:
            self._spawn(_disconnect(entry.client))
        if entry.up:
            log.info("%s link %d to %s down: %s", self.adapter, link, entry.address, reason)
            self._ev.link_down(link, reason)

    def _unlinger(self, sock: socket.socket) -> None:
        self._lingering.discard(sock)
        sock.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _export(self, bus: MessageBus) -> None:
        bus.export(SERVICE_PATH, GattService())
        bus.export(RX_PATH, RxCharacteristic(self))
        bus.export(TX_PATH, TxCharacteristic(self))
        bus.export(ADV_PATH, Advertisement(lambda: self._registered_gone(ADV_PATH)))

    async def _sync_advertising(self) -> None:
        """One central at a time: advertise exactly while no central is served."""
        async with self._adv_lock:
            bus = self._bus
            wanted = not any(link.up for link in self._served.values())
            advertising = any(path == ADV_PATH for _i, _m, path in self._registered)
            if bus is None or self._stopping or wanted == advertising:
                return
            try:
                if wanted:
                    await self._register(ADV_MANAGER, "RegisterAdvertisement", ADV_PATH)
                else:
                    await call(
                        bus,
                        self.adapter_path,
                        ADV_MANAGER,
                        "UnregisterAdvertisement",
                        "o",
                        [ADV_PATH],
                    )
                    self._registered_gone(ADV_PATH)
            except (BackendError, CallError, DBusFastError, OSError, EOFError) as e:
                log.warning(
                    "%s: could not %s advertising: %s",
                    self.adapter,
                    "resume" if wanted else "pause",
                    e,
                )

    def _registered_gone(self, path: str) -> None:
        self._registered = [r for r in self._registered if r[2] != path]

    async def _check_adapter(self) -> None:
        assert self._bus is not None
        try:
            powered = await call(
                self._bus, self.adapter_path, PROPERTIES, "Get", "ss", [ADAPTER, "Powered"]
            )
        except CallError as e:
            if e.name in _NO_SERVICE:
                raise BackendError("BlueZ is not running (no org.bluez on the system bus)") from e
            raise BackendError(f"no Bluetooth adapter {self.adapter} ({e.text})") from e
        if not powered or powered[0].value is not True:
            raise BackendError(
                f"Bluetooth adapter {self.adapter} is off (bluetoothctl power on; check rfkill)"
            )

    async def _register(self, interface: str, method: str, path: str) -> None:
        assert self._bus is not None
        try:
            await call(self._bus, self.adapter_path, interface, method, "oa{sv}", [path, {}])
        except CallError as e:
            raise BackendError(f"BlueZ refused {method} on {self.adapter}: {e.text}") from e
        self._registered.append((interface, method, path))

    async def _watch_devices(self) -> None:
        assert self._bus is not None
        rules = [
            f"type='signal',sender='{BLUEZ}',interface='{PROPERTIES}',member='PropertiesChanged',"
            f"path_namespace='{self.adapter_path}'",
            f"type='signal',sender='{BLUEZ}',interface='org.freedesktop.DBus.ObjectManager',"
            "member='InterfacesRemoved'",
        ]
        for rule in rules:
            try:
                await call(
                    self._bus,
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus",
                    "AddMatch",
                    "s",
                    [rule],
                    destination="org.freedesktop.DBus",
                )
            except CallError as e:
                raise BackendError(f"the system bus refused to watch BlueZ: {e.text}") from e
        self._bus.add_message_handler(self._on_signal)

    async def _start_scan(self) -> None:
        self._scanner = BleakScanner(
            self._detected, [str(gatt.SERVICE_UUID)], bluez={"adapter": self.adapter}
        )
        try:
            await self._scanner.start()
        except (BleakError, DBusFastError, OSError) as e:
            raise BackendError(f"cannot scan on {self.adapter}: {e}") from e


async def _settled_mtu(rx: BleakGATTCharacteristic) -> int:
    """The ATT MTU BlueZ reports on a remote characteristic. BlueZ publishes 23 until the
    exchange is done; a short wait lets a late exchange land (23 is valid if it stays).
    Polled: the property lives in bleak's cache, which offers no event for it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _MTU_SETTLE
    mtu = rx.max_write_without_response_size + 3
    while mtu <= gatt.MIN_ATT_MTU and loop.time() < deadline:
        await asyncio.sleep(0.05)
        mtu = rx.max_write_without_response_size + 3
    return mtu


async def _disconnect(client: BleakClient) -> None:
    with contextlib.suppress(BleakError, DBusFastError, OSError, EOFError):
        await client.disconnect()
