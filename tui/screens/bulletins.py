"""Bulletins: the public feed, newest first, each with its signer's trust exactly as the
commands say it ("you", "NAME (verified contact)", "NAME (unverified)", "unknown key
..."), never the name a post claims, its trust level and which of our verified contacts
endorsed it; ``p`` posts one (topic, lifetime, persona, text), ``e`` endorses the
highlighted one."""

from __future__ import annotations

from rich.console import Group
from rich.padding import Padding
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Label, OptionList, TextArea
from textual.widgets.option_list import Option

from mesh.ipc.calls import BulletinEndorse, BulletinList, BulletinPost, BulletinRow
from mesh.ipc.schema import IpcError
from mesh.render import LEVEL_WORDS
from tui import console
from tui.daemon_link import DaemonLink, refusal
from tui.screens.dialogs import YesNo
from tui.text import block, claimed_time, line

SHOWN = 200  # bulletins fetched
AS_YOU = "persona (empty: sign with your identity key; see 'steppe persona new')"


def bulletin(b: BulletinRow) -> Group:
    strong = b.level in ("you", "verified", "endorsed")
    head = line(b.signer, "bold" if strong else "")
    head.append("  on ")
    head.append_text(line(b.topic or "-", "italic"))
    head.append(f"  {claimed_time(b.created)}, until {claimed_time(b.expiry)}", "dim")
    trust = Text("trust: ", "dim")
    trust.append(LEVEL_WORDS.get(b.level, b.level), "bold" if b.level == "endorsed" else "")
    if b.endorsed_by:
        trust.append("; endorsed by ")
        for i, name in enumerate(b.endorsed_by):
            trust.append(", " if i else "")
            trust.append_text(line(name))
    trust.append(f"  id {b.post_id[:12]}", "dim")
    return Group(head, Padding(trust, (0, 0, 0, 2)), Padding(block(b.text), (0, 0, 0, 2)))


class Post(ModalScreen[BulletinPost | None]):
    """Topic, lifetime in hours and text; Ctrl+S posts, Escape does not."""

    DEFAULT_CSS = """
    Post { align: center middle; }
    Post > Vertical { width: 76; height: 21; border: thick $primary; padding: 0 1; }
    Post #hours { width: 12; }
    Post TextArea { height: 1fr; }
    """
    BINDINGS = [  # noqa: RUF012
        Binding("ctrl+s", "post", "Post"),  # not priority: see tui.widgets.compose
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("A public bulletin, signed with your key: anyone can read it."))
            with Horizontal(classes="row"):
                yield Input(placeholder="topic (a newer post on it replaces yours)", id="topic")
                yield Input(value="72", placeholder="hours", id="hours", type="integer")
            yield Input(placeholder=AS_YOU, id="persona")
            yield TextArea(id="text")

    def action_post(self) -> None:
        text = self.query_one("#text", TextArea).text.strip()
        hours_text = self.query_one("#hours", Input).value or "72"
        hours = int(hours_text) if hours_text.isdigit() else 0
        if not text:
            self.notify("write something to post", severity="warning")
        elif not 1 <= hours <= 7 * 24:
            self.notify("a bulletin lives between 1 hour and 7 days (168)", severity="warning")
        else:
            topic = self.query_one("#topic", Input).value.strip()
            persona = self.query_one("#persona", Input).value.strip()
            self.dismiss(BulletinPost(text=text, topic=topic, hours=hours, persona=persona))

    def action_cancel(self) -> None:
        self.dismiss(None)


class BulletinsScreen(Screen[None]):
    BINDINGS = [  # noqa: RUF012
        Binding("escape,f2", "app.pop_screen", "Conversations"),
        Binding("p", "post", "Post"),
        Binding("e", "endorse", "Endorse"),
    ]

    def __init__(self, daemon: DaemonLink) -> None:
        super().__init__()
        self.daemon = daemon
        self.rows: list[BulletinRow] = []

    def compose(self) -> ComposeResult:
        yield console.header(self)
        yield OptionList(id="feed")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#feed").focus()
        self.reload()

    @work(exclusive=True, group="bulletins")
    async def reload(self) -> None:
        try:
            self.rows = await self.daemon.request(BulletinList(limit=SHOWN))
        except IpcError as exc:
            self.notify(str(exc), severity="warning", markup=False)
            return
        feed = self.query_one("#feed", OptionList)
        feed.clear_options()
        feed.add_options([Option(bulletin(b)) for b in self.rows])

    @work
    async def action_post(self) -> None:
        post = await self.app.push_screen_wait(Post())
        if post is None:
            return

        if await self.daemon.attempt(post, refusal(self, "not posted")) is not None:
            self.reload()

    @work
    async def action_endorse(self) -> None:
        """Endorse the highlighted post to our verified contacts (signed with the identity
        key), after a confirmation that says so."""
        feed = self.query_one("#feed", OptionList)
        index = feed.highlighted
        if index is None or index >= len(self.rows):
            self.notify("highlight a post to endorse", severity="warning")
            return
        post = self.rows[index]
        if post.level == "you":
            self.notify("that is your own post: endorse others' posts", severity="warning")
            return
        question = Group(
            Text(
                "Endorse this post? Your verified contacts will see that you vouch for it,"
                " signed with your identity key:\n"
            ),
            bulletin(post),
        )
        if not await self.app.push_screen_wait(YesNo(question)):
            return
        done = await self.daemon.attempt(
            BulletinEndorse(post_id=post.post_id), refusal(self, "not endorsed")
        )
        if done is not None:
            self.notify("endorsed: your verified contacts will see it", markup=False)
            self.reload()

    @on(OptionList.OptionHighlighted)
    def _nothing(self) -> None:
        """Reading only: a bulletin has nothing to open."""
