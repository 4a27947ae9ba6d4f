"""``steppe contact remove NAME`` and ``steppe contact rename OLD NEW``, on real processes:
through the running daemon when one runs (the node forgets a removed key at once), or
written to the keystore by the command itself when none does. A removed contact's messages
stay, shown from an unknown sender."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from crypto.identity import ContactCard, short_fingerprint
from mesh.profile import ProfileError, new_profile, open_profile
from tests.test_cli_live_contacts import make, output, steppe
from tests.test_daemon_process import free_port
from tests.test_daemon_stop import PASS, lan_off, run, wait_for

T0 = 1_767_225_600


def names(root: Path, name: str) -> list[str]:
    return [c.name for c in open_profile(root / name, PASS.encode()).contacts]


def test_rename_and_remove_without_a_daemon(tmp_path: Path) -> None:
    make(tmp_path, "me", "Me")
    output(tmp_path, "me", "contact", "add", make(tmp_path, "carol", "Carol"))
    output(tmp_path, "me", "contact", "add", make(tmp_path, "dave", "Dave"))
    renamed = output(tmp_path, "me", "contact", "rename", "dave", "David")
    assert "Renamed Dave to David" in renamed
    assert "running daemon" not in renamed
    assert names(tmp_path, "me") == ["Carol", "David"]
    code, out = steppe(tmp_path, "me", "contact", "rename", "Carol", "david")
    assert code == 2
    assert "'david' is already a contact: choose another name" in out
    removed = output(tmp_path, "me", "contact", "remove", "Carol")
    assert "Removed Carol" in removed
    assert names(tmp_path, "me") == ["David"]
    code, out = steppe(tmp_path, "me", "contact", "remove", "Carol")
    assert code == 2
    assert "no contact named 'Carol'" in out
    assert not (tmp_path / "me" / "daemon.lock").exists()


def test_rename_and_remove_reach_the_running_daemon_at_once(tmp_path: Path) -> None:
    me_card, carol_card = make(tmp_path, "me", "Me"), make(tmp_path, "carol", "Carol")
    output(tmp_path, "me", "contact", "add", carol_card)
    output(tmp_path, "carol", "contact", "add", me_card)
    carol_fp = short_fingerprint(ContactCard.decode(carol_card).identity.sign_public)
    port = free_port()
    procs = [run(tmp_path, "me", lan_off(port))]
    procs.append(run(tmp_path, "carol", lan_off(0, f'"127.0.0.1:{port}"')))
    try:
        output(tmp_path, "carol", "send", "Me", "first words")
        wait_for(lambda: "first words" in output(tmp_path, "me", "inbox"), "Carol's message")

        renamed = output(tmp_path, "me", "contact", "rename", "Carol", "Caro")
        assert "The running daemon has the change now" in renamed
        assert names(tmp_path, "me") == ["Caro"], "the daemon saved the keystore"
        assert "queued for Caro" in output(tmp_path, "me", "send", "Caro", "renamed")
        assert "from Caro: first words" in output(tmp_path, "me", "inbox")

        removed = output(tmp_path, "me", "contact", "remove", "Caro")
        assert "The running daemon has the change now" in removed
        assert f"unknown sender {carol_fp}" in removed
        assert names(tmp_path, "me") == []
        code, out = steppe(tmp_path, "me", "send", "Caro", "after removal")
        assert code == 2
        assert "no contact named 'Caro'" in out
        # Her messages stay, from an unknown sender; what she sends now arrives the same.
        inbox = output(tmp_path, "me", "inbox")
        assert f"from unknown sender {carol_fp}: first words" in inbox
        output(tmp_path, "carol", "send", "Me", "still here")
        wait_for(lambda: "still here" in output(tmp_path, "me", "inbox"), "her later message")
        line = next(x for x in output(tmp_path, "me", "inbox").splitlines() if "still here" in x)
        assert f"from unknown sender {carol_fp}" in line
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=20)


def test_profile_rename_checks_the_name(tmp_path: Path) -> None:
    me = new_profile(tmp_path / "me", "Me", T0, os.urandom)
    bob = new_profile(tmp_path / "bob", "Bob", T0, os.urandom)
    me.add_contact(ContactCard.decode(bob.card.encode()), T0)
    with pytest.raises(ProfileError, match="printable characters"):
        me.rename_contact("Bob", " \x1b\x07 ")
    assert me.rename_contact("bob", "  Robert ").name == "Robert"
    assert me.rename_contact("robert", "ROBERT").name == "ROBERT", "a change of case is fine"
    assert me.remove_contact("Robert").identity.sign_public == bob.identity.sign_public
    assert me.contacts == []
