"""The Bumble backend (``bumble==0.0.236``, Google's Python Bluetooth host stack): both
roles of :mod:`.gatt` on one or more radios, for a dedicated relay with a USB dongle and
for tests on virtual controllers.

Radios (``ble.adapter``, several joined by ``+``):

- a Bumble transport spec, opened with ``bumble.transport.open_transport``: ``usb:0``
  (a dongle through libusb, no kernel Bluetooth), ``hci-socket:0`` (the kernel's HCI
  socket, BlueZ stopped), ``tcp-client:127.0.0.1:PORT`` (a controller served by
  ``bumble-controllers``, e.g. virtual ones for a demo across processes);
- ``local:NAME``: a virtual controller on the process-wide ``LocalLink`` ``NAME`` (tests
  and in-process demos: daemons in one process meet on it).

Each radio advertises :func:`.gatt.advertising_data` (flags and the service UUID, no
name, an empty scan response) from a fresh random static address per start, serves the
GATT service, and scans. Legacy advertising stops when a central connects, so it is
started again after every peripheral-role connection.

A link is up (``link_up``) for the central once the MTU exchange (asked for first) and
the TX subscription are done; for the peripheral when the central subscribes to TX (the
MTU exchange came before). Every frame sent is checked against the link's frame size
(Bumble cuts notifications and drops long writes silently). What arrives is handed on
synchronously, in order (Bumble runs each ATT write in a task of its own: anything that
awaited could reorder them). ATT has no flow control for the receiver; the link layer
above bounds what it holds and closes a link that overflows. Sending waits on the
host's ACL queue (``connection.data_packet_queue``): once more than :data:`ACL_HIGH`
packets are pending, for this connection's packets to complete.

A radio stops advertising while it dials: Bumble's ``Device.connect`` takes the next
connection that completes for its own, whichever its role and peer, so a central that
connected to us meanwhile would be taken for the one dialled (and the one dialled,
completing later, trips an assertion in Bumble and is never released by the controller).
A radio makes one connection at a time, each bounded by ``Timing.connect_timeout``.

Two workarounds for the virtual controller, harmless on a real one: a radio reports
(``seen``) only advertisers whose address is above its own, so of two radios that see
each other one dials (the virtual controller refuses a second connection between two
addresses and then leaves the loser's connect pending for ever); and ``local:`` radios
use :class:`VirtualController`, whose connect can be cancelled.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from bumble import hci
from bumble.att import AttributeValue
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration, Peer
from bumble.gatt import Characteristic, Service
from bumble.gatt_client import CharacteristicProxy
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from mesh.daemon.links.ble import gatt
from mesh.daemon.links.ble.backend import BackendError, BackendEvents, Timing

log = logging.getLogger(__name__)

_SERVICE, _RX, _TX = (UUID(str(u)) for u in (gatt.SERVICE_UUID, gatt.RX_UUID, gatt.TX_UUID))
ACL_HIGH = 32  # ACL packets pending in the host beyond which a send waits to drain
LOCAL = "local:"


class _LocalLinks:
    """The process's named virtual radio links (``local:NAME``)."""

    links: dict[str, LocalLink] = {}  # noqa: RUF012 - process-wide on purpose


def local_link(name: str) -> LocalLink:
    """The process-wide virtual ``LocalLink`` called ``name`` (made on first use)."""
    link = _LocalLinks.links.get(name)
    if link is None:
        link = _LocalLinks.links[name] = LocalLink()  # type: ignore[no-untyped-call]
    return link


class VirtualController(Controller):
    """Bumble's virtual controller with LE Create Connection Cancel done as the core
    specification says (Vol 4 Part E 7.8.13): the pending connection is dropped and an LE
    Connection Complete with Unknown Connection Identifier follows. Bumble's (0.0.236)
    answers success and leaves the connection pending: it completes at the peer's next
    advertisement, after the host gave up, and that trips an assertion in Bumble's host,
    leaving the controller with a connection no host knows, which blocks every later
    connect between the two addresses."""

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        # After this command's Command Complete, which the caller sends when we return.
        asyncio.get_running_loop().call_soon(self._connect_cancelled, pending.peer_address)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def _connect_cancelled(self, peer: hci.Address) -> None:
        self.send_hci_packet(
            hci.HCI_LE_Connection_Complete_Event(
                status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
                connection_handle=0,
                role=hci.Role.CENTRAL,
                peer_address_type=peer.address_type,
                peer_address=peer,
                connection_interval=0,
                peripheral_latency=0,
                supervision_timeout=0,
                central_clock_accuracy=0,
            )
        )


