"""Bluetooth LE links (issue 13, being built): :mod:`.gatt` is the GATT mapping every
backend shares, :mod:`.backend` the interface the asyncio-side backends offer."""
