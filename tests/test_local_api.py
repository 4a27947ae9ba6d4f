"""The local API: every request checked before it reaches the node, one writer per client,
and nothing a client does (garbage, hang-ups, not reading) reaches past its connection."""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import trio

from crypto import bulletin
from crypto.wire import pack
from mesh import ipc
from mesh.core import config as node_config
from mesh.daemon.daemon import Daemon
from mesh.ipc import calls
from mesh.ipc.events import MessageReceived
from tests.daemon_helpers import befriend, loopback_config, make_profile


def test_the_text_bounds_are_the_node_s() -> None:
    assert node_config.MAX_BODY == ipc.MAX_TEXT
    assert bulletin.MAX_BODY == ipc.MAX_TEXT


@pytest.mark.parametrize(
    ("op", "args", "problem"),
    [
        ("bulletin_post", {"text": "x", "topic": "t" * 129}, "topic is at most 128 bytes"),
        ("bulletin_post", {"text": "x" * 12_001}, "text is at most 12000 bytes"),
        ("bulletin_post", {"text": "x", "hours": 0}, "hours must be between 1 and 168"),
        ("bulletin_post", {"text": "x", "hours": 1 << 62}, "hours must be between 1 and 168"),
        ("send", {"contact": "", "text": "hi"}, "contact may not be empty"),
        ("send", {"contact": "Bob", "text": "é" * 6001}, "text is at most 12000 bytes"),
        ("messages", {"limit": -1}, "limit must be between 1 and 10000"),
        ("messages", {"contact": "x" * 300}, "contact is at most 256 bytes"),
        ("bulletin_list", {"limit": 0}, "limit must be between 1 and 10000"),
        ("export", {"path": "/tmp/a\x00b"}, "path contains a NUL character"),
        ("export", {"path": "/tmp/b", "max_bytes": -5}, "max_bytes must be between"),
        ("import", {"path": ""}, "path may not be empty"),
        ("send", {"contact": "Bob", "text": b"bytes"}, "argument 'text' must be str"),
        ("messages", {"limit": True}, "argument 'limit' must be int"),
        ("contact_remove", {}, "missing argument 'name'"),
        ("contact_remove", {"name": ""}, "name may not be empty"),
        ("contact_rename", {"name": "Bob", "new_name": "x" * 257}, "new_name is at most 256"),
        ("contact_rename", {"name": "Bob", "to": "Rob"}, "unexpected argument 'to'"),
    ],
)
def test_requests_are_checked_before_they_reach_the_daemon(
    op: str, args: dict[str, Any], problem: str
) -> None:
    with pytest.raises(ipc.IpcError, match=problem):
        ipc.parse_request(ipc.request(1, op, **args))


def test_a_call_keeps_the_events_that_arrive_before_its_answer() -> None:
    async def main() -> None:
        ours, theirs = trio.socket.socketpair()
        client = ipc.Client(trio.SocketStream(ours))
        server = trio.SocketStream(theirs)
        async with trio.open_nursery() as n:

            async def daemon_side() -> None:
                reader = ipc.FrameReader()
                req = (reader.feed(await server.receive_some(65536)))[0]
                events = [MessageReceived(b"m%d" % k, b"k", "Bob", k, str(k)) for k in range(3)]
                frames = [ipc.encode_frame(ipc.event_map(e)) for e in events]
                frames.append(ipc.encode_frame({"id": req["id"], "ok": True, "result": 7}))
                await server.send_all(b"".join(frames))

            n.start_soon(daemon_side)
            with trio.fail_after(5):
                assert await client.call("status") == 7
                got = [await client.events() for _ in range(3)]
            assert [e.created for e in got if isinstance(e, MessageReceived)] == [0, 1, 2]
        await client.aclose()
        await server.aclose()

    trio.run(main)


# ---- against a real daemon --------------------------------------------------------------


async def _raw(path: Path) -> trio.SocketStream:
    return await trio.open_unix_socket(str(path))


async def _read_frames(stream: trio.SocketStream, want: int) -> list[dict[str, Any]]:
    reader, got = ipc.FrameReader(), list[dict[str, Any]]()
    while len(got) < want:
        data = await stream.receive_some(65536)
        if not data:
            break
        got += reader.feed(data)
    return got