def _nameless() -> DeviceConfiguration:
    """A device configuration with an empty name (Bumble's default is "Bumble", and
    ``Device(name="")`` keeps it): the GAP device name and the controller's local name
    say nothing."""
    config = DeviceConfiguration()
    config.name = ""
    return config


def random_static_address() -> str:
    """A fresh random static device address (the two top bits set)."""
    raw = bytearray(os.urandom(6))
    raw[0] |= 0xC0
    return ":".join(f"{b:02X}" for b in raw)


def _bare(address: hci.Address) -> str:
    return address.to_string(with_type_qualifier=False)


def advertises_steppe(adv: Advertisement) -> bool:
    """The advertisement lists our service UUID (complete or incomplete 128-bit lists)."""
    want = gatt.SERVICE_UUID.bytes[::-1]
    kinds = (
        AdvertisingData.Type.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.Type.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    )
    for kind, data in adv.data.ad_structures:
        if kind in kinds and any(data[i : i + 16] == want for i in range(0, len(data), 16)):
            return True
    return False


@dataclass(eq=False)
class _Link:
    id: int
    radio: _Radio
    connection: Connection
    central: bool
    frame: int = 0  # the frame size, once up
    rx: CharacteristicProxy[bytes] | None = None  # central: the peer's RX characteristic
    up: bool = False
    down: bool = False


@dataclass(eq=False)
class _Radio:
    device: Device
    address: str
    tx: Characteristic[bytes]
    transport: Transport | None = None  # None: a virtual controller
    controller: Controller | None = None
    local: LocalLink | None = None
    links: dict[int, _Link] = field(default_factory=dict)  # by connection handle
    connecting: asyncio.Lock = field(default_factory=asyncio.Lock)
    advertising: asyncio.Lock = field(default_factory=asyncio.Lock)
    awaiting: str = ""  # the address a dial is connecting to now (not advertising)


