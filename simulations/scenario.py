"""Scenario files: TOML in ``simulations/scenarios/``, validated into dataclasses.

A bad file gives one :class:`ScenarioError` whose message names the key and the problem,
e.g. ``groups[0].speed: expected [min, max] with 0 <= min <= max``.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from crypto.attachment import MAX_FILE
from mesh.core.config import OFFER_ORDERS
from mesh.core.link import MAX_MTU, MIN_MTU
from mesh.core.routing import STRATEGIES
from mesh.core.store import Eviction

SCENARIO_DIR = Path(__file__).parent / "scenarios"


class Movement(StrEnum):
    """How a group's nodes move (the TOML spelling)."""

    RANDOM_WAYPOINT = "random_waypoint"
    STATIC = "static"
    GATHERINGS = "gatherings"


class Role(StrEnum):
    """What a group's nodes are: people writing, relays, or an adversary model."""

    USER = "user"
    RELAY = "relay"
    FLOODER = "flooder"
    BLACKHOLE = "blackhole"
    OBSERVER = "observer"


class NetState(StrEnum):
    """A region's internet: ``dpi`` blocks the Steppe link only, nothing else changes."""

    UP = "up"
    DOWN = "down"
    THROTTLED = "throttled"
    DPI = "dpi"


class Transfers(StrEnum):
    """How a radio's links share the air: ``full``: both ways at once, each link on its own
    (the default); ``half``: one way at a time on a link; ``one_per_node``: a node sends or
    receives on one of its links at a time (The ONE's default interface)."""

    FULL = "full"
    HALF = "half"
    ONE_PER_NODE = "one_per_node"


MOVEMENTS = tuple(Movement)
ROLES = tuple(Role)
STATES = tuple(NetState)
DELIVERED = ("drop", "keep")
FIRST_CONTACT = ("cautious", "as_destination")
EVICTIONS = tuple(e.value for e in Eviction)


class ScenarioError(ValueError):
    """One readable line: which key, what is wrong."""


# The keys each table may hold; anything else is a typo that would silently fall back to
# a default, so it is refused with the closest valid key.
KEYS: dict[str, tuple[str, ...]] = {
    "": ("scenario", "world", "radios", "regions", "internet", "groups", "traffic"),
    "scenario": (
        "name", "description", "duration", "seed", "warmup", "update_interval",
        "stamp_bits", "start_hour", "trace",
    ),
    "world": ("width", "height", "nodes"),
    "radios": ("name", "range", "bitrate", "setup", "loss", "mtu", "transfers"),
    "regions": ("name", "default", "timeline"),
    "timeline": ("state", "daily", "start", "end", "factor"),
    "internet": ("bitrate", "check_interval"),
    "groups": (
        "name", "count", "population", "adoption", "movement", "radio", "speed", "wait",
        "positions", "squares", "square_radius", "p_square", "square_wait", "buffer",
        "strategy", "copies", "region", "gateway", "role", "flood_interval", "offer_order",
        "delivered_copies", "area", "eviction", "source_quota", "direct_first",
        "first_contact",
    ),
    "traffic": (
        "interval", "size", "ttl", "sources", "destinations", "start", "stop", "file",
        "size_scale", "files", "file_size",
    ),
}  # fmt: skip


