"""``steppe bulletin ...`` and ``steppe persona ...``: public posts, their trust levels and
endorsements, and the personas a post can be signed with (mesh.daemon.bulletins)."""

from __future__ import annotations

import argparse
import time
from typing import Any, TextIO

from mesh.cli_common import INDENT, _limit, _request, _text
from mesh.ipc import calls
from mesh.render import LEVEL_WORDS, inert, inert_block

ID_DIGITS = 12  # of a post id shown; `bulletin endorse` takes any unique prefix of 8 or more


def cmd_bulletin_post(args: argparse.Namespace, out: TextIO) -> None:
    text = _text(args.text, "cannot post")
    call = calls.BulletinPost(text=text, topic=args.topic, hours=args.hours, persona=args.as_)
    r = _request(args, call)
    key = f"persona {args.as_}" if args.as_ else "your identity key"
    out.write(f"posted on topic {inert(r.topic)}, signed with {inert(key)}, ")
    out.write(f"expires {time.strftime('%Y-%m-%d %H:%M', time.localtime(r.expires))}\n")


def cmd_bulletin_list(args: argparse.Namespace, out: TextIO) -> None:
    rows = _request(args, calls.BulletinList(limit=_limit(args.limit)))
    if not rows:
        out.write("no bulletins\n")
    for b in rows:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(b.created))
        head = f"{when}  {inert(b.signer)}  [{inert(b.topic)}]  id {b.post_id[:ID_DIGITS]}"
        out.write(f"{head}\n")
        trust = LEVEL_WORDS.get(b.level, b.level)
        if b.endorsed_by:
            trust += "; endorsed by " + ", ".join(inert(n) for n in b.endorsed_by)
        out.write(f"{INDENT}trust: {trust}\n")
        out.write(f"{INDENT}{inert_block(b.text, INDENT)}\n")


def cmd_bulletin_endorse(args: argparse.Namespace, out: TextIO) -> None:
    r = _request(args, calls.BulletinEndorse(post_id=args.post_id))
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(r.expires))
    out.write(f"endorsed post {r.post_id[:ID_DIGITS]}, signed with your identity key; ")
    out.write(f"your verified contacts will see it as endorsed by you (until {when})\n")


def cmd_persona_new(args: argparse.Namespace, out: TextIO) -> None:
    r = _request(args, calls.PersonaNew(name=args.name))
    out.write(f"persona {inert(r.name)}: key {r.persona.hex()[:16]}...; post with ")
    out.write(f"'steppe bulletin post --as {inert(r.name)} TEXT' (not linkable to your identity)\n")


def cmd_persona_list(args: argparse.Namespace, out: TextIO) -> None:
    rows = _request(args, calls.Personas())
    if not rows:
        out.write("no personas (make one with 'steppe persona new NAME')\n")
    for r in rows:
        out.write(f"{inert(r.name)}  key {r.persona.hex()[:16]}...\n")


def add_bulletin_parsers(sub: Any) -> None:
    bul = sub.add_parser("bulletin", help="signed public posts").add_subparsers(
        dest="sub", required=True
    )
    post = bul.add_parser("post", help="sign a public post with your key and flood it")
    post.add_argument("text", nargs="+")
    post.add_argument("--topic", default="", help="a later post on the same topic replaces it")
    post.add_argument("--hours", type=int, default=72, help="lifetime, 1-168 (default 72)")
    post.add_argument(
        "--as", dest="as_", default="", metavar="PERSONA",
        help="sign with this persona instead of your identity key",
    )  # fmt: skip
    post.set_defaults(func=cmd_bulletin_post)
    blist = bul.add_parser("list", help="posts this node holds, with trust and endorsements")
    blist.add_argument("--limit", type=int, default=50)
    blist.set_defaults(func=cmd_bulletin_list)
    end = bul.add_parser("endorse", help="vouch for a post to your verified contacts")
    end.add_argument("post_id", help="the post's id as 'bulletin list' shows it (8+ digits)")
    end.set_defaults(func=cmd_bulletin_endorse)
    per = sub.add_parser("persona", help="keys for posts not linkable to you").add_subparsers(
        dest="sub", required=True
    )
    new = per.add_parser("new", help="make a persona (kept in the encrypted keystore)")
    new.add_argument("name", help="a name for you to tell them apart (never sent)")
    new.set_defaults(func=cmd_persona_new)
    per.add_parser("list", help="your personas").set_defaults(func=cmd_persona_list)
