"""Reports: ``report.json`` (sorted keys: byte-identical for the same seed),
``messages.csv`` (one row per message), PNG plots, and a short text summary."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict
from enum import Enum
from pathlib import Path
from typing import Any

from simulations.adversaries import BlackHole
from simulations.harness import node_config, quotas
from simulations.metrics import Metrics
from simulations.scenario import Group, Role, Scenario


def report_dict(
    sc: Scenario, seed: int, m: Metrics, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``effective_scenario``, ``overrides`` and ``node_config`` say what produced the
    numbers: the scenario after every ``--set``, and what each group's nodes ran with."""
    return {
        "scenario": sc.name,
        "seed": seed,
        "duration": sc.duration,
        "world": [round(sc.width, 1), round(sc.height, 1)],
        "overrides": _plain(overrides or {}),
        "effective_scenario": effective_scenario(sc),
        "node_config": [
            {"group": g.name, "node": ran_with(sc, g), "store": _plain(asdict(quotas(g)))}
            for g in sc.groups
        ],
        "stats": m.summary,
        "buffer_occupancy": [[round(t, 1), b] for t, b in m.occupancy],
    }


def ran_with(sc: Scenario, group: Group) -> dict[str, Any]:
    """The node configuration of a group's nodes as they ran: a black hole's strategy is
    the adversary's, whatever the group's ``strategy`` says."""
    node: dict[str, Any] = _plain(asdict(node_config(sc, group)))
    if group.role is Role.BLACKHOLE:
        node["strategy"], node["strategy_args"] = BlackHole.NAME, []
    return node


def effective_scenario(sc: Scenario) -> dict[str, Any]:
    """Every field of the parsed scenario, defaults included (the file's name, not its
    path, so that the same run elsewhere gives the same bytes); null where a bound is
    infinite (a window without an end)."""
    data = asdict(sc)
    data.pop("extra", None)
    data["source"] = Path(sc.source).name
    if sc.traffic.files == 0:  # text only: the report of a run before attachments existed
        for key in ("files", "file_size"):
            data["traffic"].pop(key)
    out: dict[str, Any] = _plain(data)
    return out


def _plain(value: Any) -> Any:
    """JSON without NaN or Infinity: tuples as lists, bytes as hex, inf as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Enum):
        return value.value
    return value


def messages_csv(m: Metrics, files: bool = False) -> str:
    """One row per text message (``files``: per file, in ``files.csv``)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(
        ["msg_id", "src", "dst", "size", "created", "delivered", "latency", "hops", "receipt_at"]
    )
    for msg in m.files if files else m.messages:
        lat = "" if msg.delivered_at is None else f"{msg.delivered_at - msg.created:.3f}"
        w.writerow(
            [
                msg.msg_id.hex(),
                msg.src,
                msg.dst,
                msg.size,
                f"{msg.created:.3f}",
                "" if msg.delivered_at is None else f"{msg.delivered_at:.3f}",
                lat,
                "" if msg.hops is None else msg.hops,
                "" if msg.acked_at is None else f"{msg.acked_at:.3f}",
            ]
        )
    return out.getvalue()


def write(
    out_dir: Path,
    sc: Scenario,
    seed: int,
    m: Metrics,
    plots: bool = True,
    overrides: dict[str, Any] | None = None,
) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [out_dir / "report.json", out_dir / "messages.csv"]
    record = report_dict(sc, seed, m, overrides)
    files[0].write_text(json.dumps(record, sort_keys=True, indent=1, allow_nan=False) + "\n")
    files[1].write_text(messages_csv(m))
    if m.files_on:
        files.append(out_dir / "files.csv")
        files[-1].write_text(messages_csv(m, files=True))
    if plots:
        files += _plots(out_dir, sc, m)
    return files


def _plots(out_dir: Path, sc: Scenario, m: Metrics) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = sorted(x.delivered_at for x in m.messages if x.delivered_at is not None)
    created = sorted(x.created for x in m.messages)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.step([t / 3600 for t in created], range(1, len(created) + 1), label="created")
    ax.step([t / 3600 for t in done], range(1, len(done) + 1), label="delivered")
    ax.set_xlabel("simulated time (h)")
    ax.set_ylabel("messages")
    ax.set_title(f"{sc.name}: delivery over time")
    ax.legend()
    fig.tight_layout()
    p1 = out_dir / "delivery.png"
    fig.savefig(p1, dpi=100, metadata={"Software": None})
    plt.close(fig)
    lat = sorted(
        (x.delivered_at - x.created) / 60 for x in m.messages if x.delivered_at is not None
    )
    fig, ax = plt.subplots(figsize=(7, 4))
    if lat:
        ax.plot(lat, [(i + 1) / len(m.messages) for i in range(len(lat))])
    ax.set_xlabel("latency (min)")
    ax.set_ylabel("fraction of created messages delivered")
    ax.set_title(f"{sc.name}: latency CDF")
    fig.tight_layout()
    p2 = out_dir / "latency_cdf.png"
    fig.savefig(p2, dpi=100, metadata={"Software": None})
    plt.close(fig)
    regions = m.summary.get("per_region", {})
    fig, ax = plt.subplots(figsize=(7, 4))
    names = list(regions)
    ax.bar(names, [regions[r]["delivery_prob"] for r in names])
    ax.set_ylim(0, 1)
    ax.set_ylabel("delivery probability")
    ax.set_xlabel("destination's region")
    ax.set_title(f"{sc.name}: delivery per region")
    fig.tight_layout()
    p3 = out_dir / "per_region.png"
    fig.savefig(p3, dpi=100, metadata={"Software": None})
    plt.close(fig)
    return [p1, p2, p3]


def summary_text(sc: Scenario, seed: int, m: Metrics, wall: float) -> str:
    s = m.summary
    lines = [
        f"{sc.name} (seed {seed}): {s['nodes']} nodes in {sc.width:.0f} x {sc.height:.0f} m, "
        f"{sc.duration / 3600:.1f} simulated h, {wall:.1f} s wall",
        f"  created {s['created']}, delivered {s['delivered']} "
        f"(delivery_prob {s['delivery_prob']:.3f}); within 1 h {s['delivered_1h']}, "
        f"6 h {s['delivered_6h']}, 24 h {s['delivered_24h']}",
        f"  latency avg {_num(s['latency_avg'], '.0f')} s, median"
        f" {_num(s['latency_med'], '.0f')} s; hops avg {_num(s['hopcount_avg'], '.2f')};"
        f" overhead_ratio {_num(s['overhead_ratio'], '')}",
        f"  relayed {s['relayed']}, aborted {s['aborted']}, dropped {s['dropped']}, "
        f"contacts {s['contacts']}, bytes on air {s['bytes_on_air'] / 2**20:.1f} MiB, "
        f"over the internet {s['bytes_internet'] / 2**20:.1f} MiB",
    ]
    if "files" in s:
        f = s["files"]
        lines.append(
            f"  files: sent {f['sent']} ({f['bytes_sent'] / 2**20:.1f} MiB; refused at the"
            f" source {f['refused_at_source']}), received whole {f['received']}"
            f" (delivery_prob {f['delivery_prob']:.3f}), latency median"
            f" {_num(f['latency_med'], '.0f')} s; the lines above are text messages only"
        )
    return "\n".join(lines)


def _num(value: float | None, spec: str) -> str:
    """A statistic for the summary; ``-`` when there is none (nothing delivered)."""
    return "-" if value is None else format(value, spec)
