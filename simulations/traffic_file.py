"""Traffic read from a file, so a run of The ONE can be replayed message for message.

Two formats, told apart by their first line:

- The ONE's ``CreatedMessagesReport``: a header ``# time  ID  size  fromHost  toHost  TTL
  isResponse``, then ``time id size from to ttl Y|N`` lines. A host is named by its group
  prefix and its address (``p12``); the address is ONE's global host index, which is the
  Steppe node index when the groups are listed in the same order and sizes. ONE's TTL is
  in minutes (its default, ``Scenario.ttlSeconds = false``); ``n/a`` (no TTL) takes the
  scenario's ``traffic.ttl``. Responses (``Y``) are skipped: Steppe's delivery receipts
  play that part and are sent by the nodes themselves.
- A CSV with the header ``time,source,destination,size`` and optionally ``ttl`` (seconds),
  node indices as integers.

Sizes are multiplied by ``traffic.size_scale`` (default 1) and must then be at most 12,000
bytes, Steppe's largest message (about 16.8 kB on the air, sealed and padded); ONE's
default 500 kB-1 MB messages need a scale (0.01 maps them to 5-10 kB) and a bit rate
scaled alike to keep ONE's transfer times. Errors name the line.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

MAX_SIZE = 12_000
ONE_HEADER = "# time  ID  size  fromHost  toHost  TTL"
_HOST = re.compile(r"^\D*(\d+)$")


class TrafficFileError(ValueError):
    """The traffic file cannot be read: one line naming where."""


@dataclass(frozen=True, slots=True)
class Created:
    time: float
    source: int
    destination: int
    size: int
    ttl: int  # seconds


def read_traffic(text: str, nodes: int, default_ttl: int, size_scale: float = 1.0) -> list[Created]:
    """Every message the file creates, by time (a stable sort: file order on ties)."""
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("#"):
        if not first.startswith(ONE_HEADER):
            raise TrafficFileError(f"line 1: not a CreatedMessagesReport header: {first!r}")
        rows = _one(text, default_ttl)
    else:
        rows = _csv(text, default_ttl)
    out: list[Created] = []
    for no, (t, src, dst, size, ttl) in rows:
        scaled = round(size * size_scale)
        if not 1 <= scaled <= MAX_SIZE:
            raise TrafficFileError(
                f"line {no}: size {size} x {size_scale} = {scaled}: a message is 1 to "
                f"{MAX_SIZE} bytes (scale ONE's sizes with traffic.size_scale)"
            )
        if not (0 <= src < nodes and 0 <= dst < nodes) or src == dst:
            raise TrafficFileError(f"line {no}: nodes {src} and {dst}: need two of 0..{nodes - 1}")
        if t < 0 or ttl <= 0:
            raise TrafficFileError(f"line {no}: a negative time or a TTL below 1 s")
        out.append(Created(t, src, dst, scaled, ttl))
    return sorted(out, key=lambda c: c.time)


Row = tuple[int, tuple[float, int, int, int, int]]


def _host(name: str, no: int) -> int:
    m = _HOST.match(name)
    if m is None:
        raise TrafficFileError(f"line {no}: host {name!r} has no address")
    return int(m.group(1))


def _one(text: str, default_ttl: int) -> list[Row]:
    rows: list[Row] = []
    for no, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 7 or parts[6] not in ("Y", "N"):
            raise TrafficFileError(f"line {no}: expected 'time id size from to ttl Y|N'")
        if parts[6] == "Y":
            continue
        try:
            t, size = float(parts[0]), int(parts[2])
            ttl = default_ttl if parts[5] == "n/a" else int(float(parts[5]) * 60)
        except ValueError:
            raise TrafficFileError(f"line {no}: time, size and TTL must be numbers") from None
        rows.append((no, (t, _host(parts[3], no), _host(parts[4], no), size, ttl)))
    return rows


def _csv(text: str, default_ttl: int) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text))
    need = {"time", "source", "destination", "size"}
    if reader.fieldnames is None or not need <= set(reader.fieldnames):
        raise TrafficFileError("line 1: a CSV needs the columns time,source,destination,size")
    rows: list[Row] = []
    for no, r in enumerate(reader, 2):
        try:
            ttl = int(r["ttl"]) if r.get("ttl") else default_ttl
            fields = (float(r["time"]), int(r["source"]), int(r["destination"]), int(r["size"]))
        except (TypeError, ValueError):
            raise TrafficFileError(
                f"line {no}: time, nodes, size and ttl must be numbers"
            ) from None
        rows.append((no, (*fields, ttl)))
    return rows
