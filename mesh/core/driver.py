"""The one dispatch of the node's actions to a driver.

Every driver (the daemon, the simulator, the test network, the benchmarks) hands the
actions a step returned to :func:`carry_out` with an :class:`ActionSink`: one method per
action kind. The ``match`` ends in :func:`typing.assert_never`, so adding an action to
:data:`mesh.core.events.Action` makes mypy flag this module, and every sink then lacks
a method until its driver decides what the new action means to it. A sink that has no
use for an action kind says so in that method (a ``return``), rather than by omission.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, assert_never

from mesh.core.events import (
    Action,
    BulletinStored,
    ChunkReceived,
    CloseLink,
    FileAction,
    FileDropped,
    FileOffered,
    FileReceived,
    GroupAction,
    GroupChanged,
    GroupMessageDelivered,
    LinkOpened,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    Transmit,
)


class ActionSink(Protocol):
    """What a driver does with each kind of action the node returns."""

    def on_transmit(self, act: Transmit, /) -> None: ...

    def on_close_link(self, act: CloseLink, /) -> None: ...

    def on_link_opened(self, act: LinkOpened, /) -> None: ...

    def on_message_delivered(self, act: MessageDelivered, /) -> None: ...

    def on_message_queued(self, act: MessageQueued, /) -> None: ...

    def on_message_acked(self, act: MessageAcked, /) -> None: ...

    def on_send_failed(self, act: SendFailed, /) -> None: ...

    def on_bulletin_stored(self, act: BulletinStored, /) -> None: ...

    def on_file(self, act: FileAction, /) -> None:
        """An attachment being received: offered, a chunk, whole, or given up."""

    def on_group(self, act: GroupAction, /) -> None:
        """A group changed (created, joined, members, epoch, left) or a group message arrived."""


def carry_out(actions: Iterable[Action], sink: ActionSink) -> None:
    """Hand each action, in order, to the sink's method for its kind."""
    for act in actions:
        match act:
            case Transmit():
                sink.on_transmit(act)
            case CloseLink():
                sink.on_close_link(act)
            case LinkOpened():
                sink.on_link_opened(act)
            case MessageDelivered():
                sink.on_message_delivered(act)
            case MessageQueued():
                sink.on_message_queued(act)
            case MessageAcked():
                sink.on_message_acked(act)
            case SendFailed():
                sink.on_send_failed(act)
            case BulletinStored():
                sink.on_bulletin_stored(act)
            case FileOffered() | ChunkReceived() | FileReceived() | FileDropped():
                sink.on_file(act)
            case GroupChanged() | GroupMessageDelivered():
                sink.on_group(act)
            case _:
                assert_never(act)
