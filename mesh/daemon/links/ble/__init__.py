"""Bluetooth LE links (issue 13): :mod:`.gatt` is the GATT mapping every backend shares,
:mod:`.backend` the interface the asyncio-side backends offer, :mod:`.bridge` the one
asyncio thread they run on, :mod:`.link` the trio-side transport (:class:`~.link.BleLinks`)
and :mod:`.bumble` the Bumble backend. :func:`open_backend` picks the backend
``ble.backend`` names, importing it only then."""

from __future__ import annotations

import importlib
import sys
from types import ModuleType
from typing import cast

from mesh.daemon.config import BLE_BACKENDS, Config
from mesh.daemon.links.ble.backend import Backend, BackendError

BACKENDS = BLE_BACKENDS


def backend_name(config: Config) -> str:
    """``ble.backend`` with ``auto`` resolved for this platform ("" if it has none)."""
    if config.ble_backend != "auto":
        return config.ble_backend
    return _AUTO.get(PLATFORM, "")


PLATFORM = "linux" if sys.platform.startswith("linux") else sys.platform
_AUTO = {"linux": "bluez", "darwin": "corebluetooth"}


def open_backend(config: Config) -> Backend:
    """The backend for ``config`` (not started). Raises :class:`BackendError` with one
    readable line if it is not available here."""
    name = backend_name(config)
    if name == "bumble":
        bumble = _module("bumble", "pip install bumble==0.0.236")
        return cast(Backend, bumble.BumbleBackend(config.ble_adapter or "usb:0"))
    if name == "bluez":
        bluez = _module("bluez", "use ble.backend = 'bumble' with a USB dongle meanwhile")
        return cast(Backend, bluez.BluezBackend(config.ble_adapter or "hci0"))
    if name == "corebluetooth":
        raise BackendError("the CoreBluetooth backend (macOS) is not built yet")
    raise BackendError(f"no Bluetooth LE backend for {sys.platform}; try ble.backend = 'bumble'")


def _module(name: str, hint: str) -> ModuleType:
    try:
        return importlib.import_module(f"mesh.daemon.links.ble.{name}")
    except ImportError as exc:
        raise BackendError(f"the {name} backend cannot be loaded ({exc}); {hint}") from None
