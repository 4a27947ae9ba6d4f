"""The terminal UI's figures (issue 14): time to first paint, time to open a conversation
of 10,000 messages and to scroll it, and the UI process's memory.

Run: ``.venv/bin/python -m bench.tui`` (``--n 10000``). A real daemon for Alice runs in
this process (its encrypted history pre-filled with ``n`` messages with Bob, and 10 with
Carol); the UI runs headless (Textual's ``run_test``, 100x30) in a child process of its
own, so its memory is its own. Printed, each the median of ``--runs`` children:

- ``first paint``: from the app starting to the conversation list shown (connected,
  subscribed, contacts and latest messages loaded);
- ``open``: what Enter on a conversation runs (``SteppeApp.open_conversation``: the
  request, the list built) up to the next paint, for Carol's 10 (the baseline, same
  run) and for Bob's ``n``; the ratio says what the size costs. The UI shows the last
  :data:`tui.widgets.thread.SHOWN` messages (paged, never ``n`` widgets);
- ``scroll``: 20 page-ups through Bob's conversation, then back to the end, as Pilot
  keys (``one Pilot key``: what the test harness takes to deliver one, measured on a key
  that only moves focus, so most of ``scroll`` is the harness);
- ``RSS``: the child's peak resident memory, and a bare Textual app's in the same run.

Targets (issue 14): first paint under 1 s, the 10,000-message conversation open under
300 ms, the UI's RSS under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mesh.daemon.history import HISTORY, History
from mesh.profile import Profile
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.tui_helpers import Daemons


def _fill(alice: Profile, bob: Profile, carol: Profile, n: int) -> None:
    history = History(alice.path / HISTORY, alice.data_key, os.urandom)
    now = int(time.time()) - n
    with history.transaction():
        for i in range(n):
            who = bob.identity.sign_public
            history.add(who, i % 2 == 0, os.urandom(16), now + i, f"message {i} " + "x" * 80)
        for i in range(10):
            history.add(carol.identity.sign_public, False, os.urandom(16), now + n + i, "hi")
    history.close()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


async def _ui(profile_dir: Path) -> dict[str, float]:
    from tui.app import SteppeApp
    from tui.widgets.conversations import ConversationList
    from tui.widgets.thread import Thread

    out: dict[str, float] = {}
    began = time.perf_counter()
    app = SteppeApp(profile_dir)
    async with app.run_test(size=(100, 30)) as pilot:
        convs = app.query_one(ConversationList)
        while len(convs.conversations) < 2:  # noqa: ASYNC110 - polling the app's state
            await asyncio.sleep(0.005)
        await pilot.pause()
        out["first_paint"] = time.perf_counter() - began
        thread = app.query_one(Thread)
        t = time.perf_counter()
        await pilot.press("f2")
        out["key"] = time.perf_counter() - t  # what Pilot itself takes to deliver a key
        for name, key in (("Carol", "open_small"), ("Bob", "open_large")):
            t = time.perf_counter()
            await app.open_conversation(name)  # what Enter on it runs
            await pilot.pause()  # and painted
            assert thread.contact == name
            assert thread.option_count
            out[key] = time.perf_counter() - t
        thread.focus()
        t = time.perf_counter()
        await pilot.press(*["pageup"] * 20, "end")
        await pilot.pause()
        out["scroll"] = time.perf_counter() - t
    out["rss_mb"] = _rss_mb()
    return out


async def _bare() -> dict[str, float]:
    from textual.app import App
    from textual.widgets import Static

    class Bare(App[None]):
        def compose(self):  # type: ignore[no-untyped-def]
            yield Static("hello")

    async with Bare().run_test(size=(100, 30)) as pilot:
        await pilot.pause()
    return {"rss_mb": _rss_mb()}


def _child(*args: str) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.tui", *args], capture_output=True, text=True, check=True
    )
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--ui", help=argparse.SUPPRESS)  # the child: run the UI on this profile
    ap.add_argument("--bare", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.ui:
        print(json.dumps(asyncio.run(_ui(Path(args.ui)))))
        return
    if args.bare:
        print(json.dumps(asyncio.run(_bare())))
        return
    with tempfile.TemporaryDirectory() as tmp:
        now = int(time.time())
        alice, bob, carol = (make_profile(Path(tmp), x, now) for x in ("Alice", "Bob", "Carol"))
        befriend(alice, bob, now)
        befriend(alice, carol, now)
        _fill(alice, bob, carol, args.n)
        with Daemons([alice], loopback_config(lan=False)):
            runs = [_child("--ui", str(alice.path)) for _ in range(args.runs)]
        bare = statistics.median(_child("--bare")["rss_mb"] for _ in range(args.runs))

    def med(key: str) -> float:
        return statistics.median(r[key] for r in runs)

    small, large = med("open_small"), med("open_large")
    print(f"terminal UI, {args.n:,} messages with Bob, median of {args.runs} runs")
    print(f"  first paint            {med('first_paint') * 1000:8.0f} ms   (target < 1000 ms)")
    print(f"  open Carol (10)        {small * 1000:8.0f} ms   (baseline)")
    print(
        f"  open Bob ({args.n:,})  {large * 1000:8.0f} ms   (target < 300 ms; "
        f"{large / small:.1f}x the baseline)"
    )
    print(f"  scroll 20 pages        {med('scroll') * 1000:8.0f} ms   (20 Pilot keys)")
    print(f"  one Pilot key          {med('key') * 1000:8.0f} ms   (harness, not the UI)")
    rss = med("rss_mb")
    print(f"  UI RSS                 {rss:8.0f} MB   (target < 150 MB; bare Textual {bare:.0f} MB)")


if __name__ == "__main__":
    main()
