"""The simulator: engine, mobility, scenarios, and small runs as regression tests."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from mesh.core.events import FrameReceived
from simulations import report
from simulations.engine import Engine
from simulations.harness import Simulation
from simulations.mobility import Gatherings, RandomWaypoint, TraceError, read_trace
from simulations.overrides import load_with
from simulations.scenario import ScenarioError, available, load, parse

SMALL = """
# A small dense square for fast regression runs.
[scenario]
name = "small"
duration = 3600
seed = 3
warmup = 300
stamp_bits = 4

[world]
width = 300
height = 300

[[radios]]
name = "wifi"
range = 40
bitrate = 200000
setup = 0.2

[[groups]]
name = "people"
count = 20
movement = "random_waypoint"
speed = [0.5, 1.5]
wait = [0, 60]
radio = "wifi"
buffer = 2000000
strategy = "{strategy}"

[traffic]
interval = [20, 40]
size = [200, 1000]
ttl = 7200
stop = 2400
"""


def small(strategy: str = "epidemic") -> str:
    return SMALL.replace("{strategy}", strategy)


def test_engine_orders_ties_by_schedule_order() -> None:
    e = Engine()
    seen: list[str] = []
    e.at(5, lambda: seen.append("b"))
    e.at(1, lambda: seen.append("a"))
    e.at(5, lambda: seen.append("c"))
    e.at(5, lambda: e.after(0, lambda: seen.append("d")))
    e.run(10)
    assert seen == ["a", "b", "c", "d"]
    assert e.now == 10
    assert e.events_run == 5


def test_random_waypoint_stays_in_the_area_and_respects_speeds() -> None:
    rw = RandomWaypoint(50, 1000, 500, (0.5, 1.5), (0, 120), random.Random(1), warmup=100)
    for t in range(0, 5000, 37):
        xs, ys = rw.positions(float(t))
        assert np.all((xs >= 0) & (xs <= 1000) & (ys >= 0) & (ys <= 500))
        lg = rw.legs
        moving = lg.t1 > lg.t0
        dist = np.hypot(lg.x1 - lg.x0, lg.y1 - lg.y0)[moving]
        speed = dist / (lg.t1 - lg.t0)[moving]
        assert np.all((speed >= 0.5 - 1e-9) & (speed <= 1.5 + 1e-9))
        assert np.all(lg.t_next >= lg.t1)
        assert np.all(lg.t_next - lg.t1 <= 120 + 1e-9)


def test_a_group_with_an_area_stays_in_it() -> None:
    rw = RandomWaypoint(30, 200, 100, (1, 2), (0, 10), random.Random(3), origin=(6000, 50))
    g = Gatherings(
        30,
        200,
        100,
        (1, 2),
        (0, 10),
        random.Random(4),
        [(6190, 60)],
        50,
        0.9,
        (5, 10),
        origin=(6000, 50),
    )
    for model in (rw, g):
        for t in range(0, 3000, 29):
            xs, ys = model.positions(float(t))
            assert np.all((xs >= 6000) & (xs <= 6200) & (ys >= 50) & (ys <= 150))
    sc = parse(small().replace("buffer = 2000000", "buffer = 2000000\narea = [100, 0, 300, 300]"))
    assert sc.groups[0].area == (100.0, 0.0, 300.0, 300.0)
    m = Simulation(replace(sc, duration=600.0)).run()
    assert m.summary["contacts"] > 0
    for bad, message in (
        ("area = [0, 0, 400, 300]", "groups[0].area: reaches outside the world"),
        ("area = [50, 0, 10, 300]", "groups[0].area: expected [x0, y0, x1, y1]"),
        ("area = [0, 0, 300]", "groups[0].area: expected [x0, y0, x1, y1]"),
    ):
        with pytest.raises(ScenarioError, match=re.escape(message)):
            parse(small().replace("buffer = 2000000", "buffer = 2000000\n" + bad))


def test_random_waypoint_is_reproducible() -> None:
    a = RandomWaypoint(10, 100, 100, (1, 2), (0, 10), random.Random(5))
    b = RandomWaypoint(10, 100, 100, (1, 2), (0, 10), random.Random(5))
    for t in (10.0, 100.0, 1000.0):
        assert np.array_equal(a.positions(t)[0], b.positions(t)[0])


def test_read_trace_both_formats_and_errors() -> None:
    events = read_trace("10 1 2 up\n# note\n5 CONN 3 1 up\n20 2 1 down\n")
    assert [(e.time, e.a, e.b, e.up) for e in events] == [
        (5.0, 1, 3, True),
        (10.0, 1, 2, True),
        (20.0, 1, 2, False),
    ]
    with pytest.raises(TraceError, match="line 1"):
        read_trace("10 1 2 sideways")
    with pytest.raises(TraceError, match="line 2"):
        read_trace("1 1 2 up\nx 1 2 up")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("duration = 3600", "duration = -1"), "scenario.duration: must be positive"),
        (("speed = [0.5, 1.5]", "speed = [2, 1]"), "groups[0].speed: expected [min, max]"),
        (('radio = "wifi"', 'radio = "lora"'), "groups[0].radio: no radio named 'lora'"),
        (("count = 20", 'count = "many"'), "groups[0].count: expected int"),
        (('movement = "random_waypoint"', 'movement = "teleport"'), "groups[0].movement"),
        (
            ("[world]\nwidth = 300", "[world]\nwidht = 300"),
            "world.widht: unknown key; did you mean 'width'?",
        ),
        (
            ('strategy = "epidemic"', 'stratgy = "spray"'),
            "groups[0].stratgy: unknown key; did you mean 'strategy'?",
        ),
        (("[traffic]", "[trafic]"), "trafic: unknown section; did you mean 'traffic'?"),
        (("setup = 0.2", "setup = 0.2\nzzz = 1"), "radios[0].zzz: unknown key; valid: name, range"),
        (
            ("seed = 3", "seed = 3\nduraton = 5"),
            "scenario.duraton: unknown key; did you mean 'duration'?",
        ),
        (("size = [200, 1000]", "size = [200, 100000]"), "traffic.size: at most"),
        (("stop = 2400", "stop = 2400\nsources = [0, 99]"), "traffic.sources: node 99"),
        (("[scenario]", "[scenario\n"), "not valid TOML"),
        (("height = 300", "height = 300\nnodes = 0"), "world.nodes: at least 1"),
        (("buffer = 2000000", 'buffer = 2000000\noffer_order = "lifo"'), "offer_order: one of"),
        (("buffer = 2000000", "buffer = 2000000\ndelivered_copies = 1"), "expected str"),
        (("height = 300", 'height = 300\nnodes = "x"'), "world.nodes: expected int"),
    ],
)
def test_bad_scenarios_name_the_key(change: tuple[str, str], message: str) -> None:
    text = small().replace(*change)
    assert text != small()
    with pytest.raises(ScenarioError) as exc:
        parse(text)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_world_grows_with_the_node_count_at_constant_density() -> None:
    grown = small().replace("height = 300", "height = 300\nnodes = 20")
    assert (parse(grown).width, parse(grown).height) == (300.0, 300.0)
    four_times = parse(grown.replace("count = 20", "count = 80"))
    assert (four_times.width, four_times.height) == (600.0, 600.0)
    assert four_times.node_count / (four_times.width * four_times.height) == 20 / 300**2
    assert parse(small().replace("count = 20", "count = 80")).width == 300.0  # no key: fixed
    traced = grown.replace("seed = 3", 'seed = 3\ntrace = "t.txt"')
    with pytest.raises(ScenarioError, match=r"world\.nodes: a contact trace"):
        parse(traced)
    relays = """
