"""The ``steppe`` command as a user runs it: real profiles on disk, real Argon2id."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mesh.cli import main

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def pw(tmp_path: Path) -> Path:
    f = tmp_path / "pw"
    f.write_text("correct horse battery staple\n")
    return f


def run(profile: Path, pwfile: Path, *args: str) -> tuple[int, str]:
    out = io.StringIO()
    code = main(["--profile", str(profile), "--passphrase-file", str(pwfile), *args], out=out)
    return code, out.getvalue()


def new(profile: Path, pwfile: Path, name: str) -> str:
    code, _ = run(profile, pwfile, "id", "new", "--name", name, "--kdf", "interactive")
    assert code == 0
    code, text = run(profile, pwfile, "id", "show", "--no-qr")
    assert code == 0
    return next(line.split()[-1] for line in text.splitlines() if line.startswith("Contact"))


def test_id_new_show_and_files(tmp_path: Path, pw: Path) -> None:
    prof = tmp_path / "alice"
    card = new(prof, pw, "Alice")
    assert card.startswith("STEPPE1:")
    code, text = run(prof, pw, "id", "show")
    assert code == 0
    assert "Fingerprint:" in text
    assert "Words:" in text
    assert "\u2580" in text or "\u2584" in text or "\u2588" in text  # QR blocks
    assert oct(prof.stat().st_mode & 0o777) == "0o700"
    assert oct((prof / "keystore").stat().st_mode & 0o777) == "0o600"
    # Nothing personal in clear on disk: not the name, not the card.
    raw = (prof / "keystore").read_bytes()
    assert b"Alice" not in raw
    assert os.listdir(prof) == ["keystore"]


def test_second_id_new_refused(tmp_path: Path, pw: Path) -> None:
    new(tmp_path / "a", pw, "A")
    code, _ = run(tmp_path / "a", pw, "id", "new", "--name", "B", "--kdf", "interactive")
    assert code == 2


def test_contacts_add_list_verify_and_key_change(tmp_path: Path, pw: Path) -> None:
    alice = tmp_path / "alice"
    new(alice, pw, "Alice")
    bob_card = new(tmp_path / "bob", pw, "Bob")
    bob2_card = new(tmp_path / "bob2", pw, "Bob")
    assert run(alice, pw, "contact", "add", bob_card)[0] == 0
    assert run(alice, pw, "contact", "add", bob_card)[0] == 2  # duplicate
    code, text = run(alice, pw, "contact", "list")
    assert "Bob" in text
    assert "unverified" in text
    code, text = run(alice, pw, "contact", "verify", "bob", "--yes")
    assert code == 0
    assert "verified" in text
    digits = text.splitlines()[1].strip()
    assert len(digits.replace(" ", "")) == 60
    assert "  verified" in run(alice, pw, "contact", "list")[1]
    # Bob's view shows the same safety number.
    run(tmp_path / "bob", pw, "contact", "add", new(tmp_path / "x", pw, "X"))
    alice_card = run(alice, pw, "id", "show", "--no-qr")[1].split("Contact card: ")[1].split()[0]
    run(tmp_path / "bob", pw, "contact", "add", alice_card)
    _, bob_view = run(tmp_path / "bob", pw, "contact", "verify", "Alice", "--yes")
    assert digits in bob_view
    # A different key under the same name is refused unless --replace, then unverified.
    assert run(alice, pw, "contact", "add", bob2_card)[0] == 2
    assert run(alice, pw, "contact", "add", bob2_card, "--replace")[0] == 0
    assert "KEY CHANGED" in run(alice, pw, "contact", "list")[1]


def _typo(card: str, at: int, char: str) -> str:
    assert card[at] != char
    return card[:at] + char + card[at + 1 :]


def test_damaged_cards_are_explained_in_plain_words(tmp_path: Path, pw: Path) -> None:
    """One-character typos and cut-off cards, as a person pastes them: what went wrong in
    their words, never 'malformed msgpack' or 'unsupported contact card version 3'."""
    prof = tmp_path / "me"
    new(prof, pw, "Me")
    card = new(tmp_path / "bob", pw, "Bob")
    damaged = "this card is damaged or incomplete: copy all of it again, or scan its QR code"
    altered = (
        "this card is damaged or was altered (its signature does not match):"
        " copy all of it again, or scan its QR code"
    )
    cases = {
        _typo(card, 10, "B" if card[10] != "B" else "C"): damaged,  # the version digit
        card[:120]: damaged,  # cut off
        _typo(card, 8, "A" if card[8] != "A" else "Q"): damaged,  # the array header
        _typo(card, 200, "A" if card[200] != "A" else "B"): altered,
        "https://example.org/" + card: (
            "this is not a Steppe contact card (a card starts with STEPPE1:)"
        ),
        "STEPPE1:" + "A" * 2000: (
            "this is too long to be a contact card: copy only the card, or scan its QR code"
        ),
    }
    for text, message in cases.items():
        r = _cli("--profile", str(prof), "--passphrase-file", str(pw), "contact", "add", text)
        assert r.returncode == 2
        assert r.stderr == f"steppe: {message}\n", text
        assert r.stdout == ""
    assert run(prof, pw, "contact", "list")[1].startswith("No contacts yet")


def test_own_card_and_bad_card_refused(
    tmp_path: Path, pw: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    card = new(tmp_path / "a", pw, "A")
    assert run(tmp_path / "a", pw, "contact", "add", card)[0] == 2
    assert run(tmp_path / "a", pw, "contact", "add", card[:-5] + "AAAAA")[0] == 2
    assert run(tmp_path / "a", pw, "contact", "verify", "nobody", "--yes")[0] == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 3
    assert all(line.startswith("steppe: ") for line in err.splitlines())


def _cli(
    *args: str, stdin: str = "", env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, "-m", "mesh.cli", *args],
        cwd=ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def test_wrong_passphrase_is_one_line_exit_2(tmp_path: Path) -> None:
    prof = str(tmp_path / "p")
    r = _cli(
        "--profile",
        prof,
        "id",
        "new",
        "--name",
        "A",
        "--kdf",
        "interactive",
        stdin="right horse staple\n",
    )
    assert r.returncode == 0, r.stderr
    r = _cli("--profile", prof, "id", "show", stdin="wrong\n")
    assert r.returncode == 2
    assert r.stderr == f"steppe: wrong passphrase for the profile in {prof}\n"
    assert "Traceback" not in r.stdout + r.stderr
    r = _cli("--profile", prof, "id", "show", "--no-qr", stdin="right horse staple\n")
    assert r.returncode == 0
    assert "Fingerprint" in r.stdout


def test_profile_from_environment_and_missing_profile(tmp_path: Path) -> None:
    r = _cli("contact", "list", stdin="x\n", env_extra={"STEPPE_PROFILE": str(tmp_path / "e")})
    assert r.returncode == 2
    assert r.stderr.strip() == (
        f"steppe: no profile in {tmp_path / 'e'}: create one with 'steppe id new'"
    )


def test_empty_passphrase_and_damaged_keystore(tmp_path: Path, pw: Path) -> None:
    r = _cli("--profile", str(tmp_path / "p"), "id", "new", "--name", "A", stdin="\n")
    assert r.returncode == 2
    assert "empty" in r.stderr
    new(tmp_path / "q", pw, "Q")
    (tmp_path / "q" / "keystore").write_bytes(b"garbage")
    r = _cli("--profile", str(tmp_path / "q"), "--passphrase-file", str(pw), "contact", "list")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1
    assert "damaged" in r.stderr


def test_limits_are_checked_in_one_line(tmp_path: Path) -> None:
    for args in (
        ["inbox", "--limit", "0"],
        ["inbox", "--limit", "-1"],
        ["bulletin", "list", "--limit", "-1"],
    ):
        r = _cli("--profile", str(tmp_path / "p"), *args)
        assert r.returncode == 2
        assert r.stderr == f"steppe: --limit must be at least 1, not {args[-1]}\n"


def test_inbox_reads_the_history_when_no_daemon_runs(tmp_path: Path, pw: Path) -> None:
    """The history opens with the passphrase, without a daemon, and is only read."""
    from crypto.identity import ContactCard
    from mesh import ipc
    from mesh.daemon.history import HISTORY, History
    from mesh.profile import open_profile

    prof = tmp_path / "alice"
    new(prof, pw, "Alice")
    bob_card = new(tmp_path / "bob", pw, "Bob")
    assert run(prof, pw, "contact", "add", bob_card)[0] == 0
    args = ("--profile", str(prof), "--passphrase-file", str(pw), "inbox")
    r = _cli(*args)
    assert (r.returncode, r.stdout, r.stderr) == (0, "no messages yet\n", "")
    assert not (prof / HISTORY).exists()  # reading created nothing
    p = open_profile(prof, b"correct horse battery staple")
    bob = ContactCard.decode(bob_card).identity.sign_public
    history = History(prof / HISTORY, p.data_key, os.urandom)
    history.add(bob, True, b"1" * 16, 1_800_000_000, "are you safe?")
    history.add(bob, False, b"2" * 16, 1_800_000_060, "yes, at the library")
    history.add(b"\x07" * 32, False, b"3" * 16, 1_800_000_120, "who is this")
    history.close()
    ipc.socket_path(prof).write_bytes(b"")  # a stale socket file of a killed daemon
    before = (prof / HISTORY).read_bytes()
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 4
    assert lines[0].endswith("to Bob [queued]: are you safe?")
    assert lines[1].endswith("from Bob: yes, at the library")
    assert "from unknown sender " in lines[2]  # contacts come from the profile, too
    assert lines[2].endswith(": who is this")
    assert lines[3].startswith("To answer an unknown sender")
    r = _cli(*args, "Bob", "--limit", "1")
    assert r.stdout.splitlines()[0].endswith("from Bob: yes, at the library")
    assert len(r.stdout.splitlines()) == 1
    assert (prof / HISTORY).read_bytes() == before
    r = _cli("--profile", str(prof), "inbox", stdin="wrong\n")
    assert r.returncode == 2
    assert r.stderr == f"steppe: wrong passphrase for the profile in {prof}\n"
