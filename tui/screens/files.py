"""Choosing a file for a courier bundle: a directory tree to walk (a USB stick under
/media, a home folder) and the path, editable, below it. Enter on a file or on the path
gives it back; Escape gives None."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DirectoryTree, Input, Label


class PickFile(ModalScreen[str | None]):
    DEFAULT_CSS = """
    PickFile { align: center middle; }
    PickFile > Vertical { width: 90%; height: 80%; border: thick $primary; padding: 0 1; }
    PickFile DirectoryTree { height: 1fr; }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]  # noqa: RUF012

    def __init__(self, question: str, start: Path, name: str = "") -> None:
        """``name``: a file name to offer in the chosen directory (export)."""
        super().__init__()
        self.question, self.start, self.name_ = question, start, name

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question))
            yield DirectoryTree(self.start, id="tree")
            yield Input(value=str(self.start / self.name_), id="path")

    @on(DirectoryTree.FileSelected)
    def _file(self, event: DirectoryTree.FileSelected) -> None:
        self.query_one("#path", Input).value = str(event.path)
        self.dismiss(str(event.path))

    @on(DirectoryTree.DirectorySelected)
    def _directory(self, event: DirectoryTree.DirectorySelected) -> None:
        path = self.query_one("#path", Input)
        path.value = str(event.path / self.name_) if self.name_ else str(event.path)

    @on(Input.Submitted, "#path")
    def _typed(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
