"""Traffic for the demo, replacing the course's mock_request.py: fresh driver statistics
pushed like a stream, booking requests to /inference, and the trips' outcomes posted
later to /feedback, so a user can watch monitoring see normal traffic, then drift.

Normal traffic draws features the way the demo generator does. Drifted traffic
moves them (conversion up, acceptance down, three times the trips) and also
changes how outcomes depend on them (concept drift), so both the feature drift
checks and the accuracy of the delayed labels have something to show.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import numpy as np

from litemlops.clock import utc_now
from litemlops.errors import LitemlopsError, ValidationError

if TYPE_CHECKING:
    import pandas as pd


class SimulationError(LitemlopsError, RuntimeError):
    """The server refused or failed a simulated request."""


@dataclass
class SimulationSummary:
    requests: int = 0
    pushed_rows: int = 0
    labels: int = 0
    versions: dict[int, int] = field(default_factory=dict)  # version -> answers

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "pushed_rows": self.pushed_rows,
            "labels": self.labels,
            "versions": {str(k): v for k, v in sorted(self.versions.items())},
        }


STAT_COLUMNS = ("conv_rate", "acc_rate", "avg_daily_trips")


@dataclass(frozen=True)
class DriverHistory:
    """A pool of driver statistics held as arrays, with each driver's row positions in
    the pool's order: a draw is an index into them, not a filter over the frame."""

    columns: dict[str, np.ndarray]
    rows: dict[int, np.ndarray]

    @classmethod
    def of(cls, pool: pd.DataFrame) -> DriverHistory:
        columns = {c: pool[c].to_numpy(dtype=np.float64) for c in STAT_COLUMNS}
        drivers = pool["driver_id"].to_numpy()
        order = np.argsort(drivers, kind="stable")  # each driver's rows keep their order
        ids, starts = np.unique(drivers[order], return_index=True)
        groups = np.split(order, starts[1:])
        return cls(columns, {int(d): rows for d, rows in zip(ids, groups, strict=True)})

    def __len__(self) -> int:
        return len(self.columns["conv_rate"])


def draw_features(
    rng: np.random.Generator,
    drivers: Sequence[int],
    *,
    drift: bool,
    pool: DriverHistory | None = None,
) -> dict[str, np.ndarray]:
    """Statistics for `drivers`: rows of their own history (`pool`, made once from the
    demo generator's output for the same seed, so normal traffic looks like what the model
    was trained on), or population draws without one; then shifted when drifting."""
    n = len(drivers)
    if pool is not None and len(pool):  # an empty history has nothing to draw from
        everyone = np.arange(len(pool))
        picked = []
        for driver in drivers:
            own = pool.rows.get(int(driver))
            source = own if own is not None else everyone
            picked.append(source[int(rng.integers(len(source)))])
        conv, acc, trips = (pool.columns[c][picked] for c in STAT_COLUMNS)
    else:
        conv = rng.beta(4.0, 4.0, n)
        acc = rng.beta(6.0, 3.0, n)
        trips = rng.gamma(4.0, 100.0, n)
    if drift:
        conv = conv + 0.35
        acc = acc - 0.35
        trips = trips * 3
    return {
        "conv_rate": np.clip(conv, 0.0, 1.0),
        "acc_rate": np.clip(acc, 0.0, 1.0),
        "avg_daily_trips": np.rint(np.maximum(trips, 0)).astype(np.int64),
    }


def simulate(
    client: Any,
    token: str,
    drivers: Sequence[int],
    *,
    n: int,
    drift: bool = False,
    labels: bool = False,
    per_request: int = 5,
    seed: int | None = None,
    clock: Callable[[], datetime] = utc_now,
    progress: Callable[[int], None] | None = None,
    pool: pd.DataFrame | None = None,
    success_rates: dict[int, float] | None = None,
    label_lag: int | None = None,
) -> SimulationSummary:
    """Send `n` booking requests through `client` (an httpx.Client on the server).

    Each request pushes fresh statistics for `per_request` random drivers (online and
    offline), asks /inference for the best of them, and, with `labels`, the trip's
    outcome is posted to /feedback after all requests (labels arrive later).
    pool: the drivers' history to draw normal statistics from (see `draw_features`).
    success_rates: version -> the chance a trip it chose completes, overriding the
    generator's for those versions (arms of different true success rates, to watch a
    bandit converge or a worse canary roll back). label_lag: post each label after
    this many more requests (rewards arriving while traffic flows), instead of after
    all of them.
    """
    from litemlops.demo.generator import completion_probability

    if n < 1 or per_request < 1:
        raise ValidationError("n and per_request must be at least 1")
    rates = dict(success_rates or {})
    bad = {v: r for v, r in rates.items() if not 0.0 <= r <= 1.0}
    if bad:
        raise ValidationError(f"success rates must be within 0 and 1, got {bad}")
    if label_lag is not None and label_lag < 0:
        raise ValidationError(f"label_lag must not be negative, got {label_lag}")
    if len(drivers) < per_request:
        raise ValidationError(f"need at least {per_request} drivers, got {len(drivers)}")
    rng = np.random.default_rng(seed)
    history = DriverHistory.of(pool) if pool is not None and len(pool) else None
    auth = {"Authorization": f"Bearer {token}"}
    summary = SimulationSummary()
    outcomes: list[tuple[str, int]] = []
    for i in range(n):
        chosen = [int(d) for d in rng.choice(np.asarray(drivers), per_request, replace=False)]
        values = draw_features(rng, chosen, drift=drift, pool=history)
        now = clock().isoformat()
        rows = [
            {
                "driver_id": driver,
                "datetime": now,
                "created": now,
                **{name: column[j].item() for name, column in values.items()},
            }
            for j, driver in enumerate(chosen)
        ]
        _call(client.post("/push/driver_stats", json={"rows": rows, "to": "both"}, headers=auth))
        summary.pushed_rows += len(rows)
        request_id = f"sim-{uuid.uuid4().hex[:12]}"
        answer = _call(
            client.post("/inference", json={"request_id": request_id, "driver_ids": chosen})
        )
        summary.requests += 1
        version = int(answer.get("version") or 0)
        summary.versions[version] = summary.versions.get(version, 0) + 1
        if labels:
            if version in rates:
                p = rates[version]
            else:
                j = chosen.index(answer["prediction"])
                import pandas

                row = pandas.DataFrame({name: [column[j]] for name, column in values.items()})
                p = float(completion_probability(row)[0])
                if drift:
                    p = 1.0 - p  # the relation itself changed: what completed no longer does
            outcomes.append((request_id, int(rng.random() < p)))
            if label_lag is not None and len(outcomes) > label_lag:
                _label(client, auth, outcomes.pop(0), summary)
        if progress is not None:
            progress(i + 1)
    for outcome in outcomes:
        _label(client, auth, outcome, summary)
    return summary


def _label(client: Any, auth: dict[str, str], outcome: tuple[str, int], summary: Any) -> None:
    request_id, label = outcome
    _call(client.post("/feedback", json={"request_id": request_id, "label": label}, headers=auth))
    summary.labels += 1


def _call(response: Any) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            message = response.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = response.text[:200]
        raise SimulationError(
            f"{response.request.method} {response.request.url.path} answered "
            f"{response.status_code}: {message}"
        )
    return response.json()