class BumbleBackend:
    """Bumble on one or more radios (see the module doc); :class:`.backend.Backend`."""

    def __init__(self, spec: str, *, att_mtu: int = gatt.MAX_ATT_MTU, acl_length: int = 0):
        """``spec``: radios joined by ``+``; ``att_mtu``: the MTU asked for as central and
        offered as server; ``acl_length``: a virtual controller's LE ACL buffer (27 by
        default; 251 with data length extension)."""
        self.specs = [s.strip() for s in spec.split("+") if s.strip()]
        if not self.specs:
            raise BackendError("ble.adapter names no Bumble radio")
        self.att_mtu = att_mtu
        self.acl_length = acl_length
        self.radios: list[_Radio] = []
        self.links: dict[int, _Link] = {}
        self._ids = itertools.count(1)
        self._seen_on: dict[str, _Radio] = {}
        self._events: BackendEvents | None = None
        self._timing = Timing()
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    # ---- starting and stopping --------------------------------------------------------
    async def start(self, events: BackendEvents, timing: Timing) -> None:
        self._events, self._timing = events, timing
        try:
            for spec in self.specs:
                self.radios.append(await self._open(spec))
            for radio in self.radios:
                await radio.device.power_on()
                await self._advertise(radio)
                await radio.device.start_scanning(
                    filter_duplicates=False,
                    scan_interval=timing.scan_interval,
                    scan_window=timing.scan_window,
                )
        except (TimeoutError, BaseBumbleError, OSError, ValueError) as exc:
            await self.stop()
            raise BackendError(f"Bumble radio {spec!r} cannot be used: {exc!r}") from None

    async def _open(self, spec: str) -> _Radio:
        address = random_static_address()
        if spec.startswith(LOCAL):
            link = local_link(spec[len(LOCAL) :])
            ctrl = VirtualController(f"steppe-{address}", link=link, public_address=address)
            if self.acl_length:
                ctrl.le_acl_data_packet_length = self.acl_length
            host = Host(ctrl, AsyncPipeSink(ctrl))
            device = Device(address=hci.Address(address), config=_nameless(), host=host)
            radio = self._serve(device, address)
            radio.controller, radio.local = ctrl, link
            return radio
        transport = await open_transport(spec)
        host = Host(controller_source=transport.source, controller_sink=transport.sink)
        device = Device(address=hci.Address(address), config=_nameless(), host=host)
        radio = self._serve(device, address)
        radio.transport = transport
        return radio

    def _serve(self, device: Device, address: str) -> _Radio:
        """The GATT service on a device, and its connection and scan handlers."""
        device.gatt_server.max_mtu = self.att_mtu
        tx: Characteristic[bytes] = Characteristic(
            _TX, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
        )
        radio = _Radio(device, address, tx)
        rx: Characteristic[bytes] = Characteristic(
            _RX,
            Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
            Characteristic.WRITEABLE,
            AttributeValue(write=lambda conn, value: self._written(radio, conn, value)),
        )
        device.add_service(Service(_SERVICE, [rx, tx]))
        tx.on("subscription", lambda conn, notify, _ind: self._subscribed(radio, conn, notify))
        device.on("connection", lambda conn: self._connected(radio, conn))
        device.on("advertisement", lambda adv: self._advertisement(radio, adv))
        return radio

    async def _advertise(self, radio: _Radio) -> None:
        await radio.device.start_advertising(
            advertising_data=gatt.advertising_data(),
            scan_response_data=b"",
            advertising_interval_min=self._timing.advertise_interval,
            advertising_interval_max=self._timing.advertise_interval,
        )

    async def stop(self) -> None:
        """Stop advertising and scanning, close every link, release the radios."""
        self._stopping = True
        for radio in self.radios:
            for what in (radio.device.stop_scanning(), radio.device.stop_advertising()):
                await self._quietly(what)
        links = list(self.links.values())
        await self._quietly(asyncio.gather(*(self._disconnect(x) for x in links)))
        for link in links:
            self._gone(link, "stopped")
        for task in list(self._tasks):
            task.cancel()
        for radio in self.radios:
            if radio.local is not None and radio.controller in radio.local.controllers:
                radio.local.remove_controller(radio.controller)
            if radio.transport is not None:
                await self._quietly(radio.transport.close())
        self.radios.clear()

    @staticmethod
    async def _quietly(what: Any) -> None:
        try:
            await asyncio.wait_for(what, 2.0)
        except (TimeoutError, BaseBumbleError, OSError, ValueError) as exc:
            log.debug("Bumble: %r while stopping", exc)

    # ---- connections, both roles ------------------------------------------------------
    def _connected(self, radio: _Radio, conn: Connection) -> None:
        central = conn.role == hci.Role.CENTRAL
        link = _Link(next(self._ids), radio, conn, central)
        radio.links[conn.handle] = link
        self.links[link.id] = link
        conn.on("disconnection", lambda reason: self._gone(link, f"disconnected ({reason})"))
        if central and _bare(conn.peer_address) != radio.awaiting:
            # A connection completing after its dial gave up (the virtual controller cannot
            # cancel a connect): nobody will set it up, so it must not hold the pair.
            self._spawn(self._disconnect(link))
        elif not central and not self._stopping:
            # Legacy advertising stopped when this central connected: advertise again.
            self._spawn(self._readvertise(radio))

    async def _readvertise(self, radio: _Radio) -> None:
        await asyncio.sleep(0.05)  # let the controller end the advertising set first
        await self._sync_advertising(radio)

    async def _sync_advertising(self, radio: _Radio) -> None:
        """Advertise unless stopping or dialling (see the module doc), one change at a
        time (starting takes several commands)."""
        async with radio.advertising:
            want = not self._stopping and not radio.awaiting
            try:
                if want and not radio.device.is_advertising:
                    await self._advertise(radio)
                elif not want and radio.device.is_advertising:
                    await radio.device.stop_advertising()
            except BaseBumbleError as exc:
                log.info("Bumble: changing advertising failed: %r", exc)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _gone(self, link: _Link, reason: str) -> None:
        if link.down:
            return
        link.down = True
        self.links.pop(link.id, None)
        if link.radio.links.get(link.connection.handle) is link:
            del link.radio.links[link.connection.handle]
        if link.up and self._events is not None:
            self._events.link_down(link.id, reason)

    def _subscribed(self, radio: _Radio, conn: Connection, notify: bool) -> None:
        """Peripheral: the central subscribed to TX (the MTU exchange came first)."""
        link = radio.links.get(conn.handle)
        if link is None or link.central or link.up or not notify:
            return
        self._up(link)

    def _up(self, link: _Link) -> None:
        link.frame = gatt.frame_size(link.connection.att_mtu)
        link.up = True
        if self._events is not None:
            peer = _bare(link.connection.peer_address)
            self._events.link_up(link.id, link.central, link.frame, peer)

    def _written(self, radio: _Radio, conn: Connection, value: bytes) -> None:
        """Peripheral: a frame written to RX (synchronous: see the module doc)."""
        link = radio.links.get(conn.handle)
        if link is None or link.down:
            return
        if not link.up:  # a write before subscribing: not a Steppe peer
            self._spawn(self._disconnect(link))
            return
        if self._events is not None:
            self._events.frame(link.id, bytes(value))

    def _notified(self, link: _Link, value: bytes) -> None:
        """Central: a frame notified on TX."""
        if link.up and not link.down and self._events is not None:
            self._events.frame(link.id, bytes(value))

    def _advertisement(self, radio: _Radio, adv: Advertisement) -> None:
        peer = _bare(adv.address)
        if self._stopping or peer <= radio.address or not adv.is_connectable:
            return  # only the lower address dials (see the module doc)
        if advertises_steppe(adv) and self._events is not None:
            self._seen_on[peer] = radio
            self._events.seen(peer)

    # ---- what the link layer asks -------------------------------------------------------
    async def dial(self, address: str) -> None:
        radio = self._seen_on.get(address)
        if radio is None or self._stopping:
            raise BackendError("no radio has seen that address")
        timeout = self._timing.connect_timeout
        async with radio.connecting:
            radio.awaiting = address
            try:
                await self._sync_advertising(radio)
                conn = await asyncio.wait_for(
                    radio.device.connect(hci.Address(address), timeout=timeout), timeout + 1
                )
            except (TimeoutError, BaseBumbleError) as exc:
                raise BackendError(f"connect failed: {exc!r}") from None
            finally:
                radio.awaiting = ""
                self._spawn(self._sync_advertising(radio))
        link = radio.links.get(conn.handle)
        if link is None:
            raise BackendError("the connection went at once")
        try:
            await asyncio.wait_for(self._setup(link), timeout)
        except (TimeoutError, BaseBumbleError, IndexError) as exc:
            await self._quietly(self._disconnect(link))
            raise BackendError(f"GATT set-up failed: {exc!r}") from None

    async def _setup(self, link: _Link) -> None:
        """Central: MTU first (one exchange per connection), then the service, then the
        TX subscription (a Write Request: the peripheral has it when this returns)."""
        peer = Peer(link.connection)
        await peer.request_mtu(self.att_mtu)
        await peer.discover_service(_SERVICE)
        service = peer.get_services_by_uuid(_SERVICE)[0]
        await service.discover_characteristics()
        link.rx = service.get_characteristics_by_uuid(_RX)[0]
        tx = service.get_characteristics_by_uuid(_TX)[0]
        await tx.subscribe(lambda value: self._notified(link, value), prefer_notify=True)
        if not link.down:
            self._up(link)

    async def send(self, link_id: int, frames: Sequence[bytes]) -> None:
        link = self.links.get(link_id)
        if link is None or not link.up:
            return
        conn = link.connection
        for frame in frames:
            gatt.check_frame(frame, link.frame)
            if link.down:
                return
            try:
                if link.rx is not None:
                    await link.rx.write_value(frame, with_response=False)
                else:
                    await link.radio.device.notify_subscriber(conn, link.radio.tx, frame)
                queue = conn.data_packet_queue
                if queue is not None and queue.pending > ACL_HIGH:
                    await queue.drain(conn.handle)
            except (BaseBumbleError, ValueError) as exc:  # ValueError: the handle is gone
                log.debug("Bumble: send on link %d failed: %r", link_id, exc)
                self._spawn(self._disconnect(link))
                return

    async def close(self, link_id: int) -> None:
        link = self.links.get(link_id)
        if link is not None:
            await self._quietly(self._disconnect(link))

    async def _disconnect(self, link: _Link) -> None:
        if not link.down:
            await link.connection.disconnect()
