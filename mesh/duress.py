"""The duress passphrase: typed at any unlock, it destroys the real profile and opens a
plausible decoy instead (crypto.keystore has the file's side).

Setting one (``steppe id duress``, the daemon stopped): the decoy is a fresh identity with
a name of the user's choosing and no contacts or history, encrypted into the keystore's
fixed decoy area under its own data key, and wrapped in one of the keystore's fixed key
slots under the duress passphrase. A keystore with a duress passphrase is byte-for-byte
the same shape as one without (tests/test_duress.py): the slots and the decoy area are
always there, unused ones random.

Using one (:func:`fire`, called by :func:`mesh.profile.open_profile` - so the terminal
UI's unlock, ``steppe daemon`` and every command that asks for the passphrase): the
keystore is rewritten first with the decoy as its only profile and every other slot
random (the real data key is then gone: crypto-shredding, as ``steppe panic``), a daemon
still running for the profile is told to stop without saving, and every other file of
the profile (envelopes, history, saved state) is overwritten and deleted. What opens is
the decoy; the duress passphrase is from then on its ordinary passphrase.

What it cannot do: hide that Steppe is installed; help against a copy of the device
taken before (an image still opens with the real passphrase); be sure flash storage
(wear levelling) keeps no old blocks of the keystore; or make a fresh, empty decoy look
lived-in. Using it may itself carry legal risk where lying to an officer is a crime.
"""

from __future__ import annotations

import os
from pathlib import Path

from crypto import keystore
from mesh.profile import KEYSTORE, atomic_write


def fire(path: Path, opened: keystore.Opened) -> None:
    """Destroy the real profile in ``path``; its keystore becomes the decoy's."""
    atomic_write(path / KEYSTORE, opened.promoted)  # first: the real data key is gone
    from mesh.daemon.panic import shred_all_but_keystore

    shred_all_but_keystore(path)
    os.sync()
