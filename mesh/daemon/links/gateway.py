"""Gateway peers: configured ``host:port`` entries (``gateway.peers``), each kept dialled
with exponential backoff and jitter, each optionally pinned to a link key
(``gateway.peer_keys``); and the one dial-with-backoff the LAN uses too.

A peer is named in logs by its place in ``gateway.peers`` (logs at the default level
hold no addresses). A link to a pinned peer whose handshake shows another key is cut
before anything more is sent on it (:func:`check_pins`, from the driver's step).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field

import trio

from mesh.core.events import Action, LinkOpened
from mesh.daemon.config import Config, parse_host_port
from mesh.daemon.links import LinkKind
from mesh.daemon.links.tcp import LinkInfo, TcpLinks

log = logging.getLogger(__name__)

LIVED = 10.0  # seconds: a link that lasted longer resets its dialler's backoff


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


async def dial_once(dial: Callable[[], Awaitable[bool]], backoff: Backoff) -> bool:
    """Dial and run one link; True if it lasted more than :data:`LIVED` seconds, which
    resets ``backoff``. The caller sleeps ``backoff.next_delay()`` when it wants to."""
    began = trio.current_time()
    ok = await dial()
    lived = ok and trio.current_time() - began > LIVED
    if lived:
        backoff.reset()
    return lived


@dataclass(frozen=True, slots=True)
class GatewayPeer:
    host: str
    port: int
    label: str  # "gateway.peers[i]"
    pin: bytes  # b"": any link key


def peers(config: Config) -> list[GatewayPeer]:
    """The configured gateway peers with their pins (``gateway.peer_keys``, by place)."""
    out = []
    for i, peer in enumerate(config.peers):
        host, port = parse_host_port(peer, "gateway.peers")
        keys = config.peer_keys
        pin = bytes.fromhex(keys[i]) if i < len(keys) else b""
        out.append(GatewayPeer(host, port, f"gateway.peers[{i}]", pin))
    return out


class Gateways:
    """Keeps every configured gateway peer dialled."""

    def __init__(self, links: TcpLinks, jitter: random.Random) -> None:
        self.links = links
        self.jitter = jitter

    def start(self, nursery: trio.Nursery) -> int:
        """One task per peer, redialling for as long as the daemon runs; how many."""
        configured = peers(self.links.host.config)
        for peer in configured:
            nursery.start_soon(self._keep, peer)
        return len(configured)

    async def _keep(self, peer: GatewayPeer) -> None:
        backoff = Backoff(cap=self.links.host.config.backoff_max, rng=self.jitter)

        async def dial() -> bool:
            kind = LinkKind.GATEWAY
            return await self.links.dial(peer.host, peer.port, kind, pin=peer.pin, label=peer.label)

        while True:
            await dial_once(dial, backoff)
            await trio.sleep(backoff.next_delay())


def check_pins(
    links: Mapping[int, LinkInfo], actions: Iterable[Action], count: Callable[[str], None]
) -> None:
    """A link to a peer with a pinned key whose handshake revealed another key is cut
    before anything more is sent on it (its last handshake message included)."""
    for act in actions:
        if not isinstance(act, LinkOpened):
            continue
        info = links.get(act.link)
        if info is None or not info.pin or act.peer_key == info.pin:
            continue
        count("links_refused_key")
        log.warning("%s: link key is not the pinned one; link refused", info.label)
        log.debug("%s (%s) has link key %s", info.label, info.remote, act.peer_key.hex())
        info.scope.cancel()
