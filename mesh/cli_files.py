"""``steppe send CONTACT --file PATH`` and ``steppe file ...``: files sent and received
through the daemon (mesh.daemon.files), photos stripped of identifying metadata first."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, TextIO

from mesh.cli_common import _request
from mesh.ipc import calls
from mesh.render import inert

ID_DIGITS = 12  # of a file's id shown; `file save` takes any unique prefix of 4 or more


def size_words(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def progress_words(row: calls.FileRow) -> str:
    """What became of a file, the way a person reads it."""
    if row.outgoing:
        return "delivered, every chunk" if row.state == "acked" else "queued"
    if row.state == "receiving":
        return f"receiving, {row.received} of {row.count} chunks"
    if row.state in ("refused", "dropped", "damaged") and row.note:
        return f"{row.state}: {inert(row.note)}"
    return inert(row.state)


def send_file(args: argparse.Namespace, out: TextIO) -> None:
    path = str(Path(args.file).expanduser().absolute())
    r = _request(args, calls.SendFile(contact=args.contact, path=path))
    out.write(
        f"queued {inert(r.name)} ({size_words(r.size)}) for {args.contact} "
        f"(file {r.msg_id.hex()[:ID_DIGITS]})\n"
    )
    out.write(f"{inert(r.note)}\n")


def cmd_file_list(args: argparse.Namespace, out: TextIO) -> None:
    rows = _request(args, calls.Files(contact=args.contact or ""))
    if not rows:
        out.write("no files yet\n")
    for r in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.created))
        who = f"to {inert(r.contact_name)}" if r.outgoing else f"from {inert(r.contact_name)}"
        out.write(
            f"{when}  {r.msg_id.hex()[:ID_DIGITS]}  {who}: {inert(r.name) or '(no name)'} "
            f"({size_words(r.size)}, {inert(r.mime)}) [{progress_words(r)}]\n"
        )


def cmd_file_save(args: argparse.Namespace, out: TextIO) -> None:
    path = Path(args.path).expanduser().absolute()
    r = _request(args, calls.FileSave(file=args.file, path=str(path)))
    out.write(f"saved {size_words(r.size)} to {inert(r.path)}\n")


def cmd_file_delete(args: argparse.Namespace, out: TextIO) -> None:
    _request(args, calls.FileDelete(file=args.file))
    out.write("deleted: its content is gone from this device (the list still names it)\n")


def add_file_parsers(sub: Any) -> None:
    fil = sub.add_parser("file", help="files sent and received").add_subparsers(
        dest="sub", required=True
    )
    lst = fil.add_parser("list", help="files in and out, with their progress")
    lst.add_argument("contact", nargs="?", help="only this conversation")
    lst.set_defaults(func=cmd_file_list)
    save = fil.add_parser("save", help="write a received file (never over an existing one)")
    save.add_argument("file", help="the file's id as 'file list' shows it (4+ digits)")
    save.add_argument("path")
    save.set_defaults(func=cmd_file_save)
    delete = fil.add_parser("delete", help="forget a received file's content on this device")
    delete.add_argument("file", help="the file's id as 'file list' shows it (4+ digits)")
    delete.set_defaults(func=cmd_file_delete)
