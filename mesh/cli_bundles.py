"""``steppe export`` and ``steppe import``: bundles for a courier."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from mesh.cli_common import (
    CliError,
    _request,
)
from mesh.ipc import calls


def cmd_export(args: argparse.Namespace, out: TextIO) -> None:
    from crypto.padding import BUCKETS

    target = Path(args.path).expanduser().resolve()
    smallest = BUNDLE_OVERHEAD + BUCKETS[0]
    if args.max_bytes < 0 or 0 < args.max_bytes < smallest:
        raise CliError(
            f"--max-bytes {args.max_bytes} is smaller than one envelope: a bundle needs at "
            f"least {smallest} bytes (0 means the configured store.bundle_max_bytes)"
        )
    existed = target.exists() or target.is_symlink()
    if target.is_dir():
        raise CliError(f"{target} is a directory: name the bundle file to write")
    if existed and not args.force:
        raise CliError(f"{target} already exists: pass --force to replace it")
    r = _request(args, calls.Export(path=str(target), max_bytes=args.max_bytes))
    if r.envelopes == 0 and args.max_bytes:
        carried = _request(args, calls.Status()).envelopes
        if carried:
            if not existed:
                target.unlink(missing_ok=True)
            raise CliError(
                f"none of the {carried} envelopes this node carries fits in --max-bytes "
                f"{args.max_bytes}: no bundle written; raise the limit"
            )
    out.write(
        f"wrote {r.envelopes} sealed envelopes and {r.receipts} delivery receipts "
        f"({r.bytes} bytes) to {target}\n"
    )


# Why envelopes of an imported bundle were not taken, in the user's words.
IMPORT_REFUSALS = (
    ("known", "already known"),
    ("expired", "expired"),
    ("over_quota", "over quota (the store is full)"),
    ("invalid", "invalid or tampered"),
    ("other", "refused for another reason"),
)


BUNDLE_OVERHEAD = 64  # the bundle's own header and list framing (the daemon reserves it)


def cmd_import(args: argparse.Namespace, out: TextIO) -> None:
    source = str(Path(args.path).expanduser().resolve())
    r = _request(args, calls.Import(path=source))
    out.write(
        f"{r['envelopes']} envelopes in the bundle: {r['stored']} new to carry, "
        f"{r['delivered']} for you\n"
    )
    refused = [(r[k], label) for k, label in IMPORT_REFUSALS if r.get(k)]
    if refused:
        out.write("  refused: " + ", ".join(f"{n} {label}" for n, label in refused) + "\n")
    if r["receipts"]:
        out.write(
            f"  {r['receipts']} delivery receipts; {r['acked']} of your messages now delivered\n"
        )
