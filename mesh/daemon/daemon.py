"""The daemon: one real node on trio, driving the same sans-I/O ``Node`` as the simulator.

Theory of operation
-------------------
:class:`Daemon` owns the node, its SQLite store, the encrypted history and every link.
All protocol meaning lives in the node: the daemon turns sockets and time into events
(``LinkUp``, ``FrameReceived``, ``LinkDown``, ``Tick``, ``SendMessage``) and carries out the
actions the node returns (write a frame, close a link, record a delivered message).
:meth:`Daemon.call_node` is the only place the node is driven, so it runs one step at a time.

Links live in :mod:`mesh.daemon.links` (running a TCP link with its backpressure and
caps in :mod:`~mesh.daemon.links.tcp`; LAN discovery in :mod:`~mesh.daemon.links.lan`;
configured gateway peers, their pins and the dial-with-backoff in
:mod:`~mesh.daemon.links.gateway`). They call back into :meth:`Daemon.feed` with what
arrives and are handed what the node transmits; where links come from:

- LAN: :mod:`mesh.daemon.discovery` beacons (no identity); of two daemons that hear each
  other, the one with the lower beacon instance dials, the other accepts;
- gateway: configured ``host:port`` peers, redialled with exponential backoff and jitter;
- anything that connects to the TCP listener.

A link that breaks the protocol (garbage, oversized or endless frames, a failed
decryption) is closed by the node and counted in ``stats``; other links carry on. The
timer task sleeps until ``node.next_deadline()`` and is woken when an event moves it.

Flow control (:mod:`mesh.daemon.flow`, described in :mod:`mesh.daemon.links.tcp`): what
the node sends on a link waits in that link's outbox and never makes a step wait; a full
outbox pauses the peer's input instead of dropping the link.

Durability: the store commits an envelope before the node asks for the next one. Every
step's changes to the node's durable state (a ratchet that moved, a receipt, a delivered
id: a few rows, see :mod:`mesh.core.durable`) are written to the encrypted history with
the messages it delivered, in one commit, before any of its frames is sent and before the
store commits; a send is acknowledged to the client after that. So a ``kill -9`` loses
nothing that was acknowledged, and no message key is used twice.
"""

from __future__ import annotations

import itertools
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import trio

from crypto.attachment import chunk_count, file_digest
from crypto.errors import DecodeError
from crypto.primitives import Rng, blake2b
from mesh import ipc
from mesh.core.attachments import clean_name
from mesh.core.driver import carry_out
from mesh.core.events import (
    Action,
    BulletinStored,
    ChunkReceived,
    CloseLink,
    Event,
    FileAction,
    FileDropped,
    FileOffered,
    FileReceived,
    GroupAction,
    LinkOpened,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    SendFile,
    SendMessage,
    Tick,
    Transmit,
)
from mesh.core.node import Node, NodeConfig
from mesh.core.store import Quotas
from mesh.daemon import bulletins
from mesh.daemon.carried import Carriers
from mesh.daemon.config import Config
from mesh.daemon.contacts import LiveProfile
from mesh.daemon.files import FileRecord, Files
from mesh.daemon.history import HISTORY, History, HistoryError
from mesh.daemon.links import FrameLink, LinkTable
from mesh.daemon.links import tcp as tcp_links
from mesh.daemon.links.ble.link import BleLinks
from mesh.daemon.links.gateway import Gateways, check_pins
from mesh.daemon.links.lan import Lan
from mesh.daemon.links.tcp import TcpLinks
from mesh.daemon.local_api import LocalApi
from mesh.daemon.lock import ProfileLocked, lock_profile, unlock_profile
from mesh.daemon.ops import Ops
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.ipc import events as api
from mesh.photo_metadata import OutgoingFile
from mesh.profile import Profile, ProfileError

log = logging.getLogger(__name__)

STATE_KEY = "node"  # the node state as one blob, before it was saved as rows
DEFAULT_TTL = 7 * 86400
LOCK_WAIT = 2.0  # seconds to wait for daemon.lock (a contact command holds it a moment)


