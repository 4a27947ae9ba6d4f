"""Daemon configuration: a TOML file at the platform's config location
(``~/.config/steppe/config.toml`` on Linux), every key optional. A bad file gives one
:class:`ConfigError` line naming the key and the problem. The README documents each key.
"""

from __future__ import annotations

import difflib
import ipaddress
import math
import os
import socket
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from mesh.core.routing import STRATEGIES

DEFAULT_TCP_PORT = 47470
DEFAULT_DISCOVERY_PORT = 47471
DEFAULT_GROUP = "239.255.74.70"


class ConfigError(Exception):
    """One readable line: which key, what is wrong."""


@dataclass(frozen=True, slots=True)
class Config:
    mode: str = "user"  # "user" or "relay"
    profile: str = ""  # profile directory; "" = the platform default
    passphrase_file: str = ""  # relay: read the passphrase from this file
    log_level: str = "info"
    lan: bool = True
    listen: str = "0.0.0.0"  # noqa: S104 - a LAN node must be reachable by its neighbours
    port: int = DEFAULT_TCP_PORT  # TCP port; 0 = any free port
    discovery_port: int = DEFAULT_DISCOVERY_PORT
    discovery_group: str = DEFAULT_GROUP
    beacon_interval: float = 5.0
    interfaces: tuple[str, ...] = ()  # empty: every interface with an IPv4 address
    peers: tuple[str, ...] = ()  # gateway peers, "host:port"
    peer_keys: tuple[str, ...] = ()  # per peer: its pinned link key (hex) or ""
    backoff_max: float = 300.0
    store_max_bytes: int = 256 * 1024 * 1024
    store_max_envelopes: int = 1_000_000
    strategy: str = "epidemic"
    receipt_delay: tuple[int, ...] = (30, 300)  # seconds before a receipt is released
    bundle_max_bytes: int = 64 * 1024 * 1024
    link_rate: float = 50.0  # envelopes per second accepted per source address...
    link_burst: float = 400.0  # ...after a burst of this many
    max_links: int = 64  # links at once, in and out
    max_links_per_address: int = 8  # links at once from one remote address
    max_handshakes: int = 16  # links still in their handshake at once
    idle_timeout: int = 360  # seconds a link may stay silent before it is closed
    sync_symbols: int = 4096  # reconciliation symbols one link may hold (48 B each)
    trial_rate: float = 20.0  # first contacts with our hint opened per second
    stranger_sessions: int = 64  # sessions opened by people who are not contacts
    ble: bool = False  # Bluetooth LE links
    ble_backend: str = "auto"  # auto (bluez on Linux, corebluetooth on macOS), or named
    ble_adapter: str = ""  # bluez: "hci0"; bumble: a transport spec ("usb:0"); "": default
    ble_max_links: int = 8  # Bluetooth LE links at once, both roles
    ble_rotate_after: int = 60  # seconds: at the cap, a quiet link this old makes room; 0: never
    ble_advertise_interval: int = 100  # milliseconds between advertisements
    ble_scan_interval: int = 100  # milliseconds: the scan duty cycle is window / interval
    ble_scan_window: int = 50
    bulletins_endorsements: int = 1  # verified contacts' endorsements that make a post "endorsed"
    files_max_incoming: int = 8  # files being received at once (0: take no files)
    files_max_incoming_bytes: int = 64 * 1024 * 1024  # their sizes together
    files_relay: bool = True  # carry other people's file chunks (false: text only)
    files_from_strangers: bool = False  # take files from people who are not contacts


_SCHEMA: dict[str, dict[str, tuple[str, type]]] = {
    "daemon": {
        "mode": ("mode", str),
        "profile": ("profile", str),
        "passphrase_file": ("passphrase_file", str),
        "log_level": ("log_level", str),
    },
    "lan": {
        "enabled": ("lan", bool),
        "listen": ("listen", str),
        "port": ("port", int),
        "discovery_port": ("discovery_port", int),
        "discovery_group": ("discovery_group", str),
        "beacon_interval": ("beacon_interval", float),
        "interfaces": ("interfaces", list),
    },
    "gateway": {"peers": ("peers", list), "backoff_max": ("backoff_max", float)},
    "store": {
        "max_bytes": ("store_max_bytes", int),
        "max_envelopes": ("store_max_envelopes", int),
        "bundle_max_bytes": ("bundle_max_bytes", int),
    },
    "routing": {"strategy": ("strategy", str), "receipt_delay": ("receipt_delay", list)},
    "bulletins": {"endorsements": ("bulletins_endorsements", int)},
    "files": {
        "max_incoming": ("files_max_incoming", int),
        "max_incoming_bytes": ("files_max_incoming_bytes", int),
        "relay": ("files_relay", bool),
        "from_strangers": ("files_from_strangers", bool),
    },
    "ble": {
        "enabled": ("ble", bool),
        "backend": ("ble_backend", str),
        "adapter": ("ble_adapter", str),
        "max_links": ("ble_max_links", int),
        "rotate_after": ("ble_rotate_after", int),
        "advertise_interval": ("ble_advertise_interval", int),
        "scan_interval": ("ble_scan_interval", int),
        "scan_window": ("ble_scan_window", int),
    },
    "limits": {
        "link_rate": ("link_rate", float),
        "link_burst": ("link_burst", float),
        "max_links": ("max_links", int),
        "max_links_per_address": ("max_links_per_address", int),
        "max_handshakes": ("max_handshakes", int),
        "idle_timeout": ("idle_timeout", int),
        "sync_symbols": ("sync_symbols", int),
        "trial_rate": ("trial_rate", float),
        "stranger_sessions": ("stranger_sessions", int),
    },
}


