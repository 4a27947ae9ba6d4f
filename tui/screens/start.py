"""Before the daemon runs: unlocking the profile (its passphrase) or creating one (name,
passphrase twice with a strength hint, the key-derivation strength for small devices).
Each screen gives back what was typed; the app starts the daemon with it."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Input, Label, Select, Static

from mesh.passphrase import weakness


class Unlock(Screen[bytes | None]):
    """The passphrase of an existing profile; ``error``: why the last try failed."""

    BINDINGS = [Binding("escape", "cancel", "Quit")]  # noqa: RUF012
    DEFAULT_CSS = """
    Unlock { align: center middle; }
    Unlock > Vertical { width: 70; height: auto; border: thick $primary; padding: 1 2; }
    Unlock #error { color: $error; }
    """

    def __init__(self, error: str = "") -> None:
        super().__init__()
        self.error = error

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("No daemon runs for this profile. Its passphrase starts one:"))
            yield Input(password=True, id="passphrase")
            yield Static(Text(self.error), id="error")
            yield Static(
                Text(
                    "The daemon keeps delivering after you close the UI; "
                    "you can stop it when you quit."
                )
            )

    @on(Input.Submitted)
    def _given(self, event: Input.Submitted) -> None:
        if event.value:
            self.dismiss(event.value.encode())

    def action_cancel(self) -> None:
        self.dismiss(None)


@dataclass
class NewProfile:
    name: str
    passphrase: bytes
    kdf: str


KDFS = (
    ("moderate: 256 MiB, about a second (laptops)", "moderate"),
    ("interactive: 64 MiB (a Raspberry Pi Zero, old phones)", "interactive"),
)


class Create(Screen[NewProfile | None]):
    """A new profile: the name on your card, a passphrase typed twice (a hint says how
    strong it is), and how hard the passphrase is to guess per try."""

    BINDINGS = [Binding("escape", "cancel", "Quit")]  # noqa: RUF012
    DEFAULT_CSS = """
    Create { align: center middle; }
    Create > Vertical { width: 76; height: auto; border: thick $primary; padding: 1 2; }
    Create #hint { color: $warning; }
    """

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text("No profile here yet. Create one: your name, as contacts see it"))
            yield Input(placeholder="name", id="name")
            yield Label(Text("A passphrase (it guards your keys if the laptop is taken)"))
            yield Input(password=True, id="passphrase")
            yield Input(password=True, placeholder="the same again", id="again")
            yield Static("", id="hint")
            yield Select(KDFS, value="moderate", allow_blank=False, id="kdf")
            yield Label(Text("Enter on the last field creates it."))

    @on(Input.Changed, "#passphrase")
    def _strength(self, event: Input.Changed) -> None:
        why = weakness(event.value) if event.value else ""
        hint = f"weak: {why}; whoever takes this device can try guesses offline" if why else ""
        self.query_one("#hint", Static).update(Text(hint))

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        name = self.query_one("#name", Input).value.strip()
        first = self.query_one("#passphrase", Input).value
        again = self.query_one("#again", Input).value
        if event.input.id != "again":
            self.focus_next()
            return
        if not name or not first:
            self.notify("a name and a passphrase are needed", severity="warning")
        elif first != again:
            self.notify("the two passphrases differ", severity="error")
        else:
            kdf = str(self.query_one("#kdf", Select).value)
            self.dismiss(NewProfile(name, first.encode(), kdf))

    def action_cancel(self) -> None:
        self.dismiss(None)
