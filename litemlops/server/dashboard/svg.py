"""Charts as SVG text drawn on the server: no script, no network, the same picture in the
page and in a saved HTML file. Every text that comes from data is escaped."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from typing import Any

from markupsafe import Markup

#: Fill colours for versions, taken in turn by version number.
PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1")
ROW = 26  # px per alias row
LABEL = 110  # px of alias names at the left


def alias_timeline(moves: Sequence[dict[str, Any]], now: datetime, width: int = 760) -> Markup:
    """One row per alias, a bar per stretch of time it named a version (labelled vN,
    with the move's reason as its tooltip), from the first move to `now`. `moves` are
    `AliasChange` dicts, oldest first."""
    if not moves:
        return Markup("")
    start = moves[0]["at"]
    span = max((now - start).total_seconds(), 1e-9)
    plot = width - LABEL - 8

    def x(at: datetime) -> float:
        return LABEL + plot * min(max((at - start).total_seconds() / span, 0.0), 1.0)

    aliases = sorted({m["alias"] for m in moves})
    height = ROW * len(aliases) + 22
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="alias history">'
    ]
    for row, alias in enumerate(aliases):
        y = row * ROW
        parts.append(f'<text x="4" y="{y + 17}" class="alias">{escape(alias)}</text>')
        own = [m for m in moves if m["alias"] == alias]
        for move, after in zip(own, [*own[1:], None], strict=True):
            version = move["to_version"]
            if version is None:
                continue  # deleted until its next move: no bar
            left, right = x(move["at"]), x(after["at"] if after else now)
            tip = f"{alias} -> v{version} at {move['at']:%Y-%m-%d %H:%M:%S}"
            if move.get("reason"):
                tip += f": {move['reason']}"
            parts.append(
                f'<g class="stretch" data-version="{version}"><title>{escape(tip)}</title>'
                f'<rect x="{left:.1f}" y="{y + 3}" width="{max(right - left, 2):.1f}" '
                f'height="{ROW - 6}" rx="3" fill="{PALETTE[(version - 1) % len(PALETTE)]}"/>'
                f'<text x="{left + 4:.1f}" y="{y + 17}" class="version">v{version}</text></g>'
            )
    bottom = ROW * len(aliases) + 16
    parts.append(
        f'<text x="{LABEL}" y="{bottom}" class="axis">{start:%Y-%m-%d %H:%M}</text>'
        f'<text x="{width - 8}" y="{bottom}" class="axis" text-anchor="end">'
        f"{now:%Y-%m-%d %H:%M} (now)</text></svg>"
    )
    return Markup("".join(parts))
