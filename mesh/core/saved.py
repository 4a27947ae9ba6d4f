"""A node's durable state as its driver sees it: what must survive a restart besides
the store, as rows saved by change (:mod:`mesh.core.durable`), and loading it back.

The rows hold end-to-end sessions, learned prekeys, receipts (ours, released, pending),
the exactly-once guard, bulletin slots and strangers' identities: secrets, so a driver
keeps them encrypted. Routing-strategy tables are not kept (they rebuild from new
contacts). A driver that saves :meth:`SavedState.take_changes` before carrying out a
step's actions keeps "commit before acknowledge" at a cost that grows with the change,
not with the state.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from mesh.core.durable import Durable, rows_from_blob
from mesh.core.session import Session


class SavedState:
    """``node.saved``: track and take changed rows, read them all, load them back."""

    def __init__(
        self,
        state: Durable,
        contacts: Callable[[], list[bytes]],
        loaded: Callable[[list[tuple[bytes, bytes]], int], None],
        index_store: Callable[[int], None],
    ) -> None:
        self._state = state
        self._contacts = contacts  # whose learned prekeys are rows
        self._loaded = loaded  # the node takes the learned prekeys and indexes the store
        self._index_store = index_store

    @property
    def sessions(self) -> Mapping[bytes, Session]:
        """The end-to-end sessions by session id (read-only use: tests, status)."""
        return self._state.sessions

    def track(self) -> None:
        """Start marking changes, for :meth:`take_changes`."""
        self._state.track()

    def take_changes(self) -> dict[bytes, bytes | None]:
        """The rows changed since the last call (after :meth:`track`): key -> value,
        ``None`` for a deleted row."""
        return self._state.take_changes()

    def rows(self) -> dict[bytes, bytes]:
        """Every row (a first save, a migration)."""
        return self._state.rows(self._contacts())

    def export(self) -> bytes:
        """Every row as one blob (the format before rows were saved one by one)."""
        return self._state.export(self._contacts())

    def restore(self, data: bytes, now: int) -> None:
        """Load :meth:`export` output (this version's or the one before). Raises
        :class:`~crypto.errors.DecodeError` if the state is malformed."""
        self.restore_rows(rows_from_blob(data), now)

    def restore_rows(self, rows: Mapping[bytes, bytes], now: int) -> None:
        """Load saved rows (after adding contacts) and re-index the store. Raises
        :class:`~crypto.errors.DecodeError` if a row is malformed."""
        self._loaded(self._state.load(rows), now)

    def index_store(self, now: int) -> None:
        """After a start with no saved state: which stored envelopes are ours or for us
        (kept in memory only, so the store file does not say)."""
        self._index_store(now)
