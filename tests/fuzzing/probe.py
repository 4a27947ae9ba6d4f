"""The victim under test: every call into the node goes through :class:`Probe`, which
counts what was fed, checks what came out, and turns anything the node raised into
:class:`Escaped` (the one failure the fuzz harness looks for).

A call that runs longer than :data:`BUDGET` seconds stops a node as surely as an
exception: in the main thread a watchdog (``SIGALRM``) interrupts it and it is reported
as escaped too (the first fuzz runs found a SYMBOLS message that made the node peel for
ever). The slowest call is kept for the figures.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import FrameType
from typing import TypeVar, get_args

from mesh.core import link as L
from mesh.core.events import Action, CloseLink, Event, FrameReceived, MessageDelivered, Transmit
from mesh.core.node import Node

ACTION_TYPES = get_args(Action)
BUDGET = 5.0  # seconds one call into the node may take
T = TypeVar("T")


class Escaped(Exception):
    """Something other than actions came out of the node."""

    def __init__(self, what: str, exc: BaseException | None = None) -> None:
        super().__init__(what)
        self.what = what
        self.exc = exc


class _Overran(BaseException):  # not an Exception: nothing in the node may catch it
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _Overran


def _watched(fn: Callable[[], T]) -> tuple[T, float]:
    """``fn()`` and how long it took; interrupted after BUDGET seconds (main thread)."""
    watch = threading.current_thread() is threading.main_thread()
    if watch:
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, BUDGET)
    start = time.perf_counter()
    try:
        return fn(), time.perf_counter() - start
    finally:
        if watch:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


class Probe:
    def __init__(self, node: Node, link: int, now: int) -> None:
        self.node = node
        self.link = link
        self.now = now
        self.frames = 0  # attacker frames fed
        self.events = 0  # every event fed
        self.closed = ""  # why the node closed the fuzzed link, if it did
        self.replies: list[bytes] = []  # frames the node sent on the fuzzed link
        self.delivered = 0
        self.slowest = 0.0  # seconds of the slowest call
        self.start_stats = Counter(node.stats)

    @property
    def open(self) -> bool:
        ln = self.node.links.get(self.link)
        return ln is not None and ln.session.state is not L.LinkState.CLOSED

    def feed(self, event: Event, *, crafted: bool = True) -> list[Action]:
        if crafted and isinstance(event, FrameReceived):
            self.frames += 1
        actions = self.call(type(event).__name__, lambda: self.node.handle(event, self.now))
        self.check(actions)
        return actions

    def frames_in(self, frames: list[bytes], *, link: int | None = None) -> None:
        """Feed frames on the fuzzed link (or another), stopping once it is closed."""
        for f in frames:
            if link is None and not self.open:
                return
            self.feed(FrameReceived(self.link if link is None else link, f))

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """One call into the node (``handle`` or a public method reading state a peer may
        have shaped); anything it raises, or a run past the budget, is :class:`Escaped`."""
        self.events += 1
        try:
            result, took = _watched(fn)
        except _Overran:
            raise Escaped(f"{what}: still running after {BUDGET:.0f} s") from None
        except Exception as exc:  # anything leaving the node is the finding
            raise Escaped(f"{what}: {type(exc).__name__}: {exc}", exc) from exc
        self.slowest = max(self.slowest, took)
        return result

    def check(self, actions: object) -> None:
        if not isinstance(actions, list):
            raise Escaped(f"handle returned {type(actions).__name__}, not a list")
        for act in actions:
            if not isinstance(act, ACTION_TYPES):
                raise Escaped(f"handle returned a {type(act).__name__}")
            if isinstance(act, CloseLink):
                if act.link in self.node.links:
                    raise Escaped(f"link {act.link} closed but its state was kept")
                if act.link == self.link:
                    self.closed = act.reason
            elif isinstance(act, Transmit) and act.link == self.link:
                self.replies.append(act.data)
            elif isinstance(act, MessageDelivered):
                self.delivered += 1

    def stats_delta(self) -> Counter[str]:
        now = Counter(self.node.stats)
        now.subtract(self.start_stats)
        return +now
