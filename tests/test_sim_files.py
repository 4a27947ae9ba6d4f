"""Photos in simulated traffic (issue 16): files sent with ``SendFile`` arrive whole, are
counted apart from text, are reproducible, and a run with files off is what it was."""

from __future__ import annotations

import json
from pathlib import Path
from typing import ClassVar

import pytest

from mesh.core.events import FileReceived
from simulations import report
from simulations.harness import Simulation, _NodeActions
from simulations.metrics import Metrics
from simulations.overrides import load_with
from simulations.scenario import ScenarioError, load, parse
from simulations.sweep import sweep
from tests.test_scenarios import shrink
from tests.test_simulator import small

PHOTOS = "stop = 1200\nfiles = 0.3\nfile_size = [20000, 100000]"


def short() -> str:
    """tests.test_simulator's dense square, half an hour."""
    return small().replace("duration = 3600", "duration = 1500")


def photos() -> str:
    return short().replace("stop = 2400", PHOTOS)


class _Counting(_NodeActions):
    """The harness's own sink, counting the FileReceived actions the nodes return."""

    seen: ClassVar[list[FileReceived]] = []

    def on_file(self, act: object) -> None:
        if isinstance(act, FileReceived):
            _Counting.seen.append(act)
        super().on_file(act)  # type: ignore[arg-type]


def test_files_are_sent_and_arrive_whole() -> None:
    _Counting.seen = []
    sim = Simulation(parse(photos()))
    sim._sinks = [_Counting(sim, i) for i in range(len(sim.nodes))]
    m = sim.run()
    f = m.summary["files"]
    assert f["sent"] > 3
    assert len(_Counting.seen) > 0
    assert f["received"] == len(_Counting.seen) == sum(1 for x in m.files if x.delivered_at)
    assert f["corrupt"] == 0
    assert f["chunks_received"] >= f["received"] * 2  # 20 kB and more: two chunks at least
    assert f["bytes_received"] == sum(x.size for x in m.files if x.delivered_at)
    assert f["latency_med"] is not None
    assert f["latency_med"] > 0
    assert m.summary["created"] == len(m.messages)  # the ONE keys count texts only
    assert all(not x.digest for x in m.messages)


def test_a_tampered_file_is_not_counted_received() -> None:
    # The metric checks the bytes, not only the action: a wrong byte is "corrupt".
    m = Metrics(files_on=True)
    m.creating(0, 1, 3, 0.0, digest=b"\x00" * 32)
    m.queued(b"m" * 16, b"e" * 32, 0, 0.0)
    m.file_offered(b"m" * 16, b"f" * 16, 1, "")
    m.chunk(b"f" * 16, 1, 0, b"abc")
    m.file_received(b"m" * 16, 1, 5.0)
    assert (m.files[0].delivered_at, m.file_counts.corrupt) == (None, 1)


def test_same_seed_same_report_and_texts_are_those_of_a_text_only_run(tmp_path: Path) -> None:
    sc = parse(photos())
    outs = []
    for run in range(2):
        files = report.write(tmp_path / str(run), sc, 3, Simulation(sc, 3).run(), plots=False)
        assert [f.name for f in files] == ["report.json", "messages.csv", "files.csv"]
        outs.append(b"".join(f.read_bytes() for f in files))
    assert outs[0] == outs[1]
    text_only = Simulation(parse(short().replace("stop = 2400", "stop = 1200")), 3).run()
    with_photos = Simulation(sc, 3).run()
    texts = [(x.src, x.dst, x.size, x.created) for x in with_photos.messages]
    assert texts == [(x.src, x.dst, x.size, x.created) for x in text_only.messages]
    assert {(x.src, x.dst) for x in with_photos.files} <= {t[:2] for t in texts}


def test_files_off_leaves_the_report_as_it_was(tmp_path: Path) -> None:
    off = parse(small().replace("stop = 2400", "stop = 2400\nfiles = 0"))
    assert off == parse(small())
    m = Simulation(off).run()
    assert "files" not in m.summary
    written = report.write(tmp_path, off, off.seed, m, plots=False)
    assert [f.name for f in written] == ["report.json", "messages.csv"]
    record = json.loads((tmp_path / "report.json").read_text())
    assert "files" not in record["effective_scenario"]["traffic"]
    assert "file_size" not in record["effective_scenario"]["traffic"]
    assert "files" not in report.summary_text(off, off.seed, m, 1.0)


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("files = 1.5", "traffic.files: a fraction of messages, in [0, 1]"),
        ("files = -0.1", "traffic.files: a fraction of messages, in [0, 1]"),
        ('files = "some"', "traffic.files: expected float"),
        ("file_size = [0, 10]", "traffic.file_size: a file has at least 1 byte"),
        ("file_size = [1, 10485761]", "traffic.file_size: at most 10485760 bytes"),
        ("file_size = [10, 1]", "traffic.file_size: expected [min, max] with 0 <= min <= max"),
        ("file_sise = [1, 2]", "traffic.file_sise: unknown key; did you mean 'file_size'?"),
        ("photos = 0.1", "traffic.photos: unknown key"),
    ],
)
def test_bad_file_keys_name_the_key(keys: str, message: str) -> None:
    with pytest.raises(ScenarioError) as exc:
        parse(small().replace("stop = 2400", f"stop = 2400\n{keys}"))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_a_sweep_prints_text_delivery_with_photos_off_and_on(tmp_path: Path) -> None:
    path = tmp_path / "square.toml"
    path.write_text(photos())
    out, progress = tmp_path / "table.txt", tmp_path / "progress.txt"
    with out.open("w") as o, progress.open("w") as p:
        rows = sweep(str(path), ["traffic.files=0,0.3"], "3", 1, None, out=o, progress=p)
    assert [r["traffic.files"] for r in rows] == [0, 0.3]
    assert rows[0]["files_sent"] == "-"
    assert isinstance(rows[1]["files_sent"], int)
    assert rows[1]["files_sent"] > 0
    header = out.read_text().splitlines()[0].split()
    assert header[:3] == ["traffic.files", "seed", "delivery_prob"]
    assert "files_received" in header


def test_the_shipped_photo_variant_with_files_off_is_protest_square() -> None:
    plain = shrink(load("protest-square"), 600, 0.2)
    off = shrink(load_with("protest-square-photos", {"traffic.files": 0}), 600, 0.2)
    assert load("protest-square-photos").traffic.files > 0
    assert Simulation(off).run().summary == Simulation(plain).run().summary


def test_a_text_only_sweep_has_no_file_columns(tmp_path: Path) -> None:
    path, table = tmp_path / "square.toml", tmp_path / "rows.csv"
    path.write_text(short())
    with (tmp_path / "t").open("w") as o, (tmp_path / "p").open("w") as p:
        rows = sweep(str(path), [], "3", 1, str(table), out=o, progress=p)
    assert "files_sent" not in rows[0]
    assert "files_sent" not in table.read_text()
