"""``steppe persona`` and ``steppe bulletin endorse`` on real ``steppe daemon`` processes:
a stranger posts as a persona, a verified contact endorses it, and the reader's ``bulletin
list`` says so; the persona is in the keystore the daemon saved."""

from __future__ import annotations

from pathlib import Path

from mesh.profile import open_profile
from tests.test_cli_live_contacts import make, output, steppe
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import PASS, lan_off, run, wait_for


def _post_id(listing: str, text: str) -> str:
    lines = listing.splitlines()
    at = next(i for i, x in enumerate(lines) if text in x)
    head = next(x for x in reversed(lines[:at]) if " id " in x)
    return head.rsplit(" id ", 1)[1].strip()


def test_a_persona_post_endorsed_by_a_verified_contact(tmp_path: Path) -> None:
    me_card, carol_card = make(tmp_path, "me", "Me"), make(tmp_path, "carol", "Carol")
    make(tmp_path, "dave", "Dave")
    output(tmp_path, "me", "contact", "add", carol_card)
    output(tmp_path, "me", "contact", "verify", "Carol", "--yes")
    output(tmp_path, "carol", "contact", "add", me_card)
    port = free_port()
    procs = [run(tmp_path, "me", lan_off(port))]
    procs += [run(tmp_path, n, lan_off(0, f'"127.0.0.1:{port}"')) for n in ("carol", "dave")]
    try:
        made = output(tmp_path, "dave", "persona", "new", "Witness")
        assert "persona Witness: key " in made
        assert [x.name for x in open_profile(tmp_path / "dave", PASS.encode()).personas] == [
            "Witness"
        ], "the daemon saved the persona in the keystore"
        code, out = steppe(tmp_path, "dave", "persona", "new", "witness")
        assert code == 2
        assert "exists already" in out
        posted = output(
            tmp_path, "dave", "bulletin", "post", "convoy", "on", "Abay", "--as", "Witness"
        )
        assert "signed with persona Witness" in posted
        assert "you (persona Witness)" in output(tmp_path, "dave", "bulletin", "list")
        wait_for(
            lambda: "convoy on Abay" in output(tmp_path, "carol", "bulletin", "list"), "at Carol's"
        )
        wait_for(lambda: "convoy on Abay" in output(tmp_path, "me", "bulletin", "list"), "at mine")
        listing = output(tmp_path, "me", "bulletin", "list")
        assert "trust: unknown\n" in listing
        pid = _post_id(output(tmp_path, "carol", "bulletin", "list"), "convoy on Abay")
        assert "endorsed post" in output(tmp_path, "carol", "bulletin", "endorse", pid[:8])
        wait_for(
            lambda: (
                "trust: endorsed by verified contacts; endorsed by Carol"
                in output(tmp_path, "me", "bulletin", "list")
            ),
            "Carol's endorsement at mine",
        )
        code, out = steppe(tmp_path, "carol", "bulletin", "endorse", "0000000")
        assert code == 2  # fewer than 8 digits: refused by the local API's bounds
        assert "post_id" in out
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=30)
