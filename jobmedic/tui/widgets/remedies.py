"""Remediation suggestions of the last answer, to mark as "this fixed it" / "did not help"."""
from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from jobmedic.tui.picture import Remedy


class RemedyList(OptionList):
    """The fixes suggested for the last failure discussed; y / n record the outcome."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "mark(True)", "Fixed it"),
        Binding("n", "mark(False)", "Did not help"),
    ]

    class Marked(Message):
        def __init__(self, subject: dict[str, Any], remedy: Remedy, success: bool) -> None:
            super().__init__()
            self.subject, self.remedy, self.success = subject, remedy, success

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.remedies: list[Remedy] = []
        self.subject: dict[str, Any] = {}
        self.border_title = "Fixes"

    def show(self, subject: dict[str, Any], remedies: list[Remedy]) -> None:
        self.subject, self.remedies = subject, remedies
        self.clear_options()
        what = subject.get("job_id") or subject.get("failure_type") or ""
        self.border_title = f"Fixes for {what} (y/n)" if what else "Fixes"
        for r in remedies:
            label = Text(r.title)
            if r.detail:
                label.append(f"  {r.detail}", style="dim")
            self.add_option(Option(label))
        if remedies:
            self.highlighted = 0

    def action_mark(self, success: bool) -> None:
        idx = self.highlighted
        if idx is None or not (0 <= idx < len(self.remedies)):
            self.app.notify("Select a fix first (up/down), then y or n.", severity="warning")
            return
        self.post_message(self.Marked(self.subject, self.remedies[idx], success))
