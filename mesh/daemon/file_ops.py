"""The local API's file operations: send a file, list files, save a received one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mesh.daemon.files import FileError, FileRecord
from mesh.ipc import calls as c
from mesh.ipc.schema import IpcError
from mesh.photo_metadata import MetadataError, prepare

if TYPE_CHECKING:
    from mesh.daemon.daemon import Daemon


def send_file(d: Daemon, contact: str, path: str) -> c.FileSent:
    """Read ``path``, strip a photo's metadata, queue it; say what was removed."""
    where = Path(path)
    if not where.is_absolute():
        raise IpcError(f"{path} is not an absolute path")
    try:
        out = prepare(where)
    except MetadataError as exc:
        raise IpcError(str(exc)) from None
    msg_id = d.send_file(contact, out)
    return c.FileSent(msg_id, out.name, len(out.data), out.mime, out.removed, out.note)


def _row(d: Daemon, rec: FileRecord) -> c.FileRow:
    return c.FileRow(
        rec.msg_id,
        rec.contact,
        d.live.name_of(rec.contact),
        rec.outgoing,
        rec.name,
        rec.mime,
        rec.size,
        rec.count,
        rec.count if rec.outgoing else rec.received,
        d.files.state(rec.msg_id),
        rec.note,
        rec.created,
    )


def files(d: Daemon, contact: str = "") -> list[c.FileRow]:
    key = d.contact_key(contact)
    return [_row(d, r) for r in d.files.records() if key is None or r.contact == key]


def file_delete(d: Daemon, file: str) -> bool:
    try:
        d.files.delete(d.files.find(file))
    except FileError as exc:
        raise IpcError(str(exc)) from None
    return True


def file_save(d: Daemon, file: str, path: str) -> c.Saved:
    try:
        rec = d.files.find(file)
        size = d.files.save(rec, Path(path))
    except FileError as exc:
        raise IpcError(str(exc)) from None
    return c.Saved(path, size)
