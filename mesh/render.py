"""Peer-controlled text made inert for a terminal (the ``steppe`` CLI and the TUI).

Everything that came from the mesh — message text, bulletin text and topics, names on
contact cards, signer labels, error lines quoting any of them — is hostile until shown
otherwise: a stranger's message that holds ``\\n`` followed by ``2024-01-05 10:00  from
Alice (verified contact)`` would print a line that looks like ours, and ``ESC [`` ...
sequences move the cursor, recolour the screen or retitle the window.

The rules, applied to every character:

- C0 and C1 control characters and DEL (``\\x1b``, ``\\r``, ``\\x9b`` (CSI) ...) become
  visible escapes ``\\xNN``: no escape sequence can start, and ``\\r`` cannot return to
  the start of a line. A tab becomes ``\\t``.
- Invisible formatting characters (Unicode categories Cf, Zl, Zp, Cs, Co, Cn: bidi
  overrides and isolates such as U+202E, zero-width spaces and joiners, soft hyphens,
  line and paragraph separators, unassigned code points) become ``\\u202e`` and the like,
  so a right-to-left override cannot reverse what follows and nothing hides in a
  zero-width run.
- A backslash becomes ``\\\\``, so an escape we print cannot be confused with a peer who
  typed one.
- :func:`inert` is for one-line fields (a newline is escaped as ``\\n``);
  :func:`inert_block` keeps a multi-line text readable: each line is made inert and
  every line after the first starts with ``indent``, so no line of it can begin at the
  left margin where our own lines begin.

Pure functions of ``str``; no terminal I/O here.
"""

from __future__ import annotations

import unicodedata

_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def _escape(ch: str) -> str:
    if ch == "\\":
        return "\\\\"
    if ch == "\t":
        return "\\t"
    if ch == "\n":
        return "\\n"
    code = ord(ch)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def inert(text: str) -> str:
    """One line, safe to print: no control, formatting or line-breaking character left."""
    return "".join(
        _escape(ch) if ch == "\\" or unicodedata.category(ch) in _HIDDEN else ch for ch in text
    )


def inert_block(text: str, indent: str = "    ") -> str:
    """Several lines, each inert; lines after the first begin with ``indent``. Only
    ``\\n`` breaks a line (``\\r``, U+2028 and the like are escaped by :func:`inert`)."""
    if not indent:
        raise ValueError("continuation lines need an indent")
    return ("\n" + indent).join(inert(line) for line in text.split("\n"))


def carried_words(carriers: int) -> str:
    """An undelivered message of ours handed to ``carriers`` neighbours, in words (the
    CLI and the TUI say the same; see :mod:`mesh.daemon.carried` for what it means)."""
    return f"carried by {carriers} neighbour{'' if carriers == 1 else 's'}"


# A post's trust level (mesh.daemon.bulletins.LEVELS) in words, the same in the CLI and UI.
LEVEL_WORDS = {
    "you": "yours",
    "verified": "verified contact",
    "endorsed": "endorsed by verified contacts",
    "unverified": "unverified",
    "unknown": "unknown",
}


FILE_STATE_WORDS = {  # a received file's state (mesh.daemon.files), the way a person reads it
    "receiving": "receiving",
    "received": "received",
    "damaged": "damaged: it does not match what its sender said, not kept",
    "dropped": "given up: it expired before every chunk arrived",
    "refused": "refused",
    "deleted": "deleted",
}


def file_words(
    state: str, outgoing: bool, progress: tuple[int, int] | None = None, note: str = ""
) -> str:
    """What became of a file: ours queued or delivered; theirs its chunks received of all
    while it arrives, then its state (a refusal with its reason, inert)."""
    if outgoing:
        return "delivered, every chunk" if state == "acked" else "queued"
    if state == "receiving" and progress is not None:
        return f"receiving, {progress[0]} of {progress[1]} chunks"
    said = FILE_STATE_WORDS.get(state, inert(state))
    return f"{said}: {inert(note)}" if state == "refused" and note else said


def size_words(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"
