"""App-wide messages (posted by :class:`tui.daemon_link.DaemonLink`, handled by the app)."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from mesh.ipc.events import Event


@dataclass
class DaemonUp(Message):
    """Both connections to the daemon are open and subscribed."""


@dataclass
class DaemonDown(Message):
    """The daemon went away (or was never there): why, in one line."""

    reason: str


@dataclass
class MeshEvent(Message):
    """One event from the daemon (:mod:`mesh.ipc.events`)."""

    event: Event
