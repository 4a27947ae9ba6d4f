"""The D-Bus objects the BlueZ backend exports: our GATT application and our LE
advertisement (dbus-fast :class:`~dbus_fast.service.ServiceInterface` subclasses).

Tree, under :data:`APP_PATH` (dbus-fast answers ``ObjectManager.GetManagedObjects`` on
it for every object exported below it, which is what ``RegisterApplication`` reads)::

    /org/steppe/app              (the application: ObjectManager)
    /org/steppe/app/service0     org.bluez.GattService1, gatt.SERVICE_UUID, primary
    /org/steppe/app/service0/rx  org.bluez.GattCharacteristic1, write-without-response,
                                 WriteAcquired: AcquireWrite(options) -> (fd, mtu)
    /org/steppe/app/service0/tx  org.bluez.GattCharacteristic1, notify,
                                 NotifyAcquired: AcquireNotify(options) -> (fd, mtu)
    /org/steppe/adv0             org.bluez.LEAdvertisement1

BlueZ passes ``options = {"device": o, "mtu": q, "link": s}`` to ``AcquireWrite`` and
``AcquireNotify``; the characteristics hand the device and MTU to an :class:`Acquirer`
(the backend), which returns the socket end to give BlueZ. ``WriteAcquired`` and
``NotifyAcquired`` stay false: for a GATT server their presence says "acquiring is
supported" (BlueZ's ``org.bluez.GattCharacteristic.rst``), and since BlueZ made one
socket per device (the fix of bluez/bluez#460, 2023) a single flag cannot tell the
state of several centrals anyway.

The advertisement has ``Type`` peripheral, our service UUID, ``Discoverable`` (BlueZ
then sets the LE General Discoverable flag) and nothing else: no ``LocalName``, empty
``Includes`` (no "local-name", no "tx-power"), no manufacturer or service data, so BlueZ
builds the 21-byte payload of :func:`.gatt.advertising_data`.
"""

# No ``from __future__ import annotations``: dbus-fast reads these annotations at class
# creation, and a postponed ``-> None`` would reach it as the string "None".
import logging
from collections.abc import Callable
from typing import Annotated, Protocol

from dbus_fast import DBusError, Variant
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
)
from dbus_fast.constants import PropertyAccess
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property

from . import gatt

log = logging.getLogger(__name__)

APP_PATH = "/org/steppe/app"
SERVICE_PATH = f"{APP_PATH}/service0"
RX_PATH = f"{SERVICE_PATH}/rx"
TX_PATH = f"{SERVICE_PATH}/tx"
ADV_PATH = "/org/steppe/adv0"

ERR_INVALID = "org.bluez.Error.InvalidArguments"
ERR_FAILED = "org.bluez.Error.Failed"
ERR_NOT_SUPPORTED = "org.bluez.Error.NotSupported"

DBusStrList = Annotated[list[str], DBusSignature("as")]
FdMtu = Annotated[tuple[int, int], DBusSignature("hq")]


class Acquirer(Protocol):
    """What the characteristics ask of the backend (called on the asyncio loop)."""

    def acquire(self, rx: bool, device: str, mtu: int, /) -> int:
        """A socket end (fd) for BlueZ to write a device's RX frames into (``rx``) or
        to read our TX frames for it from. Raises ``ValueError`` to refuse."""
        ...

    def written(self, device: str, value: bytes, /) -> None:
        """A write that came through ``WriteValue`` instead of the acquired socket."""
        ...


def acquire_options(options: dict[str, Variant]) -> tuple[str, int]:
    """The device path and MTU BlueZ passes to AcquireWrite/AcquireNotify."""
    device, mtu = options.get("device"), options.get("mtu")
    if device is None or mtu is None:
        raise DBusError(ERR_INVALID, "AcquireWrite/AcquireNotify without device and mtu")
    if not isinstance(device.value, str) or not isinstance(mtu.value, int):
        raise DBusError(ERR_INVALID, "device or mtu of the wrong type")
    return device.value, mtu.value


class GattService(ServiceInterface):
    def __init__(self) -> None:
        super().__init__("org.bluez.GattService1")

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return str(gatt.SERVICE_UUID)

    @dbus_property(PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True


class _Characteristic(ServiceInterface):
    uuid: str
    flags: list[str]

    def __init__(self, acquirer: Acquirer) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self.acquirer = acquirer

    @dbus_property(PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.uuid

    @dbus_property(PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return SERVICE_PATH

    @dbus_property(PropertyAccess.READ)
    def Flags(self) -> DBusStrList:
        return self.flags

    def _acquire(self, rx: bool, options: dict[str, Variant]) -> tuple[int, int]:
        device, mtu = acquire_options(options)
        try:
            return self.acquirer.acquire(rx, device, mtu), mtu
        except ValueError as e:
            raise DBusError(ERR_FAILED, str(e)) from e


class RxCharacteristic(_Characteristic):
    """Central to peripheral, write without response, through an acquired socket."""

    uuid = str(gatt.RX_UUID)
    flags = ["write-without-response"]  # noqa: RUF012 (read-only class data)

    @dbus_property(PropertyAccess.READ)
    def WriteAcquired(self) -> DBusBool:
        return False

    @dbus_method()
    def AcquireWrite(self, options: DBusDict) -> FdMtu:
        return self._acquire(True, options)

    @dbus_method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        device = options.get("device")
        if device is None or not isinstance(device.value, str):
            raise DBusError(ERR_INVALID, "WriteValue without a device")
        self.acquirer.written(device.value, bytes(value))


class TxCharacteristic(_Characteristic):
    """Peripheral to central, notify, through an acquired socket."""

    uuid = str(gatt.TX_UUID)
    flags = ["notify"]  # noqa: RUF012 (read-only class data)

    @dbus_property(PropertyAccess.READ)
    def NotifyAcquired(self) -> DBusBool:
        return False

    @dbus_property(PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return False

    @dbus_method()
    def AcquireNotify(self, options: DBusDict) -> FdMtu:
        return self._acquire(False, options)

    @dbus_method()
    def StartNotify(self) -> None:
        raise DBusError(ERR_NOT_SUPPORTED, "notifications go through AcquireNotify")

    @dbus_method()
    def StopNotify(self) -> None:
        return


class Advertisement(ServiceInterface):
    """The LE advertisement: our service UUID, discoverable, nothing else."""

    def __init__(self, released: Callable[[], None]) -> None:
        super().__init__("org.bluez.LEAdvertisement1")
        self.released = released

    @dbus_method()
    def Release(self) -> None:
        log.info("BlueZ released our advertisement")
        self.released()

    @dbus_property(PropertyAccess.READ)
    def Type(self) -> DBusStr:
        return "peripheral"

    @dbus_property(PropertyAccess.READ)
    def ServiceUUIDs(self) -> DBusStrList:
        return [str(gatt.SERVICE_UUID)]

    @dbus_property(PropertyAccess.READ)
    def Includes(self) -> DBusStrList:
        return []

    @dbus_property(PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:
        return True
