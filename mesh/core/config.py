"""How a node is configured (:class:`NodeConfig`), and the fixed limits of the core."""

from __future__ import annotations

from dataclasses import dataclass

from crypto.primitives import blake2b
from mesh.core.errors import ConfigError

MAX_DEFERRED = 4096  # offered ids waiting for room in the link's token bucket
MAX_MARKS = 32  # ranges served per link from a marked set (older ones start over)
MAX_DEMAND = 24  # stamp bits a node may demand (16 M hashes: minutes on a Pi)
MAX_UNTRIED = 4096  # first contacts waiting for a trial decryption
MAX_SOURCES = 4096  # token buckets remembered per source label
TRADE_CHUNK = 256  # entries per list in one TRADE (all four lists full: ~40 KiB)
ASK_TIMEOUT = 60  # seconds an ask may stay unanswered before it is forgotten
MAX_BODY = 12_000  # bytes of message text: fits the largest envelope bucket in every kind
EMPTY_TEXT = "the text is empty (only spaces or invisible characters)"
OFFER_ORDERS = ("priority", "fifo", "random")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    strategy: str = "epidemic"
    strategy_args: tuple[tuple[str, int], ...] = ()
    mint_difficulty: int = 10  # stamp bits on envelopes we originate
    base_difficulty: int = 8  # stamp bits we require when the store is at most half full
    max_ttl: int = 7 * 86400
    max_budget: int = 32
    link_rate: float = 50.0  # envelopes per second accepted per link...
    link_burst: float = 400.0  # ...after a burst of this many
    receipt_delay: tuple[int, int] = (30, 300)
    resync_every: int = 120
    sweep_every: int = 600
    initial_symbols: int = 32
    sync_symbols: int = 4096  # remote symbols a link may hold while reconciling (x 48 B)
    idle_timeout: int = 360  # a link that says nothing for this long is closed
    trial_rate: float = 20.0  # first contacts with one of our hints opened per second...
    trial_burst: float = 100.0  # ...after a burst of this many (each costs X25519 work)
    stranger_sessions: int = 64  # sessions opened by people who are not our contacts
    long_term_link_key: bytes | None = None  # relays: a pinned link key; others: fresh
    # The order envelopes are offered and handed over in on a link (OFFER_ORDERS):
    # "priority" (own and contacts' first, then soonest expiry), "fifo" (the order this
    # node stored them; what it held when it started comes first) or "random".
    offer_order: str = "priority"
    # A delivery receipt purges our copy and keeps the envelope out afterwards (receipts
    # as anti-packets). False: carry delivered copies until they expire, as The ONE's
    # routers do without deleteDelivered; receipts are still passed on.
    purge_delivered: bool = True
    # Direct delivery first (The ONE's routers): on a contact, the envelopes addressed to
    # the peer go before any other, both in what the peer asks for and in what we hand
    # over. It costs privacy: the peer marks which offered envelopes are its own (which
    # NEEDS_DESTINATION strategies do anyway), so a relay learns whom it met mail for.
    # A simulation key; the daemon keeps it off.
    direct_first: bool = False
    # Attachments (mesh.core.attachments): files received at once and their bytes, and
    # whether this node carries other people's chunks (a relay may refuse large
    # attachments and still carry text).
    max_incoming_files: int = 8
    max_incoming_bytes: int = 64 * 1024 * 1024
    relay_chunks: bool = True
    # Files from people who are not contacts (a first contact from a stranger): refused
    # unless this is set, so a stranger within radio range cannot fill the disk.
    files_from_strangers: bool = False

    def __post_init__(self) -> None:
        if self.offer_order not in OFFER_ORDERS:
            raise ConfigError(f"offer_order: one of {', '.join(OFFER_ORDERS)}")


def hint_for(prekey_public: bytes) -> bytes:
    """The 1-byte first-contact routing hint of a prekey (1 in 256 nodes share it)."""
    return blake2b(prekey_public, digest_size=1, person=b"steppe-hint")
