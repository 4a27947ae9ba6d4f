"""The asyncio client (what the Textual UI uses) against real ``steppe daemon`` processes:
typed requests and results, and events carrying what a UI needs (message id, contact key
and name, time, delivery state, bulletins, links, contact changes)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import TypeVar

import pytest

from crypto.identity import ContactCard
from mesh.ipc import IpcError, socket_path
from mesh.ipc import calls as c
from mesh.ipc import events as ev
from mesh.ipc.asyncio_client import AsyncioClient
from tests.test_cli_live_contacts import make, output
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import lan_off, run

E = TypeVar("E", bound=ev.Event)
WAIT = 30  # seconds for an event
FAST_RECEIPTS = "[routing]\nreceipt_delay = [1, 2]\n"


async def next_event(client: AsyncioClient, kind: type[E]) -> E:
    """The next event of ``kind`` (others, such as links and prekeys coming and going, are
    skipped)."""
    async with asyncio.timeout(WAIT):
        while True:
            event = await client.events()
            if isinstance(event, kind):
                return event


def test_the_asyncio_client_against_real_daemons(tmp_path: Path) -> None:
    me_card, carol_card = make(tmp_path, "me", "Me"), make(tmp_path, "carol", "Carol")
    output(tmp_path, "me", "contact", "add", carol_card)
    output(tmp_path, "carol", "contact", "add", me_card)
    carol_key = ContactCard.decode(carol_card).identity.sign_public
    port = free_port()
    procs = [run(tmp_path, "me", lan_off(port) + FAST_RECEIPTS)]

    async def main() -> None:
        client = await AsyncioClient.connect(socket_path(tmp_path / "me"))
        asker = await AsyncioClient.for_profile(tmp_path / "me")  # requests, no events
        try:
            assert await client.request(c.Subscribe()) is True
            status = await asker.request(c.Status())
            assert (status.name, status.links) == ("Me", 0)
            assert [r.name for r in await asker.request(c.Contacts())] == ["Carol"]
            with pytest.raises(IpcError, match="no contact named"):
                await asker.request(c.Send("Nobody", "hello"))

            peers = lan_off(0, f'"127.0.0.1:{port}"') + FAST_RECEIPTS
            procs.append(await asyncio.to_thread(run, tmp_path, "carol", peers))
            link = await next_event(client, ev.LinkChanged)
            assert (link.kind, link.up) == ("incoming", True)
            assert [p.link for p in await asker.request(c.Peers())] == [link.link]

            await asyncio.to_thread(output, tmp_path, "carol", "send", "Me", "hello from Carol")
            got = await next_event(client, ev.MessageReceived)
            assert (got.contact, got.contact_name, got.text) == (
                carol_key,
                "Carol",
                "hello from Carol",
            )
            rows = await asker.request(c.Messages(contact="Carol"))
            assert [(r.msg_id, r.created, r.outgoing) for r in rows] == [
                (got.msg_id, got.created, False)
            ]

            sent = await asker.request(c.Send("Carol", "hello back"))
            acked = await next_event(client, ev.MessageStateChanged)
            assert (acked.msg_id, acked.state) == (sent.msg_id, "acked")

            await asyncio.to_thread(
                output, tmp_path, "carol", "bulletin", "post", "water at the square"
            )
            bulletin = await next_event(client, ev.BulletinStored)
            assert (bulletin.persona, bulletin.signer) == (carol_key, "Carol (unverified)")
            assert bulletin.text == "water at the square"

            row = await asker.request(c.ContactRename("Carol", "Caro"))
            assert row.name == "Caro"
            renamed = await next_event(client, ev.ContactChanged)
            assert (renamed.change, renamed.name, renamed.old_name) == (
                ev.ContactChange.RENAMED,
                "Caro",
                "Carol",
            )
            gone = await asker.request(c.ContactRemove("caro"))
            assert gone.fingerprint == renamed.fingerprint
            removed = await next_event(client, ev.ContactChanged)
            assert (removed.change, removed.name) == (ev.ContactChange.REMOVED, "Caro")
            assert await asker.request(c.Contacts()) == []
            # Her message stays, from a key that is no longer anyone's name.
            (kept,) = await asker.request(c.Conversations())
            assert kept.contact == carol_key
            assert kept.contact_name == carol_key.hex()[:16]
        finally:
            await client.aclose()
            await asker.aclose()

    try:
        asyncio.run(main())
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def test_no_daemon_is_one_line(tmp_path: Path) -> None:
    async def main() -> None:
        with pytest.raises(IpcError, match="no daemon is running"):
            await AsyncioClient.for_profile(tmp_path)

    asyncio.run(main())


def test_the_asyncio_client_does_not_load_trio() -> None:
    """The UI's process imports the protocol and the asyncio client, not trio."""
    code = (
        "import sys, mesh.ipc.asyncio_client, mesh.ipc; "
        "assert 'trio' not in sys.modules, 'trio was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
