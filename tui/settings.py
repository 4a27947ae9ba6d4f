"""The UI's own settings, in the profile as ``tui.toml`` (``panic`` wipes it with the
rest). One today: what a notification of a new message may say.

A notification is a toast inside the UI (Textual's ``notify``) for a message that
arrives while its conversation is not the one on screen. It never goes to the terminal
title. By default it names the sender only (the conversation list shows as much): the
message text appears in a notification only if the user turns that on, because a toast
is read from across a room or a checkpoint queue more easily than a conversation.
"""

from __future__ import annotations

import enum
import tomllib
from dataclasses import dataclass
from pathlib import Path

from mesh.profile import atomic_write
from mesh.render import inert

SETTINGS = "tui.toml"
PREVIEW = 60  # characters of a message a notification shows (when allowed to)


class Notify(enum.StrEnum):
    OFF = "off"  # no notification: the unread count in the list only
    SENDER = "sender"  # "new message from NAME"
    TEXT = "text"  # the sender and the message's first line


CHOICES = {  # what each says, for the settings dialog
    Notify.OFF: "no notifications (the list still counts new messages)",
    Notify.SENDER: "who wrote, never what (the default)",
    Notify.TEXT: "who wrote and the first line of the message",
}


class SettingsError(Exception):
    """``tui.toml`` cannot be read as settings: one line (the defaults are used)."""


@dataclass(frozen=True, slots=True)
class Settings:
    notify: Notify = Notify.SENDER


def load_settings(profile_dir: Path) -> Settings:
    """The saved settings; the defaults if none are saved. Raises :class:`SettingsError`
    naming what is wrong with a file that is there."""
    path = profile_dir / SETTINGS
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    unknown = set(raw) - {"notifications"}
    if unknown:
        raise SettingsError(f"{path}: unknown setting {sorted(unknown)[0]!r}")
    value = raw.get("notifications", Notify.SENDER.value)
    try:
        return Settings(notify=Notify(value))
    except ValueError:
        allowed = ", ".join(repr(n.value) for n in Notify)
        raise SettingsError(f"{path}: notifications must be one of {allowed}") from None


def save_settings(profile_dir: Path, settings: Settings) -> None:
    text = f'# the Steppe UI\'s settings\nnotifications = "{settings.notify.value}"\n'
    atomic_write(profile_dir / SETTINGS, text.encode())


def notice(level: Notify, sender: str, text: str) -> str | None:
    """What the notification of a new message says (inert), or None for none."""
    match level:
        case Notify.OFF:
            return None
        case Notify.SENDER:
            return f"new message from {inert(sender)}"
        case Notify.TEXT:
            first = text.split("\n", 1)[0]
            cut = first[:PREVIEW] + ("..." if len(first) > PREVIEW or "\n" in text else "")
            return f"{inert(sender)}: {inert(cut)}"
