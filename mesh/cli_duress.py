"""``steppe id duress``: set, replace or remove the duress passphrase (mesh.duress)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from crypto import keystore
from crypto.errors import BadPassphrase, CryptoError
from mesh import profile as prof
from mesh.cli_common import CliError, _accept_weak, _now, _read_passphrase, _secret
from mesh.daemon.lock import ProfileLocked, lock_profile, unlock_profile


def _duress_passphrase(args: argparse.Namespace) -> bytes:
    if args.duress_file:
        try:
            lines = Path(args.duress_file).read_text().splitlines()
        except OSError as exc:
            raise CliError(f"cannot read the duress passphrase file: {exc.strerror}") from None
        value = lines[0] if lines else ""
    elif sys.stdin.isatty():
        value = _secret("Duress passphrase: ")
        if value and _secret("Repeat duress passphrase: ") != value:
            raise CliError("the two duress passphrases differ")
    else:
        raise CliError("give the duress passphrase at a terminal or with --duress-file")
    if not value:
        raise CliError("the duress passphrase may not be empty")
    _accept_weak(value, not args.duress_file and sys.stdin.isatty(), args.allow_weak_passphrase)
    return value.encode()


def _decoy_secrets(path: Path, name: str) -> bytes:
    """A fresh identity named ``name`` with no contacts: the decoy's keystore secrets."""
    return prof.new_profile(path, name, _now(), os.urandom)._secrets()


def cmd_id_duress(args: argparse.Namespace, out: TextIO) -> None:
    path = prof.resolve_profile_dir(args.profile)
    if not (path / prof.KEYSTORE).exists():
        raise CliError(f"no profile in {path}: create one with 'steppe id new'")
    try:
        lock = lock_profile(path)
    except ProfileLocked:
        raise CliError("the daemon is running for this profile: stop it first") from None
    try:
        real = _read_passphrase(args)
        current = prof.open_profile(path, real)  # a duress passphrase here fires, as anywhere
        blob = (path / prof.KEYSTORE).read_bytes()
        if args.off:
            secrets = None
            duress = b""
        else:
            duress = _duress_passphrase(args)
            secrets = _decoy_secrets(path, args.name or current.name)
        try:
            changed = keystore.set_duress(blob, real, duress, secrets, os.urandom)
        except BadPassphrase:
            raise CliError("wrong passphrase: nothing changed") from None
        except (ValueError, CryptoError) as exc:
            raise CliError(f"{exc}: nothing changed") from None
        prof.atomic_write(path / prof.KEYSTORE, changed)
    finally:
        unlock_profile(lock, path)
    if args.off:
        out.write("No duress passphrase now (its slot and the decoy are random bytes again).\n")
        return
    out.write(
        "Duress passphrase set. Typed at any unlock (the terminal UI, 'steppe daemon', any\n"
        "command), it destroys this profile's keys, messages and contacts and opens a decoy\n"
        f"profile named {args.name or current.name!r} with no contacts. The keystore looks the\n"
        "same as without one. A copy of this device made before it is used still opens with\n"
        "your real passphrase; see the README, 'Duress passphrase'.\n"
    )


def add_duress_parser(ident: Any) -> None:
    d = ident.add_parser("duress", help="a second passphrase that wipes this profile")
    d.add_argument("--name", default="", help="the decoy's name (default: yours)")
    d.add_argument("--off", action="store_true", help="remove the duress passphrase")
    d.add_argument("--duress-file", default="", help="read the duress passphrase from a file")
    d.add_argument(
        "--allow-weak-passphrase", action="store_true",
        help="accept a weak duress passphrase without asking",
    )  # fmt: skip
    d.set_defaults(func=cmd_id_duress)
