"""Helpers for UI tests: real daemons (loopback LAN, real local API sockets) in a trio.run
of their own thread, while the Textual app runs on asyncio in the test's thread, as the
UI and the daemon are separate processes in use. Nothing is mocked."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import trio

from mesh.daemon.config import Config
from mesh.ipc.asyncio_client import AsyncioClient
from mesh.ipc.calls import Call
from mesh.profile import Profile
from tests.test_daemon import Running, start

R = TypeVar("R")


class Daemons:
    """``with Daemons(profiles, config):`` one daemon per profile, each serving its local
    API at the profile's socket, until the block ends."""

    def __init__(self, profiles: list[Profile], config: Config) -> None:
        self.profiles = profiles
        self.config = config
        self.running: list[Running] = []
        self._ready = threading.Event()
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._failure: BaseException | None = None
        self._nursery: trio.Nursery | None = None
        self._thread = threading.Thread(target=self._main, name="test-daemons", daemon=True)

    def __enter__(self) -> Daemons:
        self._thread.start()
        if not self._ready.wait(30) or self._failure is not None:
            raise RuntimeError(f"the daemons did not start: {self._failure!r}")
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._token is not None and self._stop is not None:
            self._token.run_sync_soon(self._stop.set)
        self._thread.join(30)

    def stop(self, i: int) -> None:
        """Stop daemon ``i`` (blocking: call it from a worker thread, not the app's loop)."""
        assert self._token is not None
        trio.from_thread.run(self.running[i].stop, trio_token=self._token)

    def restart(self, i: int) -> None:
        """Start daemon ``i`` again after :meth:`stop` (blocking, as :meth:`stop`)."""
        assert self._token is not None

        async def again() -> None:
            assert self._nursery is not None
            self.running[i] = await start(self._nursery, self.profiles[i], self.config)

        trio.from_thread.run(again, trio_token=self._token)

    def _main(self) -> None:
        try:
            trio.run(self._serve)
        except BaseException as exc:  # noqa: BLE001 - reported to the test thread
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        async with trio.open_nursery() as n:
            self._nursery = n
            for p in self.profiles:
                self.running.append(await start(n, p, self.config))
            self._ready.set()
            await self._stop.wait()
            n.cancel_scope.cancel()


async def ask(profile: Profile, call: Call[R]) -> R:
    """One request to a profile's daemon, as another local program would make it."""
    return await ask_dir(profile.path, call)


async def ask_dir(profile_dir: Path, call: Call[R]) -> R:
    client = await AsyncioClient.for_profile(profile_dir)
    try:
        return await client.request(call)
    finally:
        await client.aclose()


async def eventually(what: str, check: Callable[[], bool], limit: float = 20.0) -> None:
    """Poll state the app or a daemon changes (there is no event to wait on here)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")
