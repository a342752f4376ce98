"""`litemlops deploy`: challengers beside a service's champion (canary, shadow, A/B,
bandit), their live report, promotion and abort.

While `litemlops run` serves the home, every command goes through its admin API
(the server routes the requests and judges the deployment); without a server the
home is opened directly, and the deployment starts routing when `run` starts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, open_platform
from litemlops.cli.remote import owner, path_part

if TYPE_CHECKING:
    from litemlops.serving.deployments import Deployments

service_option = click.option(
    "--service", default="inference", show_default=True, help="The service to deploy beside."
)
name_option = click.option("--name", default=None, help="A name for the deployment.")
json_option = click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")


def _percents(text: str) -> list[float]:
    try:
        return [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise click.BadParameter(f"a comma-separated list of percentages, got {text!r}") from None


def _version(text: str) -> int | str:
    return int(text) if text.isdigit() else text


@click.group()
def deploy() -> None:
    """Deployments: canary, shadow, A/B tests and bandits beside a service's champion."""


@contextmanager
def _local(ctx: click.Context, home: Path | None) -> Iterator[Deployments]:
    from litemlops.serving.deployments import Deployments
    from litemlops.serving.models import ModelCache
    from litemlops.serving.service import ServiceSpec

    with open_platform(ctx, home) as platform:
        models = ModelCache(platform.registry)
        try:
            yield Deployments(
                platform.tracker.db,
                platform.registry,
                models,
                [ServiceSpec.from_config(platform.config)],
                clock=platform.clock,
            )
        finally:
            models.close()


def _call(
    ctx: click.Context,
    home: Path | None,
    method: str,
    path: str,
    local: Callable[[Deployments], Any],
    body: Any = None,
    **params: Any,
) -> Any:
    """Through the serving owner's API, else on the home directly."""
    served = owner(load_config(ctx, home))
    if served is not None:
        with served:
            return served.call(method, path, body, **params)
    with _local(ctx, home) as deployments:
        return local(deployments)


def _start(ctx: click.Context, home: Path | None, service: str, body: dict[str, Any],
           as_json: bool) -> None:  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    status = _call(
        ctx, home, "PUT", f"/api/services/{path_part(service)}/deployment",
        lambda d: d.start(service, body), body,
    )  # fmt: skip
    _show(status, as_json)


@deploy.command("canary")
@home_option
@click.argument("version", type=_version)
@service_option
@name_option
@click.option("--steps", default="5,25,50,100", show_default=True, type=_percents,
              help="The challenger's share at each step, in %.")
@click.option("--interval", "interval_seconds", type=click.FloatRange(min=0, min_open=True),
              default=60.0, show_default=True, help="Seconds each step is analysed.")
@click.option("--max-error-increase", type=float, default=None,
              help="Percentage points the challenger's error rate may exceed the champion's.")
@click.option("--max-latency-ratio", type=float, default=None,
              help="The challenger's p99 latency may be at most this times the champion's.")
@click.option("--max-score-drift", type=float, default=None,
              help="Largest KS distance between the arms' scores (0-1).")
@click.option("--min-requests", type=click.IntRange(min=1), default=None,
              help="Requests per arm before an interval is judged.")
@json_option
@click.pass_context
@cli_errors
def canary(ctx: click.Context, home: Path | None, version: int | str, service: str,
           name: str | None, steps: list[float], interval_seconds: float,
           max_error_increase: float | None, max_latency_ratio: float | None,
           max_score_drift: float | None, min_requests: int | None,
           as_json: bool) -> None:  # fmt: skip
    """Shift traffic to VERSION by steps while each interval's checks pass; roll back
    at the first failed check, promote after the last step."""
    checks = {
        "max_error_increase": max_error_increase,
        "max_latency_ratio": max_latency_ratio,
        "max_score_drift": max_score_drift,
        "min_requests": min_requests,
    }
    body = {
        "strategy": "canary", "challenger": version, "name": name, "steps": steps,
        "interval_seconds": interval_seconds,
        "checks": {k: v for k, v in checks.items() if v is not None},
    }  # fmt: skip
    _start(ctx, home, service, body, as_json)


@deploy.command("shadow")
@home_option
@click.argument("version", type=_version)
@service_option
@name_option
@click.option("--sample", type=click.FloatRange(0, 100, min_open=True), default=None,
              help="% of requests the challenger also scores (default all).")
