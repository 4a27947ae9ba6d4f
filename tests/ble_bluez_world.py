"""A mock BlueZ on a private D-Bus, for the BlueZ backend's tests: ``dbus-daemon`` and
bluezoo (GPL-2.0, a test tool run only as its own process) in a temporary directory,
unix sockets only. bluezoo plays the radio: two adapters, hci0 and hci1, that see each
other's advertisements and carry GATT between them over D-Bus.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

ADDRESSES = ("00:00:00:11:11:11", "00:00:00:22:22:22")  # hci0, hci1
READY_TIMEOUT = 20.0
BLUEZOO_MAIN = "import sys; from bluezoo.bluezoo import main; sys.exit(main())"


def missing_tools() -> str | None:
    """Why the mock BlueZ cannot run here, or None."""
    if shutil.which("dbus-daemon") is None:
        return "dbus-daemon is not installed (Debian: apt-get install dbus-daemon)"
    if importlib.util.find_spec("bluezoo") is None:
        return "bluezoo is not installed (pip install -e '.[dev]')"
    return None


@dataclass
class World:
    """A running dbus-daemon + bluezoo; ``address`` is the bus to use as the system bus."""

    directory: Path
    address: str
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def bluezoo_log(self) -> str:
        return (self.directory / "bluezoo.log").read_text(errors="replace")


def _spawn(
    args: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


@contextlib.contextmanager
def mock_bluez(
    adapters: tuple[str, ...] = ADDRESSES, powered: bool = True, run_bluezoo: bool = True
) -> Iterator[World]:
    """Start dbus-daemon and bluezoo (unless not ``run_bluezoo``); stop both whatever
    happens."""
    directory = Path(tempfile.mkdtemp(prefix="steppe-bz-", dir="/tmp"))
    address = f"unix:path={directory / 'bus'}"
    world = World(directory, address)
    try:
        world.procs.append(
            _spawn(
                ["dbus-daemon", "--session", f"--address={address}", "--nofork", "--nopidfile"],
                directory / "dbus.log",
            )
        )
        _wait_for(lambda: _accepts(directory / "bus"), "dbus-daemon's socket")
        if not run_bluezoo:
            yield world
            return
        args = [sys.executable, "-c", BLUEZOO_MAIN, "--scan-interval", "1", "-v"]
        if powered:
            args.append("--auto-enable")
        for adapter in adapters:
            args += ["-a", adapter]
        env = {"DBUS_SYSTEM_BUS_ADDRESS": address, "PATH": "/usr/bin:/bin"}
        world.procs.append(_spawn(args, directory / "bluezoo.log", env))
        asyncio.run(_wait_for_bluez(address, len(adapters)))
        yield world
    finally:
        world.stop()


def _accepts(path: Path) -> bool:
    """The socket file exists and dbus-daemon listens on it (the file comes first: a
    connection in between is refused)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def _wait_for(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not appear")
        time.sleep(0.02)


async def _wait_for_bluez(address: str, adapters: int) -> None:
    bus = await MessageBus(bus_address=address).connect()
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            while not await _adapters_exported(bus, adapters):  # noqa: ASYNC110 (polling)
                await asyncio.sleep(0.05)
    finally:
        bus.disconnect()


async def _adapters_exported(bus: MessageBus, adapters: int) -> bool:
    reply = await bus.call(
        Message(
            destination="org.bluez",
            path="/",
            interface="org.freedesktop.DBus.ObjectManager",
            member="GetManagedObjects",
        )
    )
    if reply.message_type == MessageType.ERROR:
        return False
    paths = reply.body[0]
    return all(f"/org/bluez/hci{i}" in paths for i in range(adapters))
