"""What every ``steppe`` command shares: one-line errors, prompts, the profile, the
local API."""

from __future__ import annotations

import argparse
import getpass
import sys
import time
from pathlib import Path
from typing import TypeVar

from crypto.identity import (
    fingerprint,
)
from mesh import profile as prof
from mesh.ipc.calls import Call

EXIT_USAGE = 2

R = TypeVar("R")


class CliError(Exception):
    """Printed as one line, exit code 2."""


TERMINAL_WIDTH = 80  # the QR code of a contact card fits this many columns


def _secret(prompt: str) -> str:
    """A passphrase typed at the terminal; Ctrl-D is one line, exit 2."""
    try:
        return getpass.getpass(prompt)
    except EOFError:
        print(file=sys.stderr)  # the error line starts on a line of its own
        raise CliError("no passphrase given (end of input): nothing done") from None


def ask(question: str) -> bool:
    """A ``[y/N]`` question at the terminal: only ``y`` or ``yes`` is a yes; Ctrl-D is one
    line and exit 2, like every other refusal."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        print(file=sys.stderr)
        raise CliError("no answer (end of input): nothing done") from None
    return answer.strip().lower() in ("y", "yes")


def _read_passphrase(args: argparse.Namespace, *, confirm: bool = False) -> bytes:
    """The profile's passphrase: ``--passphrase-file``, the terminal, or one line of stdin.
    ``confirm`` (a new passphrase): typed twice, and a weak one needs a yes."""
    interactive = not args.passphrase_file and sys.stdin.isatty()
    if args.passphrase_file:
        try:
            text = Path(args.passphrase_file).read_text().splitlines()
        except OSError as exc:
            raise CliError(f"cannot read passphrase file: {exc.strerror}") from None
        value = text[0] if text else ""
    elif interactive:
        value = _secret("Passphrase: ")
        if confirm and value and _secret("Repeat passphrase: ") != value:
            raise CliError("the two passphrases differ")
    else:
        value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise CliError("the passphrase may not be empty")
    if confirm:
        _accept_weak(value, interactive, getattr(args, "allow_weak_passphrase", False))
    return value.encode()


def _accept_weak(value: str, interactive: bool, allowed: bool) -> None:
    from mesh.passphrase import weakness

    why = weakness(value)
    if not why:
        return
    print(
        f"steppe: warning: this passphrase is weak ({why}); whoever takes this device can "
        "try guesses offline",
        file=sys.stderr,
    )
    if allowed:
        return
    if not interactive:
        raise CliError(
            "refusing a weak passphrase: choose a longer one, or pass --allow-weak-passphrase"
        )
    if not ask("Use this weak passphrase anyway?"):
        raise CliError("no profile created: choose a longer passphrase")


def _open(args: argparse.Namespace) -> prof.Profile:
    return prof.open_profile(prof.resolve_profile_dir(args.profile), _read_passphrase(args))


def _now() -> int:
    return int(time.time())


def _fp(key: bytes) -> str:
    h = fingerprint(key).hex()
    return " ".join(h[i : i + 4] for i in range(0, 64, 4))


def _profile_dir(args: argparse.Namespace) -> Path:
    return prof.resolve_profile_dir(args.profile)


def _request(args: argparse.Namespace, call: Call[R]) -> R:
    """One typed request to the running daemon of this profile."""
    from mesh import ipc

    try:
        return ipc.request_sync(_profile_dir(args), call)
    except ipc.IpcError as exc:
        raise CliError(str(exc)) from None


INDENT = "    "  # continuation lines of peer text: never at the left margin, where ours are


def _text(words: list[str], refused: str) -> str:
    """The words of a message or bulletin; nothing visible in them is one line, exit 2."""
    from mesh.core.config import EMPTY_TEXT
    from mesh.core.messages import is_blank

    text = " ".join(words)
    if is_blank(text.encode("utf-8", "surrogateescape")):
        raise CliError(f"{refused}: {EMPTY_TEXT}")
    return text


def _limit(value: int) -> int:
    if value < 1:
        raise CliError(f"--limit must be at least 1, not {value}")
    return value