[[groups]]
name = "relays"
count = 1
movement = "static"
positions = [[10, 10]]
radio = "wifi"
"""
    with pytest.raises(ScenarioError, match=r"world\.nodes: groups\[1\] has fixed coordinates"):
        parse(grown.replace("[traffic]", relays + "\n[traffic]"))
    # The shipped one-random-waypoint keeps The ONE's density when run bigger.
    big = load_with("one-random-waypoint", {"groups.0.count": 400})
    assert (big.width, big.height) == (9000.0, 6800.0)
    packed = load_with("one-random-waypoint", {"groups.0.count": 400, "world.nodes": 400})
    assert (packed.width, packed.height) == (4500.0, 3400.0)


def test_shipped_scenarios_parse() -> None:
    names = [n for n, _d in available()]
    assert "one-random-waypoint" in names
    for name in names:
        sc = load(name)
        assert sc.node_count > 0
        assert "invalid" not in dict(available())[name]


def test_same_seed_same_bytes_and_different_seed_differs(tmp_path: Path) -> None:
    sc = parse(small())
    outs = []
    for run, seed in enumerate((3, 3, 4)):
        m = Simulation(sc, seed).run()
        files = report.write(tmp_path / str(run), sc, seed, m, plots=False)
        outs.append(b"".join(f.read_bytes() for f in files))
    assert outs[0] == outs[1]
    assert outs[0] != outs[2]


def test_epidemic_delivers_most_in_a_dense_square() -> None:
    m = Simulation(parse(small())).run()
    s = m.summary
    assert s["created"] >= 50
    assert s["delivery_prob"] >= 0.8, s
    assert s["hopcount_avg"] >= 1.0
    assert s["latency_med"] > 0
    assert 0 < s["response_prob"] <= s["delivery_prob"]
    json.dumps(s)


def test_spray_and_wait_overhead_below_epidemic() -> None:
    epi = Simulation(parse(small("epidemic"))).run().summary
    spray = Simulation(parse(small("spray"))).run().summary
    assert spray["overhead_ratio"] < epi["overhead_ratio"], (spray, epi)
    assert spray["delivery_prob"] >= 0.5


def test_delivered_copies_keep_or_drop() -> None:
    runs = {}
    for mode in ("drop", "keep"):
        text = small().replace("buffer = 2000000", f'buffer = 2000000\ndelivered_copies = "{mode}"')
        sim = Simulation(parse(text))
        runs[mode] = sim.run().summary
        purged = sum(n.stats.get("purged_by_receipt", 0) for n in sim.nodes)
        assert (purged > 0) == (mode == "drop"), (mode, purged)
    assert runs["keep"]["removed"] < runs["drop"]["removed"]
    assert runs["keep"]["relayed"] > runs["drop"]["relayed"]
    assert runs["keep"]["delivery_prob"] >= 0.8


def test_one_random_waypoint_small_version() -> None:
    sc = load("one-random-waypoint")
    sc = replace(sc, duration=7200.0, groups=(replace(sc.groups[0], count=40),))
    s = Simulation(sc).run().summary
    assert s["created"] > 200
    assert s["contacts"] > 0
    assert s["relayed"] > 0


def test_unknown_scenario_keys_from_a_real_cli(tmp_path: Path) -> None:
    """A typo in the file or in --set is one line naming it, never a silent default."""
    path = tmp_path / "typo.toml"
    path.write_text(small().replace('strategy = "epidemic"', 'stratgy = "spray"'))
    base = [sys.executable, "-m", "mesh.cli", "sim", "run", "--quiet", "--no-plots"]
    runs = {
        "groups[0].stratgy: unknown key; did you mean 'strategy'?": [str(path)],
        "trafic: unknown section; did you mean 'traffic'?": [
            str(tmp_path / "ok.toml"),
            "--set",
            "trafic={interval = [1, 2]}",
        ],
        "groups[0].strateg: unknown key; did you mean 'strategy'?": [
            str(tmp_path / "ok.toml"),
            "--set",
            "groups.0.strateg=spray",
        ],
        "trafic.ttl: no key 'trafic'; did you mean 'traffic'?": [
            str(tmp_path / "ok.toml"),
            "--set",
            "trafic.ttl=5",
        ],
    }
    (tmp_path / "ok.toml").write_text(small())
    for message, args in runs.items():
        r = subprocess.run(
            [*base, "--out", str(tmp_path / "o"), *args],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert r.returncode == 2, r.stderr
        assert r.stderr == f"steppe: {message}\n"
    assert not (tmp_path / "o").exists()


def test_cli_sim_list_and_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from mesh.cli import main

    out = io.StringIO()
    assert main(["sim", "list"], out=out) == 0
    assert "one-random-waypoint" in out.getvalue()
    path = tmp_path / "small.toml"
    path.write_text(small())
    out = io.StringIO()
    code = main(
        ["sim", "run", str(path), "--quiet", "--no-plots", "--out", str(tmp_path / "o")], out=out
    )
    assert code == 0
    assert "delivery_prob" in out.getvalue()
    report_json = json.loads((tmp_path / "o" / "report.json").read_text())
    assert report_json["stats"]["created"] > 0
    assert report_json["world"] == [300.0, 300.0]
    out = io.StringIO()
    args = ["sim", "run", str(path), "--quiet", "--no-plots", "--out", str(tmp_path / "o2")]
    code = main([*args, "--set", "groups.0.count=5", "--set", "scenario.duration=600"], out=out)
    assert code == 0
    assert "5 nodes in 300 x 300 m, 0.2 simulated h" in out.getvalue()
    assert json.loads((tmp_path / "o2" / "report.json").read_text())["duration"] == 600.0
    code = main([*args, "--set", "groups.0.area=[0, 0, 100, 100]"], out=io.StringIO())
    assert code == 0
    assert main([*args, "--set", "groups.0.area=[0,0,999,5]"], out=io.StringIO()) == 2
    assert "groups[0].area: reaches outside the world" in capsys.readouterr().err
    bad = tmp_path / "bad.toml"
    bad.write_text(small().replace("count = 20", "count = -"))
    assert main(["sim", "run", str(bad), "--quiet"], out=io.StringIO()) == 2
    err = capsys.readouterr().err
    assert err.startswith("steppe: ")
    assert err.count("\n") == 1


def test_sweep_grid_times_seeds(tmp_path: Path) -> None:
    import io

    from mesh.cli import main

    path = tmp_path / "small.toml"
    path.write_text(small().replace("duration = 3600", "duration = 1200"))
    out = io.StringIO()
    code = main(
        [
            "sim",
            "sweep",
            str(path),
            "--set",
            "groups.0.strategy=epidemic,spray",
            "--seeds",
            "1-2",
            "--jobs",
            "2",
            "--csv",
            str(tmp_path / "s.csv"),
        ],
        out=out,
    )
    assert code == 0
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("groups.0.strategy,seed,delivery_prob")
    assert len(lines) == 5
    assert {ln.split(",")[0] for ln in lines[1:]} == {"epidemic", "spray"}
    assert main(["sim", "sweep", str(path), "--set", "groups.7.count=1"], out=io.StringIO()) == 2


def test_gatherings_draw_people_to_the_squares() -> None:
    g = Gatherings(
        100,
        1000,
        1000,
        (1, 2),
        (0, 60),
        random.Random(2),
        [(500, 500)],
        50,
        0.9,
        (600, 1200),
        warmup=3000,
    )
    rw = RandomWaypoint(100, 1000, 1000, (1, 2), (0, 60), random.Random(2), warmup=3000)
    near_g = near_r = 0
    for t in range(0, 7200, 300):
        for model, _ in ((g, 0), (rw, 1)):
            xs, ys = model.positions(float(t))
            n = int(np.sum(np.hypot(xs - 500, ys - 500) <= 100))
            if model is g:
                near_g += n
            else:
                near_r += n
    assert near_g > 5 * near_r


ROOT = Path(__file__).resolve().parent.parent  # so the subprocess imports this tree


def _sim(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", "sim", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_report_with_nothing_delivered_and_the_effective_scenario(tmp_path: Path) -> None:
    """No contact ever happens (a 1 cm radio): no latency and no hop count, null like
    overhead_ratio, not 0. The report says what produced it: every --set, the whole
    scenario after them, and each group's node configuration."""
    path = tmp_path / "far.toml"
    path.write_text(small().replace("range = 40", "range = 0.01"))
    out = tmp_path / "o"
    r = _sim(
        "run", str(path), "--quiet", "--no-plots", "--out", str(out),
        "--set", "scenario.duration=1200", "--set", "groups.0.strategy=spray",
        "--set", "groups.0.copies=3"
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "report.json").read_text())
    stats = rep["stats"]
    assert stats["created"] > 0
    assert stats["delivered"] == 0
    for key in ("latency_avg", "latency_med", "hopcount_avg", "hopcount_med", "overhead_ratio"):
        assert stats[key] is None, key
    assert "latency avg - s, median - s; hops avg -; overhead_ratio -" in r.stdout
    assert rep["overrides"] == {
        "scenario.duration": 1200,
        "groups.0.strategy": "spray",
        "groups.0.copies": 3,
    }
    eff = rep["effective_scenario"]
    assert eff["duration"] == 1200.0
    assert eff["source"] == "far.toml"
    assert eff["radios"]["wifi"]["range"] == 0.01
    group = eff["groups"][0]
    assert (group["strategy"], group["copies"], group["count"]) == ("spray", 3, 20)
    assert group["speed"] == [0.5, 1.5]
    assert group["offer_order"] == "fifo"  # a default, recorded too
    assert eff["traffic"]["stop"] == 2400.0
    [cfg] = rep["node_config"]
    assert cfg["group"] == "people"
    assert cfg["node"]["strategy"] == "spray"
    assert cfg["node"]["strategy_args"] == [["copies", 3]]
    assert cfg["node"]["mint_difficulty"] == 4
    assert cfg["store"]["max_total_bytes"] == 2_000_000
    # Still strict JSON: no NaN or Infinity anywhere.
    json.loads((out / "report.json").read_text(), parse_constant=lambda c: pytest.fail(c))