def closest(word: str, choices: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the nearest of ``choices``, else the valid ones."""
    options = list(choices)
    near = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    if near:
        return f"did you mean {near[0]!r}?"
    return f"valid: {', '.join(options)}"


def _known(table: Any, where: str, kind: str) -> dict[str, Any]:
    """``table`` as a dict whose every key is one ``kind`` may hold."""
    if not isinstance(table, dict):
        raise ScenarioError(f"{where[:-1] or 'the file'}: expected a table")
    for key in table:
        if key not in KEYS[kind]:
            section = "section" if kind == "" else "key"
            raise ScenarioError(f"{where}{key}: unknown {section}; {closest(key, KEYS[kind])}")
    return table


@dataclass(frozen=True)
class Radio:
    name: str
    range: float
    bitrate: float  # bytes per second
    setup: float = 0.0
    loss: float = 0.0
    mtu: int = 1400  # every frame of the link has this size (Bluetooth LE: ATT_MTU - 3)
    transfers: Transfers = Transfers.FULL


@dataclass(frozen=True)
class Group:
    name: str
    count: int
    movement: Movement
    radio: str
    speed: tuple[float, float] = (0.5, 1.5)
    wait: tuple[float, float] = (0.0, 120.0)
    positions: tuple[tuple[float, float], ...] = ()
    squares: tuple[tuple[float, float], ...] = ()
    square_radius: float = 50.0
    p_square: float = 0.5
    square_wait: tuple[float, float] = (600.0, 3600.0)
    buffer: int = 5_000_000
    strategy: str = "epidemic"
    copies: int = 8
    region: str = ""
    gateway: bool = False  # has an internet link while its region's internet allows
    role: Role = Role.USER
    flood_interval: float = 1.0  # flooders: seconds between junk envelopes
    offer_order: str = "fifo"  # the order a node offers envelopes on a contact
    delivered_copies: str = "drop"  # "drop": receipts purge relays' copies; "keep": not
    area: tuple[float, float, float, float] | None = None  # [x0, y0, x1, y1]; None: the world
    eviction: Eviction = Eviction.PRIORITY  # "oldest_received": The ONE's buffer rule
    source_quota: bool = True  # False: no per-source quota in the store (The ONE has none)
    direct_first: bool = False  # hand over what is addressed to the peer first (The ONE)
    first_contact: str = "cautious"  # spray: "as_destination" takes a hint match for it (ONE)


@dataclass(frozen=True)
class Window:
    """An internet state for ``[start, end)`` seconds, or daily ``[from_hour, to_hour)``."""

    state: NetState
    start: float = 0.0
    end: float = float("inf")
    daily: tuple[float, float] | None = None
    factor: float = 1.0


@dataclass(frozen=True)
class Region:
    name: str
    default: NetState = NetState.UP
    windows: tuple[Window, ...] = ()
    default_factor: float = 1.0

    def state(self, t: float, start_hour: float) -> tuple[NetState, float]:
        """The internet state and bit-rate factor at simulated time ``t``; later windows
        override earlier ones."""
        state, factor = self.default, self.default_factor
        hour = (start_hour + t / 3600.0) % 24.0
        for w in self.windows:
            if w.daily is not None:
                lo, hi = w.daily
                inside = lo <= hour < hi if lo <= hi else (hour >= lo or hour < hi)
            else:
                inside = w.start <= t < w.end
            if inside:
                state, factor = w.state, w.factor
        return state, factor


@dataclass(frozen=True)
class Traffic:
    interval: tuple[float, float] = (25.0, 35.0)
    size: tuple[int, int] = (1000, 1000)
    ttl: int = 18000
    sources: tuple[int, int] | None = None  # inclusive node index range; None: all
    destinations: tuple[int, int] | None = None
    start: float = 0.0
    stop: float | None = None
    file: str = ""  # messages from a file (relative to the scenario): simulations.traffic_file
    size_scale: float = 1.0  # the file's sizes times this
    # Attachments (issue 16): the fraction of messages that carry a photo, a file of
    # file_size bytes sent right after the text to the same recipient; 0: text only.
    files: float = 0.0
    file_size: tuple[int, int] = (200_000, 1_000_000)


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    duration: float
    width: float
    height: float
    radios: dict[str, Radio]
    groups: tuple[Group, ...]
    traffic: Traffic
    seed: int = 1
    warmup: float = 0.0
    update_interval: float = 1.0
    mint_difficulty: int = 6
    regions: dict[str, Region] = field(default_factory=dict)
    internet_bitrate: float = 1_000_000.0
    internet_check: float = 60.0
    start_hour: float = 0.0
    trace: str = ""  # a contact trace file (relative to the scenario); replaces the radio
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def node_count(self) -> int:
        return sum(g.count for g in self.groups)


def _get(
    table: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...], default: Any = ...
) -> Any:
    if key not in table:
        if default is ...:
            raise ScenarioError(f"{where}{key}: missing")
        return default
    value = table[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if float in kinds and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        names = " or ".join(k.__name__ for k in kinds)
        raise ScenarioError(f"{where}{key}: expected {names}, got {value!r}")
    return value


def _range(
    table: dict[str, Any], key: str, where: str, default: Any = ..., integer: bool = False
) -> Any:
    value = _get(table, key, where, list, default)
    if value is default and not isinstance(value, list):
        return value
    ok = (
        len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        and 0 <= value[0] <= value[1]
    )
    if not ok:
        raise ScenarioError(f"{where}{key}: expected [min, max] with 0 <= min <= max")
    return (int(value[0]), int(value[1])) if integer else (float(value[0]), float(value[1]))


def _choice(
    table: dict[str, Any], key: str, where: str, choices: Iterable[str], default: Any = ...
) -> str:
    """A string key that must be one of ``choices``."""
    value: str = _get(table, key, where, str, default)
    if value not in choices:
        raise ScenarioError(f"{where}{key}: one of {', '.join(choices)}, got {value!r}")
    return value


def _positive(value: float, key: str) -> float:
    if value <= 0:
        raise ScenarioError(f"{key}: must be positive")
    return value


def parse(text: str, source: str = "<string>") -> Scenario:
    return parse_data(toml_data(text), source)


def toml_data(text: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(f"not valid TOML: {exc}") from None


def parse_data(data: dict[str, Any], source: str = "<string>") -> Scenario:
    _known(data, "", "")
    sc = _known(_get(data, "scenario", "", dict), "scenario.", "scenario")
    world = _known(_get(data, "world", "", dict), "world.", "world")
    radios: dict[str, Radio] = {}
    for i, r in enumerate(_get(data, "radios", "", list)):
        w = f"radios[{i}]."
        _known(r, w, "radios")
        radio = Radio(
            _get(r, "name", w, str),
            _positive(_get(r, "range", w, float), w + "range"),
            _positive(_get(r, "bitrate", w, float), w + "bitrate"),
            _get(r, "setup", w, float, 0.0),
            _get(r, "loss", w, float, 0.0),
            _get(r, "mtu", w, int, 1400),
            Transfers(_choice(r, "transfers", w, tuple(Transfers), "full")),
        )
        if not 0 <= radio.loss < 1:
            raise ScenarioError(f"{w}loss: must be in [0, 1)")
        if not MIN_MTU <= radio.mtu <= MAX_MTU:
            raise ScenarioError(f"{w}mtu: must be in [{MIN_MTU}, {MAX_MTU}]")
        radios[radio.name] = radio
    regions = {
        r.name: r
        for r in (_region(x, i) for i, x in enumerate(_get(data, "regions", "", list, [])))
    }
    net = _known(_get(data, "internet", "", dict, {}), "internet.", "internet")
    groups = tuple(
        _group(g, i, radios, regions) for i, g in enumerate(_get(data, "groups", "", list))
    )
    if not groups:
        raise ScenarioError("groups: at least one group is needed")
    n = sum(g.count for g in groups)
    traffic = _traffic(_known(_get(data, "traffic", "", dict, {}), "traffic.", "traffic"), n)
    trace = _get(sc, "trace", "scenario.", str, "")
    width = _positive(_get(world, "width", "world.", float), "world.width")
    height = _positive(_get(world, "height", "world.", float), "world.height")
    world_nodes = _get(world, "nodes", "world.", int, 0)
    if "nodes" in world:
        grow = _world_growth(world_nodes, n, groups, trace)
        width, height = width * grow, height * grow
    for i, g in enumerate(groups):
        if g.area is not None and (g.area[2] > width or g.area[3] > height):
            raise ScenarioError(f"groups[{i}].area: reaches outside the world")
    return Scenario(
        name=_get(sc, "name", "scenario.", str),
        description=_get(sc, "description", "scenario.", str, ""),
        duration=_positive(_get(sc, "duration", "scenario.", float), "scenario.duration"),
        width=width,
        height=height,
        radios=radios,
        groups=groups,
        traffic=traffic,
        seed=_get(sc, "seed", "scenario.", int, 1),
        warmup=_get(sc, "warmup", "scenario.", float, 0.0),
        update_interval=_positive(
            _get(sc, "update_interval", "scenario.", float, 1.0), "scenario.update_interval"
        ),
        mint_difficulty=_get(sc, "stamp_bits", "scenario.", int, 6),
        regions=regions,
        internet_bitrate=_positive(
            _get(net, "bitrate", "internet.", float, 1_000_000.0), "internet.bitrate"
        ),
        internet_check=_positive(
            _get(net, "check_interval", "internet.", float, 60.0), "internet.check_interval"
        ),
        start_hour=_get(sc, "start_hour", "scenario.", float, 0.0),
        trace=trace,
        source=source,
    )


def _world_growth(world_nodes: int, count: int, groups: tuple[Group, ...], trace: str) -> float:
    """``world.nodes = K``: width and height are for K nodes; with N nodes both sides grow
    by sqrt(N / K), so the density (nodes per square metre) stays that of the file. This
    is how one scenario is run at 100, 1,000 or 10,000 nodes without packing them tighter."""
    if world_nodes < 1:
        raise ScenarioError("world.nodes: at least 1")
    if trace:
        raise ScenarioError("world.nodes: a contact trace has no world to grow")
    for i, g in enumerate(groups):
        if g.positions or g.squares or g.area:
            raise ScenarioError(
                f"world.nodes: groups[{i}] has fixed coordinates; a world that grows with"
                " the node count cannot hold them"
            )
    return math.sqrt(count / world_nodes)


def _region(r: dict[str, Any], i: int) -> Region:
    w = f"regions[{i}]."
    _known(r, w, "regions")
    default = NetState(_choice(r, "default", w, STATES, "up"))
    windows = []
    for j, x in enumerate(_get(r, "timeline", w, list, [])):
        ww = f"{w}timeline[{j}]."
        _known(x, ww, "timeline")
        state = NetState(_choice(x, "state", ww, STATES))
        daily = _range(x, "daily", ww, None)
        if daily is not None and daily[1] > 24:
            raise ScenarioError(f"{ww}daily: hours are 0-24")
        start = _get(x, "start", ww, float, 0.0)
        end = _get(x, "end", ww, float, float("inf"))
        if end <= start:
            raise ScenarioError(f"{ww}end: must be after start")
        factor = _get(x, "factor", ww, float, 1.0)
        if not 0 < factor <= 1:
            raise ScenarioError(f"{ww}factor: must be in (0, 1]")
        windows.append(Window(state, start, end, daily, factor))
    return Region(_get(r, "name", w, str), default, tuple(windows))


def _group(
    g: dict[str, Any], i: int, radios: dict[str, Radio], regions: dict[str, Region]
) -> Group:
    w = f"groups[{i}]."
    _known(g, w, "groups")
    region = _get(g, "region", w, str, "")
    if region and region not in regions:
        raise ScenarioError(f"{w}region: no region named {region!r} in [[regions]]")
    role = Role(_choice(g, "role", w, ROLES, "user"))
    gateway = _get(g, "gateway", w, bool, False)
    if gateway and not region:
        raise ScenarioError(f"{w}gateway: a gateway group needs a region")
    movement = Movement(_choice(g, "movement", w, MOVEMENTS))
    radio = _get(g, "radio", w, str)
    if radio not in radios:
        raise ScenarioError(f"{w}radio: no radio named {radio!r} in [[radios]]")
    strategy = _choice(g, "strategy", w, STRATEGIES, "epidemic")
    offer_order = _choice(g, "offer_order", w, OFFER_ORDERS, "fifo")
    delivered = _choice(g, "delivered_copies", w, DELIVERED, "drop")
    if "count" not in g and "population" in g:
        population = _get(g, "population", w, int)
        adoption = _get(g, "adoption", w, float)
        if not 0 < adoption <= 1:
            raise ScenarioError(f"{w}adoption: must be in (0, 1]")
        count = max(1, round(population * adoption))
    else:
        count = _get(g, "count", w, int)
    if count < 1:
        raise ScenarioError(f"{w}count: at least 1")
    positions = tuple(tuple(p) for p in _get(g, "positions", w, list, []))
    area = _area(g, w)
    if movement is Movement.STATIC and len(positions) != count:
        raise ScenarioError(f"{w}positions: static groups need one [x, y] per node")
    return Group(
        name=_get(g, "name", w, str),
        count=count,
        movement=movement,
        radio=radio,
        speed=_range(g, "speed", w, (0.5, 1.5)),
        wait=_range(g, "wait", w, (0.0, 120.0)),
        positions=positions,
        squares=tuple(tuple(p) for p in _get(g, "squares", w, list, [])),
        square_radius=_get(g, "square_radius", w, float, 50.0),
        p_square=_get(g, "p_square", w, float, 0.5),
        square_wait=_range(g, "square_wait", w, (600.0, 3600.0)),
        buffer=_get(g, "buffer", w, int, 5_000_000),
        strategy=strategy,
        copies=_get(g, "copies", w, int, 8),
        region=region,
        gateway=gateway,
        role=role,
        flood_interval=_positive(_get(g, "flood_interval", w, float, 1.0), w + "flood_interval"),
        offer_order=offer_order,
        delivered_copies=delivered,
        area=area,
        eviction=Eviction(_choice(g, "eviction", w, EVICTIONS, "priority")),
        source_quota=_get(g, "source_quota", w, bool, True),
        direct_first=_get(g, "direct_first", w, bool, False),
        first_contact=_choice(g, "first_contact", w, FIRST_CONTACT, "cautious"),
    )


def _area(g: dict[str, Any], w: str) -> tuple[float, float, float, float] | None:
    """``area = [x0, y0, x1, y1]``: the part of the world a moving group stays in."""
    raw = _get(g, "area", w, list, None)
    if raw is None:
        return None
    ok = len(raw) == 4 and all(isinstance(v, int | float) and not isinstance(v, bool) for v in raw)
    if not ok or not (0 <= raw[0] < raw[2] and 0 <= raw[1] < raw[3]):
        raise ScenarioError(f"{w}area: expected [x0, y0, x1, y1] with 0 <= x0 < x1, 0 <= y0 < y1")
    x0, y0, x1, y1 = (float(v) for v in raw)
    return (x0, y0, x1, y1)


def _traffic(t: dict[str, Any], n: int) -> Traffic:
    w = "traffic."

    def nodes(key: str) -> tuple[int, int] | None:
        r = _range(t, key, w, None, integer=True)
        if r is not None and r[1] >= n:
            raise ScenarioError(f"{w}{key}: node {r[1]} does not exist ({n} nodes)")
        return r  # type: ignore[no-any-return]

    size = _range(t, "size", w, (1000, 1000), integer=True)
    if size[1] > 12000:
        raise ScenarioError(f"{w}size: at most 12000 bytes fit one envelope")
    files = _get(t, "files", w, float, 0.0)
    if not 0 <= files <= 1:
        raise ScenarioError(f"{w}files: a fraction of messages, in [0, 1]")
    file_size = _range(t, "file_size", w, (200_000, 1_000_000), integer=True)
    if file_size[0] < 1:
        raise ScenarioError(f"{w}file_size: a file has at least 1 byte")
    if file_size[1] > MAX_FILE:
        raise ScenarioError(f"{w}file_size: at most {MAX_FILE} bytes (10 MiB) per file")
    return Traffic(
        interval=_range(t, "interval", w, (25.0, 35.0)),
        size=size,
        ttl=_get(t, "ttl", w, int, 18000),
        sources=nodes("sources"),
        destinations=nodes("destinations"),
        start=_get(t, "start", w, float, 0.0),
        stop=_get(t, "stop", w, float, None),
        file=_get(t, "file", w, str, ""),
        size_scale=_positive(_get(t, "size_scale", w, float, 1.0), w + "size_scale"),
        files=files,
        file_size=file_size,
    )


def load(name_or_path: str) -> Scenario:
    """A scenario by name (``simulations/scenarios/NAME.toml``) or by path."""
    path = scenario_path(name_or_path)
    return parse(path.read_text(), str(path))


def scenario_path(name_or_path: str) -> Path:
    path = Path(name_or_path)
    if not path.exists():
        path = SCENARIO_DIR / f"{name_or_path}.toml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in SCENARIO_DIR.glob("*.toml")))
        raise ScenarioError(f"no scenario {name_or_path!r} (known: {known})")
    return path


def available() -> list[tuple[str, str]]:
    out = []
    for path in sorted(SCENARIO_DIR.glob("*.toml")):
        try:
            out.append((path.stem, parse(path.read_text(), str(path)).description))
        except ScenarioError as exc:
            out.append((path.stem, f"(invalid: {exc})"))
    return out
