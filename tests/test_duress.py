"""The duress passphrase (issue 16, part 4). Claims: a keystore with a duress passphrase
has exactly the shape of one without (same length, same fields of the same sizes: its
presence cannot be read off the bytes by someone without a passphrase); the duress
passphrase, typed at an unlock, destroys the real profile's key slots and files and
opens the decoy; afterwards the real passphrase opens nothing and the file still has the
same shape."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from crypto import keystore
from crypto import primitives as p
from crypto.errors import BadPassphrase
from crypto.wire import pack, strict_unpack
from mesh.profile import create_profile, open_profile
from tests.helpers import seeded

FAST = keystore.KdfParams.named("interactive")
REAL, DURESS = b"correct horse battery", b"tulips in almaty"


def shape(blob: bytes) -> object:
    """Every field's type and length, nothing of its value."""

    def of(x: object) -> object:
        if isinstance(x, list):
            return [of(y) for y in x]
        if isinstance(x, bytes | str):
            return (type(x).__name__, len(x))
        return (type(x).__name__, x if isinstance(x, int) and x < 100 else "n")

    return of(strict_unpack(blob, max_size=1 << 20, max_array_len=16))


def test_with_and_without_a_duress_passphrase_the_file_has_one_shape() -> None:
    r = seeded(1).randbytes
    plain, key = keystore.create(REAL, b"s" * 900, FAST, r)
    armed = keystore.set_duress(plain, REAL, DURESS, b"decoy secrets", r)
    assert len(armed) == len(plain)
    assert shape(armed) == shape(plain)
    opened = keystore.open_any(armed, DURESS, r)
    assert shape(opened.promoted) == shape(keystore.create(DURESS, b"d" * 13, FAST, r)[0])
    assert keystore.unlock(armed, REAL) == (key, b"s" * 900)
    # Secrets are padded to 4 KiB steps: a decoy's and a profile's of up to ~20 contacts
    # take the same room.
    assert len(keystore.create(REAL, b"s" * 4000, FAST, r)[0]) == len(plain)


def test_the_duress_passphrase_opens_the_decoy_and_the_real_key_is_gone() -> None:
    r = seeded(2).randbytes
    blob, key = keystore.create(REAL, b"real secrets", FAST, r)
    blob = keystore.set_duress(blob, REAL, DURESS, b"decoy secrets", r)
    real = keystore.open_any(blob, REAL, r)
    assert (real.data_key, real.secrets, real.duress) == (key, b"real secrets", False)
    decoy = keystore.open_any(blob, DURESS, r)
    assert (decoy.secrets, decoy.duress) == (b"decoy secrets", True)
    with pytest.raises(BadPassphrase):
        keystore.unlock(blob, DURESS)  # never the real profile
    after = decoy.promoted
    with pytest.raises(BadPassphrase):
        keystore.open_any(after, REAL, r)
    again = keystore.open_any(after, DURESS, r)
    assert (again.secrets, again.duress) == (b"decoy secrets", False), "now the profile"
    assert key not in after


def test_setting_it_needs_the_real_passphrase_and_another_one() -> None:
    r = seeded(3).randbytes
    blob, _ = keystore.create(REAL, b"x", FAST, r)
    with pytest.raises(BadPassphrase):
        keystore.set_duress(blob, b"guess", DURESS, b"d", r)
    with pytest.raises(ValueError, match="another"):
        keystore.set_duress(blob, REAL, REAL, b"d", r)
    with pytest.raises(ValueError, match="fit"):
        keystore.set_duress(blob, REAL, DURESS, b"d" * keystore.DECOY_LEN, r)
    armed = keystore.set_duress(blob, REAL, DURESS, b"d", r)
    replaced = keystore.set_duress(armed, REAL, b"another duress", b"e", r)
    with pytest.raises(BadPassphrase):
        keystore.open_any(replaced, DURESS, r)  # the earlier duress slot is overwritten
    off = keystore.set_duress(replaced, REAL, b"", None, r)
    with pytest.raises(BadPassphrase):
        keystore.open_any(off, b"another duress", r)
    assert shape(off) == shape(blob)


def test_a_version_1_keystore_opens_and_is_written_as_version_2() -> None:
    r = seeded(4).randbytes
    salt, nonce, data_key = r(16), r(24), r(32)
    kek = keystore._derive(REAL, salt, FAST)
    wrapped = p.xchacha_encrypt(kek, nonce, data_key, b"steppe/keyslot/v1")
    snonce = r(24)
    ct = p.xchacha_encrypt(data_key, snonce, b"old secrets", b"steppe/secrets/v1")
    old = pack(
        ["steppe-keystore", 1, [[salt, FAST.opslimit, FAST.memlimit, nonce, wrapped]], snonce, ct]
    )
    assert keystore.unlock(old, REAL) == (data_key, b"old secrets")
    new = keystore.replace_secrets(old, data_key, b"new secrets", r)
    assert strict_unpack(new, max_size=1 << 20)[1] == 2
    assert keystore.unlock(new, REAL) == (data_key, b"new secrets")
    assert shape(new) == shape(keystore.create(REAL, b"new secrets", FAST, r)[0])
    assert keystore.is_keystore(old)
    assert keystore.is_keystore(new)


def steppe(profile: Path, pw: Path, *args: str, duress: Path | None = None) -> tuple[int, str]:
    cmd = [
        sys.executable,
        "-m",
        "mesh.cli",
        "--profile",
        str(profile),
        "--passphrase-file",
        str(pw),
    ]
    cmd += list(args)
    if duress is not None:
        cmd += ["--duress-file", str(duress)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    return done.returncode, done.stdout + done.stderr


def test_from_the_command_line_the_duress_passphrase_wipes_and_opens_the_decoy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "p"
    prof = create_profile(path, "Aigerim", REAL, FAST, int(time.time()), os.urandom)
    (path / "envelopes.db").write_bytes(b"sealed mail " * 100)
    (path / "history.db").write_bytes(b"messages " * 100)
    real_pw, duress_pw = tmp_path / "real", tmp_path / "duress"
    real_pw.write_text(REAL.decode() + "\n")
    duress_pw.write_text(DURESS.decode() + "\n")
    before = (path / "keystore").read_bytes()
    code, out = steppe(path, real_pw, "id", "duress", "--name", "Aiko", duress=duress_pw)
    assert code == 0, out
    assert "Duress passphrase set" in out
    armed = (path / "keystore").read_bytes()
    assert shape(armed) == shape(before)
    code, out = steppe(path, real_pw, "id", "show", "--no-qr")  # the real one still works
    assert code == 0, out
    assert "Aigerim" in out
    # At the roadblock: the duress passphrase.
    code, out = steppe(path, duress_pw, "id", "show", "--no-qr")
    assert code == 0, out
    assert "Name:         Aiko" in out
    assert prof.identity.public().fingerprint.hex()[:8] not in out.replace(" ", "").lower()
    assert sorted(x.name for x in path.iterdir()) == ["keystore"]
    assert shape((path / "keystore").read_bytes()) == shape(before)
    code, out = steppe(path, real_pw, "id", "show", "--no-qr")
    assert code == 2
    assert "wrong passphrase" in out
    assert open_profile(path, DURESS).name == "Aiko"
    code, out = steppe(path, real_pw, "id", "duress", duress=duress_pw)
    assert code == 2
    assert "wrong passphrase" in out