@click.option("--queue-size", type=click.IntRange(min=1), default=None,
              help="Requests waiting for the challenger before new ones are dropped.")
@json_option
@click.pass_context
@cli_errors
def shadow(ctx: click.Context, home: Path | None, version: int | str, service: str,
           name: str | None, sample: float | None, queue_size: int | None,
           as_json: bool) -> None:  # fmt: skip
    """VERSION scores requests off the request path; its answers are logged, never returned."""
    body = {"strategy": "shadow", "challenger": version, "name": name, "sample": sample,
            "queue_size": queue_size}  # fmt: skip
    _start(ctx, home, service, body, as_json)


@deploy.command("ab")
@home_option
@click.argument("versions", nargs=-1, required=True, type=_version)
@service_option
@name_option
@click.option("--shares", type=_percents, default=None,
              help="% per arm, the champion's first (default equal).")
@click.option("--min-samples", type=click.IntRange(min=1), default=None,
              help="Labels per arm before the test may stop.")
@click.option("--alpha", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=None, help="Significance of the always-valid test.")
@click.option("--stop/--no-stop", default=None, help="End the test once it is decided.")
@click.option("--promote/--no-promote", default=None,
              help="Promote a winning challenger when the test ends.")
@json_option
@click.pass_context
@cli_errors
def ab(ctx: click.Context, home: Path | None, versions: tuple[int | str, ...], service: str,
       name: str | None, shares: list[float] | None, min_samples: int | None,
       alpha: float | None, stop: bool | None, promote: bool | None,
       as_json: bool) -> None:  # fmt: skip
    """An A/B test of VERSIONS against the champion: fixed sticky shares, outcomes from
    /feedback labels, an always-valid test you may check as often as you like."""
    body = {"strategy": "ab", "challengers": list(versions), "name": name, "shares": shares,
            "min_samples": min_samples, "alpha": alpha, "stop": stop,
            "promote": promote}  # fmt: skip
    _start(ctx, home, service, body, as_json)


@deploy.command("bandit")
@home_option
@click.argument("versions", nargs=-1, required=True, type=_version)
@service_option
@name_option
@click.option("--algorithm", type=click.Choice(["thompson", "epsilon_greedy"]), default=None,
              help="How an arm is chosen (default thompson).")
@click.option("--epsilon", type=click.FloatRange(0, 100), default=None,
              help="% of requests explored at random (epsilon_greedy).")
@click.option("--min-share", type=click.FloatRange(0, 100), default=None,
              help="% of traffic every arm keeps (default 5).")
@json_option
@click.pass_context
@cli_errors
def bandit(ctx: click.Context, home: Path | None, versions: tuple[int | str, ...],
           service: str, name: str | None, algorithm: str | None, epsilon: float | None,
           min_share: float | None, as_json: bool) -> None:  # fmt: skip
    """A multi-armed bandit over the champion and VERSIONS, rewarded by /feedback labels."""
    body = {"strategy": "bandit", "challengers": list(versions), "name": name,
            "algorithm": algorithm, "epsilon": epsilon, "min_share": min_share}  # fmt: skip
    _start(ctx, home, service, body, as_json)


@deploy.command("status")
@home_option
@click.argument("deployment", required=False)
@service_option
@json_option
@click.pass_context
@cli_errors
def status(ctx: click.Context, home: Path | None, deployment: str | None, service: str,
           as_json: bool) -> None:  # fmt: skip
    """The service's deployment (or DEPLOYMENT by name) and its live report."""
    target = deployment or service
    served = owner(load_config(ctx, home))
    if served is not None:
        path = f"/api/services/{path_part(service)}/deployment"
        if deployment is not None:
            path += f"s/{path_part(deployment)}"
        with served:
            answer = served.call("GET", path)
    else:
        with _local(ctx, home) as deployments:
            answer = {**deployments.status(target), "history": deployments.history(target)}
    _show(answer, as_json)