def _random_value(r: random.Random) -> object:
    return r.choice(
        [
            None,
            True,
            r.randint(-(1 << 63), (1 << 64) - 1),
            r.randint(-3, 200),
            r.random(),
            "",
            "x" * r.choice([1, 127, 129, 257, 4097, 12_001, 60_000]),
            "\x00\x1b[2J" + "é" * r.randint(0, 50),
            r.randbytes(r.randint(0, 64)),
            [1, "a", None],
            {"nested": {"map": 1}},
        ]
    )


def _random_request(r: random.Random) -> dict[str, object]:
    op = r.choice([*ipc.OPS, "nope", "", "__class__", "panic"])
    if op == "panic":
        op = "status"  # the one request that is meant to stop the daemon
    spec = ipc.OPS.get(op, {})
    args: dict[str, object] = {}
    for name in spec:
        if r.random() < 0.8:
            args[name] = _random_value(r)
    if r.random() < 0.2:
        args[r.choice(["extra", "id", ""])] = _random_value(r)
    req: dict[str, object] = {"id": r.choice([r.randint(0, 1 << 40), -1, "one"]), "op": op}
    req["args"] = args if r.random() < 0.9 else r.choice([[], "args", 3])
    if op == "export" and isinstance(req["args"], dict):
        req["args"]["path"] = "/nonexistent/dir/bundle"  # never write anywhere real
    return req


async def _behave(path: Path, r: random.Random) -> None:
    """One client doing one hostile or careless thing."""
    stream = await _raw(path)
    kind = r.randrange(9)
    try:
        if kind == 0:  # raw garbage
            await stream.send_all(r.randbytes(r.randint(1, 3000)))
        elif kind == 1:  # a length far beyond the limit, or a frame cut short
            size = r.choice([ipc.MAX_FRAME + 1, 0xFFFFFFFF, 100])
            await stream.send_all(size.to_bytes(4, "big") + b"\x81\xa1a")
        elif kind == 2:  # well-framed, but not a map, or not msgpack at all
            body = r.choice([pack([1, 2]), pack("op"), b"\xc1", b"\x81\xa2id"])
            await stream.send_all(len(body).to_bytes(4, "big") + body)
            await _read_frames(stream, 1)
        elif kind == 3:  # random requests, replies read
            frames = [ipc.encode_frame(_random_request(r)) for _ in range(r.randint(1, 20))]
            await stream.send_all(b"".join(frames))
            await _read_frames(stream, len(frames))
        elif kind == 4:  # subscribe, then hang up while events are queued
            await stream.send_all(ipc.encode_frame(ipc.request(1, "subscribe")))
            await trio.sleep(r.uniform(0, 0.3))
        elif kind == 5:  # a subscriber that keeps calling: replies and events interleave
            client = ipc.Client(stream)
            await client.call("subscribe")
            for _ in range(r.randint(1, 30)):
                await client.call(r.choice(["status", "peers", "messages"]))
        elif kind == 6:  # pipelines many requests, reads nothing, hangs up
            frame = ipc.encode_frame(ipc.request(1, "messages", limit=10_000))
            await stream.send_all(frame * r.randint(50, 400))
        elif kind == 7:  # contact changes, typed, most of them refused
            await _change_contacts(ipc.Client(stream), r)
        else:  # hang up in the middle of a frame
            frame = ipc.encode_frame(ipc.request(1, "status"))
            await stream.send_all(frame[: r.randint(1, len(frame) - 1)])
    except (trio.BrokenResourceError, trio.ClosedResourceError, ipc.IpcError):
        pass  # the daemon may hang up on a client that broke the protocol
    finally:
        await trio.aclose_forcefully(stream)


async def _change_contacts(client: ipc.Client, r: random.Random) -> None:
    """Rename Bob and back (his messages keep coming, under either name), and contact
    changes the daemon refuses: unknown names, a bad card, a wrong fingerprint."""
    tag = f"Bob-{r.randrange(1000)}"
    for call in (
        calls.ContactRename("Bob", tag),
        calls.ContactRename(tag, "Bob"),
        calls.ContactRemove(r.choice(["Mallory", "", "b" * 300])),
        calls.ContactRename("Mallory", "Eve"),
        calls.ContactAdd("STEPPE1:" + r.randbytes(20).hex()),
        calls.ContactVerify("Bob", "0" * 64),
    ):
        with contextlib.suppress(ipc.IpcError):
            await client.request(call)


