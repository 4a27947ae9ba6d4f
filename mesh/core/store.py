"""The envelope store: one interface, one policy, two backends.

Theory of operation
-------------------
A store keeps encoded envelopes keyed by id, with what the node needs to decide what to
keep and to find envelopes again without decoding them: ``expiry`` (Unix seconds),
``priority`` (a rank: higher is kept longer), ``source`` (an opaque label of where it came
from, for per-source quotas), the routing ``tag``, the ``receipt`` hash and the hop
``budget``. It is also *the envelope index*: :meth:`PolicyStore.ids_with_tag`,
:meth:`PolicyStore.ids_with_receipt` and :meth:`PolicyStore.header` answer from the
backend (an SQLite index on disk for the daemon), so the node keeps no per-envelope
tables in memory.

What the store must not say on a seized device is whose envelopes are whose. So the
stored rank is only public facts (the envelope kind's class and the stamp work it
carries), and the node's own and its contacts' envelopes are *protected* in memory only
(:meth:`PolicyStore.protect`, rebuilt from the node's encrypted state at start): no row
differs from a relayed one.

:class:`PolicyStore` holds the whole admission policy, once, for every backend:

1. expired on arrival -> ``EXPIRED``;
2. already stored -> ``DUPLICATE`` (put is idempotent by id);
3. in the *seen-set* (delivered or purged earlier, not yet expired) -> ``SEEN``;
4. larger than ``max_item_bytes``, or (unless protected) over the source's quota ->
   ``QUOTA``;
5. over the global byte/count quota, or (for a signed public record: a bulletin or a
   prekey) over the public records' share -> evict unprotected entries *of the same pool*
   (public records, or the rest) in ascending ``(priority, expiry)`` order, only entries
   that rank strictly below the newcomer (any unprotected entry of its pool, for a
   protected newcomer); if that cannot make room the newcomer is refused (``QUOTA``) and
   nothing is evicted. Validly signed junk from throwaway keys thus competes only with
   other public records, never with mail.

That is :attr:`Eviction.PRIORITY`, what the daemon runs. For comparisons with The ONE the
simulator can ask for :attr:`Eviction.OLDEST_RECEIVED`, ONE's buffer rule: room is made by
evicting the entries of the pool stored earliest, whatever their rank and whether or not
they are protected (ONE keeps a node's own messages no better than others'), and the
stamp demand no longer rises when the store is full (nothing ranks). ONE also never evicts
a message while it is being sent; here a copy handed to a link is already bytes on the
way, so evicting it cuts nothing (the copy on the air still arrives), and the victim is
simply the oldest. ``Quotas.source_quota`` turns the per-source quota of rule 4 off
(ONE has none).

Backends implement a handful of primitives (``_insert``, ``_remove``, ``_eviction_order``
...). :class:`~mesh.core.memory_store.MemoryStore` is the simulator's backend; the SQLite
backend lives in :mod:`mesh.daemon.sqlite_store`. Both pass
``tests/test_store_contract.py``.

The store also keeps a :class:`~mesh.core.riblt.Sketch` of its ids (the coded symbols
reconciliation starts from), updated by every insert and removal below, built on first use
from what a backend holds on disk and grown on demand (:meth:`PolicyStore.symbols`), and a
log of recent changes so a reconciliation can be served from one consistent set
(:meth:`PolicyStore.mark`).

Durability contract: when ``put``/``put_many`` returns ``STORED`` the envelope is committed
(it survives the process being killed); ``put_many`` is one transaction.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from mesh.core.riblt import Sketch, Symbols, encode_chunked, encode_set
from mesh.core.session import message_tag

MAX_LOG = 1 << 16  # changes remembered for reconciliations in progress
PUBLIC_RANK = 256  # ranks from here up: signed public records (bulletins, prekeys)


class Eviction(Enum):
    """Which stored envelopes go first when the store is full (see the module's text)."""

    PRIORITY = "priority"  # lowest (rank, expiry) first, never protected ones: the daemon
    OLDEST_RECEIVED = "oldest_received"  # stored earliest first, any of them: The ONE


class PutStatus(Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"
    SEEN = "seen"
    EXPIRED = "expired"
    QUOTA = "quota"


@dataclass(frozen=True, slots=True)
class StoreItem:
    id: bytes
    data: bytes
    expiry: int
    priority: int = 0
    source: bytes = b""
    tag: bytes = b""
    receipt: bytes = b""
    budget: int = 0
    protected: bool = False  # the node's own or its contacts': kept in memory only

    @property
    def size(self) -> int:
        return len(self.data)


class Meta(NamedTuple):
    expiry: int
    priority: int
    seq: int  # increases with every insert: the order envelopes were stored in


@dataclass(frozen=True, slots=True)
class PutResult:
    status: PutStatus
    evicted: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class Quotas:
    max_total_bytes: int = 256 * 1024 * 1024
    max_total_count: int = 1_000_000
    max_source_bytes: int = 32 * 1024 * 1024
    max_item_bytes: int = 17 * 1024
    public_share: float = 0.125  # of max_total_bytes, for bulletins and prekeys
    eviction: Eviction = Eviction.PRIORITY
    source_quota: bool = True  # False: no per-source quota (max_source_bytes unused)

    @property
    def max_public_bytes(self) -> int:
        return int(self.max_total_bytes * self.public_share)


class PolicyStore(ABC):
    """Admission, quota and eviction policy over abstract storage primitives."""

    def __init__(self, quotas: Quotas | None = None) -> None:
        self.quotas = quotas or Quotas()
        # Optional observer of removals: (id, reason) with reason one of "evicted",
        # "deleted" or "expired". The simulator counts drops with it; None costs nothing.
        self.on_remove: Callable[[bytes, str], None] | None = None
        self._sketch: Sketch | None = None
        self._log: deque[tuple[bytes, int]] = deque()  # (id, +1 stored / -1 removed)
        self._log_base = 0  # the change number of _log[0]
        self._logging = False
        self._protected: set[bytes] = set()

    def _changed(self, envelope_id: bytes, sign: int) -> None:
        if self._sketch is not None:
            (self._sketch.add if sign > 0 else self._sketch.remove)([envelope_id])
        if self._logging:
            self._log.append((envelope_id, sign))
            if len(self._log) > MAX_LOG:
                self._log.popleft()
                self._log_base += 1

    def _removed(self, envelope_id: bytes, reason: str) -> None:
        self._changed(envelope_id, -1)
        self._protected.discard(envelope_id)
        if self.on_remove is not None:
            self.on_remove(envelope_id, reason)

    # ---- public API -------------------------------------------------------------------
    def put(self, item: StoreItem, now: int) -> PutResult:
        return self.put_many([item], now)[0]

    def put_many(self, items: Iterable[StoreItem], now: int) -> list[PutResult]:
        """Admit a batch in one transaction; committed when this returns."""
        with self._transaction():
            return [self._admit(item, now) for item in items]

    def delete(self, envelope_id: bytes, now: int) -> bool:
        """Remove after delivery or on a receipt; the id stays in the seen-set until expiry."""
        with self._transaction():
            expiry = self._expiry_of(envelope_id)
            if expiry is None:
                return False
            self._remove(envelope_id)
            if expiry > now:
                self._add_seen(envelope_id, expiry)
            self._removed(envelope_id, "deleted")
            return True

    def protect(self, envelope_id: bytes) -> None:
        """Keep this envelope ahead of every unprotected one (the node's own and its
        contacts' mail). Held in memory only, so the file does not tell whose it is."""
        if self.has(envelope_id):
            self._protected.add(envelope_id)

    def is_protected(self, envelope_id: bytes) -> bool:
        return envelope_id in self._protected

    def protected_count(self) -> int:
        return len(self._protected)

    def mark_seen(self, envelope_id: bytes, expiry: int, now: int) -> None:
        """Refuse this id until ``expiry`` (e.g. purged by a receipt we saw first)."""
        if expiry > now:
            with self._transaction():
                self._add_seen(envelope_id, expiry)

    def is_seen(self, envelope_id: bytes, now: int) -> bool:
        """True if the id was delivered or purged and has not expired yet."""
        return self._is_seen(envelope_id, now)

    def transaction(self) -> AbstractContextManager[object]:
        """Group several operations into one commit (nests; the outermost commits). The
        daemon wraps each node event in one, so what the node changed in the store
        commits only after the daemon has recorded what the event delivered."""
        return self._transaction()

    def replace_data(self, envelope_id: bytes, data: bytes, budget: int) -> bool:
        """Swap the stored bytes of an envelope for a re-encoding with the same id (the
        budget changed). Size accounting follows; False if the id is not stored."""
        with self._transaction():
            return self._replace(envelope_id, data, budget)

    def ids_with_tag(self, tag: bytes) -> list[bytes]:
        """Stored envelopes whose per-message tag is ``tag``'s: the routing tag, or its
        first 8 bytes when a routing strategy appended a route key to a session tag
        (:func:`mesh.core.session.message_tag`). Junk may copy a real one's."""
        return self._with_tag(message_tag(tag))

    def ids_with_receipt(self, receipt: bytes) -> list[bytes]:
        """Stored envelopes carrying this receipt hash (junk may copy a real one's)."""
        return self._with_receipt(receipt) if receipt else []

    def header(self, envelope_id: bytes) -> tuple[bytes, int] | None:
        """``(tag, budget)`` of a stored envelope."""
        return self._header(envelope_id)

    def sweep(self, now: int) -> int:
        """Drop expired envelopes and expired seen-set entries; return envelopes dropped."""
        with self._transaction():
            dead = self._sweep(now)
        for vid in dead:
            self._removed(vid, "expired")
        return len(dead)

    def mark(self) -> int:
        """A point in the store's history: :meth:`symbols` can later give the symbols of
        the ids held at this point (reconciliation serves one consistent set per range
        across rounds while other links keep changing the store)."""
        self._logging = True
        return self._log_base + len(self._log)

    def release(self, before: int | None) -> None:
        """No mark older than ``before`` is needed any more (None: no mark at all)."""
        if before is None:
            self._log_base += len(self._log)
            self._log.clear()
            self._logging = False
            return
        while self._log and self._log_base < before:
            self._log.popleft()
            self._log_base += 1

    def symbols(
        self, count: int, lo: bytes = b"", hi: bytes | None = None, at: int | None = None
    ) -> Symbols | None:
        """The first ``count`` coded symbols (rateless IBLT) of the stored ids in
        ``[lo, hi)``, as they are now or as they were at mark ``at`` (None if the changes
        since that mark are no longer known)."""
        if lo == b"" and hi is None:
            syms = self._full_symbols(count)
        else:
            syms = encode_chunked(self._all_ids(lo, hi), count)
        if at is None:
            return syms
        if at < self._log_base:
            return None
        added: list[bytes] = []
        removed: list[bytes] = []
        for eid, sign in itertools.islice(self._log, at - self._log_base, None):
            if lo <= eid and (hi is None or eid < hi):
                (added if sign > 0 else removed).append(eid)
        if added:
            syms.xor_in(encode_set(added, count), -1)
        if removed:
            syms.xor_in(encode_set(removed, count), 1)
        return syms

    def _full_symbols(self, count: int) -> Symbols:
        if self._sketch is None:
            self._sketch = Sketch(max(256, count))
            self._sketch.grow(self._sketch.size, self._all_ids())
        elif count > self._sketch.size:
            self._sketch.grow(1 << (count - 1).bit_length(), self._all_ids())
        return self._sketch.symbols(count)

    def _all_ids(self, lo: bytes = b"", hi: bytes | None = None) -> Iterator[bytes]:
        while page := self.ids_in_range(lo, hi, limit=4096):
            yield from page
            lo = page[-1] + b"\x00"

    # ---- policy -----------------------------------------------------------------------
    def _admit(self, item: StoreItem, now: int) -> PutResult:
        q = self.quotas
        if item.expiry <= now:
            return PutResult(PutStatus.EXPIRED)
        if self.has(item.id):
            return PutResult(PutStatus.DUPLICATE)
        if self._is_seen(item.id, now):
            return PutResult(PutStatus.SEEN)
        if item.size > q.max_item_bytes:
            return PutResult(PutStatus.QUOTA)
        if (
            q.source_quota
            and not item.protected
            and self.source_bytes(item.source) + item.size > q.max_source_bytes
        ):
            return PutResult(PutStatus.QUOTA)
        victims = self._victims(item)
        if victims is None:
            return PutResult(PutStatus.QUOTA)
        for vid in victims:
            self._remove(vid)
            self._removed(vid, "evicted")
        self._insert(item, now)
        self._changed(item.id, 1)
        if item.protected:
            self._protected.add(item.id)
        return PutResult(PutStatus.STORED, tuple(victims))

    def _victims(self, item: StoreItem) -> list[bytes] | None:
        """What must go to make room for ``item`` ([] if it fits; None if it cannot)."""
        q = self.quotas
        public = item.priority >= PUBLIC_RANK
        need_bytes = self.total_bytes() + item.size - q.max_total_bytes
        need_count = self.count() + 1 - q.max_total_count
        if public:
            need_bytes = max(need_bytes, self.public_bytes() + item.size - q.max_public_bytes)
        victims: list[bytes] = []
        if need_bytes <= 0 and need_count <= 0:
            return victims
        if q.eviction is Eviction.OLDEST_RECEIVED:
            for vid, vsize in self._arrival_order(public):
                victims.append(vid)
                need_bytes -= vsize
                need_count -= 1
                if need_bytes <= 0 and need_count <= 0:
                    return victims
            return None
        for priority, expiry, vid, vsize in self._eviction_order(public):
            if vid in self._protected:
                continue
            if not item.protected and (priority, expiry) >= (item.priority, item.expiry):
                break
            victims.append(vid)
            need_bytes -= vsize
            need_count -= 1
            if need_bytes <= 0 and need_count <= 0:
                return victims
        return None

    def lowest_rank(self, room: int) -> int | None:
        """The rank of the first unprotected envelope (not a public record) that would
        have to go to make ``room`` bytes (None: there is room without evicting)."""
        q = self.quotas
        if q.eviction is Eviction.OLDEST_RECEIVED:
            return None  # rank decides nothing: the demand for stamps does not rise
        if self.total_bytes() + room <= q.max_total_bytes and self.count() < q.max_total_count:
            return None
        for priority, _expiry, vid, _size in self._eviction_order(False):
            if vid not in self._protected:
                return priority
        return None

    def would_admit_protected(self, size: int) -> bool:
        """Would one of the node's own envelopes of ``size`` bytes find room now?"""
        item = StoreItem(b"", b"\x00" * size, 2**62, 0, protected=True)
        return self._victims(item) is not None

    def would_admit(self, priority: int, expiry: int, size: int) -> bool:
        """Would an unprotected envelope of this rank, expiry and size find room now? (A
        node asks only for what it will keep.)"""
        return self._victims(StoreItem(b"", b"\x00" * size, expiry, priority)) is not None

    # ---- primitives each backend provides ---------------------------------------------
    @abstractmethod
    def has(self, envelope_id: bytes) -> bool: ...

    @abstractmethod
    def get(self, envelope_id: bytes) -> bytes | None: ...

    @abstractmethod
    def count(self) -> int: ...

    @abstractmethod
    def total_bytes(self) -> int: ...

    @abstractmethod
    def source_bytes(self, source: bytes) -> int: ...

    @abstractmethod
    def ids_in_range(self, lo: bytes, hi: bytes | None, limit: int | None = None) -> list[bytes]:
        """Stored ids with ``lo <= id < hi`` (``hi=None``: no upper bound), ascending."""

    @abstractmethod
    def seen_count(self) -> int: ...

    @abstractmethod
    def meta(self, envelope_id: bytes) -> Meta | None:
        """``(expiry, priority, seq)`` of a stored envelope."""

    @abstractmethod
    def _replace(self, envelope_id: bytes, data: bytes, budget: int) -> bool: ...

    @abstractmethod
    def _with_tag(self, tag: bytes) -> list[bytes]: ...

    @abstractmethod
    def _with_receipt(self, receipt: bytes) -> list[bytes]: ...

    @abstractmethod
    def _header(self, envelope_id: bytes) -> tuple[bytes, int] | None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[object]: ...

    @abstractmethod
    def _expiry_of(self, envelope_id: bytes) -> int | None: ...

    @abstractmethod
    def _is_seen(self, envelope_id: bytes, now: int) -> bool: ...

    @abstractmethod
    def _add_seen(self, envelope_id: bytes, expiry: int) -> None: ...

    @abstractmethod
    def _insert(self, item: StoreItem, now: int) -> None: ...

    @abstractmethod
    def _remove(self, envelope_id: bytes) -> None: ...

    @abstractmethod
    def _eviction_order(self, public: bool) -> Iterator[tuple[int, int, bytes, int]]:
        """``(priority, expiry, id, size)`` ascending within one pool (public records, or
        the rest): the first is evicted first."""

    @abstractmethod
    def _arrival_order(self, public: bool) -> Iterator[tuple[bytes, int]]:
        """``(id, size)`` within one pool in the order they were stored, earliest first."""

    @abstractmethod
    def public_bytes(self) -> int:
        """Bytes held by signed public records (ranks from :data:`PUBLIC_RANK`)."""

    @abstractmethod
    def _sweep(self, now: int) -> list[bytes]:
        """Remove expired envelopes and seen entries; return the envelope ids removed."""
