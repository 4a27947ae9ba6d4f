"""``steppe id`` and ``steppe contact``: your card and your contacts."""

from __future__ import annotations

import argparse
import os
import sys
from typing import TextIO

from crypto import keystore
from crypto.errors import CryptoError
from crypto.identity import (
    ContactCard,
    fingerprint_words,
    safety_digits,
    safety_words,
)
from mesh import profile as prof
from mesh.cli_common import (
    TERMINAL_WIDTH,
    CliError,
    _fp,
    _now,
    _open,
    _read_passphrase,
    _request,
    ask,
)
from mesh.ipc import calls
from mesh.plain_errors import card_problem
from mesh.render import inert


def cmd_id_new(args: argparse.Namespace, out: TextIO) -> None:
    path = prof.resolve_profile_dir(args.profile)
    if (path / prof.KEYSTORE).exists():
        raise CliError(f"a profile already exists in {path}")
    try:
        params = keystore.KdfParams.named(args.kdf)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    try:
        p = prof.create_profile(
            path, args.name, _read_passphrase(args, confirm=True), params, _now(), os.urandom
        )
    except CryptoError as exc:
        raise CliError(f"invalid name: {exc}") from None
    out.write(f"Created profile in {path}\n")
    out.write(f"Fingerprint: {_fp(p.identity.sign_public)}\n")
    out.write("Show your contact card with: steppe id show\n")


def cmd_id_show(args: argparse.Namespace, out: TextIO) -> None:
    p = _open(args)
    text = p.card.encode()
    out.write(f"Name:         {p.name}\n")
    out.write(f"Fingerprint:  {_fp(p.identity.sign_public)}\n")
    out.write(f"Words:        {' '.join(fingerprint_words(p.identity.sign_public))}\n")
    out.write(f"Contact card: {text}\n")
    if not args.no_qr:
        out.write("\nScan to add this contact:\n")
        print_card_qr(text, out)