def test_infinite_windows_are_null_in_the_report() -> None:
    from simulations.report import effective_scenario

    sc = load("evening-throttle-2018")
    eff = effective_scenario(sc)
    ends = [w["end"] for r in eff["regions"].values() for w in r["windows"]]
    assert None in ends
    json.dumps(eff, allow_nan=False)


def test_sweep_seed_ranges_and_progress(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(small().replace("duration = 3600", "duration = 600"))
    for seeds, message in (
        ("5-1", "--seeds '5-1': a range N-M needs N <= M (did you mean 1-5?)"),
        ("x", "--seeds 'x': expected N, N-M or N,M,..."),
        ("1,", "--seeds '1,': expected N, N-M or N,M,..."),
    ):
        r = _sim("sweep", str(path), "--seeds", seeds)
        assert r.returncode == 2
        assert r.stderr == f"steppe: {message}\n"
        assert r.stdout == ""
    r = _sim("sweep", str(path), "--jobs", "0")
    assert (r.returncode, r.stderr) == (2, "steppe: --jobs must be at least 1, not 0\n")
    # Progress shows while the runs are going, on stderr; the table alone on stdout.
    cmd = [sys.executable, "-m", "mesh.cli", "sim", "sweep", str(path), "--seeds", "1-3"]
    proc = subprocess.Popen(
        [*cmd, "--set", "groups.0.strategy=epidemic,spray", "--jobs", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    first = proc.stderr.readline()
    assert first == "sweep: 6 runs on 2 local processes\n"
    assert proc.poll() is None  # said before any run finished
    rest, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    done = [ln for ln in err.splitlines() if "/6 (" in ln]
    assert [ln.split()[2] for ln in done] == [f"{i}/6" for i in range(1, 7)]
    assert done[-1].split()[1] == "[" + "#" * 20 + "]"  # the progress bar, full
    assert all("groups.0.strategy=" in ln and "delivery_prob" in ln for ln in done)
    table = rest.splitlines()
    assert len(table) == 7
    assert [ln.split()[:2] for ln in table[1:]] == [
        [strategy, str(seed)] for strategy in ("epidemic", "spray") for seed in (1, 2, 3)
    ]


def test_a_black_hole_group_is_recorded_with_the_strategy_it_runs() -> None:
    """The harness gives black holes the adversary's strategy: report.json used to say
    they ran the group's ``strategy`` (epidemic) instead."""
    from simulations.overrides import load_with
    from simulations.report import ran_with

    sc = load_with("dpi-block", {"groups.0.role": "blackhole", "groups.0.strategy": "spray"})
    node = ran_with(sc, sc.groups[0])
    assert (node["strategy"], node["strategy_args"]) == ("blackhole", [])
    assert ran_with(sc, sc.groups[1])["strategy"] == sc.groups[1].strategy


def test_a_radio_s_mtu_is_the_size_of_every_frame_on_it() -> None:
    """A Bluetooth preset's frames are ATT_MTU - 3 bytes, as the daemon's BLE link sends
    them; the simulator used to give every link 1,400-byte frames."""
    sizes: set[int] = set()
    sim = Simulation(parse(small().replace("setup = 0.2", "setup = 0.2\nmtu = 244")))
    feed = sim._feed

    def watched(idx: int, event: object) -> None:
        if isinstance(event, FrameReceived):
            sizes.add(len(event.data))
        feed(idx, event)  # type: ignore[arg-type]

    sim._feed = watched  # type: ignore[method-assign]
    m = sim.run()
    assert sizes == {244}
    assert m.summary["delivered"] > 0
    with pytest.raises(ScenarioError, match="mtu"):
        parse(small().replace("setup = 0.2", "setup = 0.2\nmtu = 10"))
