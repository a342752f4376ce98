"""The monitoring check as pictures, for the monitoring page and for a self-contained HTML
report (`litemlops monitor report --html FILE`, or the page's download link): styles
inline, charts as inline SVG, no script, so the file opens offline anywhere."""

from __future__ import annotations

import itertools
from datetime import datetime
from importlib.resources import files
from typing import Any

from markupsafe import Markup

from litemlops.monitoring.drift import deciding_statistic
from litemlops.server.dashboard.svg import distribution_bars, line_chart


def pictures(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per feature of the latest check: its deciding statistic and threshold, the
    reference's and the window's shares per bin, and the statistic over the checks."""
    drift = data.get("drift") or {}
    thresholds = drift.get("thresholds") or {}
    found: dict[str, dict[str, Any]] = {}
    for name, feature in (drift.get("features") or {}).items():
        shown = feature.get("distribution") or {}
        labels = shown.get("categories") or bin_labels(shown.get("edges") or [])
        trend = data["trend"].get(name, [])
        last = trend[-1][0] if trend else None
        points = [((at - last).total_seconds() / 60, v) for at, v in trend] if last else []
        statistic = deciding_statistic(feature["method"])
        limit = thresholds.get(statistic)
        series = {statistic: points}
        if limit is not None and points:
            series["threshold"] = [(points[0][0], limit), (points[-1][0], limit)]
        found[name] = {
            "statistic": statistic,
            "value": (feature.get("stats") or {}).get(statistic),
            "threshold": limit,
            "bars": distribution_bars(
                labels, shown.get("reference") or [], shown.get("current") or []
            ),
            "trend": line_chart(series, "minutes before the latest check", statistic,
                                height=200),
        }
    return found


def bin_labels(edges: list[float]) -> list[str]:
    """"< a", "a-b", ..., ">= z" for the interior cut points of numeric bins."""
    if not edges:
        return []
    inner = [f"{a:.3g}-{b:.3g}" for a, b in itertools.pairwise(edges)]
    return [f"< {edges[0]:.3g}", *inner, f">= {edges[-1]:.3g}"]


def html_report(data: dict[str, Any], generated: datetime) -> str:
    """The whole monitoring page of `data` (`pages.monitoring`) as one HTML file."""
    from litemlops.server.dashboard.routes import environment

    css = files("litemlops.server.dashboard").joinpath("static", "dashboard.css").read_text()
    return environment().get_template("report.html").render(
        root="", css=Markup(css), generated=generated, pictures=pictures(data), **data
    )
