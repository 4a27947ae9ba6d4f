"""The ``steppe`` command.

Every failure the user can cause (wrong passphrase, bad card, missing profile, bad
argument) ends with one line on stderr, ``steppe: <what went wrong>``, and exit code 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from crypto.identity import (
    fingerprint,
    short_fingerprint,
)
from mesh import profile as prof
from mesh.cli_bulletins import add_bulletin_parsers
from mesh.cli_bundles import (
    cmd_export,
    cmd_import,
)
from mesh.cli_common import (
    EXIT_USAGE,
    INDENT,
    CliError,
    _limit,
    _open,
    _profile_dir,
    _request,
    _text,
    ask,
)
from mesh.cli_contacts import (
    cmd_contact_add,
    cmd_contact_add_sender,
    cmd_contact_list,
    cmd_contact_remove,
    cmd_contact_rename,
    cmd_contact_verify,
    cmd_id_new,
    cmd_id_show,
)
from mesh.cli_duress import add_duress_parser
from mesh.cli_files import add_file_parsers, send_file
from mesh.ipc import calls
from mesh.render import carried_words, inert, inert_block


def cmd_sim_list(args: argparse.Namespace, out: TextIO) -> None:
    from simulations.scenario import available

    for name, description in available():
        out.write(f"{name:<24} {description}\n")


def cmd_sim_run(args: argparse.Namespace, out: TextIO) -> None:
    from simulations.run import run_scenario

    run_scenario(
        args.scenario,
        seed=args.seed,
        out_dir=args.out,
        quiet=args.quiet,
        out=out,
        plots=not args.no_plots,
        sets=args.set,
    )


def cmd_sim_sweep(args: argparse.Namespace, out: TextIO) -> None:
    from simulations.sweep import sweep

    sweep(
        args.scenario,
        args.set or [],
        args.seeds,
        args.jobs,
        args.csv,
        out=out,
        scheduler=args.scheduler or "",
    )


def cmd_daemon(args: argparse.Namespace, out: TextIO) -> None:
    import logging

    import trio

    from mesh.daemon.config import ConfigError, load
    from mesh.daemon.daemon import Daemon, DaemonError

    try:
        cfg = load(Path(args.config) if args.config else None)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    if cfg.profile and not args.profile:
        args.profile = cfg.profile
    if cfg.passphrase_file and not args.passphrase_file:
        args.passphrase_file = cfg.passphrase_file
    logging.basicConfig(
        level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    p = _open(args)
    try:
        daemon = Daemon(p, cfg, p.path)
    except DaemonError as exc:
        raise CliError(str(exc)) from None
    out.write(f"steppe daemon for {p.name} ({cfg.mode}); Ctrl-C stops it\n")
    out.flush()
    try:
        _run_daemon(trio.run, daemon.run)
    except KeyboardInterrupt:
        out.write("daemon stopped\n")
    if daemon.broken:
        raise CliError("the daemon stopped after an internal error (see the log); start it again")


def _run_daemon(run: Callable[..., object], main: Callable[..., object]) -> None:
    """Errors from inside the daemon's task nursery arrive as exception groups: turn the
    ones a user can fix (a port in use, a bad state file) into one line."""
    from mesh.daemon.daemon import DaemonError

    try:
        run(main)
    except* OSError as group:
        exc = group.exceptions[0]
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise CliError(f"cannot start the daemon: {reason}") from None
    except* DaemonError as group:
        raise CliError(str(group.exceptions[0])) from None


def cmd_send(args: argparse.Namespace, out: TextIO) -> None:
    if args.file is not None:
        if args.text:
            raise CliError("send either a message or --file, not both")
        send_file(args, out)
        return
    text = _text(args.text, f"cannot send to {args.contact}")
    result = _request(args, calls.Send(contact=args.contact, text=text))
    out.write(f"queued for {args.contact} (message {result.msg_id.hex()[:12]})\n")


def cmd_inbox(args: argparse.Namespace, out: TextIO) -> None:
    from mesh import offline

    limit = _limit(args.limit)
    if offline.daemon_answers(_profile_dir(args)):
        rows = _request(args, calls.Messages(contact=args.contact or "", limit=limit))
        contacts = _request(args, calls.Contacts()) if rows else []
        known = {bytes.fromhex(c.fingerprint) for c in contacts}
        changed = {bytes.fromhex(c.fingerprint) for c in contacts if c.key_changed}
    else:  # no daemon: read the history ourselves, with the passphrase
        profile = _open(args)
        rows = offline.messages(profile, args.contact or "", limit)
        known = {c.identity.fingerprint for c in profile.contacts}
        changed = {c.identity.fingerprint for c in profile.contacts if c.key_changed}
    if not rows:
        out.write("no messages yet\n")
    strangers = False
    for m in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.created))
        if fingerprint(m.contact) in known:
            who = inert(m.contact_name)
        else:  # not a contact: the key is all we know, never a name
            who, strangers = f"unknown sender {short_fingerprint(m.contact)}", True
        arrow = f"to {who}" if m.outgoing else f"from {who}"
        said = carried_words(m.carriers) if m.state == "queued" and m.carriers else m.state
        state = f" [{inert(said)}]" if m.outgoing else ""
        if m.file:
            state = f" [{inert(m.state)}]"
            said = f"file {inert(m.text) or '(no name)'} (see 'steppe file list')"
        else:
            said = inert_block(m.text, INDENT)
        out.write(f"{when}  {arrow}{state}: {said}\n")
    if strangers:
        out.write(
            "To answer an unknown sender, add them: 'steppe contact add-sender "
            "FINGERPRINT --name NAME' (unverified until you compare safety numbers in "
            "person), or add their contact card if they give you one.\n"
        )
    if any(fingerprint(m.contact) in changed for m in rows):
        out.write(
            "KEY CHANGED: those messages come from a contact's new key, which nobody has "
            "verified; compare safety numbers in person first: 'steppe contact verify NAME'.\n"
        )


def cmd_peers(args: argparse.Namespace, out: TextIO) -> None:
    rows = _request(args, calls.Peers())
    if not rows:
        out.write("no links\n")
    for r in rows:
        state = "open" if r.open else "handshake"
        out.write(f"link {r.link:<4} {r.kind:<8} {r.remote:<22} {state:<9} {r.seconds} s\n")


def cmd_status(args: argparse.Namespace, out: TextIO) -> None:
    st = _request(args, calls.Status())
    out.write(f"{st.name} ({st.mode}), up {st.uptime} s, TCP port {st.tcp_port}\n")
    if st.link_key:
        out.write(f"link key: {st.link_key} (users may pin it in gateway.peers)\n")
    out.write(f"links: {st.open_links} open of {st.links}\n")
    out.write(f"store: {st.envelopes} envelopes, {st.store_bytes} bytes\n")
    counters = {**st.node_stats, **st.daemon_stats}
    if counters:
        out.write("counters: " + ", ".join(f"{k}={v}" for k, v in counters.items()) + "\n")


def cmd_panic(args: argparse.Namespace, out: TextIO) -> None:
    from mesh.daemon.panic import NotAProfile, check_profile, panic

    path = _profile_dir(args)
    try:
        check_profile(path)  # before asking: a wrong --profile is said at once
    except NotAProfile as exc:
        raise CliError(str(exc)) from None
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("this destroys your keys and messages for good; pass --yes to confirm")
        if not ask(f"Destroy all keys and messages of the profile in {path} now?"):
            out.write("nothing done\n")
            return
    try:
        took = panic(path)
    except NotAProfile as exc:
        raise CliError(str(exc)) from None
    out.write(f"wiped {path} in {took:.2f} s: the passphrase opens nothing now\n")


def cmd_ui(args: argparse.Namespace, out: TextIO) -> None:
    """The terminal UI, over the profile's running daemon."""
    from tui.app import SteppeApp  # Textual loads only for the UI

    app = SteppeApp(_profile_dir(args))
    app.run()
    if app.wiped:
        out.write(f"{app.wiped}: the passphrase opens nothing now\n")
    elif app.started is not None and app.started.process.poll() is None:
        pid = app.started.process.pid
        out.write(f"the daemon keeps delivering (pid {pid}); `kill {pid}` stops it\n")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steppe",
        description="Offline-first mesh messenger. With no command: the terminal UI.",
    )
    parser.add_argument(
        "--profile",
        metavar="DIR",
        help="profile directory (default: $STEPPE_PROFILE or the platform's data directory)",
    )
    parser.add_argument(
        "--passphrase-file", metavar="FILE", help="read the passphrase from the first line of FILE"
    )
    parser.add_argument("--version", action="version", version="steppe 0.1.0")
    parser.set_defaults(func=cmd_ui)
    sub = parser.add_subparsers(dest="command")

    ident = sub.add_parser("id", help="your identity").add_subparsers(dest="sub", required=True)
    new = ident.add_parser("new", help="create a profile and identity")
    new.add_argument("--name", required=True, help="display name on your contact card")
    new.add_argument(
        "--kdf",
        default="moderate",
        choices=["interactive", "moderate", "sensitive"],
        help="Argon2id strength (moderate: 256 MiB; interactive: 64 MiB for small devices)",
    )
    new.add_argument(
        "--allow-weak-passphrase",
        action="store_true",
        help="accept a passphrase under 12 characters (or of few different ones) without asking",
    )
    new.set_defaults(func=cmd_id_new)
    show = ident.add_parser("show", help="fingerprint, words, contact card and QR code")
    show.add_argument("--no-qr", action="store_true", help="do not print the QR code")
    show.set_defaults(func=cmd_id_show)
    add_duress_parser(ident)

    contact = sub.add_parser("contact", help="your contacts").add_subparsers(
        dest="sub", required=True
    )
    add = contact.add_parser("add", help="add a contact from their card")
    add.add_argument("card", help="the STEPPE1:... card text")
    add.add_argument("--name", help="your name for them (default: the name on the card)")
    add.add_argument(
        "--replace",
        action="store_true",
        help="accept a new key for an existing contact (unverifies them)",
    )
    add.set_defaults(func=cmd_contact_add)
    snd = contact.add_parser(
        "add-sender", help="add someone who wrote to you (an unknown sender in the inbox)"
    )
    snd.add_argument("fingerprint", help="their fingerprint, as the inbox shows it")
    snd.add_argument("--name", required=True, help="your name for them")
    snd.set_defaults(func=cmd_contact_add_sender)
    rem = contact.add_parser(
        "remove", help="forget a contact (their messages stay, from an unknown sender)"
    )
    rem.add_argument("name")
    rem.set_defaults(func=cmd_contact_remove)
    ren = contact.add_parser("rename", help="give a contact another name")
    ren.add_argument("old", help="their name now")
    ren.add_argument("new", help="the new name")
    ren.set_defaults(func=cmd_contact_rename)
    lst = contact.add_parser("list", help="list contacts and their verification state")
    lst.set_defaults(func=cmd_contact_list)
    ver = contact.add_parser("verify", help="compare safety numbers and mark verified")
    ver.add_argument("name")
    ver.add_argument(
        "--yes",
        action="store_true",
        help="mark verified without asking (only after comparing in person)",
    )
    ver.set_defaults(func=cmd_contact_verify)

    sim = sub.add_parser("sim", help="blackout simulator").add_subparsers(dest="sub", required=True)
    sim.add_parser("list", help="list the shipped scenarios").set_defaults(func=cmd_sim_list)
    run = sim.add_parser("run", help="run a scenario: real nodes, virtual time")
    run.add_argument("scenario", help="a scenario name from 'steppe sim list', or a TOML path")
    run.add_argument("--seed", type=int, help="random seed (default: the scenario's)")
    run.add_argument("--out", metavar="DIR", help="output directory (default: out/SCENARIO-seedN)")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="override a scenario key, e.g. groups.0.count=1000 (repeatable)",
    )
    run.set_defaults(func=cmd_sim_run)
    sw = sim.add_parser("sweep", help="a parameter grid x seeds in parallel, one table")
    sw.add_argument("scenario")
    sw.add_argument(
        "--set",
        action="append",
        metavar="KEY=V1,V2",
        help="scenario key to vary, e.g. groups.0.strategy=epidemic,spray",
    )
    sw.add_argument("--seeds", default="1", help="N, N-M or N,M,... (default 1)")
    sw.add_argument(
        "--jobs", type=int, default=2, help="local Dask worker processes (default 2; 1: no Dask)"
    )
    sw.add_argument(
        "--scheduler", metavar="tcp://HOST:PORT", help="run on this Dask cluster instead"
    )
    sw.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    sw.set_defaults(func=cmd_sim_sweep)
    dmn = sub.add_parser("daemon", help="run this profile's node (LAN, gateway peers, local API)")
    dmn.add_argument("--config", metavar="FILE", help="TOML config (default: platform config dir)")
    dmn.set_defaults(func=cmd_daemon)
    snd = sub.add_parser("send", help="send a message to a contact (through the daemon)")
    snd.add_argument("contact")
    snd.add_argument("text", nargs="*")
    snd.add_argument(
        "--file", metavar="PATH", help="send a file (<= 10 MiB; photos lose their metadata)"
    )
    snd.set_defaults(func=cmd_send)
    add_file_parsers(sub)
    inbox = sub.add_parser("inbox", help="messages in and out")
    inbox.add_argument("contact", nargs="?", help="only this conversation")
    inbox.add_argument("--limit", type=int, default=50)
    inbox.set_defaults(func=cmd_inbox)
    sub.add_parser("peers", help="the daemon's links").set_defaults(func=cmd_peers)
    sub.add_parser("status", help="the daemon's state and counters").set_defaults(func=cmd_status)
    add_bulletin_parsers(sub)
    exp = sub.add_parser("export", help="write the sealed envelopes you carry to a bundle file")
    exp.add_argument("path")
    exp.add_argument("--max-bytes", type=int, default=0, help="size limit (default: config)")
    exp.add_argument("--force", action="store_true", help="replace PATH if it exists")
    exp.set_defaults(func=cmd_export)
    imp = sub.add_parser("import", help="merge a bundle file (checked like a network peer)")
    imp.add_argument("path")
    imp.set_defaults(func=cmd_import)
    pan = sub.add_parser("panic", help="wipe keys and data now (also while the daemon runs)")
    pan.add_argument("--yes", action="store_true", help="do not ask")
    pan.set_defaults(func=cmd_panic)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace, TextIO], None] = args.func
    try:
        func(args, out or sys.stdout)
    except (CliError, prof.ProfileError, ValueError) as exc:
        print(f"steppe: {inert(str(exc))}", file=sys.stderr)  # errors may quote peer text
        return EXIT_USAGE
    except BrokenPipeError:  # e.g. piped into head: not an error worth a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    except KeyboardInterrupt:
        print("steppe: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
