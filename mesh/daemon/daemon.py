"""The daemon: one real node on trio, driving the same sans-I/O ``Node`` as the simulator.

Theory of operation
-------------------
:class:`Daemon` owns the node, its SQLite store, the encrypted history and every link.
All protocol meaning lives in the node: the daemon turns sockets and time into events
(``LinkUp``, ``FrameReceived``, ``LinkDown``, ``Tick``, ``SendMessage``) and carries out the
actions the node returns (write a frame, close a link, record a delivered message).
:meth:`Daemon.call_node` is the only place the node is driven, so it runs one step at a time.

Links are TCP streams: the daemon hands the node whatever bytes arrive, and the node's
link layer cuts length-framed records out of them (bounded before anything is buffered)
and pads what it sends to a size bucket (``LinkUp(stream=True)``). Where links come from:

- LAN: :mod:`mesh.daemon.discovery` beacons (no identity); of two daemons that hear each
  other, the one with the lower beacon instance dials, the other accepts;
- gateway: configured ``host:port`` peers, redialled with exponential backoff and jitter;
- anything that connects to the TCP listener.

A link that breaks the protocol (garbage, oversized or endless frames, a failed
decryption) is closed by the node and counted in ``stats``; other links carry on. The
timer task sleeps until ``node.next_deadline()`` and is woken when an event moves it.

Flow control (:mod:`mesh.daemon.flow`): what the node sends on a link goes into that
link's outbox, counted in bytes, which never makes a step wait. While a link's outbox
holds 1 MiB or more, the peer's input is read but not fed to the node until the writer
has drained it below half that: a peer that reads slowly is sent less, not cut off, and
TCP pushes back once 1 MiB of its input waits. Only a link whose outbox would pass
48 MiB (a peer that has stopped reading while other links and local sends keep offering
to it), or the fullest link when all outboxes together would pass 64 MiB, is dropped as
slow (``links_dropped_slow``); each pause counts ``backpressure_pauses``. Nothing waits
on a slow link but that link's own input.

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
from dataclasses import dataclass, field
from pathlib import Path

import trio

from crypto.errors import DecodeError
from crypto.primitives import Rng, blake2b
from mesh import ipc
from mesh.core.driver import carry_out
from mesh.core.events import (
    Action,
    CloseLink,
    Event,
    FrameReceived,
    LinkDown,
    LinkOpened,
    LinkUp,
    MessageAcked,
    MessageDelivered,
    MessageQueued,
    SendFailed,
    SendMessage,
    Tick,
    Transmit,
)
from mesh.core.node import Node, NodeConfig
from mesh.core.store import Quotas
from mesh.daemon import flow
from mesh.daemon.config import Config, parse_host_port
from mesh.daemon.contacts import LiveProfile
from mesh.daemon.discovery import Discovery
from mesh.daemon.history import HISTORY, History, HistoryError
from mesh.daemon.local_api import LocalApi
from mesh.daemon.lock import ProfileLocked, lock_profile, unlock_profile
from mesh.daemon.ops import Ops, stored_bulletins
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.ipc import events as api
from mesh.profile import Profile, ProfileError

log = logging.getLogger(__name__)

TCP_MTU = 4096  # unused on stream links beyond the link layer's bounds check
STATE_KEY = "node"  # the node state as one blob, before it was saved as rows
DEFAULT_TTL = 7 * 86400
LOCK_WAIT = 2.0  # seconds to wait for daemon.lock (a contact command holds it a moment)


@dataclass(slots=True)
class LinkInfo:
    id: int
    kind: str  # "lan", "gateway" or "incoming"
    remote: str
    since: float
    scope: trio.CancelScope
    opened: bool = False
    pin: bytes = b""  # the link key this peer must have (gateway.peers), b"": any
    label: str = ""  # how logs name the peer without its address
    outbox: flow.ByteQueue = field(default_factory=flow.ByteQueue)  # frames to send
    inbox: flow.ByteQueue = field(default_factory=flow.ByteQueue)  # read, not yet fed

    @property
    def host(self) -> str:
        return self.remote.rsplit(":", 1)[0]


@dataclass
class Backoff:
    """Exponential backoff with full jitter, from ``base`` up to ``cap`` seconds."""

    base: float = 1.0
    cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self) -> float:
        delay = min(self.cap, self.base * (2**self.failures))
        self.failures += 1
        return self.rng.uniform(delay / 2, delay)

    def reset(self) -> None:
        self.failures = 0


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
        try:
            self._lock = lock_profile(profile.path, wait=LOCK_WAIT)
        except ProfileLocked:
            raise DaemonError(
                f"another daemon is already running for the profile in {profile.path}"
            ) from None
        try:
            profile.reload()  # what is on disk now: a command may have changed it meanwhile
        except ProfileError as exc:
            unlock_profile(self._lock, profile.path)
            raise DaemonError(str(exc)) from None
        self.handle_signals = handle_signals
        self.profile = profile
        self.config = config
        self.runtime_dir = runtime_dir
        self.rng = rng
        self.clock = clock
        self.started = clock()
        quotas = Quotas(
            max_total_bytes=config.store_max_bytes,
            max_total_count=config.store_max_envelopes,
            max_source_bytes=max(config.store_max_bytes // 8, 1 << 20),
        )
        self.store = SQLiteStore(profile.store_path, quotas)
        self.history = History(profile.path / HISTORY, profile.data_key, rng)
        self.node = Node(
            profile.identity,
            profile.ring,
            self.store,
            rng,
            NodeConfig(
                strategy=config.strategy,
                receipt_delay=(config.receipt_delay[0], config.receipt_delay[1]),
                link_rate=config.link_rate,
                link_burst=config.link_burst,
                idle_timeout=config.idle_timeout,
                sync_symbols=config.sync_symbols,
                trial_rate=config.trial_rate,
                stranger_sessions=config.stranger_sessions,
                long_term_link_key=relay_link_key(profile) if config.mode == "relay" else None,
            ),
        )
        self.live = LiveProfile(self)
        self.live.add_to_node()
        try:
            self._load_state(int(clock()))
        except (HistoryError, DecodeError) as exc:
            self.history.close()
            self.store.close()
            unlock_profile(self._lock, profile.path)
            raise DaemonError(f"the saved node state in {profile.path} is damaged: {exc}") from None
        self.links: dict[int, LinkInfo] = {}
        self.stats: dict[str, int] = {}
        self.ops = Ops(self)  # the local API's operations
        self.local_api = LocalApi(self, runtime_dir)
        self.tcp_port = 0
        self._ids = itertools.count(1)
        self._refs = itertools.count(1)  # SendMessage.ref of send_text's messages
        self._sends: dict[int, MessageQueued | SendFailed] = {}  # ref -> what became of it
        self._wake = trio.Event()
        self._lan_dialing: set[tuple[str, int]] = set()
        self._gateways: dict[str, tuple[str, bytes]] = {}  # host:port -> (log label, pin)
        self._lan_backoff: dict[tuple[str, int], Backoff] = {}
        self._nursery: trio.Nursery | None = None
        self._discovery: Discovery | None = None
        self._panicked = False
        self._stopped_by = ""  # the signal that stopped us
        self.broken = False  # an event failed half way: stop, save nothing
        self._jitter = random.Random(int.from_bytes(rng(8), "big"))

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

    def _count(self, key: str) -> None:
        self.stats[key] = self.stats.get(key, 0) + 1

    def _load_state(self, now: int) -> None:
        """The node's saved rows; or the single blob an older daemon saved, then
        rewritten as rows (one transaction); then changes are tracked from here."""
        rows = self.history.load_rows()
        if rows is not None:
            self.node.restore_rows(rows, now)
        else:
            saved = self.history.load_state(STATE_KEY)
            if saved is not None:
                self.node.restore_state(saved, now)
            else:
                self.node.index_store(now)
            with self.history.transaction():
                self.history.save_rows(self.node.state_rows())
                self.history.delete_state(STATE_KEY)
        self.node.track_state_changes()

    def _commit_step(self, actions: list[Action]) -> None:
        """Before anything of a step is sent or told and before the store commits: the
        messages it delivered, the acknowledgements and the node rows it changed (a
        ratchet that moved, a receipt), in one history commit. Delivered exactly once,
        and no message key is ever used twice after a crash."""
        changes = self.node.take_state_changes()
        delivered = [a for a in actions if isinstance(a, MessageDelivered)]
        acked = [a for a in actions if isinstance(a, MessageAcked)]
        if not (changes or delivered or acked) or self._panicked:
            return
        with self.history.transaction():
            for got in delivered:
                text = _text(got.body)
                self.history.add(got.sender, False, got.msg_id, got.created, text)
            for ack in acked:
                self.history.mark(ack.msg_id, "acked")
            self.history.save_rows(changes)

    def _apply(self, actions: list[Action]) -> None:
        self._check_pins(actions)
        self._commit_step(actions)
        carry_out(actions, self)
        for event in stored_bulletins(self):
            self._publish(event)

    # ---- the node's actions (mesh.core.driver.ActionSink) -----------------------------
    def on_transmit(self, act: Transmit) -> None:
        info = self.links.get(act.link)
        if info is not None and not info.scope.cancel_called:
            self._queue(info, act.data)

    def on_close_link(self, act: CloseLink) -> None:
        log.info("link %d closed: %s", act.link, act.reason)
        self._count("links_closed_by_node")
        self._drop(act.link)

    def on_link_opened(self, act: LinkOpened) -> None:
        info = self.links.get(act.link)
        if info is not None and not info.scope.cancel_called:
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

    def _check_pins(self, actions: list[Action]) -> None:
        """A link to a peer with a pinned key whose handshake revealed another key is cut
        before anything more is sent on it (its last handshake message included)."""
        for act in actions:
            if not isinstance(act, LinkOpened):
                continue
            info = self.links.get(act.link)
            if info is None or not info.pin or act.peer_key == info.pin:
                continue
            self._count("links_refused_key")
            log.warning("%s: link key is not the pinned one; link refused", info.label)
            log.debug("%s (%s) has link key %s", info.label, info.remote, act.peer_key.hex())
            info.scope.cancel()

    def _queue(self, info: LinkInfo, frame: bytes) -> None:
        """Put a frame on a link's outbox; never waits. A frame that would take the
        link's outbox past ``flow.SLOW_CAP`` drops the link, and one that would take all
        outboxes together past ``flow.ALL_LINKS_CAP`` drops the link holding the most
        (this one, or another): their peers read too little of what they are sent."""
        if info.outbox.bytes + len(frame) > flow.SLOW_CAP:
            self._drop_slow(info)
            return
        while sum(x.outbox.bytes for x in self.links.values()) + len(frame) > flow.ALL_LINKS_CAP:
            fullest = max(self.links.values(), key=lambda x: x.outbox.bytes)
            self._drop_slow(fullest)
            if fullest is info:
                return
        info.outbox.put(frame)

    def _drop_slow(self, info: LinkInfo) -> None:
        self._count("links_dropped_slow")
        log.info(
            "link %d dropped: its peer reads too slowly (%d bytes queued)",
            info.id,
            info.outbox.bytes,
        )
        self._drop(info.id)

    def _drop(self, link: int) -> None:
        info = self.links.pop(link, None)
        if info is not None:
            info.scope.cancel()
            info.outbox.clear()  # nothing more is written: free it now
            info.inbox.clear()

    def _save_state(self) -> None:
        """Node rows changed outside a step (a contact added or removed)."""
        if self._panicked or self.broken:
            return
        self.history.save_rows(self.node.take_state_changes())

    def _contact_name(self, key: bytes) -> str:
        return self.live.name_of(key)

    def _publish(self, event: api.Event) -> None:
        self.local_api.publish(event)

    def send_text(self, contact_name: str, text: str) -> bytes:
        """Queue a message; returns its id once the envelope and the session state are
        committed. Raises ``ipc.IpcError`` with a readable reason."""
        try:
            contact = self.profile.contact(contact_name)
        except ProfileError as exc:
            raise ipc.IpcError(str(exc)) from None
        if contact.key_changed:
            raise ipc.IpcError(f"{contact.name}'s key changed: verify it before writing")
        key = contact.identity.sign_public
        ref = next(self._refs)
        self.feed(SendMessage(key, text.encode(), DEFAULT_TTL, ref))
        result = self._sends.pop(ref, None)
        if isinstance(result, SendFailed):
            raise ipc.IpcError(f"cannot send to {contact.name}: {result.reason}")
        if not isinstance(result, MessageQueued):
            raise ipc.IpcError("the node did not queue the message")
        self.history.add(key, True, result.msg_id, self.now(), text)  # the ratchet: saved
        return result.msg_id

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
                nursery.start_soon(trio.serve_listeners, self._incoming, listeners)
                await nursery.start(self.local_api.serve)
                nursery.start_soon(self._timer)
                self.feed(Tick())
                self.call_node(lambda now: self.node.deliver_stored(now))
                self.call_node(lambda now: self.node.publish_prekey(now))
                if self.config.lan:
                    self._discovery = Discovery(
                        self.config.discovery_group,
                        self.config.discovery_port,
                        self.tcp_port,
                        self.config.beacon_interval,
                        self.rng,
                        self._on_beacon,
                        self.config.interfaces,
                    )
                    await nursery.start(self._discovery.run)
                for i, peer in enumerate(self.config.peers):
                    host, port = parse_host_port(peer, "gateway.peers")
                    keys = self.config.peer_keys
                    pin = bytes.fromhex(keys[i]) if i < len(keys) else b""
                    self._gateways[f"{host}:{port}"] = (f"gateway.peers[{i}]", pin)
                    nursery.start_soon(self._gateway, host, port)
                log.info(
                    "daemon up: TCP port %d, %d gateway peers",
                    self.tcp_port,
                    len(self.config.peers),
                )
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

    # ---- links ------------------------------------------------------------------------
    async def _incoming(self, stream: trio.SocketStream) -> None:
        remote = _peer_name(stream)
        refused = self._refuse(remote)
        if refused:
            self._count(f"links_refused_{refused}")
            log.debug("refused a connection from %s: %s", remote, refused)
            await trio.aclose_forcefully(stream)
            return
        await self.run_link(stream, initiator=False, kind="incoming", remote=remote)

    def _refuse(self, remote: str) -> str:
        """Why a new link must not start now ("" if it may): the caps on links in all,
        from one address and in their handshake (a flood of connections costs a Noise
        handshake each; a Pi relay has 256 MiB)."""
        cfg = self.config
        if len(self.links) >= cfg.max_links:
            return "total"
        host = remote.rsplit(":", 1)[0]
        if sum(1 for x in self.links.values() if x.host == host) >= cfg.max_links_per_address:
            return "per_address"
        if sum(1 for x in self.links.values() if not x.opened) >= cfg.max_handshakes:
            return "handshakes"
        return ""

    async def run_link(
        self,
        stream: trio.abc.Stream,
        initiator: bool,
        kind: str,
        remote: str,
        *,
        pin: bytes = b"",
        label: str = "",
    ) -> None:
        """Carry one link until either side closes it; frames in, frames out."""
        link = next(self._ids)
        scope = trio.CancelScope()
        info = LinkInfo(link, kind, remote, self.clock(), scope, pin=pin, label=label)
        self.links[link] = info
        log.debug("link %d (%s) with %s", link, kind, remote)
        self._count(f"links_{kind}")
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(flow.write_out, stream, info.outbox)
                    nursery.start_soon(self._feeder, info)
                    up = LinkUp(link, initiator, TCP_MTU, True, self._source_label(remote))
                    self.feed(up)
                    await flow.read_in(stream, info.inbox, lambda: link in self.links)
                    while info.inbox and link in self.links:  # the peer is done: feed the rest
                        self.feed(FrameReceived(link, info.inbox.pop()))
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            log.info("link %d (%s) broke: %s", link, kind, _reason(group.exceptions[0]))
        except* Exception:  # a bug on one link must not stop the others
            self._count("links_internal_error")
            log.exception("link %d (%s): internal error; link dropped", link, kind)
        finally:
            if self.links.pop(link, None) is not None:
                self.feed(LinkDown(link))
                self._publish(api.LinkChanged(link, kind, False))
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    def _source_label(self, remote: str) -> bytes:
        """What per-source quotas and token buckets count a link against: its remote
        address (not the port, not the link key: both are free to change), as a keyed hash
        so the store holds no address of anyone who was near."""
        host = remote.rsplit(":", 1)[0]
        key = blake2b(b"steppe source labels", key=self.profile.data_key, digest_size=32)
        return blake2b(host.encode(), key=key, digest_size=16)

    async def _feeder(self, info: LinkInfo) -> None:
        """The peer's input to the node, paused while the link's outbox is full."""
        await flow.feed_in(
            info.inbox,
            info.outbox,
            lambda data: self.feed(FrameReceived(info.id, data)),
            lambda: self._count("backpressure_pauses"),
        )

    async def dial(self, host: str, port: int, kind: str) -> bool:
        """Connect and run one link; False if the connection could not be made. A gateway
        peer is named in logs by its place in ``gateway.peers`` (logs at the default level
        hold no addresses) and must show the link key pinned there, if any."""
        no_pin = ("", b"")
        label, pin = self._gateways.get(f"{host}:{port}", no_pin) if kind == "gateway" else no_pin
        try:
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as exc:
            log.info("cannot reach %s (%s)", label or f"a {kind} peer", _reason(exc))
            log.debug("cannot reach %s:%d: %s", host, port, exc)
            return False
        remote = f"{host}:{port}"
        await self.run_link(stream, initiator=True, kind=kind, remote=remote, pin=pin, label=label)
        return True

    async def _gateway(self, host: str, port: int) -> None:
        backoff = Backoff(cap=self.config.backoff_max, rng=self._jitter)
        while True:
            began = trio.current_time()
            ok = await self.dial(host, port, "gateway")
            if ok and trio.current_time() - began > 10:
                backoff.reset()
            await trio.sleep(backoff.next_delay())

    def _on_beacon(self, ip: str, port: int, instance: bytes) -> None:
        if self._discovery is None or self._nursery is None or self._refuse(f"{ip}:{port}"):
            return
        addr = (ip, port)
        if self._discovery.instance > instance or addr in self._lan_dialing:
            return  # the other side dials, or we are already connected
        self._lan_dialing.add(addr)
        self._nursery.start_soon(self._lan_dial, addr)

    async def _lan_dial(self, addr: tuple[str, int]) -> None:
        """Dial a neighbour heard by beacon. A failed dial (or a link that died young)
        keeps the address blocked for an exponentially growing, jittered delay."""
        backoff = self._lan_backoff.setdefault(
            addr, Backoff(base=2.0, cap=self.config.backoff_max, rng=self._jitter)
        )
        try:
            began = trio.current_time()
            ok = await self.dial(addr[0], addr[1], "lan")
            if ok and trio.current_time() - began > 10:
                backoff.reset()
            else:
                await trio.sleep(backoff.next_delay())
        finally:
            self._lan_dialing.discard(addr)


def relay_link_key(profile: Profile) -> bytes:
    """A relay's long-term link key (stable across restarts, so users may pin it; derived
    from the profile's secret key, so it is shredded with it). Users' daemons use a fresh
    link key per connection instead: nothing to track them by."""
    return blake2b(b"relay link key", key=profile.identity.dh_private, digest_size=32)


class DaemonError(Exception):
    """One readable line: why the daemon cannot start."""


def _reason(exc: BaseException) -> str:
    """Why a connection failed, without the addresses some exceptions' text holds."""
    while exc.__cause__ is not None and not (isinstance(exc, OSError) and exc.errno):
        exc = exc.__cause__  # trio wraps the OSError (several, for each address tried)
        if isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
    if isinstance(exc, OSError) and exc.errno is not None:
        return os.strerror(exc.errno)
    if isinstance(exc, trio.TooSlowError):
        return "timed out"
    return type(exc).__name__


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "?"
