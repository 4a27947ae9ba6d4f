"""The daemon's bulletin operations, and the trust a reader gives a post.

Theory of operation
-------------------
A post is shown with exactly one trust *level*, decided by who holds the signing key and
who endorsed it, never by a name in the post (:data:`LEVELS`):

- ``you``: signed with this profile's identity key or one of its personas;
- ``verified``: by a contact this profile verified in person (safety number or QR);
- ``endorsed``: by anyone else, but endorsed by at least ``bulletins_endorsements``
  (daemon config, default 1) of this profile's verified contacts;
- ``unverified``: by a contact not (or no longer) verified, and not endorsed enough;
- ``unknown``: by a key this profile does not know, and not endorsed enough.

An endorsement (:func:`crypto.bulletin.endorsement`) is a small bulletin of its own,
signed by the endorser's identity key over the post's id; the id covers every field the
post's signature covers, so an endorsement counts only for that exact post. What counts
is decided here, by the reader: an endorsement by a key that is not one of the reader's
verified contacts (a stranger, an unverified contact, a contact whose key changed) is
ignored, however many there are, so a flood of endorsements from throwaway keys moves
nothing. Relays store and pass endorsements as any bulletin (they verify the signature
and cannot forge one); an endorser's contacts learn that the endorser vouched for the
post, which is the point, and everyone who sees the endorsement learns that the
endorser's key did (endorsements are signed with the identity key: a persona's
endorsement would be worth nothing to the readers who know the person).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from crypto.bulletin import POST, Bulletin, endorsed_id, endorsement, post_id
from crypto.errors import CryptoError
from mesh.core.events import SendFailed
from mesh.ipc import IpcError
from mesh.ipc import calls as c
from mesh.ipc.events import BulletinEndorsed, BulletinStored, Event
from mesh.personas import PersonaError, new_persona, persona_named
from mesh.profile import ProfileError

if TYPE_CHECKING:
    from mesh.daemon.daemon import Daemon

LEVELS = ("you", "verified", "endorsed", "unverified", "unknown")
YOU = "you"


def _level_of_key(d: Daemon, key: bytes) -> str:
    if key == d.profile.identity.sign_public or any(x.public == key for x in d.profile.personas):
        return "you"
    contact = d.live.contact_for(key)
    if contact is None:
        return "unknown"
    return "verified" if contact.verified and not contact.key_changed else "unverified"


def _signer(d: Daemon, key: bytes) -> str:
    """The signer's label: as the CLI always said, and "you (persona NAME)"."""
    for x in d.profile.personas:
        if x.public == key:
            return f"you (persona {x.name})"
    return d.live.trust(key)


def _endorsers(d: Daemon, endorsements: dict[bytes, set[bytes]], post: Bulletin) -> list[str]:
    """Who among the reader's verified contacts (and the reader) endorsed ``post``."""
    names = []
    for key in sorted(endorsements.get(post_id(post), ())):
        if key == d.profile.identity.sign_public:
            names.append(YOU)
        elif _level_of_key(d, key) == "verified":
            names.append(d.live.name_of(key))
    return sorted(names, key=lambda n: (n != YOU, n.casefold()))


def feed(d: Daemon, limit: int = 50) -> list[c.BulletinRow]:
    """The posts this node holds, newest first, each with its trust level and endorsers."""
    held = d.node.bulletins(d.now())
    endorsements: dict[bytes, set[bytes]] = {}
    for b in held:
        target = endorsed_id(b)
        if target is not None:
            endorsements.setdefault(target, set()).add(b.persona)
    posts = [b for b in held if b.type == POST]
    return [row(d, b, _endorsers(d, endorsements, b)) for b in posts[:limit]]


def row(d: Daemon, b: Bulletin, endorsed_by: list[str]) -> c.BulletinRow:
    level = _level_of_key(d, b.persona)
    verified_endorsers = len([n for n in endorsed_by if n != YOU])
    if level in ("unverified", "unknown") and verified_endorsers >= d.config.bulletins_endorsements:
        level = "endorsed"
    text = b.body.decode("utf-8", errors="replace")
    return c.BulletinRow(
        _signer(d, b.persona),
        b.key,
        b.created,
        b.expiry,
        text,
        b.persona,
        post_id(b).hex(),
        level,
        tuple(endorsed_by),
    )


