"""Charts as SVG text drawn on the server: no script, no network, the same picture in the
page and in a saved HTML file. Every text that comes from data is escaped."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

#: Fill colours for versions, taken in turn by version number.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
#: Bar colours of task attempts by state (any other state: grey).
STATES = {"success": "#59a14f", "failed": "#e15759", "running": "#edc948"}
ROW = 26  # px per row
LABEL = 110  # px of row names at the left


@dataclass(frozen=True)
class Lanes:
    """A chart of named rows over a stretch of time, `start` to `end`, `width` px wide."""

    rows: list[str]
    start: datetime
    end: datetime
    width: int
    label: str  # for screen readers

    def x(self, at: datetime) -> float:
        span = max((self.end - self.start).total_seconds(), 1e-9)
        share = min(max((at - self.start).total_seconds() / span, 0.0), 1.0)
        return LABEL + (self.width - LABEL - 8) * share

    def bar(self, row: str, start: datetime, end: datetime, fill: str, tip: str,
            text: str = "", data: str = "") -> str:
        """A bar in `row` from `start` to `end`, with a tooltip and an optional label."""
        y = self.rows.index(row) * ROW
        left, right = self.x(start), self.x(end)
        label = (f'<text x="{left + 4:.1f}" y="{y + 17}" class="version">{escape(text)}</text>'
                 if text else "")
        return (
            f'<g class="bar" {data}><title>{escape(tip)}</title><rect x="{left:.1f}" '
            f'y="{y + 3}" width="{max(right - left, 2):.1f}" height="{ROW - 6}" rx="3" '
            f'fill="{fill}"/>{label}</g>'
        )  # fmt: skip

    def draw(self, bars: list[str], first: str, last: str) -> Markup:
        """The whole chart: row names, `bars`, and the time axis' two ends."""
        height = ROW * len(self.rows) + 22
        names = "".join(
            f'<text x="4" y="{i * ROW + 17}" class="row">{escape(r)}</text>'
            for i, r in enumerate(self.rows)
        )
        bottom = height - 6
        return Markup(
            f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{self.width}" '
            f'height="{height}" viewBox="0 0 {self.width} {height}" role="img" '
            f'aria-label="{escape(self.label)}">{names}{"".join(bars)}'
            f'<text x="{LABEL}" y="{bottom}" class="axis">{escape(first)}</text>'
            f'<text x="{self.width - 8}" y="{bottom}" class="axis" text-anchor="end">'
            f"{escape(last)}</text></svg>"
        )


def alias_timeline(moves: Sequence[dict[str, Any]], now: datetime, width: int = 760) -> Markup:
    """One row per alias, a bar per stretch of time it named a version (labelled vN,
    with the move's reason as its tooltip), from the first move to `now`. `moves` are
    `AliasChange` dicts, oldest first."""
    if not moves:
        return Markup("")
    lanes = Lanes(sorted({m["alias"] for m in moves}), moves[0]["at"], now, width,
                  "alias history")  # fmt: skip
    bars = []
    for alias in lanes.rows:
        own = [m for m in moves if m["alias"] == alias]
        for move, after in zip(own, [*own[1:], None], strict=True):
            version = move["to_version"]
            if version is None:
                continue  # deleted until its next move: no bar
            tip = f"{alias} -> v{version} at {move['at']:%Y-%m-%d %H:%M:%S}"
            if move.get("reason"):
                tip += f": {move['reason']}"
            bars.append(lanes.bar(
                alias, move["at"], after["at"] if after else now,
                PALETTE[(version - 1) % len(PALETTE)], tip, f"v{version}",
                f'data-version="{version}"',
            ))  # fmt: skip
    return lanes.draw(bars, f"{lanes.start:%Y-%m-%d %H:%M}", f"{now:%Y-%m-%d %H:%M} (now)")


def task_strip(attempts: Sequence[dict[str, Any]], now: datetime, width: int = 760) -> Markup:
    """One row per task, a bar per attempt from its start to its end (`now` while it
    runs), coloured by state, with the attempt, state, duration and error as tooltip.
    `attempts` are `TaskRun` dicts in the run's order."""
    started = [a for a in attempts if a["started_at"] is not None]
    if not started:
        return Markup("")
    start = min(a["started_at"] for a in started)
    end = max(a["ended_at"] or now for a in started)
    lanes = Lanes(list(dict.fromkeys(a["task"] for a in attempts)), start, end, width,
                  "task attempts")  # fmt: skip
    bars = []
    for a in started:
        stop = a["ended_at"] or now
        tip = (f"{a['task']} attempt {a['attempt']}: {a['state']}, "
               f"{(stop - a['started_at']).total_seconds():.3g} s")  # fmt: skip
        if a.get("error"):
            tip += f": {a['error']}"
        bars.append(lanes.bar(
            a["task"], a["started_at"], stop, STATES.get(a["state"], "#bab0ac"), tip,
            data=f'data-state="{escape(a["state"])}"',
        ))  # fmt: skip
    return lanes.draw(bars, "0 s", f"{(end - start).total_seconds():.3g} s")


