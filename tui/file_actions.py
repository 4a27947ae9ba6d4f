"""Files in the UI: send one to the open conversation (Ctrl+O), save a received one
(Enter on it). The daemon strips a photo's metadata and says what it removed; the UI
shows that line. A name from the mesh is offered only as a plain, inert file name in a
directory the user picks, never as a path."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from mesh.core.attachments import clean_name
from mesh.ipc.calls import FileSave, MessageRow, SendFile
from mesh.ipc.schema import IpcError
from mesh.render import inert, size_words
from tui.screens.files import PickFile
from tui.text import line

if TYPE_CHECKING:
    from tui.app import SteppeApp


def _absolute(chosen: str) -> str:
    """What the user chose, as the daemon takes it (no disk access: ``~`` from $HOME)."""
    return os.path.abspath(os.path.expanduser(chosen))


def offered_name(name: str) -> str:
    """A received file's name as a save dialog may offer it: one path part, not hidden."""
    return clean_name(inert(name)).lstrip(".") or "file"


async def send_file(app: SteppeApp, contact: str) -> bool:
    """Ask which file, send it; True if it was queued."""
    question = (
        f"Send which file to {inert(contact)}? (at most 10 MiB; a JPEG or PNG loses its "
        "GPS position, camera and time first)"
    )
    chosen = await app.push_screen_wait(PickFile(question, Path.home()))
    if not chosen:
        return False
    path = _absolute(chosen)
    try:
        sent = await app.daemon.request(SendFile(contact=contact, path=path))
    except IpcError as exc:
        app.notify(line(str(exc)).plain, severity="error")
        return False
    app.notify(f"queued {inert(sent.name)} for {inert(contact)}: {sent.note}", markup=False)
    return True


async def save_file(app: SteppeApp, m: MessageRow) -> None:
    if m.outgoing or m.state != "received":
        why = "one of yours" if m.outgoing else f"it is {inert(m.state)}"
        app.notify(f"this file cannot be saved: {why}", severity="warning", markup=False)
        return
    question = f"Save {inert(m.text)} from {inert(m.contact_name)} where?"
    chosen = await app.push_screen_wait(PickFile(question, Path.home(), offered_name(m.text)))
    if not chosen:
        return
    path = _absolute(chosen)
    try:
        saved = await app.daemon.request(FileSave(file=m.msg_id.hex(), path=path))
    except IpcError as exc:
        app.notify(line(str(exc)).plain, severity="error")
        return
    app.notify(f"saved {size_words(saved.size)} to {inert(saved.path)}", markup=False)