def _pair(tmp_path: Path) -> tuple[Daemon, Daemon]:
    now = int(time.time())
    alice, bob = (make_profile(tmp_path, n, now) for n in ("Alice", "Bob"))
    befriend(alice, bob, now)
    a = Daemon(alice, loopback_config(lan=False), alice.path, handle_signals=False)
    b = Daemon(bob, loopback_config(lan=False), bob.path, handle_signals=False)
    b.node.contacts[alice.identity.sign_public].prekey = alice.ring.keys[-1].record
    return a, b


def _run_pair(
    tmp_path: Path, body: Callable[[Daemon, Daemon, trio.Nursery], Awaitable[None]]
) -> Daemon:
    a, b = _pair(tmp_path)

    async def main() -> None:
        async with trio.open_nursery() as n:
            await n.start(a.run)
            b.config = replace(b.config, peers=(f"127.0.0.1:{a.tcp_port}",))
            await n.start(b.run)
            await body(a, b, n)
            n.cancel_scope.cancel()

    trio.run(main)
    return a


async def _bob_writes(b: Daemon, count: int) -> None:
    for k in range(count):
        b.send_text("Alice", f"message {k}")
        await trio.sleep(0.005)


def test_fuzz_the_local_api_of_a_running_daemon(tmp_path: Path) -> None:
    """Random and malformed requests, abrupt hang-ups and clients that do not read, from
    several clients at once, while Bob's messages reach Alice (events flow). Alice's
    daemon answers everyone who behaves, and ``status`` afterwards."""
    r = random.Random(11)
    seen: list[int] = []

    async def body(a: Daemon, b: Daemon, n: trio.Nursery) -> None:
        path = ipc.socket_path(a.runtime_dir)
        watcher = await ipc.Client.connect(path)
        await watcher.call("subscribe")
        n.start_soon(_bob_writes, b, 150)

        async def fuzzer(seed: int) -> None:
            fr = random.Random(seed)
            for _ in range(60):
                with trio.fail_after(20):
                    await _behave(path, fr)

        with trio.fail_after(120):
            async with trio.open_nursery() as fuzz:
                for _ in range(4):
                    fuzz.start_soon(fuzzer, r.randrange(1 << 30))
            while len(seen) < 150:
                ev = await watcher.events()
                if isinstance(ev, MessageReceived):
                    seen.append(int(ev.text.split()[1]))
        with trio.fail_after(5):
            status = await ipc.call_daemon(a.runtime_dir, "status")
        assert status["name"] == "Alice"
        assert status["daemon_stats"].get("ipc_protocol_errors", 0) > 0
        assert "ipc_internal_errors" not in status["daemon_stats"]
        await watcher.aclose()

    a = _run_pair(tmp_path, body)
    assert not a.broken
    assert sorted(seen) == list(range(150)), "a well-behaved subscriber saw every message"


def test_a_client_that_never_reads_does_not_stall_the_others(tmp_path: Path) -> None:
    async def body(a: Daemon, b: Daemon, n: trio.Nursery) -> None:
        path = ipc.socket_path(a.runtime_dir)
        slow = await _raw(path)
        await slow.send_all(ipc.encode_frame(ipc.request(1, "subscribe")))
        frame = ipc.encode_frame(ipc.request(2, "status"))
        with trio.move_on_after(2):  # the daemon stops reading from it once it is full
            for _ in range(100_000):
                await slow.send_all(frame)
        await _bob_writes(b, 20)  # events pile up for the slow subscriber
        with trio.fail_after(5):
            assert (await ipc.call_daemon(a.runtime_dir, "status"))["name"] == "Alice"
        stats = (await ipc.call_daemon(a.runtime_dir, "status"))["daemon_stats"]
        assert stats.get("ipc_slow_subscribers_dropped") == 1
        await slow.aclose()

    assert not _run_pair(tmp_path, body).broken


def test_an_over_long_topic_is_an_error_reply_not_a_stopped_daemon(tmp_path: Path) -> None:
    async def body(a: Daemon, b: Daemon, n: trio.Nursery) -> None:
        for topic in ("t" * 129, "t" * 60_000):
            with pytest.raises(ipc.IpcError, match="topic is at most 128 bytes"):
                await ipc.call_daemon(a.runtime_dir, "bulletin_post", text="hello", topic=topic)
        r = await ipc.call_daemon(a.runtime_dir, "bulletin_post", text="hello", topic="t" * 128)
        assert r["topic"] == "t" * 128
        assert (await ipc.call_daemon(a.runtime_dir, "status"))["name"] == "Alice"

    assert not _run_pair(tmp_path, body).broken
