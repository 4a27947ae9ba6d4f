"""What the UI says of our messages while they travel (queued, carried by N neighbours,
delivered: words that only ever improve), against real daemons on loopback."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from mesh.render import carried_words
from tests.daemon_helpers import befriend, loopback_config, make_profile
from tests.test_tui import SIZE, open_conversation, type_text
from tests.tui_helpers import Daemons, eventually
from tui.app import SteppeApp
from tui.text import state_word
from tui.widgets.conversations import ConversationList
from tui.widgets.thread import Thread

ORDER = ["queued", carried_words(1), "delivered"]


def rank(said: str) -> int:
    """queued 0, carried by N: N, delivered above any count."""
    if said.startswith("carried by "):
        return int(said.split()[2])
    return {"queued": 0, "delivered": 10**6}[said]


def test_a_message_for_someone_away_is_carried_by_a_relay_then_delivered(tmp_path: Path) -> None:
    now = int(time.time())
    alice, bob, relay = (make_profile(tmp_path, n, now) for n in ("Alice", "Bob", "Relay"))
    befriend(alice, bob, now)
    seen: list[str] = []

    async def main(daemons: Daemons) -> None:
        contacts = daemons.running[0].daemon.node.contacts
        key = bob.identity.sign_public
        await eventually("Bob's prekey at Alice", lambda: contacts[key].prekey is not None)
        await asyncio.to_thread(daemons.stop, 1)  # Bob goes away
        app = SteppeApp(alice.path)
        async with app.run_test(size=SIZE) as pilot:
            await open_conversation(pilot, app, "Bob")
            await type_text(pilot, "the relay will carry this")
            await pilot.press("ctrl+s")
            thread = app.query_one(Thread)
            await eventually("sent", lambda: len(thread.rows) == 1)
            [mine] = thread.rows.values()

            def now_says(word: str) -> bool:
                said = thread.state_of(mine.msg_id)
                if not seen or seen[-1] != said:
                    seen.append(said)
                return said == word

            await eventually("carried by the relay", lambda: now_says(carried_words(1)))
            last = app.query_one(ConversationList).conversations["Bob"].last
            assert last is not None
            assert (last.text, state_word(last)) == ("the relay will carry this", ORDER[1])
            await asyncio.to_thread(daemons.restart, 1)  # Bob is back: the relay delivers
            await eventually("delivered", lambda: now_says("delivered"), limit=30)

    with Daemons([alice, bob, relay], loopback_config()) as daemons:
        asyncio.run(main(daemons))
    assert seen == sorted(seen, key=rank)  # it never went back
    assert seen[0] in ORDER[:2]
    assert ORDER[1] in seen
    assert seen[-1] == "delivered"
