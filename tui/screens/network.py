"""The network: links by kind (LAN, Bluetooth, gateway), what this node carries for
others, how full its store is, and the counters of refused and rate-limited input;
``e`` exports a courier bundle to a file and ``i`` imports one. Refreshed every
:data:`REFRESH` seconds."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from mesh.ipc.calls import Export, Import, PeerRow, Peers, Status, StatusInfo
from mesh.ipc.schema import IpcError
from tui import console
from tui.daemon_link import DaemonLink, refusal
from tui.screens.files import PickFile
from tui.text import line

REFRESH = 2.0
START = Path.home()  # where the file picker opens
KINDS = {  # LinkKind, as a person reads it
    "lan": "LAN",
    "ble": "Bluetooth",
    "gateway": "gateway",
    "incoming": "incoming TCP (LAN or gateway)",
}
REFUSALS = ("refused", "rejected", "rate", "dropped", "malformed", "closed_by_node")


def absolute(path: str) -> str:
    """A path the user typed, as the daemon (another process, another directory) needs it."""
    return str(Path(path).expanduser().absolute())


def links_table(peers: list[PeerRow]) -> Table:
    table = Table("link", "kind", "peer", "state", "for", box=None)
    for p in peers:
        state = "open" if p.open else "handshake"
        table.add_row(
            str(p.link), KINDS.get(p.kind, p.kind), line(p.remote), state, f"{p.seconds} s"
        )
    return table


def summary(info: StatusInfo, peers: list[PeerRow]) -> Text:
    kinds = Counter(KINDS.get(p.kind, p.kind) for p in peers if p.open)
    out = Text()
    out.append(f"{info.open_links} open links", "bold")
    out.append(f" of {info.links}: " + (", ".join(f"{n} {k}" for k, n in kinds.items()) or "none"))
    out.append(f"\nCarrying {info.envelopes} envelopes ({info.store_bytes:,} bytes) for the mesh")
    out.append(f"\nMode: {info.mode}; up {info.uptime} s")
    return out


def refusals(info: StatusInfo) -> Table:
    table = Table("refused or rate-limited input", "count", box=None)
    counts = {**info.node_stats, **info.daemon_stats}
    for key in sorted(counts):
        if counts[key] and any(word in key for word in REFUSALS):
            table.add_row(key.replace("_", " "), str(counts[key]))
    return table


class NetworkScreen(Screen[None]):
    BINDINGS = [  # noqa: RUF012
        Binding("escape,f2", "app.pop_screen", "Conversations"),
        Binding("e", "export", "Export bundle"),
        Binding("i", "import_bundle", "Import bundle"),
    ]

    def __init__(self, daemon: DaemonLink) -> None:
        super().__init__()
        self.daemon = daemon
        self.info: StatusInfo | None = None
        self.peers: list[PeerRow] = []

    def compose(self) -> ComposeResult:
        yield console.header(self)
        with VerticalScroll():
            yield Static("", id="summary")
            yield Static("", id="links")
            yield Static("", id="refusals")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.set_interval(REFRESH, self.reload)

    @work(exclusive=True, group="network")
    async def reload(self) -> None:
        try:
            info = await self.daemon.request(Status())
            peers = await self.daemon.request(Peers())
        except IpcError as exc:
            self.query_one("#summary", Static).update(line(str(exc)))
            return
        self.info, self.peers = info, peers
        self.query_one("#summary", Static).update(summary(info, peers))
        self.query_one("#links", Static).update(links_table(peers))
        self.query_one("#refusals", Static).update(refusals(info))

    @work
    async def action_export(self) -> None:
        path = await self.app.push_screen_wait(
            PickFile("Write a courier bundle of what you carry to:", START, "steppe.bundle")
        )
        if path is None:
            return
        done = await self.daemon.attempt(Export(path=absolute(path)), refusal(self, "not exported"))
        if done is not None:
            self.notify(
                f"wrote {done.envelopes} envelopes and {done.receipts} receipts "
                f"({done.bytes:,} bytes)"
            )

    @work
    async def action_import_bundle(self) -> None:
        path = await self.app.push_screen_wait(PickFile("Import the courier bundle:", START))
        if path is None:
            return
        counts = await self.daemon.attempt(
            Import(path=absolute(path)), refusal(self, "not imported")
        )
        if counts is not None:
            said = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in sorted(counts.items()) if v)
            self.notify(f"imported: {said or 'nothing new'}", markup=False)
            self.reload()
