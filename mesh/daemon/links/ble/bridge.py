"""trio <-> asyncio: the one asyncio loop the Bluetooth stacks run on, in one thread.

Theory of operation
-------------------
The daemon is ``trio.run``; the Bluetooth libraries (Bumble, bleak, dbus-fast) are
asyncio-only. They run on one asyncio loop in one daemon thread per process
(:func:`acquire` / :func:`release`, reference counted): one per process, not per daemon,
because daemons that tests run side by side in one process must share one Bumble
``LocalLink``, whose virtual controllers live on one loop.

- Out of trio, :func:`call`: ``asyncio.run_coroutine_threadsafe`` and a done-callback
  that wakes the trio task through its ``TrioToken``; no worker thread blocks on a
  result. Cancelling the trio task cancels the asyncio task; an asyncio task cancelled
  by anything else (a library aborting its own wait, the loop stopping) is
  :class:`Abandoned`, a :class:`.backend.BackendError`, for the caller to handle like
  any failed Bluetooth operation. Timeouts of Bluetooth
  operations belong on the asyncio side (``asyncio.wait_for``): trio is idle while it
  waits on the thread, and a mock clock with autojump would fire trio-side timeouts at
  once.
- Into trio, :class:`ToTrio`: ``TrioToken.run_sync_soon`` with small synchronous
  handlers, in order. What it carries is bounded by credits kept on the asyncio side
  (:class:`Credits`): a sender takes a credit per item and the trio side gives it back
  once it has taken the item out of its bounded channel, so a channel sized to the
  credits can never be full (``send_nowait`` cannot raise ``WouldBlock``) and nothing is
  dropped. Whoever has no credit keeps the item or gives up its link (the link layer
  decides; see :mod:`mesh.daemon.links.ble`).
- Shut-down: the last :func:`release` stops the loop, which cancels and awaits its
  leftover tasks, and joins the thread (in a trio worker thread, so trio runs on).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import trio

from mesh.daemon.links.ble.backend import BackendError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Abandoned(BackendError):
    """The coroutine :func:`call` ran was cancelled on the asyncio side, not by its
    caller (Bumble aborts its waits by cancelling them)."""


class AsyncioThread:
    """One asyncio event loop running in one daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self._run, name="steppe-ble-asyncio", daemon=True)
        self.users = 0

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_forever()
        finally:
            leftover = asyncio.all_tasks(self.loop)
            for task in leftover:
                task.cancel()
            if leftover:
                gathered = asyncio.gather(*leftover, return_exceptions=True)
                self.loop.run_until_complete(gathered)
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def stop_soon(self) -> None:
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)


class _Shared:
    """The process's one asyncio thread (a process-wide singleton, see the module doc)."""

    lock = threading.Lock()
    current: AsyncioThread | None = None


def acquire() -> AsyncioThread:
    """The process's asyncio thread, started if it is not running; one more user."""
    with _Shared.lock:
        aio = _Shared.current
        if aio is None:
            aio = AsyncioThread()
            aio.start()
            _Shared.current = aio
        aio.users += 1
        return aio


async def release(aio: AsyncioThread) -> None:
    """One user fewer; the last one stops the loop and joins its thread."""
    with _Shared.lock:
        aio.users -= 1
        last = aio.users == 0
        if last and _Shared.current is aio:
            _Shared.current = None
    if last:
        aio.stop_soon()
        await trio.to_thread.run_sync(aio.thread.join)


async def call(aio: AsyncioThread, coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on the asyncio loop and wait for its result from trio (its exception
    is raised here). Cancelling the caller cancels the coroutine."""
    token = trio.lowlevel.current_trio_token()
    try:
        future = asyncio.run_coroutine_threadsafe(coro, aio.loop)
    except RuntimeError:  # the loop is closed: the coroutine never ran
        coro.close()
        raise
    done = trio.Event()

    def wake(_: concurrent.futures.Future[T]) -> None:
        with contextlib.suppress(trio.RunFinishedError):
            token.run_sync_soon(done.set)

    future.add_done_callback(wake)
    try:
        await done.wait()
    except trio.Cancelled:
        future.cancel()
        raise
    if future.cancelled():
        raise Abandoned("the Bluetooth operation was cancelled on the asyncio loop")
    return future.result()


def submit(aio: AsyncioThread, coro: Coroutine[Any, Any, None], what: str) -> None:
    """Run ``coro`` on the asyncio loop without waiting for it (a link to close); its
    failure is logged with ``what``."""
    try:
        future = asyncio.run_coroutine_threadsafe(coro, aio.loop)
    except RuntimeError:
        coro.close()
        return

    def report(done: concurrent.futures.Future[None]) -> None:
        if not done.cancelled() and done.exception() is not None:
            log.debug("%s failed: %r", what, done.exception())

    future.add_done_callback(report)


class ToTrio:
    """Synchronous calls posted from the asyncio loop to the trio thread, run in order."""

    def __init__(self, token: trio.lowlevel.TrioToken) -> None:
        self.token = token
        self.finished = False

    def post(self, handler: Callable[..., object], *args: object) -> bool:
        """Run ``handler(*args)`` soon on the trio thread; False once trio is gone."""
        if self.finished:
            return False
        try:
            self.token.run_sync_soon(handler, *args)
        except trio.RunFinishedError:
            self.finished = True
            return False
        return True


class Credits:
    """A count of items the trio side can still take (asyncio side; one per channel)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.left = capacity

    def take(self) -> bool:
        if self.left <= 0:
            return False
        self.left -= 1
        return True

    def give_back(self) -> None:
        self.left = min(self.capacity, self.left + 1)


def asyncio_spawn(tasks: set[asyncio.Task[None]], coro: Coroutine[Any, Any, None]) -> None:
    """On the asyncio loop: run ``coro`` as a task, held in ``tasks`` until it is done."""
    task = asyncio.get_running_loop().create_task(coro)
    tasks.add(task)
    task.add_done_callback(tasks.discard)
