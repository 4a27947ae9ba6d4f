"""Helpers for Bluetooth LE tests: daemons on Bumble virtual controllers (``local:NAME``
radios on process-wide LocalLinks), with real node, real daemon, real Bumble stack."""

from __future__ import annotations

import itertools
import os

from mesh.daemon.config import Config
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
