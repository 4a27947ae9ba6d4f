"""The GATT mapping of a Steppe link, shared by every Bluetooth LE backend (pure).

One 128-bit primary service with two characteristics:

- RX (write without response): central to peripheral;
- TX (notify): peripheral to central.

Every core frame has exactly the link's frame size, ``min(ATT_MTU - 3, 512)``: ATT
carries ``ATT_MTU - 3`` bytes of value per PDU, and an attribute value is at most 512
bytes (Bumble silently drops longer writes; notifications are silently cut to
``ATT_MTU - 3``), so a backend refuses to send anything longer instead of trusting the
stack to say so.

The advertisement carries the flags and the service UUID only: no name, no TX power, no
manufacturer data, nothing that tells one Steppe user from another. It is 21 bytes; the
31-byte legacy limit is checked here because virtual controllers accept more.
"""

from __future__ import annotations

import uuid

SERVICE_UUID = uuid.UUID("5d3b1f5e-8a2c-4f6e-9b1a-57e99e0c0001")
RX_UUID = uuid.UUID("5d3b1f5e-8a2c-4f6e-9b1a-57e99e0c0002")  # write without response
TX_UUID = uuid.UUID("5d3b1f5e-8a2c-4f6e-9b1a-57e99e0c0003")  # notify

MIN_ATT_MTU = 23  # the Bluetooth core specification's default and minimum
MAX_ATT_MTU = 517  # what we ask for: 512 bytes of value + 3 of ATT header, + 2 spare
MAX_VALUE = 512  # an attribute value's largest size
LEGACY_ADV_MAX = 31  # bytes of advertising data in a legacy advertisement

_FLAGS = 0x06  # LE General Discoverable, BR/EDR not supported
_AD_FLAGS = 0x01
_AD_UUID128_COMPLETE = 0x07


class GattError(ValueError):
    """A value outside what the GATT mapping allows (a local bug, not a peer's)."""


def frame_size(att_mtu: int) -> int:
    """The link's frame size for a negotiated ATT MTU."""
    if att_mtu < MIN_ATT_MTU:
        raise GattError(f"ATT MTU {att_mtu} is below the minimum of {MIN_ATT_MTU}")
    return min(att_mtu - 3, MAX_VALUE)


def check_frame(frame: bytes, size: int) -> None:
    """Refuse a frame that is not exactly the link's frame size (a stack would drop or
    cut it silently, and the core closes a link on any lost record)."""
    if len(frame) != size:
        raise GattError(f"a {len(frame)}-byte frame on a link of {size}-byte frames")


def advertising_data() -> bytes:
    """The advertisement: flags and the complete list of 128-bit service UUIDs (ours)."""
    flags = bytes([2, _AD_FLAGS, _FLAGS])
    uuids = bytes([17, _AD_UUID128_COMPLETE]) + SERVICE_UUID.bytes[::-1]  # little endian
    data = flags + uuids
    check_advertising(data)
    return data


def check_advertising(data: bytes) -> None:
    if len(data) > LEGACY_ADV_MAX:
        raise GattError(f"advertising data of {len(data)} bytes (at most {LEGACY_ADV_MAX})")
