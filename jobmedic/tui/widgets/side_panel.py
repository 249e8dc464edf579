"""The side panel: the current picture (failures in the last 24 h, top hotspots, trend)."""
from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Sparkline, Static

from jobmedic.tui.picture import Picture


class SidePanel(Vertical):
    """Refreshed by the app on a timer; shows only what the actions computed."""

    def compose(self) -> ComposeResult:
        yield Static("loading…", id="now", markup=False)
        yield Static("", id="trend-label", markup=False)
        yield Sparkline([], id="trend")
        yield Static("", id="hotspots", markup=False)

    def on_mount(self) -> None:
        self.border_title = "Now"

    def show(self, pic: Picture, updated: str) -> None:
        lines = []
        if pic.failures_24h is not None:
            jobs = f" of {pic.jobs_24h:,}" if pic.jobs_24h else ""
            lines.append(f"Failed 24h: {pic.failures_24h:,}{jobs}")
        for ftype, n in pic.top_types[:4]:
            lines.append(f"  {ftype}: {n:,}")
        lines += [f"! {n}" for n in pic.notes]
        self.query_one("#now", Static).update("\n".join(lines) or "no data")
        self.query_one("#trend-label", Static).update(
            "Failures per day (14 d)" if pic.trend else "")
        spark = self.query_one("#trend", Sparkline)
        spark.data = pic.trend or [0]
        spark.display = bool(pic.trend)
        hot = "\n".join(f"• {h}" for h in pic.hotspots[:4])
        self.query_one("#hotspots", Static).update(
            ("Top hotspots (7 d):\n" + hot if hot else "No hotspots flagged (7 d)") +
            f"\n\nupdated {updated}")