@deploy.command("list")
@home_option
@service_option
@json_option
@click.pass_context
@cli_errors
def list_(ctx: click.Context, home: Path | None, service: str, as_json: bool) -> None:
    """The service's deployments, newest first."""
    found = _call(
        ctx, home, "GET", f"/api/services/{path_part(service)}/deployments",
        lambda d: d.recent(service),
    )  # fmt: skip
    if as_json:
        echo_json(found)
        return
    if not found:
        click.echo(f"service {service!r} has had no deployment")
    for d in found:
        click.echo(f"{d['name']}  {d['strategy']}  {d['state']}  v{d['champion_version']} vs "
                   f"{', '.join(f'v{v}' for v in d['challengers'])}  {d['started_at']}  "
                   f"{d['reason']}")  # fmt: skip


@deploy.command("promote")
@home_option
@service_option
@click.option("--arm", default=None, help="The challenger arm to promote (e.g. v5).")
@click.option("--reason", default="", help="Why (kept in the alias history).")
@json_option
@click.pass_context
@cli_errors
def promote(ctx: click.Context, home: Path | None, service: str, arm: str | None, reason: str,
            as_json: bool) -> None:  # fmt: skip
    """Move the champion alias to a challenger's version and end the deployment."""
    answer = _call(
        ctx, home, "POST", f"/api/services/{path_part(service)}/deployment/promote",
        lambda d: d.promote(service, arm=arm, reason=reason), {"arm": arm, "reason": reason},
    )  # fmt: skip
    _show(answer, as_json)


@deploy.command("abort")
@home_option
@service_option
@click.option("--reason", default="", help="Why (kept in the deployment's history).")
@json_option
@click.pass_context
@cli_errors
def abort(ctx: click.Context, home: Path | None, service: str, reason: str,
          as_json: bool) -> None:  # fmt: skip
    """End the deployment; the champion keeps serving, nothing is promoted."""
    answer = _call(
        ctx, home, "DELETE", f"/api/services/{path_part(service)}/deployment",
        lambda d: d.end(service, reason=reason), reason=reason or None,
    )  # fmt: skip
    _show(answer, as_json)


def _show(status: dict[str, Any], as_json: bool) -> None:
    if as_json:
        echo_json(status)
        return
    head = (f"{status['name']}: {status['strategy']} on {status['service']}, {status['state']}"
            f" (champion v{status['champion_version']})")  # fmt: skip
    if status["reason"]:
        head += f": {status['reason']}"
    if status["status"].get("promoted_version") is not None:
        head += f"; v{status['status']['promoted_version']} is the champion now"
    click.echo(head)
    step = status["status"].get("step")
    if status["strategy"] == "canary" and status["state"] == "active" and step is not None:
        steps = status["spec"]["steps"]
        click.echo(f"step {step + 1} of {len(steps)}: challenger at {steps[step] * 100:g}%")
    click.echo(f"{'arm':<10} {'share':>6} {'served':>7} {'errors':>6} {'labels':>7} "
               f"{'rate':>22} {'vs champion':>12} {'p (always valid)':>17}")  # fmt: skip
    for row in status["arms"]:
        share = "" if row.get("share") is None else f"{row['share'] * 100:.0f}%"
        rate = ("" if row["rate"] is None else
                f"{row['rate']:.3f} [{row['rate_low']:.3f}, {row['rate_high']:.3f}]")  # fmt: skip
        versus = row.get("vs_control") or {}
        diff = "" if not versus else f"{versus['diff']:+.3f}"
        p = "" if not versus else f"{versus['always_valid_p']:.4g}"
        click.echo(f"{row['arm']:<10} {share:>6} {row.get('served', ''):>7} "
                   f"{row.get('errors', ''):>6} {row['labelled']:>7} {rate:>22} {diff:>12} "
                   f"{p:>17}")  # fmt: skip
    if status.get("shadow"):
        s = status["shadow"]
        agreement = "" if s["agreement"] is None else f", agreement {s['agreement']:.3f}"
        p99 = "" if s["p99_ms"] is None else f", p99 {s['p99_ms']:.3g} ms"
        click.echo(f"shadow: {s['scored']} scored, {s['dropped']} dropped, {s['errors']} "
                   f"errors{agreement}{p99}")  # fmt: skip
    if status.get("decision"):
        click.echo(f"decision: {status['decision']['winner'] or 'not yet'}: "
                   f"{status['decision']['why']}")  # fmt: skip
    for h in status.get("history") or []:
        click.echo(f"  {h['at']}  {h['action']}")