def event(d: Daemon, b: Bulletin) -> Event | None:
    """What the local API's subscribers hear of a bulletin the node stored: a post (new,
    a newer post on a topic, ours) with its signer's trust as ``steppe bulletin list``
    shows it; an endorsement only if one of our verified contacts (or we) signed it, as
    the post whose endorsers changed (others' move no post's level). Constant work per
    bulletin: a flood of them costs no scan of the feed each."""
    if b.type == POST:
        signer = _signer(d, b.persona)
        text = b.body.decode("utf-8", errors="replace")
        pid = post_id(b).hex()
        return BulletinStored(b.persona, signer, b.key, b.created, b.expiry, text, pid)
    target = endorsed_id(b)
    if target is None:
        return None
    level = _level_of_key(d, b.persona)
    if level == "you" and b.persona == d.profile.identity.sign_public:
        return BulletinEndorsed(target.hex(), YOU)
    if level == "verified":
        return BulletinEndorsed(target.hex(), d.live.name_of(b.persona))
    return None


def post(d: Daemon, text: str, topic: str, hours: int, persona: str) -> c.Posted:
    """Sign a public bulletin with this profile's identity key (or one of its personas)
    and flood it. A post on an existing topic of the same key supersedes the earlier one."""
    now = d.now()
    if not 1 <= hours <= 7 * 24:
        raise IpcError("a bulletin lives between 1 hour and 7 days")
    try:
        seed = persona_named(d.profile.personas, persona).seed if persona else None
    except PersonaError as exc:
        raise IpcError(str(exc)) from None
    try:
        b = Bulletin.create(
            seed or d.profile.identity.sign_seed,
            type=POST,
            key=topic or d.rng(4).hex(),
            sequence=now,
            created=now,
            expiry=now + 3600 * hours,
            body=text.encode(),
        )
    except ValueError as exc:
        raise IpcError(str(exc)) from None
    _publish(d, b, "cannot post")
    return c.Posted(b.key, b.expiry)


def endorse(d: Daemon, prefix: str) -> c.Endorsed:
    """Endorse the one post whose id starts with ``prefix`` (hex), signed with the
    identity key; endorsing a post again renews nothing and is refused."""
    prefix = prefix.strip().lower()
    held = d.node.bulletins(d.now())  # each call verifies every stored bulletin: once
    posts = [b for b in held if b.type == POST]
    found = [b for b in posts if post_id(b).hex().startswith(prefix)]
    if len(found) != 1:
        why = "no post" if not found else f"{len(found)} posts"
        raise IpcError(f"{why} with an id starting {prefix!r} (see 'steppe bulletin list')")
    target = found[0]
    if target.persona == d.profile.identity.sign_public:
        raise IpcError("that is your own post: endorse others' posts")
    mine = d.profile.identity.sign_public
    if any(endorsed_id(b) == post_id(target) and b.persona == mine for b in held):
        raise IpcError("you have endorsed that post already")
    try:
        b = endorsement(d.profile.identity.sign_seed, target, d.now())
    except ValueError as exc:
        raise IpcError(str(exc)) from None
    _publish(d, b, "cannot endorse")
    return c.Endorsed(post_id(target).hex(), b.expiry)


def _publish(d: Daemon, b: Bulletin, what: str) -> None:
    actions = d.call_node(lambda now: d.node.publish_bulletin(b, now))
    refused = next((a for a in actions if isinstance(a, SendFailed)), None)
    if refused is not None:
        raise IpcError(f"{what}: {refused.reason}")


def personas(d: Daemon) -> list[c.PersonaRow]:
    return [c.PersonaRow(x.name, x.public) for x in d.profile.personas]


def persona_new(d: Daemon, name: str) -> c.PersonaRow:
    """A new persona, saved in the keystore before it is reported."""
    try:
        x = new_persona(d.profile.personas, name, d.rng)
    except PersonaError as exc:
        raise IpcError(str(exc)) from None
    d.profile.personas.append(x)
    try:
        d.live.save()
    except (OSError, ProfileError, CryptoError) as exc:
        d.profile.personas.remove(x)
        raise IpcError(f"cannot save the new persona: {exc}") from None
    return c.PersonaRow(x.name, x.public)