def line_chart(
    series: dict[str, list[tuple[float, float]]],
    x_label: str,
    y_label: str,
    width: int = 760,
    height: int = 260,
) -> Markup:
    """Lines of (x, y) points, one per named series in the palette's colours, on axes
    from the data's least to greatest x and y, with a legend. Points where y is not a
    finite number are left out."""
    clean = {
        name: [(x, y) for x, y in points if math.isfinite(y)] for name, points in series.items()
    }
    points = [p for ps in clean.values() for p in ps]
    if not points:
        return Markup("")
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
    if y0 == y1:
        y0, y1 = y0 - 0.5, y1 + 0.5
    left, right, top, bottom = 64, width - 12, 12, height - 40

    def at(x: float, y: float) -> str:
        px = left + (right - left) * ((x - x0) / (x1 - x0) if x1 > x0 else 0.5)
        py = bottom - (bottom - top) * (y - y0) / (y1 - y0)
        return f"{px:.1f},{py:.1f}"

    total = height + 14 * (len(clean) - 1)  # a legend line per series
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{total}" viewBox="0 0 {width} {total}" role="img" '
        f'aria-label="{escape(y_label)} by {escape(x_label)}">',
        f'<path class="axes" d="M{left},{top} V{bottom} H{right}" fill="none" stroke="#99a"/>',
        f'<text x="{left - 6}" y="{top + 10}" class="axis" text-anchor="end">{y1:.3g}</text>',
        f'<text x="{left - 6}" y="{bottom}" class="axis" text-anchor="end">{y0:.3g}</text>',
        f'<text x="{left}" y="{bottom + 16}" class="axis">{x0:.4g}</text>',
        f'<text x="{right}" y="{bottom + 16}" class="axis" text-anchor="end">{x1:.4g}</text>',
        f'<text x="{(left + right) / 2:.0f}" y="{bottom + 16}" class="axis" '
        f'text-anchor="middle">{escape(x_label)}</text>',
    ]
    for i, (name, ps) in enumerate(clean.items()):
        colour = PALETTE[i % len(PALETTE)]
        if ps:
            path = " ".join(at(x, y) for x, y in sorted(ps))
            parts.append(
                f'<g class="series" data-name="{escape(name)}"><title>{escape(name)}</title>'
                f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>'
                + "".join(
                    f'<circle cx="{at(x, y).split(",")[0]}" cy="{at(x, y).split(",")[1]}" '
                    f'r="2.5" fill="{colour}"><title>{escape(name)}: {y:.6g} at {x:.6g}'
                    "</title></circle>"
                    for x, y in sorted(ps)
                )
                + "</g>"
            )
        parts.append(
            f'<text x="{left + 8}" y="{height - 6 + 14 * i}" '
            f'class="legend" fill="{colour}">■ {escape(name)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def distribution_bars(
    labels: Sequence[str], reference: Sequence[float], current: Sequence[float],
    width: int = 560, height: int = 210,
) -> Markup:
    """The reference's and the window's share of values in each bin, side by side (grey
    and blue bars), with each bin's label and shares as tooltips."""
    totals = (sum(reference), sum(current))
    if not labels or not all(totals):
        return Markup("")
    shares = [[v / t for v in side] for side, t in zip((reference, current), totals, strict=True)]
    top = max(max(s) for s in shares) or 1.0
    left, bottom, plot = 40, height - 64, height - 78  # below: the labels, slanted
    step = (width - left - 8) / len(labels)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="reference and current shares by bin">'
    ]
    for i, label in enumerate(labels):
        x = left + i * step
        tip = f"{label}: reference {shares[0][i]:.1%}, current {shares[1][i]:.1%}"
        parts.append(f'<g class="bin"><title>{escape(tip)}</title>')
        for side, (colour, offset) in enumerate((("#bab0ac", 0.1), ("#4e79a7", 0.5))):
            h = plot * shares[side][i] / top
            parts.append(
                f'<rect x="{x + step * offset:.1f}" y="{bottom - h:.1f}" '
                f'width="{step * 0.4:.1f}" height="{h:.1f}" fill="{colour}"/>'
            )
        parts.append(
            f'<text x="{x + step / 2:.1f}" y="{bottom + 12}" class="axis" text-anchor="end" '
            f'transform="rotate(-35 {x + step / 2:.1f} {bottom + 12})">{escape(label)}</text></g>'
        )
    parts.append(
        f'<text x="{width - 170}" y="12" class="legend" fill="#6b7480">■ reference</text>'
        f'<text x="{width - 80}" y="12" class="legend" fill="#4e79a7">■ current</text>'
        "</svg>"
    )
    return Markup("".join(parts))
