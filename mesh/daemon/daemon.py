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

Durability: the store commits an envelope before the node asks for the next one, and the
node's state (sessions, receipts) is written to the encrypted history before a send is
acknowledged to the client and right after a message is delivered, so a ``kill -9`` loses
nothing that was acknowledged.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import trio

from crypto.bulletin import Bulletin
from crypto.errors import DecodeError
from crypto.identity import fingerprint
from crypto.noise import KeyPair
from crypto.primitives import Rng, blake2b
from mesh import ipc
from mesh.core import bundle
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
from mesh.daemon.config import Config, parse_host_port
from mesh.daemon.discovery import Discovery
from mesh.daemon.history import HISTORY, History, HistoryError
from mesh.daemon.sqlite_store import SQLiteStore
from mesh.profile import Profile, ProfileError, atomic_write

log = logging.getLogger(__name__)

TCP_MTU = 4096  # unused on stream links beyond the link layer's bounds check
SEND_QUEUE = 4096  # frames waiting for a slow peer before the link is dropped
STATE_KEY = "node"
STATE_EVERY = 60.0  # seconds between periodic saves of the node state
DEFAULT_TTL = 7 * 86400


@dataclass(slots=True)
class LinkInfo:
    id: int
    kind: str  # "lan", "gateway" or "incoming"
    remote: str
    since: float
    send: trio.MemorySendChannel[bytes]
    scope: trio.CancelScope
    opened: bool = False

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
        self._lock = _lock_profile(profile.path)
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
        for c in profile.contacts:
            if not c.key_changed:
                self.node.add_contact(c.card.identity)
        try:
            saved = self.history.load_state(STATE_KEY)
            if saved is not None:
                self.node.restore_state(saved, int(clock()))
            else:
                self.node.index_store(int(clock()))
        except (HistoryError, DecodeError) as exc:
            self.history.close()
            self.store.close()
            self._lock.close()
            raise DaemonError(f"the saved node state in {profile.path} is damaged: {exc}") from None
        self.links: dict[int, LinkInfo] = {}
        self.stats: dict[str, int] = {}
        self.tcp_port = 0
        self._ids = itertools.count(1)
        self._wake = trio.Event()
        self._subscribers: list[trio.MemorySendChannel[dict[str, Any]]] = []
        self._lan_dialing: set[tuple[str, int]] = set()
        self._lan_backoff: dict[tuple[str, int], Backoff] = {}
        self._nursery: trio.Nursery | None = None
        self._discovery: Discovery | None = None
        self._dirty = False
        self._panicked = False
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

    def _apply(self, actions: list[Action]) -> None:
        delivered = [a for a in actions if isinstance(a, MessageDelivered)]
        if delivered:
            # Before anyone is told and before the store commits the envelopes' removal:
            # delivered exactly once. One history commit for the whole step (a record
            # can carry dozens of messages), not two per message.
            with self.history.transaction():
                for got in delivered:
                    text = _text(got.body)
                    self.history.add(got.sender, False, got.msg_id, got.created, text)
                self._save_state()
        for act in actions:
            if isinstance(act, Transmit):
                info = self.links.get(act.link)
                if info is None:
                    continue
                try:
                    info.send.send_nowait(act.data)
                except trio.WouldBlock:
                    self._count("links_dropped_slow")
                    self._drop(act.link)
            elif isinstance(act, CloseLink):
                log.info("link %d closed: %s", act.link, act.reason)
                self._count("links_closed_by_node")
                self._drop(act.link)
            elif isinstance(act, LinkOpened):
                info = self.links.get(act.link)
                if info is not None:
                    info.opened = True
                    self._publish("peer", {"link": act.link, "kind": info.kind, "up": True})
            elif isinstance(act, MessageDelivered):
                self._publish(
                    "message",
                    {"contact": self._contact_name(act.sender), "text": _text(act.body)},
                )
            elif isinstance(act, MessageAcked):
                self.history.mark(act.msg_id, "acked")
                self._dirty = True
                self._publish("acked", {"msg_id": act.msg_id})

    def _drop(self, link: int) -> None:
        info = self.links.pop(link, None)
        if info is not None:
            info.scope.cancel()

    def _save_state(self) -> None:
        if self._panicked or self.broken:
            return
        self.history.save_state(STATE_KEY, self.node.export_state())
        self._dirty = False

    def _contact_name(self, key: bytes) -> str:
        for c in self.profile.contacts:
            if c.card.identity.sign_public == key:
                return c.name
        return key.hex()[:16]

    def _publish(self, kind: str, data: dict[str, Any]) -> None:
        for ch in list(self._subscribers):
            try:
                ch.send_nowait({"event": kind, "data": data})
            except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
                self._subscribers.remove(ch)

    def send_text(self, contact_name: str, text: str) -> bytes:
        """Queue a message; returns its id once the envelope and the session state are
        committed. Raises ``ipc.IpcError`` with a readable reason."""
        try:
            contact = self.profile.contact(contact_name)
        except ProfileError as exc:
            raise ipc.IpcError(str(exc)) from None
        if contact.key_changed:
            raise ipc.IpcError(f"{contact.name}'s key changed: verify it before writing")
        key = contact.card.identity.sign_public
        actions = self.feed(SendMessage(key, text.encode(), DEFAULT_TTL))
        result = next((a for a in actions if isinstance(a, MessageQueued | SendFailed)), None)
        if isinstance(result, SendFailed):
            raise ipc.IpcError(f"cannot send to {contact.name}: {result.reason}")
        if not isinstance(result, MessageQueued):
            raise ipc.IpcError("the node did not queue the message")
        with self.history.transaction():
            self.history.add(key, True, result.msg_id, self.now(), text)
            self._save_state()
        return result.msg_id

    # ---- running ----------------------------------------------------------------------
    async def run(self, *, task_status: trio.TaskStatus[Daemon] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                listeners = await trio.open_tcp_listeners(
                    self.config.port, host=self.config.listen or None
                )
                self.tcp_port = listeners[0].socket.getsockname()[1]
                nursery.start_soon(trio.serve_listeners, self._incoming, listeners)
                await nursery.start(self._serve_ipc)
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
                for peer in self.config.peers:
                    host, port = parse_host_port(peer, "gateway.peers")
                    nursery.start_soon(self._gateway, host, port)
                log.info(
                    "daemon up: TCP port %d, %d gateway peers",
                    self.tcp_port,
                    len(self.config.peers),
                )
                task_status.started(self)
        finally:
            self.close()

    async def _signals(self, scope: trio.CancelScope) -> None:
        """SIGTERM (systemd, kill) and SIGINT stop the daemon cleanly: state saved."""
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("stopping on %s", signal.Signals(signum).name)
                scope.cancel()
                return

    def close(self) -> None:
        try:
            self._save_state()
        except Exception:  # noqa: BLE001 - the database may already be gone after a panic
            log.warning("could not save the node state on the way out")
        self.history.close()
        self.store.close()
        self._lock.close()

    async def _timer(self) -> None:
        last_save = trio.current_time()
        while True:
            deadline = self.node.next_deadline()
            wait = 30.0 if deadline is None else max(0.0, deadline - self.clock())
            self._wake = trio.Event()
            with trio.move_on_after(min(wait, 30.0) + 0.001):
                await self._wake.wait()
            if deadline is not None and self.clock() >= deadline:
                self.feed(Tick())
            if self._dirty or trio.current_time() - last_save > STATE_EVERY:
                self._save_state()
                last_save = trio.current_time()

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
        self, stream: trio.abc.Stream, initiator: bool, kind: str, remote: str
    ) -> None:
        """Carry one link until either side closes it; frames in, frames out."""
        link = next(self._ids)
        send, recv = trio.open_memory_channel[bytes](SEND_QUEUE)
        scope = trio.CancelScope()
        self.links[link] = LinkInfo(link, kind, remote, self.clock(), send, scope)
        self._count(f"links_{kind}")
        try:
            with scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._writer, stream, recv)
                    up = LinkUp(link, initiator, TCP_MTU, True, self._source_label(remote))
                    self.feed(up)
                    await self._reader(link, stream)
                    nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as group:
            log.info("link %d (%s %s) broke: %s", link, kind, remote, group.exceptions[0])
        except* Exception:  # a bug on one link must not stop the others
            self._count("links_internal_error")
            log.exception("link %d (%s %s): internal error; link dropped", link, kind, remote)
        finally:
            if self.links.pop(link, None) is not None:
                self.feed(LinkDown(link))
                self._publish("peer", {"link": link, "kind": kind, "up": False})
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    def _source_label(self, remote: str) -> bytes:
        """What per-source quotas and token buckets count a link against: its remote
        address (not the port, not the link key: both are free to change), as a keyed hash
        so the store holds no address of anyone who was near."""
        host = remote.rsplit(":", 1)[0]
        key = blake2b(b"steppe source labels", key=self.profile.data_key, digest_size=32)
        return blake2b(host.encode(), key=key, digest_size=16)

    async def _reader(self, link: int, stream: trio.abc.ReceiveStream) -> None:
        while link in self.links:
            data = await stream.receive_some(65536)
            if not data:
                return
            self.feed(FrameReceived(link, bytes(data)))

    async def _writer(
        self, stream: trio.abc.SendStream, recv: trio.MemoryReceiveChannel[bytes]
    ) -> None:
        async for frame in recv:
            batch = [frame]
            while len(batch) < 64:
                try:
                    batch.append(recv.receive_nowait())
                except trio.WouldBlock:
                    break
            await stream.send_all(b"".join(batch))

    async def dial(self, host: str, port: int, kind: str) -> bool:
        """Connect and run one link; False if the connection could not be made."""
        try:
            with trio.fail_after(10):
                stream = await trio.open_tcp_stream(host, port)
        except (OSError, trio.TooSlowError) as exc:
            log.info("cannot reach %s:%d (%s)", host, port, exc)
            return False
        await self.run_link(stream, initiator=True, kind=kind, remote=f"{host}:{port}")
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

    # ---- local API --------------------------------------------------------------------
    async def _serve_ipc(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        path = ipc.socket_path(self.runtime_dir)
        self.runtime_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.exists():
            path.unlink()
        sock = trio.socket.socket(trio.socket.AF_UNIX, trio.socket.SOCK_STREAM)
        old = os.umask(0o177)  # the socket is created 0600: only the owner may connect
        try:
            await sock.bind(str(path))
        finally:
            os.umask(old)
        os.chmod(path, 0o600)
        sock.listen(16)
        listener = trio.SocketListener(sock)
        task_status.started()
        try:
            await trio.serve_listeners(self._ipc_client, [listener])
        finally:
            path.unlink(missing_ok=True)

    async def _ipc_client(self, stream: trio.SocketStream) -> None:
        reader = ipc.FrameReader()
        events_send, events_recv = trio.open_memory_channel[dict[str, Any]](256)
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._ipc_events, stream, events_recv)
            try:
                while True:
                    data = await stream.receive_some(65536)
                    if not data:
                        break
                    for obj in reader.feed(data):
                        reply = self._ipc_call(obj, events_send)
                        await stream.send_all(ipc.encode_frame(reply))
            except ipc.IpcError as exc:
                log.info("IPC client broke the protocol: %s", exc)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()

    async def _ipc_events(
        self, stream: trio.SocketStream, recv: trio.MemoryReceiveChannel[dict[str, Any]]
    ) -> None:
        async for event in recv:
            await stream.send_all(ipc.encode_frame(event))

    def _ipc_call(
        self, obj: dict[str, Any], events: trio.MemorySendChannel[dict[str, Any]]
    ) -> dict[str, Any]:
        req_id = obj.get("id") if type(obj.get("id")) is int else 0
        try:
            req = ipc.parse_request(obj)
            if req.op == "subscribe":
                self._subscribers.append(events)
                result: Any = True
            else:
                result = getattr(self, "op_" + req.op)(**req.args)
            return {"id": req_id, "ok": True, "result": result}
        except ipc.IpcError as exc:
            return {"id": req_id, "ok": False, "error": str(exc)}
        except Exception:  # a bug must not take the node down with the client's request
            log.exception("IPC request %r failed", obj.get("op"))
            return {"id": req_id, "ok": False, "error": "internal error (see the daemon log)"}

    # ---- operations (the ipc.OPS table) --------------------------------------------------
    def op_status(self) -> dict[str, Any]:
        return {
            "name": self.profile.name,
            "fingerprint": self.profile.identity.public().fingerprint.hex(),
            "mode": self.config.mode,
            "link_key": (
                KeyPair.from_private(relay_link_key(self.profile)).public.hex()
                if self.config.mode == "relay"
                else ""
            ),
            "uptime": int(self.clock() - self.started),
            "tcp_port": self.tcp_port,
            "links": len(self.links),
            "open_links": sum(1 for x in self.links.values() if x.opened),
            "envelopes": self.store.count(),
            "store_bytes": self.store.total_bytes(),
            "node_stats": dict(sorted(self.node.stats.items())),
            "daemon_stats": dict(sorted(self.stats.items())),
        }

    def op_peers(self) -> list[dict[str, Any]]:
        return [
            {
                "link": x.id,
                "kind": x.kind,
                "remote": x.remote,
                "open": x.opened,
                "seconds": int(self.clock() - x.since),
            }
            for x in sorted(self.links.values(), key=lambda x: x.id)
        ]

    def op_contacts(self) -> list[dict[str, Any]]:
        out = []
        for c in self.profile.contacts:
            out.append(
                {
                    "name": c.name,
                    "verified": c.verified,
                    "key_changed": c.key_changed,
                    "fingerprint": c.card.identity.fingerprint.hex(),
                    "can_write": self.node.can_write(c.card.identity.sign_public, self.now()),
                }
            )
        return out

    def op_conversations(self) -> list[dict[str, Any]]:
        return [
            {"contact": self._contact_name(k), **m.to_dict()}
            for k, m in self.history.conversations().items()
        ]

    def op_messages(self, contact: str = "", limit: int = 50) -> list[dict[str, Any]]:
        key: bytes | None = None
        if contact:
            try:
                key = self.profile.contact(contact).card.identity.sign_public
            except ProfileError as exc:
                raise ipc.IpcError(str(exc)) from None
        return [
            {"contact_name": self._contact_name(m.contact), **m.to_dict()}
            for m in self.history.messages(key, limit)
        ]

    def op_send(self, contact: str, text: str) -> dict[str, Any]:
        return {"msg_id": self.send_text(contact, text)}

    def op_bulletin_post(self, text: str, topic: str = "", hours: int = 72) -> dict[str, Any]:
        """Sign a public bulletin with this profile's identity key and flood it. A post on
        an existing topic of ours supersedes the earlier one."""
        now = self.now()
        if not 1 <= hours <= 7 * 24:
            raise ipc.IpcError("a bulletin lives between 1 hour and 7 days")
        try:
            b = Bulletin.create(
                self.profile.identity.sign_seed,
                type="post",
                key=topic or self.rng(4).hex(),
                sequence=now,
                created=now,
                expiry=now + 3600 * hours,
                body=text.encode(),
            )
        except ValueError as exc:
            raise ipc.IpcError(str(exc)) from None
        actions = self.call_node(lambda now: self.node.publish_bulletin(b, now))
        refused = next((a for a in actions if isinstance(a, SendFailed)), None)
        if refused is not None:
            raise ipc.IpcError(f"cannot post: {refused.reason}")
        return {"topic": b.key, "expires": b.expiry}

    def _trust(self, persona: bytes) -> str:
        """Trust comes from who holds the key, never from a name in the post."""
        if persona == self.profile.identity.sign_public:
            return "you"
        for c in self.profile.contacts:
            if c.card.identity.sign_public == persona:
                if c.key_changed:
                    return f"{c.name} (KEY CHANGED)"
                return f"{c.name} (verified contact)" if c.verified else f"{c.name} (unverified)"
        return "unknown key " + fingerprint(persona).hex()[:16]

    def op_bulletin_list(self, limit: int = 50) -> list[dict[str, Any]]:
        return [
            {
                "signer": self._trust(b.persona),
                "topic": b.key,
                "created": b.created,
                "expiry": b.expiry,
                "text": _text(b.body),
            }
            for b in self.node.bulletins(self.now())[:limit]
        ]

    def op_export(self, path: str, max_bytes: int = 0) -> dict[str, int]:
        limit = max_bytes or self.config.bundle_max_bytes
        frames, latest = self.node.export_frames(limit - 64, self.now())
        data = bundle.Bundle(self.now(), latest, frames).encode()
        try:
            atomic_write(Path(path), data)
        except OSError as exc:
            raise ipc.IpcError(f"cannot write {path}: {exc.strerror}") from None
        return {"envelopes": len(frames), "bytes": len(data)}

    def op_import(self, path: str) -> dict[str, int]:
        limit = self.config.bundle_max_bytes
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as exc:
            raise ipc.IpcError(f"cannot read {path}: {exc.strerror}") from None
        try:
            b = bundle.decode(data, limit, self.now())
        except bundle.BundleError as exc:
            raise ipc.IpcError(f"{path}: {exc}") from None
        before = dict(self.node.stats)
        self.call_node(lambda now: self.node.import_frames(b.frames, b"file", now))

        def delta(key: str) -> int:
            return self.node.stats.get(key, 0) - before.get(key, 0)

        accepted, delivered = delta("put_stored"), delta("delivered")
        return {
            "envelopes": len(b.frames),
            "stored": accepted - delivered,
            "delivered": delivered,
            "refused": len(b.frames) - accepted,
        }

    def op_panic(self) -> bool:
        """Forget the keys in memory and stop at once, saving nothing (the CLI has already
        shredded the key slots and deletes the files next)."""
        self._panicked = True
        self.profile.data_key = b""
        self.node.sessions.clear()
        if self._nursery is not None:
            self._nursery.cancel_scope.cancel()
        return True


def relay_link_key(profile: Profile) -> bytes:
    """A relay's long-term link key (stable across restarts, so users may pin it; derived
    from the profile's secret key, so it is shredded with it). Users' daemons use a fresh
    link key per connection instead: nothing to track them by."""
    return blake2b(b"relay link key", key=profile.identity.dh_private, digest_size=32)


class DaemonError(Exception):
    """One readable line: why the daemon cannot start."""


def _lock_profile(path: Path) -> TextIO:
    """One daemon per profile: an exclusive lock on ``daemon.lock``, held while running."""
    f = (path / "daemon.lock").open("w")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise DaemonError(f"another daemon is already running for the profile in {path}") from None
    return f


def _text(body: bytes) -> str:
    return body.decode("utf-8", errors="replace")


def _peer_name(stream: trio.SocketStream) -> str:
    try:
        host, port = stream.socket.getpeername()[:2]
        return f"{host}:{port}"
    except (OSError, ValueError):
        return "?"
