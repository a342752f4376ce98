"""What a deployment looks like from outside: its description, its shares now, its
report per arm (the admin API's and CLI's answer) and its figures for `/metrics`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litemlops.clock import from_ms
from litemlops.serving.deployment_report import ab_decision, arm_outcomes, window_figures
from litemlops.serving.deployment_spec import DeploymentSpec
from litemlops.serving.routing import EpsilonGreedyRouter, ThompsonRouter

if TYPE_CHECKING:
    from litemlops.serving.deployment_live import LiveDeployment
    from litemlops.serving.deployment_store import ArmOutcomes, DeploymentRecord
    from litemlops.serving.shadow import ShadowScorer


def report(
    record: DeploymentRecord,
    live: LiveDeployment | None,
    outcomes: list[ArmOutcomes],
    shadow: ShadowScorer | None,
) -> dict[str, Any]:
    """The deployment with, per arm, its share, labels and comparison to the champion
    (and, while it serves here, its window and counts); a shadow's, a bandit's and an
    A/B test's own figures."""
    names = arm_names(record)
    previous = dict(record.status.get("p") or {}) if record.strategy == "ab" else {}
    rows, _ = arm_outcomes(outcomes, names, previous)
    spec = DeploymentSpec.restore(record.spec)
    shares = shares_now(record, spec, live)
    for i, row in enumerate(rows):
        row["share"] = shares[i] if shares else None
        if live is not None:
            row["window"] = window_figures(live.windows[i])
            row["served"] = live.requests[i]
            row["errors"] = live.errors[i]
    report: dict[str, Any] = {**describe(record), "arms": rows}
    if live is not None and live.strategy == "shadow":
        report["shadow"] = shadow.report() if shadow is not None else None
    if live is not None and isinstance(live.router, (ThompsonRouter, EpsilonGreedyRouter)):
        report["bandit"] = live.router.state()
    if record.strategy == "ab":
        winner, why = ab_decision(rows, min_samples=spec.min_samples, alpha=spec.alpha)
        report["decision"] = {"winner": winner, "why": why}
    return report


def arm_figures(live: LiveDeployment) -> list[tuple[str, str, dict[str, float | None]]]:
    """(deployment, arm, figures) of every live arm, for `/metrics`: requests it
    answered and errors (this process), labels joined and successes (all),
    its traffic share now (None for a bandit's), window latency p50/p99 (ms)."""
    found = []
    shares = shares_now(live.record, live.spec, live)
    for i, arm in enumerate(live.arms):
        window = window_figures(live.windows[i])
        found.append((live.name, arm.name, {
            "requests": live.requests[i],
            "errors": live.errors[i],
            "labels": live.labelled[i],
            "rewards": live.successes[i],
            "share": shares[i] if shares else None,
            "p50_ms": window["p50_ms"],
            "p99_ms": window["p99_ms"],
        }))  # fmt: skip
    return found


def arm_names(record: DeploymentRecord) -> list[str]:
    """The arms' names: the champion, then `v<version>` per challenger."""
    return ["champion", *(f"v{v}" for v in record.versions)]


def shares_now(
    record: DeploymentRecord, spec: DeploymentSpec, live: LiveDeployment | None
) -> list[float] | None:
    """Each arm's share of traffic now; None when it is not fixed (a bandit, an end)."""
    if record.state != "active":
        return None
    if record.strategy == "canary":
        share = spec.steps[int((live.record if live else record).status.get("step", 0))]
        return [1.0 - share, share]
    if record.strategy == "ab":
        return list(spec.shares)
    if record.strategy == "shadow":
        return [1.0, 0.0]
    return None  # a bandit's shares move with every label


def describe(record: DeploymentRecord) -> dict[str, Any]:
    status = dict(record.status)
    if "step_started_at" in status:
        status["step_started_at"] = iso(status["step_started_at"])
    return {
        "id": record.id,
        "name": record.name,
        "service": record.service,
        "strategy": record.strategy,
        "state": record.state,
        "model": record.model,
        "champion": record.champion,
        "champion_version": record.champion_version,
        "challengers": list(record.versions),
        "spec": record.spec,
        "status": status,
        "started_at": iso(record.started_at),
        "ended_at": iso(record.ended_at) if record.ended_at else None,
        "reason": record.reason,
    }


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO-8601 text."""
    when = from_ms(ms)
    assert when is not None
    return when.isoformat()
