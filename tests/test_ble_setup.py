"""Bluetooth LE set-up: the [ble] config, the backend factory's one-line refusals, a
daemon whose Bluetooth stack refuses it running on with its other links, and the
trio <-> asyncio bridge (cancellation crosses it, the thread stops with its last user)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import socket
import time
from dataclasses import replace
from pathlib import Path

import pytest
import trio

from mesh.daemon.config import Config, ConfigError, parse
from mesh.daemon.links.ble import backend_name, bridge, open_backend
from mesh.daemon.links.ble.backend import BackendError
from mesh.daemon.links.ble.bumble import BumbleBackend
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_ble_daemons import received
from tests.test_daemon import knows_prekey, start, until


def test_ble_config_keys() -> None:
    assert Config().ble is False
    cfg = parse(
        "[ble]\nenabled = true\nbackend = 'bumble'\nadapter = 'usb:0'\nmax_links = 3\n"
        "advertise_interval = 200\nscan_interval = 120\nscan_window = 60\nrotate_after = 30\n"
    )
    assert (cfg.ble_rotate_after, Config().ble_rotate_after) == (30, 60)
    assert (cfg.ble, cfg.ble_backend, cfg.ble_adapter, cfg.ble_max_links) == (
        True,
        "bumble",
        "usb:0",
        3,
    )
    assert (cfg.ble_advertise_interval, cfg.ble_scan_interval, cfg.ble_scan_window) == (
        200,
        120,
        60,
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[ble]\nbackend = 'bleak'", "ble.backend must be one of auto, bluez, corebluetooth"),
        ("[ble]\nmax_links = 0", "ble.max_links must be at least 1"),
        ("[ble]\nrotate_after = -1", "ble.rotate_after must be at least 0"),
        ("[ble]\nscan_window = 500", "ble.scan_window must be between 3 milliseconds"),
        ("[ble]\nadvertise_interval = 5", "ble.advertise_interval must be between 20"),
        ("[ble]\nenable = true", "unknown key ble.enable; did you mean ble.enabled?"),
    ],
)
def test_bad_ble_config_names_the_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(text)


def test_the_factory_picks_a_backend_or_says_why_not() -> None:
    assert isinstance(open_backend(replace(Config(), ble_backend="bumble")), BumbleBackend)
    with pytest.raises(BackendError, match=r"CoreBluetooth backend \(macOS\) is not built yet"):
        open_backend(replace(Config(), ble_backend="corebluetooth"))
    assert backend_name(Config()) in ("bluez", "corebluetooth", "")
    bluez = replace(Config(), ble_backend="bluez")
    if importlib.util.find_spec("mesh.daemon.links.ble.bluez") is None:  # not on this branch
        with pytest.raises(BackendError, match=r"^the bluez backend cannot be loaded [^\n]*$"):
            open_backend(bluez)
    else:
        assert type(open_backend(bluez)).__name__ == "BluezBackend"


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_stack_that_refuses_us_is_one_line_and_the_daemon_runs_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Bluetooth on a controller nobody serves (a closed loopback port): one warning, and
    the two daemons still meet over LAN and exchange mail."""
    now = int(time.time())
    alice, bob = make_profile(tmp_path, "Alice", now), make_profile(tmp_path, "Bob", now)
    befriend(alice, bob, now)
    cfg = loopback_config(
        ble=True, ble_backend="bumble", ble_adapter=f"tcp-client:127.0.0.1:{closed_port()}"
    )

    async def main() -> None:
        async with trio.open_nursery() as n:
            a = await start(n, alice, cfg)
            b = await start(n, bob, cfg)
            await knows_prekey(a, bob)
            a.daemon.send_text("Bob", "no radio, still mail")
            await until("delivered", lambda: "no radio, still mail" in received(b.daemon))
            assert not a.daemon.ble.running
            n.cancel_scope.cancel()

    with caplog.at_level(logging.WARNING, logger="mesh.daemon.links.ble.link"):
        trio.run(main)
    lines = [r.getMessage() for r in caplog.records if r.name == "mesh.daemon.links.ble.link"]
    assert len(lines) == 2  # one per daemon
    assert all(x.startswith("Bluetooth LE is off: Bumble radio") for x in lines)
    assert all("\n" not in x for x in lines)


def test_the_bridge_cancels_across_and_stops_with_its_last_user() -> None:
    events: list[str] = []

    async def slow() -> int:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            events.append("cancelled on the asyncio side")
            raise
        return 1

    async def answer() -> int:
        return 42

    async def main() -> None:
        aio = bridge.acquire()
        other = bridge.acquire()
        assert other is aio  # one thread per process
        await bridge.release(other)
        try:
            assert await bridge.call(aio, answer()) == 42
            began = time.monotonic()
            with trio.move_on_after(0.1):
                await bridge.call(aio, slow())
            assert time.monotonic() - began < 5
            await bridge.call(aio, asyncio.sleep(0.05))  # let the cancellation land
            assert events == ["cancelled on the asyncio side"]
        finally:
            await bridge.release(aio)
        assert not aio.thread.is_alive()
        assert aio.loop.is_closed()

    trio.run(main)


def test_a_coroutine_cancelled_on_the_asyncio_side_is_a_backend_error() -> None:
    """Bumble aborts a wait by cancelling it (a connection gone, a flush): across the
    bridge that is a BackendError the link layer handles, not a CancelledError that
    would stop the daemon."""

    async def aborted() -> None:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        asyncio.get_running_loop().call_soon(waiter.cancel)
        await waiter

    async def main() -> None:
        aio = bridge.acquire()
        try:
            with pytest.raises(BackendError, match="cancelled on the asyncio loop"):
                await bridge.call(aio, aborted())
        finally:
            await bridge.release(aio)

    trio.run(main)