def print_card_qr(text: str, out: TextIO) -> None:
    """A card's QR code in half-block characters, at most :data:`TERMINAL_WIDTH` wide (a
    card with the longest name and a prekey: version 15, 81 modules)."""
    import segno

    qr = segno.make(text, error="l")  # a screen does not smudge: the smallest code
    size = int(qr.symbol_size(border=0)[0])
    border = max(1, min(4, (TERMINAL_WIDTH - size) // 2))
    qr.terminal(out=out, compact=True, border=border)


def cmd_contact_add(args: argparse.Namespace, out: TextIO) -> None:
    """Add a card; while a daemon runs it applies the change (see mesh.contact_change)."""
    from mesh.contact_change import change_contacts

    try:
        card = ContactCard.decode(args.card)
    except CryptoError as exc:
        raise CliError(card_problem(args.card, exc)) from exc
    p = _open(args)

    def local(q: prof.Profile) -> tuple[str, bool]:
        c = q.add_contact(card, _now(), name=args.name, replace=args.replace)
        return c.name, c.key_changed

    def remote() -> tuple[str, bool]:
        call = calls.ContactAdd(card=args.card, name=args.name or "", replace=args.replace)
        row = _request(args, call)
        return row.name, row.key_changed

    (name, changed), live = change_contacts(p, local, remote)
    state = "key changed, verify again before messaging" if changed else "unverified"
    out.write(f"Added {inert(name)} ({state}). Fingerprint {_fp(card.identity.sign_public)}\n")
    if live:
        out.write("The running daemon has the change now.\n")
    out.write(f"Compare safety numbers in person: steppe contact verify {inert(repr(name))}\n")


def cmd_contact_add_sender(args: argparse.Namespace, out: TextIO) -> None:
    """Add someone who wrote without being a contact, from their fingerprint."""
    from mesh import offline
    from mesh.contact_change import change_contacts

    p = _open(args)

    def local(q: prof.Profile) -> tuple[str, str]:
        who = prof.match_sender(offline.strangers(q), args.fingerprint)
        c = q.add_sender(who, args.name, _now())
        return c.name, c.identity.fingerprint.hex()

    def remote() -> tuple[str, str]:
        call = calls.ContactAddSender(fingerprint=args.fingerprint, name=args.name)
        row = _request(args, call)
        return row.name, row.fingerprint

    (name, fp), live = change_contacts(p, local, remote)
    digits = " ".join(fp[i : i + 4] for i in range(0, 64, 4))
    out.write(f"Added {inert(name)} (unverified). Fingerprint {digits}\n")
    out.write(
        "Only their messages vouch for them: nothing proves who they are until you "
        f"compare safety numbers in person: steppe contact verify {inert(repr(name))}\n"
    )
    if live:
        out.write("The running daemon has the change now.\n")


def cmd_contact_remove(args: argparse.Namespace, out: TextIO) -> None:
    """Forget a contact; their messages stay, shown from an unknown sender."""
    from mesh.contact_change import change_contacts

    p = _open(args)

    def local(q: prof.Profile) -> tuple[str, str]:
        c = q.remove_contact(args.name)
        return c.name, c.identity.fingerprint.hex()

    def remote() -> tuple[str, str]:
        row = _request(args, calls.ContactRemove(name=args.name))
        return row.name, row.fingerprint

    (name, fp), live = change_contacts(p, local, remote)
    out.write(f"Removed {inert(name)}: nothing more is sealed to their key.\n")
    short = " ".join(fp[i : i + 4] for i in range(0, 20, 4))  # as the inbox shows it
    out.write(
        f"Their messages stay in the inbox, from unknown sender {short}. "
        "To write to them again, add their card.\n"
    )
    if live:
        out.write("The running daemon has the change now.\n")


def cmd_contact_rename(args: argparse.Namespace, out: TextIO) -> None:
    from mesh.contact_change import change_contacts

    p = _open(args)

    def local(q: prof.Profile) -> tuple[str, str]:
        old = q.contact(args.old).name
        return old, q.rename_contact(old, args.new).name

    def remote() -> tuple[str, str]:
        row = _request(args, calls.ContactRename(name=args.old, new_name=args.new))
        return args.old, row.name

    (old, new), live = change_contacts(p, local, remote)
    out.write(f"Renamed {inert(old)} to {inert(new)}.\n")
    if live:
        out.write("The running daemon has the change now.\n")


def cmd_contact_list(args: argparse.Namespace, out: TextIO) -> None:
    p = _open(args)
    if not p.contacts:
        out.write("No contacts yet. Add one with: steppe contact add CARD\n")
        return
    width = max(len(inert(c.name)) for c in p.contacts)
    for c in sorted(p.contacts, key=lambda c: c.name.casefold()):
        state = "KEY CHANGED" if c.key_changed else "verified" if c.verified else "unverified"
        out.write(f"{inert(c.name):<{width}}  {state:<11}  {_fp(c.identity.sign_public)[:24]}\n")


def cmd_contact_verify(args: argparse.Namespace, out: TextIO) -> None:
    p = _open(args)
    c = p.contact(args.name)
    mine, theirs = p.identity.sign_public, c.identity.sign_public
    out.write(f"Safety number with {inert(c.name)}:\n  {safety_digits(mine, theirs)}\n")
    out.write(f"  {' '.join(safety_words(mine, theirs))}\n")
    out.write(f"Compare it with the number on {inert(c.name)}'s screen, in person.\n")
    if not args.yes:
        if not sys.stdin.isatty():
            raise CliError("confirm interactively, or pass --yes once the numbers match")
        if not ask("Do the numbers match exactly?"):
            out.write("Not verified.\n")
            return
    from mesh.contact_change import change_contacts

    shown = c.identity.fingerprint.hex()

    def local(q: prof.Profile) -> None:
        fresh = q.contact(c.name)
        if fresh.identity.fingerprint.hex() != shown:
            raise CliError(
                f"{c.name}'s key changed since the safety number was shown: compare again"
            )
        fresh.verified, fresh.key_changed = True, False

    def remote() -> None:
        _request(args, calls.ContactVerify(name=c.name, fingerprint=shown))

    _done, live = change_contacts(p, local, remote)
    out.write(f"{inert(c.name)} is now verified.\n")
    if live:
        out.write("The running daemon has the change now.\n")
