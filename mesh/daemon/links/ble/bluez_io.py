"""Low-level pieces of the BlueZ backend: the acquired SOCK_SEQPACKET sockets, D-Bus
method calls on the system bus, and the BlueZ version."""

from __future__ import annotations

import asyncio
import re
import shutil
import socket
from collections.abc import Callable
from typing import Any

from dbus_fast import BusType, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.errors import DBusFastError

from .backend import BackendError

BLUEZ = "org.bluez"
_RECV = 4096  # larger than any frame: an oversized packet arrives whole, for the core
_VERSION_TIMEOUT = 2.0


class SeqSocket:
    """One acquired SOCK_SEQPACKET end, non-blocking: a packet is a frame."""

    def __init__(
        self,
        sock: socket.socket,
        on_packet: Callable[[bytes], None],
        on_close: Callable[[str], None],
    ) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.on_packet = on_packet
        self.on_close = on_close
        self.closed = False
        self.reading = False
        self._writable: asyncio.Future[None] | None = None

    def start(self) -> None:
        if not self.closed and not self.reading:
            self.reading = True
            asyncio.get_running_loop().add_reader(self.sock.fileno(), self._readable)

    def _readable(self) -> None:
        while not self.closed:
            try:
                data = self.sock.recv(_RECV)
            except BlockingIOError:
                return
            except OSError as e:
                self.on_close(f"socket error: {e.strerror}")
                return
            if not data:
                self.on_close("socket closed")
                return
            self.on_packet(data)

    async def send(self, data: bytes) -> None:
        """Send one packet, waiting while the socket is full (backpressure)."""
        loop = asyncio.get_running_loop()
        while True:
            if self.closed:
                raise ConnectionError("socket closed")
            try:
                self.sock.send(data)
                return
            except BlockingIOError:
                pass
            fut: asyncio.Future[None] = loop.create_future()
            self._writable = fut
            loop.add_writer(self.sock.fileno(), _wake, fut)
            try:
                await fut
            finally:
                self._writable = None
                if not self.closed:
                    loop.remove_writer(self.sock.fileno())

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        loop = asyncio.get_running_loop()
        if self.reading:
            loop.remove_reader(self.sock.fileno())
        if self._writable is not None:
            loop.remove_writer(self.sock.fileno())
            if not self._writable.done():
                self._writable.set_exception(ConnectionError("socket closed"))
        self.sock.close()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


def device_address(path: str) -> str:
    """``/org/bluez/hci0/dev_AA_BB_CC_DD_EE_FF`` -> ``AA:BB:CC:DD:EE:FF``."""
    return path.rsplit("/", 1)[-1].removeprefix("dev_").replace("_", ":")


class CallError(Exception):
    """A D-Bus error reply: its name and text."""

    def __init__(self, name: str, text: str) -> None:
        super().__init__(f"{name}: {text}")
        self.name, self.text = name, text


async def call(
    bus: MessageBus,
    path: str,
    interface: str,
    member: str,
    signature: str,
    body: list[Any],
    destination: str = BLUEZ,
) -> list[Any]:
    """One method call; an error reply raises :class:`CallError`."""
    reply = await bus.call(
        Message(
            destination=destination,
            path=path,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
    )
    if reply.message_type == MessageType.ERROR:
        text = reply.body[0] if reply.body and isinstance(reply.body[0], str) else ""
        raise CallError(reply.error_name or "unknown", text)
    return list(reply.body)


async def connect_system_bus() -> MessageBus:
    """The system bus (``DBUS_SYSTEM_BUS_ADDRESS`` if set), able to pass file descriptors."""
    try:
        return await MessageBus(bus_type=BusType.SYSTEM, negotiate_unix_fd=True).connect()
    except (OSError, DBusFastError, EOFError) as e:
        raise BackendError(f"no D-Bus system bus: {e}") from e


async def bluez_version() -> tuple[int, int] | None:
    """BlueZ's version as ``bluetoothctl --version`` reports it, or None if unknown."""
    exe = shutil.which("bluetoothctl")
    if exe is None:
        return None
    try:
        proc = await asyncio.create_subprocess_exec(
            exe,
            "--version",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        async with asyncio.timeout(_VERSION_TIMEOUT):
            out, _ = await proc.communicate()
    except (OSError, TimeoutError):
        return None
    found = re.search(rb"(\d+)\.(\d+)", out)
    return (int(found[1]), int(found[2])) if found else None
