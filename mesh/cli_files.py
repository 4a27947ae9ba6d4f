"""``steppe send CONTACT --file PATH`` and ``steppe file ...``: files sent and received
through the daemon (mesh.daemon.files), photos stripped of identifying metadata first."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any, TextIO

from mesh.cli_common import _request
from mesh.ipc import calls
from mesh.render import file_words, inert, size_words

ID_DIGITS = 12  # of a file's id shown; `file save` takes any unique prefix of 4 or more


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
        said = file_words(r.state, r.outgoing, (r.received, r.count), r.note)
        out.write(
            f"{when}  {r.msg_id.hex()[:ID_DIGITS]}  {who}: {inert(r.name) or '(no name)'} "
            f"({size_words(r.size)}, {inert(r.mime)}) [{said}]\n"
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
