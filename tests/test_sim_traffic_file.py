"""Traffic from a file (The ONE's CreatedMessagesReport or a CSV): every message created
when and where the file says, nothing else; errors name the line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from simulations.harness import Simulation
from simulations.scenario import ScenarioError, parse
from simulations.traffic_file import Created, TrafficFileError, read_traffic
from tests.test_simulator import small

ONE = """# time  ID  size  fromHost  toHost  TTL  isResponse
25.0000 M1 500000 p3 p12 300 N
31.5000 M2 750000 p12 p3 n/a N
40.0000 M1 500000 p12 p3 299 Y
"""


def test_the_ones_report_is_read_in_minutes_and_responses_are_left_out() -> None:
    got = read_traffic(ONE, nodes=20, default_ttl=7200, size_scale=0.01)
    assert got == [Created(25.0, 3, 12, 5000, 300 * 60), Created(31.5, 12, 3, 7500, 7200)]


def test_a_csv_with_and_without_ttl() -> None:
    text = "time,source,destination,size,ttl\n10,0,1,300,600\n5,2,0,1200,\n"
    got = read_traffic(text, nodes=3, default_ttl=99)
    assert got == [Created(5.0, 2, 0, 1200, 99), Created(10.0, 0, 1, 300, 600)]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        (ONE, "line 2: size 500000 x 1.0 = 500000"),
        ("time,source,destination,size\n1,0,0,10\n", "line 2: nodes 0 and 0"),
        ("time,source,destination,size\n1,0,99,10\n", "line 2: nodes 0 and 99"),
        ("time,source,size\n1,0,10\n", "columns time,source,destination,size"),
        ("# time  ID  size\n1 M1 10 p1 p2 5 N\n", "not a CreatedMessagesReport header"),
        ("# time  ID  size  fromHost  toHost  TTL  isResponse\n1 M1 10 p1\n", "line 2: expected"),
        ("time,source,destination,size\nsoon,0,1,10\n", "line 2: time, nodes"),
    ],
)
def test_bad_files_name_the_line(text: str, says: str) -> None:
    with pytest.raises(TrafficFileError, match=says):
        read_traffic(text, nodes=20, default_ttl=60)


def test_a_run_creates_exactly_the_files_messages(tmp_path: Path) -> None:
    lines = ["time,source,destination,size"]
    want = [(300.0 + 40 * k, k % 20, (k * 7 + 3) % 20, 200 + 37 * k) for k in range(30)]
    want = [w for w in want if w[1] != w[2]]
    lines += [f"{t},{s},{d},{n}" for t, s, d, n in want]
    lines.append("4000,1,2,100")  # after the end of the run: never created
    (tmp_path / "msgs.csv").write_text("\n".join(lines) + "\n")
    text = small().replace("stop = 2400", 'stop = 2400\nfile = "msgs.csv"')
    (tmp_path / "run.toml").write_text(text)
    sc = parse(text, str(tmp_path / "run.toml"))
    m = Simulation(sc).run()
    assert [(x.created, x.src, x.dst, x.size) for x in m.messages] == want
    assert m.summary["delivery_prob"] >= 0.8


def test_a_missing_or_bad_file_is_one_line_from_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "run.toml"
    path.write_text(small().replace("stop = 2400", 'stop = 2400\nfile = "absent.csv"'))
    with pytest.raises(ScenarioError, match="cannot read"):
        Simulation(parse(path.read_text(), str(path))).run()
    (tmp_path / "bad.csv").write_text("time,source,destination,size\n1,0,0,10\n")
    path.write_text(small().replace("stop = 2400", 'stop = 2400\nfile = "bad.csv"'))
    run = subprocess.run(
        [sys.executable, "-m", "mesh.cli", "sim", "run", str(path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1
    assert "bad.csv, line 2: nodes 0 and 0" in run.stderr
