"""The local API's sans-I/O protocol: typed requests that round-trip through the wire and
the operation table, results and events checked field by field, and a client connection
that keeps events in order around the answer it waits for."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path
from typing import Any

import pytest

from crypto.wire import strict_unpack
from mesh import ipc
from mesh.ipc import calls as c
from mesh.ipc import events as ev
from mesh.ipc.protocol import ClientConnection, Failure, Reply, answer_map, unwrap

EXAMPLES: list[c.AnyCall] = [
    c.Status(),
    c.Peers(),
    c.Me(),
    c.SafetyNumber("Bob"),
    c.Contacts(),
    c.ContactAdd("STEPPE1:AAAA", "Bob", True),
    c.ContactVerify("Bob", "ab" * 32),
    c.ContactAddSender("abcd" * 4, "Bob"),
    c.ContactRemove("Bob"),
    c.ContactRename("Bob", "Robert"),
    c.Conversations(),
    c.Messages("Bob", 10),
    c.SendFile("Bob", "/tmp/photo.jpg"),
    c.Files("Bob"),
    c.FileSave("abcd1234", "/tmp/saved.jpg"),
    c.FileDelete("abcd1234"),
    c.Send("Bob", "hello"),
    c.Subscribe(),
    c.BulletinPost("water", "square", 2),
    c.BulletinList(5),
    c.BulletinPost("water", "square", 2, "Witness"),
    c.BulletinEndorse("ab" * 16),
    c.Personas(),
    c.PersonaNew("Witness"),
    c.Export("/tmp/x", 100),
    c.Import("/tmp/x"),
    c.Panic(),
]


def test_every_operation_has_an_example() -> None:
    assert sorted({x.OP for x in EXAMPLES}) == sorted(c.CALLS)


@pytest.mark.parametrize("call", EXAMPLES, ids=lambda x: x.OP)
def test_a_typed_request_round_trips(call: c.AnyCall) -> None:
    frame = ipc.encode_frame(ipc.request_map(7, call))
    (obj,) = ipc.FrameReader().feed(frame)
    req = ipc.parse_request(obj)
    assert (req.id, req.call) == (7, call)
    assert req.op == call.OP


def test_optional_arguments_take_their_defaults() -> None:
    assert ipc.parse_request(ipc.request(1, "messages")).call == c.Messages("", 50)
    assert ipc.parse_request(ipc.request(1, "contact_add", card="x")).call == c.ContactAdd("x")
    assert ipc.OPTIONAL["bulletin_post"] == {"topic", "hours", "persona"}
    assert ipc.LIMITS[("contact_rename", "new_name")] == (1, ipc.MAX_NAME)
    paths = {("export", "path"), ("import", "path"), ("send_file", "path"), ("file_save", "path")}
    assert paths == ipc.PATHS


def test_requests_and_events_are_frozen_and_slotted() -> None:
    for cls in [*c.CALLS.values(), *ev.EVENTS.values()]:
        assert dataclasses.is_dataclass(cls)
        assert "__slots__" in cls.__dict__, cls
        assert vars(cls)["__dataclass_params__"].frozen, cls


ROW = {
    "name": "Bob",
    "verified": True,
    "key_changed": False,
    "fingerprint": "ab" * 32,
    "can_write": True,
}


def test_results_are_typed_and_checked() -> None:
    row = c.Contacts().decode([ROW])[0]
    assert row == c.ContactRow("Bob", True, False, "ab" * 32, True)
    assert c.Send("Bob", "x").decode({"msg_id": b"\x01" * 16, "new": 1}).msg_id == b"\x01" * 16
    assert c.Import("p").decode({"stored": 2}) == {"stored": 2}
    assert c.Subscribe().decode(True) is True
    problems: list[tuple[c.AnyCall, object, str]] = [
        (c.Contacts(), {"name": "Bob"}, "expected a list"),
        (c.Contacts(), [{**ROW, "verified": 1}], "ContactRow.verified: expected bool, got int"),
        (c.ContactRemove("Bob"), {"name": "Bob"}, "ContactRow: verified is missing"),
        (c.Import("p"), {"stored": True}, "expected a map of counters"),
        (c.Panic(), None, "panic: expected bool"),
    ]
    for call, raw, problem in problems:
        with pytest.raises(ipc.IpcError, match=problem):
            call.decode(raw)


EVENTS: list[ev.Event] = [
    ev.MessageReceived(b"m" * 16, b"k" * 32, "Bob", 1_767_225_600, "hi"),
    ev.MessageStateChanged(b"m" * 16),
    ev.BulletinStored(b"k" * 32, "Bob (verified contact)", "water", 1, 2, "at the square"),
    ev.LinkChanged(3, "gateway", False),
    ev.ContactChanged(ev.ContactChange.RENAMED, "Robert", "ab" * 32, "Bob"),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.KIND)
def test_an_event_round_trips(event: ev.Event) -> None:
    (obj,) = ipc.FrameReader().feed(ipc.encode_frame(ipc.event_map(event)))
    assert ipc.parse_event(obj) == event


def test_events_on_the_wire_are_plain_maps() -> None:
    frame = ipc.encode_frame(ipc.event_map(EVENTS[-1]))
    assert strict_unpack(frame[4:], max_size=1000) == {
        "event": "contact",
        "data": {
            "change": "renamed",
            "name": "Robert",
            "fingerprint": "ab" * 32,
            "old_name": "Bob",
        },
    }


def test_unknown_events_are_skipped_and_broken_ones_refused() -> None:
    assert ipc.parse_event({"event": "from_the_future", "data": {}}) is None
    with pytest.raises(ipc.IpcError, match="event peer: up is missing"):
        ipc.parse_event({"event": "peer", "data": {"link": 1, "kind": "lan"}})
    with pytest.raises(ipc.IpcError, match="unknown value 'exploded'"):
        ipc.parse_event(
            {"event": "contact", "data": {"change": "exploded", "name": "x", "fingerprint": "y"}}
        )


def _frames(*objs: dict[str, Any]) -> bytes:
    return b"".join(ipc.encode_frame(o) for o in objs)


def test_the_client_connection_keeps_events_around_its_answer() -> None:
    conn = ClientConnection()
    first = conn.send("status", {})
    (req,) = ipc.FrameReader().feed(first)
    second = conn.send("peers", {})  # the first is given up on
    (req2,) = ipc.FrameReader().feed(second)
    event = ipc.event_map(EVENTS[1])
    data = _frames(
        answer_map(Reply(req["id"], "stale")),
        event,
        answer_map(Reply(req2["id"], [])),
        ipc.event_map(EVENTS[3]),
    )
    for k in range(len(data)):  # byte by byte: framing holds across reads
        conn.receive_data(data[k : k + 1])
    answer = conn.take_answer()
    assert answer is not None
    assert unwrap(answer) == []
    assert conn.take_answer() is None
    assert [conn.next_event(), conn.next_event(), conn.next_event()] == [EVENTS[1], EVENTS[3], None]


def test_a_refusal_and_a_hang_up_are_ipc_errors() -> None:
    conn = ClientConnection()
    conn.send("status", {})
    conn.receive_data(ipc.encode_frame(answer_map(Failure(0, "IPC frame exceeds"))))
    answer = conn.take_answer()
    assert answer is not None
    with pytest.raises(ipc.IpcError, match="IPC frame exceeds"):
        unwrap(answer)
    with pytest.raises(ipc.IpcError, match="closed the connection"):
        conn.receive_data(b"")


IO_MODULES = {"trio", "asyncio", "socket", "selectors", "select", "threading", "anyio"}
SANS_IO = ["__init__.py", "protocol.py", "calls.py", "events.py", "schema.py"]


@pytest.mark.parametrize("name", SANS_IO)
def test_the_protocol_modules_import_no_io(name: str) -> None:
    """Both clients share these; so will any other (a test, a future phone bridge)."""
    path = Path(ipc.__file__).parent / name
    imported: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            imported += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            imported.append(node.module)
    assert not [m for m in imported if m.split(".")[0] in IO_MODULES], imported