def default_config_path() -> Path:
    """``$STEPPE_CONFIG`` if set (a daemon the UI starts inherits it), else the platform's
    config directory's ``steppe/config.toml``."""
    named = os.environ.get("STEPPE_CONFIG")
    if named:
        return Path(named)
    return Path(platformdirs.user_config_dir("steppe", appauthor=False)) / "config.toml"


def parse_host_port(text: str, key: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{key}: {text!r} is not host:port")
    return host.strip("[]"), int(port)


def parse(text: str, source: str = "config") -> Config:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: not valid TOML ({exc})") from None
    values: dict[str, Any] = {}
    for table, body in data.items():
        schema = _SCHEMA.get(table)
        if schema is None:
            near = difflib.get_close_matches(table, list(_SCHEMA), n=1)
            hint = f"did you mean [{near[0]}]?" if near else f"known: {', '.join(_SCHEMA)}"
            raise ConfigError(f"{source}: unknown table [{table}] ({hint})")
        if not isinstance(body, dict):
            raise ConfigError(f"{source}: {table} must be a table")
        for key, value in body.items():
            if key not in schema:
                near = difflib.get_close_matches(key, list(schema), n=1)
                hint = f"; did you mean {table}.{near[0]}?" if near else ""
                raise ConfigError(f"{source}: unknown key {table}.{key}{hint}")
            attr, kind = schema[key]
            if kind is float and type(value) is int:
                value = float(value)
            if attr == "peers" and isinstance(value, list):
                values["peers"], values["peer_keys"] = _parse_peers(value, source)
                continue
            if type(value) is not kind:
                raise ConfigError(f"{source}: {table}.{key} must be {kind.__name__}")
            if isinstance(value, list):
                want = int if attr == "receipt_delay" else str
                if not all(type(v) is want for v in value):
                    raise ConfigError(f"{source}: {table}.{key} must be a list of {want.__name__}s")
                value = tuple(value)
            values[attr] = value
    cfg = Config(**values)
    _check(cfg, source)
    return cfg


def _parse_peers(entries: list[Any], source: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``gateway.peers``: each entry ``"host:port"``, or ``{ addr = "host:port", key =
    "64 hex digits" }`` to pin that peer's link key (a relay's, shown by its ``steppe
    status``): a link whose key differs is refused."""
    addrs: list[str] = []
    keys: list[str] = []
    for i, entry in enumerate(entries):
        where = f"{source}: gateway.peers[{i}]"
        if isinstance(entry, str):
            addrs.append(entry)
            keys.append("")
            continue
        if not isinstance(entry, dict) or set(entry) != {"addr", "key"}:
            raise ConfigError(
                f'{where} must be "host:port" or {{ addr = "host:port", key = "..." }}'
            )
        addr, key = entry["addr"], entry["key"]
        if not isinstance(addr, str):
            raise ConfigError(f"{where}.addr must be str")
        if not isinstance(key, str) or not _is_link_key(key):
            raise ConfigError(
                f"{where}.key must be the peer's link key: 64 hex digits, "
                "as the relay's 'steppe status' shows it"
            )
        addrs.append(addr)
        keys.append(key.lower())
    return tuple(addrs), tuple(keys)


def _is_link_key(text: str) -> bool:
    return len(text) == 64 and all(c in "0123456789abcdefABCDEF" for c in text)


def _check(cfg: Config, source: str) -> None:
    """Every key's meaning, checked before anything starts; the first problem found is
    raised as one line naming the key."""
    for problem in (
        _check_daemon(cfg),
        _check_lan(cfg),
        _check_peers(cfg.peers),
        _check_ble(cfg),
        _check_sizes(cfg),
    ):
        if problem:
            raise ConfigError(f"{source}: {problem}")


def _check_daemon(cfg: Config) -> str:
    if cfg.mode not in ("user", "relay"):
        return f"daemon.mode must be 'user' or 'relay', not {cfg.mode!r}"
    if cfg.log_level not in ("debug", "info", "warning", "error"):
        return "daemon.log_level must be debug, info, warning or error"
    if cfg.strategy not in STRATEGIES:
        return f"routing.strategy must be one of {', '.join(sorted(STRATEGIES))}"
    lo_hi = cfg.receipt_delay
    if len(lo_hi) != 2 or not 0 <= lo_hi[0] <= lo_hi[1]:
        return "routing.receipt_delay must be [min, max] seconds"
    return ""


def _check_lan(cfg: Config) -> str:
    if not 0 <= cfg.port < 65536:
        return "lan.port must be between 0 and 65535"
    if not 0 < cfg.discovery_port < 65536:
        return "lan.discovery_port must be between 1 and 65535"
    if cfg.listen:
        try:
            ipaddress.ip_address(cfg.listen)
        except ValueError:
            return f"lan.listen must be an IP address such as 0.0.0.0, not {cfg.listen!r}"
    try:
        group = ipaddress.IPv4Address(cfg.discovery_group)
    except ValueError:
        group = None
    if group is None or not group.is_multicast:
        return (
            "lan.discovery_group must be an IPv4 multicast address (224.0.0.0 to "
            f"239.255.255.255), not {cfg.discovery_group!r}"
        )
    try:
        known = sorted(name for _index, name in socket.if_nameindex())
    except OSError:  # the platform cannot list them: the daemon will say at start-up
        return ""
    for name in cfg.interfaces:
        if name not in known:
            have = ", ".join(known[:8]) + (", ..." if len(known) > 8 else "")
            return f"lan.interfaces: this machine has no interface {name!r} (it has: {have})"
    return ""


def _check_peers(peers: tuple[str, ...]) -> str:
    """``gateway.peers``: each entry is ``host:port``."""
    for peer in peers:
        try:
            parse_host_port(peer, "gateway.peers")
        except ConfigError as exc:
            return str(exc)
    return ""


BLE_BACKENDS = ("auto", "bluez", "corebluetooth", "bumble")


def _check_ble(cfg: Config) -> str:
    if cfg.ble_backend not in BLE_BACKENDS:
        return f"ble.backend must be one of {', '.join(BLE_BACKENDS)}, not {cfg.ble_backend!r}"
    if not 20 <= cfg.ble_advertise_interval <= 10_240:
        return "ble.advertise_interval must be between 20 and 10240 milliseconds"
    if not 3 <= cfg.ble_scan_interval <= 10_240:
        return "ble.scan_interval must be between 3 and 10240 milliseconds"
    if not 3 <= cfg.ble_scan_window <= cfg.ble_scan_interval:
        return "ble.scan_window must be between 3 milliseconds and ble.scan_interval"
    return ""


_POSITIVE = (
    ("lan.beacon_interval", "beacon_interval"),
    ("gateway.backoff_max", "backoff_max"),
    ("limits.link_rate", "link_rate"),
    ("limits.trial_rate", "trial_rate"),
)
_AT_LEAST: tuple[tuple[str, str, int], ...] = (
    ("store.max_bytes", "store_max_bytes", 1 << 20),
    ("store.max_envelopes", "store_max_envelopes", 1),
    ("store.bundle_max_bytes", "bundle_max_bytes", 1 << 16),
    ("limits.link_burst", "link_burst", 1),
    ("limits.max_links", "max_links", 1),
    ("ble.max_links", "ble_max_links", 1),
    ("ble.rotate_after", "ble_rotate_after", 0),
    ("limits.max_links_per_address", "max_links_per_address", 1),
    ("limits.max_handshakes", "max_handshakes", 1),
    ("limits.idle_timeout", "idle_timeout", 30),
    ("limits.sync_symbols", "sync_symbols", 64),
    ("limits.stranger_sessions", "stranger_sessions", 0),
    ("bulletins.endorsements", "bulletins_endorsements", 1),
    ("files.max_incoming", "files_max_incoming", 0),
    ("files.max_incoming_bytes", "files_max_incoming_bytes", 1 << 20),
)


def _check_sizes(cfg: Config) -> str:
    for key, attr in _POSITIVE:
        value = getattr(cfg, attr)
        if not (math.isfinite(value) and value > 0):
            return f"{key} must be > 0, not {value}"
    for key, attr, low in _AT_LEAST:
        value = getattr(cfg, attr)
        if not (math.isfinite(value) and value >= low):
            return f"{key} must be at least {_UNITS.get(low, str(low))}, not {value}"
    return ""


_UNITS = {1 << 20: "1 MiB", 1 << 16: "64 KiB (65536)"}


def load(path: Path | None) -> Config:
    """The config at ``path`` (or the default location); defaults if the default is absent."""
    target = path or default_config_path()
    if not target.exists():
        if path is not None:
            raise ConfigError(f"no config file at {path}")
        return Config()
    return parse(target.read_text(encoding="utf-8"), str(target))