class Daemon:
    def __init__(
        self,
        profile: Profile,
        config: Config,
        runtime_dir: Path,
        *,
        rng: Rng = os.urandom,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = True,
    ) -> None:
        self._lock = _lock(profile)
        self.handle_signals = handle_signals
        self.profile = profile
        self.config = config
        self.runtime_dir = runtime_dir
        self.rng = rng
        self.clock = clock
        self.started = clock()
        self.store = SQLiteStore(profile.store_path, store_quotas(config))
        self.history = History(profile.path / HISTORY, profile.data_key, rng)
        self.files = Files(self.history)
        self.node = Node(
            profile.identity,
            profile.ring,
            self.store,
            rng,
            node_config(config, relay_link_key(profile) if config.mode == "relay" else None),
        )
        self.live = LiveProfile(self)
        self.live.add_to_node()
        self._start_state()
        self.carriers = Carriers()  # "carried by N neighbours"
        self.carriers.load(self.history.awaiting())
        self.node.observer = self._observed
        self.stats: dict[str, int] = {}
        self.ops = Ops(self)  # the local API's operations
        self.local_api = LocalApi(self, runtime_dir)
        self.tcp_port = 0
        self._jitter = random.Random(int.from_bytes(rng(8), "big"))
        self.table = LinkTable()  # every transport's links, one id space
        self.tcp = TcpLinks(self, clock, self.table.next_id)
        self.table.add(self.tcp)
        self.ble = BleLinks(self, clock, self.table.next_id, self._jitter)  # run if ble.enabled
        self.table.add(self.ble)
        self.lan = Lan(self.tcp, self._jitter)
        self.gateways = Gateways(self.tcp, self._jitter)
        self._refs = itertools.count(1)  # SendMessage.ref of send_text's messages
        self._sends: dict[int, MessageQueued | SendFailed] = {}  # ref -> what became of it
        self._wake = trio.Event()
        self._nursery: trio.Nursery | None = None
        self._panicked = False
        self._stopped_by = ""  # the signal that stopped us
        self.broken = False  # an event failed half way: stop, save nothing

    # ---- the node ---------------------------------------------------------------------
    def now(self) -> int:
        return int(self.clock())

    def feed(self, event: Event) -> list[Action]:
        return self.call_node(lambda now: self.node.handle(event, now))

    def call_node(self, step: Callable[[int], list[Action]]) -> list[Action]:
        """The one way the node is driven (events, and local calls such as publishing a
        bulletin or importing a bundle). One store transaction per step: a delivered
        envelope leaves the store (and enters the seen-set) only after the message is in
        the history and the node's state is saved, so a crash in between cannot lose it
        (on restart the exactly-once guard in the saved state stops a second delivery)."""
        if self.broken:
            return []
        try:
            with self.store.transaction():
                actions = step(self.now())
                self._apply(actions)
                self.live.after_step()  # a rotated prekey is on disk before it is sent
        except BaseException:
            # The store rolled back but the node's memory did not: from here on the two
            # may disagree, so this process must stop without saving (crash-only; the
            # service manager restarts it from what is on disk).
            self.broken = True
            if self._nursery is not None:
                self._nursery.cancel_scope.cancel()
            raise
        self._wake.set()
        return actions

    @property
    def links(self) -> dict[int, FrameLink]:
        """The live links of every transport by id (a snapshot)."""
        return {x.id: x for x in self.table}

    def count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _start_state(self) -> None:
        try:
            self._load_state(self.now())
        except (HistoryError, DecodeError) as exc:
            self.history.close()
            self.store.close()
            unlock_profile(self._lock, self.profile.path)
            where = self.profile.path
            raise DaemonError(f"the saved node state in {where} is damaged: {exc}") from None

    def _load_state(self, now: int) -> None:
        """The node's saved rows; or the single blob an older daemon saved, then
        rewritten as rows (one transaction); then changes are tracked from here."""
        rows = self.history.load_rows()
        if rows is not None:
            self.node.saved.restore_rows(rows, now)
        else:
            saved = self.history.load_state(STATE_KEY)
            if saved is not None:
                self.node.saved.restore(saved, now)
            else:
                self.node.saved.index_store(now)
            with self.history.transaction():
                self.history.save_rows(self.node.saved.rows())
                self.history.delete_state(STATE_KEY)
        self.node.saved.track()

    def _commit_step(self, actions: list[Action]) -> None:
        """Before anything of a step is sent or told and before the store commits: the
        messages it delivered, the acknowledgements and the node rows it changed (a
        ratchet that moved, a receipt), in one history commit. Delivered exactly once,
        and no message key is ever used twice after a crash."""
        changes = self.node.saved.take_changes()
        delivered = [a for a in actions if isinstance(a, MessageDelivered)]
        acked = [a for a in actions if isinstance(a, MessageAcked)]
        files = [a for a in actions if isinstance(a, FileAction)]
        carried = self.carriers.step(actions)
        if not (changes or delivered or acked or carried or files) or self._panicked:
            return
        with self.history.transaction():
            self.files.commit(files)  # chunks are on disk before their receipts leave
            for got in delivered:
                text = _text(got.body)
                self.history.add(got.sender, False, got.msg_id, got.created, text)
            for ack in acked:
                self.history.mark(ack.msg_id, "acked")
            for msg_id, carriers in carried.items():
                self.history.carried(msg_id, carriers)  # a message queued now: send_text
            self.history.save_rows(changes)
        for msg_id, carriers in carried.items():
            self._publish(api.MessageCarried(msg_id, carriers))

    def _observed(self, what: str, envelope_id: bytes, link: int, _frame: bytes) -> None:
        """The node's observer hook: an envelope went to (or came from) a link."""
        peer = self.node.links.get(link)
        if what == "sent" and peer is not None:
            self.carriers.handed(envelope_id, peer.peer)

    def _apply(self, actions: list[Action]) -> None:
        check_pins(self.tcp.links, actions, self.count)
        self._commit_step(actions)
        carry_out(actions, self)

    # ---- the node's actions (mesh.core.driver.ActionSink) -----------------------------
    def on_transmit(self, act: Transmit) -> None:
        self.table.send(act.link, act.data)

    def on_close_link(self, act: CloseLink) -> None:
        log.info("link %d closed: %s", act.link, act.reason)
        self.count("links_closed_by_node")
        self.table.drop(act.link)

    def on_link_opened(self, act: LinkOpened) -> None:
        info = self.table.get(act.link)
        if info is not None and not info.closing:
            info.opened = True
            self._publish(api.LinkChanged(act.link, info.kind, True))

    def on_message_delivered(self, act: MessageDelivered) -> None:
        name, text = self._contact_name(act.sender), _text(act.body)
        self._publish(api.MessageReceived(act.msg_id, act.sender, name, act.created, text))

    def on_message_queued(self, act: MessageQueued) -> None:
        if act.ref:
            self._sends[act.ref] = act  # send_text takes it

    def on_message_acked(self, act: MessageAcked) -> None:
        self._publish(api.MessageStateChanged(act.msg_id))

    def on_send_failed(self, act: SendFailed) -> None:
        if act.ref:
            self._sends[act.ref] = act  # send_text takes it; a refused bulletin: the op reads it

    def on_file(self, act: FileAction) -> None:
        """Tell subscribers (what the action says is in the history already)."""
        match act:
            case FileOffered():
                name = self._contact_name(act.sender)
                said = api.MessageReceived(
                    act.msg_id, act.sender, name, act.created, act.name, file=True
                )
                self._publish(said)
            case ChunkReceived():
                rec = self.files.of_file(act.file_id)
                if rec is not None:
                    self._publish(api.FileProgress(rec.msg_id, act.received, act.count))
            case FileReceived() | FileDropped():
                rec = self.files.of_file(act.file_id)
                if rec is not None:
                    state = self.files.state(rec.msg_id)
                    self._publish(api.MessageStateChanged(rec.msg_id, state))

    def on_group(self, act: GroupAction) -> None:
        return  # the daemon does not keep groups yet

    def on_bulletin_stored(self, act: BulletinStored) -> None:
        if self.local_api.subscribed:  # nothing is worked out while nobody listens
            said = bulletins.event(self, act.bulletin)
            if said is not None:
                self._publish(said)

    # ---- what links need of the driver (mesh.daemon.links.tcp.LinkHost) ----------------
    def link_gone(self, info: FrameLink) -> None:
        """A link ended (the node has been told)."""
        self._publish(api.LinkChanged(info.id, info.kind, False))

    def source_label(self, remote: str) -> bytes:
        return tcp_links.source_label(remote, self.profile.data_key)

    def _save_state(self) -> None:
        """Node rows changed outside a step (a contact added or removed)."""
        if self._panicked or self.broken:
            return
        self.history.save_rows(self.node.saved.take_changes())

    def _contact_name(self, key: bytes) -> str:
        return self.live.name_of(key)

    def _publish(self, event: api.Event) -> None:
        self.local_api.publish(event)

    def contact_key(self, contact_name: str) -> bytes | None:
        """A contact's identity key (None for ""), or ``ipc.IpcError`` naming no contact."""
        if not contact_name:
            return None
        try:
            return self.profile.contact(contact_name).identity.sign_public
        except ProfileError as exc:
            raise ipc.IpcError(str(exc)) from None

    def _writable(self, contact_name: str) -> tuple[str, bytes]:
        """A contact's name and key, if we may write to them (``ipc.IpcError`` if not)."""
        try:
            contact = self.profile.contact(contact_name)
        except ProfileError as exc:
            raise ipc.IpcError(str(exc)) from None
        if contact.key_changed:
            raise ipc.IpcError(f"{contact.name}'s key changed: verify it before writing")
        return contact.name, contact.identity.sign_public

    def _queue(self, name: str, event: Callable[[int], Event]) -> MessageQueued:
        """Feed a send (``event(ref)``); what the node queued, or ``ipc.IpcError``."""
        ref = next(self._refs)
        self.feed(event(ref))
        result = self._sends.pop(ref, None)
        if isinstance(result, SendFailed):
            raise ipc.IpcError(f"cannot send to {name}: {result.reason}")
        if not isinstance(result, MessageQueued):
            raise ipc.IpcError("the node did not queue the message")
        return result

    def _count_carried(self, msg_id: bytes) -> None:
        if self.carriers.count(msg_id):  # handed over in the step that queued it
            self.history.carried(msg_id, self.carriers.count(msg_id))

    def send_text(self, contact_name: str, text: str) -> bytes:
        """Queue a message; returns its id once the envelope and the session state are
        committed. Raises ``ipc.IpcError`` with a readable reason."""
        name, key = self._writable(contact_name)
        sent = self._queue(name, lambda ref: SendMessage(key, text.encode(), DEFAULT_TTL, ref))
        msg_id = sent.msg_id
        self.history.add(key, True, msg_id, self.now(), text, sent.envelope_id)  # ratchet: saved
        self._count_carried(msg_id)
        return msg_id

    def send_file(self, contact_name: str, file: OutgoingFile) -> bytes:
        """Queue a file (its metadata already stripped); returns its message id once its
        chunks, its manifest and the session state are committed."""
        name, key = self._writable(contact_name)
        sent = self._queue(
            name, lambda ref: SendFile(key, file.name, file.data, file.mime, DEFAULT_TTL, ref)
        )
        rec = FileRecord(
            sent.msg_id,
            key,
            True,
            b"",
            clean_name(file.name),
            file.mime,
            len(file.data),
            chunk_count(len(file.data)),
            0,
            file_digest(file.data),
            file.note,
            self.now(),
        )
        with self.history.transaction():
            self.files.sent(rec, sent.envelope_id)
        self._count_carried(sent.msg_id)
        return sent.msg_id

    # ---- running ----------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                if self.handle_signals:
                    await nursery.start(self._signals, nursery.cancel_scope)
                listeners = await trio.open_tcp_listeners(
                    self.config.port, host=self.config.listen or None
                )
                self.tcp_port = listeners[0].socket.getsockname()[1]
                nursery.start_soon(trio.serve_listeners, self.tcp.incoming, listeners)
                await nursery.start(self.local_api.serve)
                nursery.start_soon(self._timer)
                self.feed(Tick())
                self.call_node(lambda now: self.node.deliver_stored(now))
                self.call_node(lambda now: self.node.publish_prekey(now))
                if self.config.lan:
                    await self.lan.start(nursery, self.tcp_port, self.rng)
                if self.config.ble:
                    await nursery.start(self.ble.run)
                gateways = self.gateways.start(nursery)
                log.info("daemon up: TCP port %d, %d gateway peers", self.tcp_port, gateways)
                task_status.started(self)
        finally:
            self.close()

    async def _signals(
        self, scope: trio.CancelScope, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """SIGTERM (systemd, kill) and SIGINT (Ctrl-C) stop the daemon cleanly: the
        nursery is cancelled (links closed, the socket removed), then :meth:`close` saves
        the state, removes the lock file and logs one line."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            task_status.started()
            async for signum in signals:
                self._stopped_by = signal.Signals(signum).name
                scope.cancel()
                return

    def close(self) -> None:
        saved = "state saved"
        self.live.after_step()  # a rotation whose save failed: one more try
        try:
            self._save_state()
        except Exception:  # noqa: BLE001 - the database may already be gone after a panic
            saved = "the state could NOT be saved"
            log.warning("could not save the node state on the way out")
        self.history.close()
        self.store.close()
        unlock_profile(self._lock, self.profile.path)
        if self._stopped_by:
            log.info("stopped on %s: %s, links closed", self._stopped_by, saved)

    async def _timer(self) -> None:
        while True:
            deadline = self.node.next_deadline()
            wait = 30.0 if deadline is None else max(0.0, deadline - self.clock())
            self._wake = trio.Event()
            with trio.move_on_after(min(wait, 30.0) + 0.001):
                await self._wake.wait()
            if deadline is not None and self.clock() >= deadline:
                self.feed(Tick())


def _lock(profile: Profile) -> TextIO:
    """Take the profile's daemon.lock and re-read the profile from disk (a command may
    have changed it meanwhile)."""
    try:
        lock = lock_profile(profile.path, wait=LOCK_WAIT)
    except ProfileLocked:
        raise DaemonError(
            f"another daemon is already running for the profile in {profile.path}"
        ) from None
    try:
        profile.reload()
    except ProfileError as exc:
        unlock_profile(lock, profile.path)
        raise DaemonError(str(exc)) from None
    return lock


def store_quotas(config: Config) -> Quotas:
    return Quotas(
        max_total_bytes=config.store_max_bytes,
        max_total_count=config.store_max_envelopes,
        max_source_bytes=max(config.store_max_bytes // 8, 1 << 20),
    )


def node_config(config: Config, link_key: bytes | None = None) -> NodeConfig:
    """What the node runs with, from the daemon's configuration (the rest: defaults);
    ``link_key``: a relay's long-term link key (users' daemons: none)."""
    return NodeConfig(
        strategy=config.strategy,
        receipt_delay=(config.receipt_delay[0], config.receipt_delay[1]),
        link_rate=config.link_rate,
        link_burst=config.link_burst,
        idle_timeout=config.idle_timeout,
        sync_symbols=config.sync_symbols,
        trial_rate=config.trial_rate,
        stranger_sessions=config.stranger_sessions,
        long_term_link_key=link_key,
        max_incoming_files=config.files_max_incoming,
        max_incoming_bytes=config.files_max_incoming_bytes,
        relay_chunks=config.files_relay,
        files_from_strangers=config.files_from_strangers,
    )


def relay_link_key(profile: Profile) -> bytes:
    """A relay's long-term link key (stable across restarts, so users may pin it; derived
    from the profile's secret key, so it is shredded with it). Users' daemons use a fresh
    link key per connection instead: nothing to track them by."""
    return blake2b(b"relay link key", key=profile.identity.dh_private, digest_size=32)


class DaemonError(Exception):
    """One readable line: why the daemon cannot start."""


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")
