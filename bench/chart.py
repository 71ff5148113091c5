"""The benchmark's chart: time per stage per scale, next to the floor and pandas, drawn with matplotlib.

`bench.report.write` saves it as `<date>.svg` and `<date>.png` beside the tables. One panel per
scale; in each, one stacked bar per pipeline run (the full history, +1 day, and where asked the
second year and +1 day after two years), then the DuckDB floor and pandas. A failed or skipped run
keeps its bar's row with the reason written after it, so a gap never reads as "fast".
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# The object-oriented API, not pyplot: no global figure state and no display backend to pick, so
# it draws the same on a server, in CI and in a worker process.
import matplotlib
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

STAGES = ("extract+land", "gate 1", "load", "dbt build", "gate 2", "publish")
COLOURS = {
    "extract+land": "#4e79a7",
    "gate 1": "#f28e2b",
    "load": "#76b7b2",
    "dbt build": "#e15759",
    "gate 2": "#edc948",
    "publish": "#b07aa1",
    "floor": "#59a14f",
    "pandas": "#9c755f",
}


@dataclass(frozen=True)
class Bar:
    """One row of a panel: its label, its (stage, seconds) segments, and what follows the bar."""

    label: str
    segments: tuple[tuple[str, float], ...]
    note: str = ""

    @property
    def seconds(self) -> float:
        return sum(seconds for _, seconds in self.segments)


@dataclass(frozen=True)
class Panel:
    """One scale: its title and its bars, top to bottom."""

    title: str
    bars: tuple[Bar, ...]


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 600 else f"{value / 60:.1f} min"


def figure(date: str, panels: list[Panel]) -> Figure:
    """The chart as a matplotlib figure."""
    rows = sum(len(panel.bars) for panel in panels)
    fig = Figure(figsize=(11, 1.2 + 0.42 * rows + 0.5 * len(panels)))
    axes = fig.subplots(
        len(panels),
        1,
        gridspec_kw={"height_ratios": [len(panel.bars) for panel in panels]},
        squeeze=False,
    )
    fig.suptitle(f"Time per stage per scale, next to the floor ({date})", x=0.01, ha="left", fontweight="bold")
    for ax, panel in zip(axes[:, 0], panels, strict=True):
        longest = max((bar.seconds for bar in panel.bars), default=0.0) or 1.0
        for y, bar in enumerate(panel.bars):
            left = 0.0
            for stage, seconds in bar.segments:
                ax.barh(y, seconds, left=left, color=COLOURS[stage], height=0.7)
                left += seconds
            text = _seconds(bar.seconds) if bar.segments else ("" if bar.note else "not run")
            ax.text(left + longest * 0.01, y, (text + bar.note).strip(), va="center", fontsize=9)
        ax.set_yticks(range(len(panel.bars)), [bar.label for bar in panel.bars], fontsize=9)
        ax.invert_yaxis()
        # room on the right for the longest bar's note
        ax.set_xlim(0, longest * 1.6)
        ax.set_xlabel("seconds", fontsize=9)
        ax.set_title(panel.title, loc="left", fontsize=10, fontweight="bold")
        ax.spines[["top", "right"]].set_visible(False)
    handles = [Rectangle((0, 0), 1, 1, color=COLOURS[name]) for name in (*STAGES, "floor", "pandas")]
    fig.legend(
        handles,
        [*STAGES, "floor", "pandas"],
        loc="upper left",
        ncol=8,
        fontsize=8,
        frameon=False,
        bbox_to_anchor=(0.01, 0.97),
    )
    fig.tight_layout(rect=(0, 0, 1, 0.93))
    return fig


def save(date: str, panels: list[Panel], stem: Path) -> list[Path]:
    """Write `<stem>.svg` and `<stem>.png`; nothing (an empty list) without a panel."""
    if not panels:
        return []
    fig = figure(date, panels)
    paths = [stem.with_suffix(".svg"), stem.with_suffix(".png")]
    # text stays text in the SVG (searchable, selectable) instead of being drawn as outlines
    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig.savefig(paths[0])
    fig.savefig(paths[1], dpi=100)
    return paths
