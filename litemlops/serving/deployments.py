"""Deployments: challengers beside a service's champion, and what decides their fate.

`Deployments` is the Python API the admin API and the CLI call (`start`, `status`,
`promote`, `end`) and the controller of the live ones (`tick`: write the served
requests and labels, judge canary intervals and A/B tests, roll back or promote).
A `Service` asks it which arm answers (`routing`), so routing lives in the
serving layer, not in HTTP handlers.

Strategies: `canary` (the challenger's share grows by steps while every interval's
checks pass; any failure rolls back at once, the last step promotes), `shadow`
(the challenger scores off the request path, never answers), `ab` (fixed sticky
shares, labels joined by request id, an always-valid test that may stop it) and
`bandit` (Thompson sampling or epsilon-greedy over the labels as they come).
"""

from __future__ import annotations

import collections
import random
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from litemlops import events
from litemlops.clock import to_ms, utc_now
from litemlops.errors import LitemlopsError
from litemlops.logger import get_logger
from litemlops.serving.deployment_live import Arm, LiveDeployment, drain
from litemlops.serving.deployment_report import (
    ab_decision,
    arm_outcomes,
    best_challenger,
    canary_verdict,
)
from litemlops.serving.deployment_spec import DeploymentSpec, pin_version
from litemlops.serving.deployment_store import DeploymentRecord, DeploymentStore
from litemlops.serving.deployment_views import arm_figures, arm_names, describe, iso, report
from litemlops.serving.errors import (
    DeploymentConflictError,
    DeploymentNotFoundError,
    InvalidDeploymentError,
)
from litemlops.serving.shadow import ShadowScorer
from litemlops.store.tracking.model_uri import DEFAULT_ALIAS, ModelURI

if TYPE_CHECKING:
    from litemlops.scheduler.workers import Worker
    from litemlops.serving.models import ModelCache
    from litemlops.serving.service import ServiceSpec
    from litemlops.store.sqlite import SQLiteDB
    from litemlops.store.tracking.registry import ModelRegistry

log = get_logger("litemlops.serving")

#: How often an A/B test's stopping rule is evaluated (seconds).
AB_EVERY = 5.0


class Deployments:
    """The deployments of a home's services.

    db: the registry database (`deployment_store` owns the tables in it). models:
    the model cache the services answer from (challengers are loaded into it and
    checked against the service's features). services: the services deployments may
    target. serving: this process answers requests (the server): active deployments
    route, and `tick` must run (`run_in_background`). on_rollback: called with the
    rollback's figures (the server raises an alert with it). shadow_worker: starts a
    shadow challenger's `shadow_worker` process (`ShadowScorer(start=...)`); without
    it a shadow scores on a thread of this process. clock, rng: injected.
    """

    def __init__(
        self,
        db: SQLiteDB,
        registry: ModelRegistry,
        models: ModelCache,
        services: Sequence[ServiceSpec],
        *,
        serving: bool = False,
        clock: Callable[[], datetime] = utc_now,
        rng: random.Random | None = None,
        on_rollback: Callable[[dict[str, Any]], None] | None = None,
        shadow_worker: Callable[..., Worker] | None = None,
    ):
        self.store = DeploymentStore(db)
        self.registry = registry
        self.models = models
        self.services = {s.name: s for s in services}
        self.serving = serving
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_rollback = on_rollback
        self.shadow_worker = shadow_worker
        self._live: dict[str, LiveDeployment] = {}
        self._shadows: dict[str, ShadowScorer] = {}
        # Appended on the request path without a lock; drained, never swapped, by the
        # controller, so a label that arrives while it drains waits for the next write.
        self._labels: collections.deque[tuple[str, float, int]] = collections.deque()
        self._ab_judged: dict[str, float] = {}
        self._lock = threading.RLock()  # API calls vs the controller's tick
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if serving:
            for name in self.services:
                record = self.store.active(name)
                if record is not None:
                    self._activate(record)

    def _now(self) -> int:
        return to_ms(self.clock())

    # -- the Python API ---------------------------------------------------------------

    def start(self, service: str, body: Mapping[str, Any] | DeploymentSpec) -> dict[str, Any]:
        """Start a deployment on `service`; its status. Bad input raises
        `InvalidDeploymentError` (or `ValidationError` from the spec) and changes nothing;
        a service with an active deployment raises `DeploymentConflictError`."""
        spec = body if isinstance(body, DeploymentSpec) else DeploymentSpec.parse(body)
        target = self._service(service)
        champion = ModelURI.parse(target.model, default_alias=DEFAULT_ALIAS)
        if champion.name is None:
            raise InvalidDeploymentError(
                f"service {service!r} serves {target.model}, not a registered model: "
                "deployments route between versions of one registered model"
            )
        if (spec.strategy == "canary" or spec.promote) and not champion.by_alias:
            raise InvalidDeploymentError(
                f"service {service!r} serves version {target.model}, not an alias: "
                "promoting moves an alias (serve name@champion)"
            )
        versions = tuple(pin_version(self.registry, champion, c) for c in spec.challengers)
        try:
            champion_version = self.models.get(str(champion)).version
        except LitemlopsError as exc:
            raise InvalidDeploymentError(f"the champion {champion} cannot serve: {exc}") from None
        if champion_version in versions:
            raise InvalidDeploymentError(
                f"version {champion_version} is the champion already; a challenger must differ"
            )
        names = {r.split(":", 1)[1] for r in target.features}
        for version in versions:
            uri = f"{champion.name}/{version}"
            try:
                model = self.models.get(uri)
            except LitemlopsError as exc:
                raise InvalidDeploymentError(f"challenger {uri} cannot serve: {exc}") from None
            missing = [n for n in model.inputs if n not in names]
            if missing:
                raise InvalidDeploymentError(
                    f"challenger {uri} takes {list(model.inputs)}; service {service!r} "
                    f"gives {sorted(names)} (missing {missing})"
                )
        now = self._now()
        ident = uuid.uuid4().hex[:12]
        name = spec.name or f"{service}-{spec.strategy}-{ident[:6]}"
        status: dict[str, Any] = {}
        if spec.strategy == "canary":
            status = {"step": 0, "step_started_at": now}
        record = DeploymentRecord(
            id=ident, name=name, service=service, strategy=spec.strategy,
            model=champion.name, champion=str(champion), champion_version=champion_version,
            versions=versions, spec=spec.as_dict(), state="active", status=status,
            salt=secrets.token_hex(8), started_at=now, ended_at=None, reason="",
        )  # fmt: skip
        with self._lock:
            self.store.insert(record)
            if self.serving:
                self._activate(record)
        log.info(
            events.DEPLOYMENT_STARTED,
            deployment=name,
            service=service,
            strategy=spec.strategy,
            champion=champion_version,
            challengers=list(versions),
        )
        return self.status(service)

    def start_configured(self, tables: Sequence[tuple[str, str]]) -> list[str]:
        """Start the config's `[deployments.<name>]` (name, JSON) that never ran: one
        whose name is stored already (active or ended) is left as it is, so a restart
        does not start a finished deployment again. Returns the names started; a bad
        table raises `ConfigError` naming it."""
        import json

        from litemlops.errors import ConfigError

        started = []
        for name, text in tables:
            table = json.loads(text)
            try:
                self.store.get(name)
                continue
            except DeploymentNotFoundError:
                pass
            service = table.pop("service", "inference")
            try:
                self.start(service, {**table, "name": name})
            except DeploymentConflictError as exc:
                # The service is busy with another: this one waits for a later start.
                log.warning(events.DEPLOYMENT_NOT_STARTED, deployment=name, service=service,
                            reason=str(exc))  # fmt: skip
                continue
            except LitemlopsError as exc:
                raise ConfigError(f"config [deployments.{name}]: {exc}") from None
            started.append(name)
        return started

    def status(self, service_or_deployment: str, *, service: str | None = None) -> dict[str, Any]:
        """A deployment's state and live report: the active one of a service, or the
        one with that id or name (of `service`, when given: another's is not found)."""
        if service is not None:
            self._service(service)
            record = self.store.get(service_or_deployment, service=service)
        else:
            record = self._record(service_or_deployment)
        live = self._live.get(record.service)
        if live is not None and live.record.id == record.id:
            return report(live.record, live, live.outcomes(), self._shadows.get(record.service))
        return report(record, None, self.store.outcomes(record.id), None)

    def recent(self, service: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Deployments (of `service`), newest first; an unknown service raises
        `DeploymentNotFoundError`, as the admin API answers it."""
        if service is not None:
            self._service(service)
        return [describe(r) for r in self.store.recent(service, limit)]

    def promote(self, service: str, *, arm: str | None = None, reason: str = "") -> dict[str, Any]:
        """Move the champion alias to a challenger's version and end the deployment.
        arm: which challenger (by arm name, e.g. "v5"); by default the only one, or the
        best by labels so far (a bandit's or A/B test's best)."""
        with self._lock:
            record = self._active(service)
            live = self._live.get(service)
            names = arm_names(record)
            if arm is None:
                arm = best_challenger(
                    live.outcomes() if live is not None else self.store.outcomes(record.id),
                    names,
                )
            if arm not in names[1:]:
                raise InvalidDeploymentError(
                    f"promote names a challenger arm: one of {names[1:]}, got {arm!r}"
                )
            self._promote(record, names.index(arm), reason or "promoted by hand")
        return self.status(record.id)

    def end(self, service: str, *, reason: str = "") -> dict[str, Any]:
        """End the service's deployment; the champion keeps serving, nothing is promoted."""
        with self._lock:
            record = self._active(service)
            self._close(record, "ended", reason or "ended by hand")
        return self.status(record.id)

    def history(self, deployment: str) -> list[dict[str, Any]]:
        record = self._record(deployment)
        return [
            {**h, "at": iso(h["at"])} for h in self.store.history(record.id)
        ]

    # -- the request path -------------------------------------------------------------

    def routing(self, service: str) -> LiveDeployment | None:
        """The service's live deployment, None when the champion answers alone."""
        return self._live.get(service)

    def shadow(self, service: str) -> ShadowScorer | None:
        return self._shadows.get(service)

    def feedback(self, request_id: str, label: float) -> None:
        """A `/feedback` label: joined at the next tick to the arm of a live deployment
        that served the request (a deployment's counts end with it)."""
        if self._live:
            self._labels.append((request_id, float(label), self._now()))

    def arm_figures(self) -> list[tuple[str, str, dict[str, float | None]]]:
        """(deployment, arm, figures) of every live arm, for `/metrics`."""
        return [f for live in list(self._live.values()) for f in arm_figures(live)]

    # -- the controller ---------------------------------------------------------------

    def tick(self) -> None:
        """Write served requests and labels, judge each live deployment, and delete some
        request rows of ended ones."""
        with self._lock:
            self._flush()
            for live in list(self._live.values()):
                if live.strategy == "canary":
                    self._judge_canary(live)
                elif live.strategy == "ab":
                    self._judge_ab(live)
        self.store.purge()

    def _flush(self) -> None:
        """Write the served requests and labels queued since the last write."""
        with self._lock:
            taken = [(live, live.take()) for live in self._live.values()]
            pending = self._labels
            labels = drain(pending)
            try:
                joined = self.store.write(
                    {live.record.id: served for live, served in taken},
                    labels,
                    [v.record.id for v in self._live.values() if v.router is not None],
                    now=self._now(),
                )
            except Exception:
                for live, served in taken:
                    live.put_back(served)
                pending.extendleft(reversed(labels))
                raise
            by_id = {live.record.id: live for live in self._live.values()}
            for live, served in taken:
                live.recorded_requests(served)
            for deployment, arm, label in joined:
                if deployment in by_id:
                    by_id[deployment].rewarded(arm, label)

    def run_in_background(self, every: float = 1.0) -> None:
        """Tick every `every` seconds on a thread until `close()`."""
        if self._thread is not None:
            return

        def loop() -> None:
            while not self._stop.wait(every):
                try:
                    self.tick()
                except Exception as exc:  # a tick that fails is retried, never fatal
                    log.error(events.DEPLOYMENT_TICK_FAILED, error=f"{type(exc).__name__}: {exc}")

        self._thread = threading.Thread(target=loop, name="deployments", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the controller after a last write; stop shadows."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        if self.serving:
            try:
                self.tick()
            except Exception as exc:
                log.error(events.DEPLOYMENT_TICK_FAILED, error=f"{type(exc).__name__}: {exc}")
        for shadow in self._shadows.values():
            shadow.close()
        self._shadows.clear()

    # -- inside -----------------------------------------------------------------------

    def _service(self, service: str) -> ServiceSpec:
        spec = self.services.get(service)
        if spec is None:
            raise DeploymentNotFoundError(
                f"no service {service!r}; services: {sorted(self.services)}"
            )
        return spec

    def _record(self, service_or_deployment: str) -> DeploymentRecord:
        if service_or_deployment in self.services:
            active = self.store.active(service_or_deployment)
            if active is not None:
                return active
            latest = self.store.recent(service_or_deployment, limit=1)
            if latest:
                return latest[0]
            raise DeploymentNotFoundError(
                f"service {service_or_deployment!r} has had no deployment"
            )
        return self.store.get(service_or_deployment)

    def _active(self, service: str) -> DeploymentRecord:
        self._service(service)
        record = self.store.active(service)
        if record is None:
            raise DeploymentConflictError(f"service {service!r} has no active deployment")
        return record

    def _arms(self, record: DeploymentRecord) -> list[Arm]:
        arms = [Arm("champion", record.champion, record.champion_version)]
        arms += [Arm(f"v{v}", f"{record.model}/{v}", v) for v in record.versions]
        return arms

    def _activate(self, record: DeploymentRecord) -> None:
        live = LiveDeployment(
            record, self._arms(record), self.store.outcomes(record.id),
            rng=random.Random(self.rng.random()),
        )  # fmt: skip
        self._live[record.service] = live
        if live.strategy == "shadow":
            arm = live.arms[1]
            self._shadows[record.service] = ShadowScorer(
                arm.uri,
                model=None if self.shadow_worker else self.models.get,
                start=self.shadow_worker,
                queue_size=live.spec.queue_size,
                fields={"service": record.service, "deployment": record.name, "arm": arm.name},
                rng=random.Random(self.rng.random()),
            )

    def _deactivate(self, record: DeploymentRecord) -> None:
        live = self._live.get(record.service)
        if live is not None and live.record.id == record.id:
            del self._live[record.service]
        shadow = self._shadows.pop(record.service, None)
        if shadow is not None:
            shadow.close(timeout=1.0)

    def _close(self, record: DeploymentRecord, state: str, reason: str, **more: Any) -> None:
        live = self._live.get(record.service)
        status = dict(live.record.status if live and live.record.id == record.id else record.status)
        status.update(more)
        self._flush()  # its outcomes are saved as it ends: with the last requests
        if not self.store.close(record.id, state, reason, status, now=self._now()):
            raise DeploymentConflictError(f"deployment {record.name!r} has ended already")
        self._deactivate(record)
        event = {
            "promoted": events.DEPLOYMENT_PROMOTED,
            "rolled_back": events.DEPLOYMENT_ROLLED_BACK,
        }.get(state, events.DEPLOYMENT_ENDED)
        log.info(event, deployment=record.name, service=record.service, reason=reason, **more)

    def _promote(self, record: DeploymentRecord, arm: int, reason: str) -> None:
        champion = ModelURI.parse(record.champion)
        version = record.versions[arm - 1]
        if not champion.by_alias or champion.name is None or champion.alias is None:
            raise InvalidDeploymentError(
                f"the champion {record.champion} is not an alias; nothing to promote"
            )
        why = f"deployment {record.name} ({record.strategy}): {reason}"
        self.registry.set_alias(champion.name, champion.alias, version, reason=why)
        self._close(record, "promoted", reason, promoted_version=version)
        self.models.refresh(record.champion)

    def _rollback(self, live: LiveDeployment, check: str, figures: dict[str, Any]) -> None:
        reason = f"check {check} failed"
        self._close(live.record, "rolled_back", reason, failed_check=check, figures=figures)
        if self.on_rollback is not None:
            self.on_rollback(
                {"deployment": live.name, "service": live.record.service, "check": check,
                 "figures": figures}
            )  # fmt: skip

    def _judge_canary(self, live: LiveDeployment) -> None:
        spec, status = live.spec, dict(live.record.status)
        now = self._now()
        champion, challenger = live.windows
        if champion.requests >= spec.checks.min_requests:
            live.baseline = champion
        elif live.baseline is not None:
            champion = live.baseline
        final = now - int(status["step_started_at"]) >= spec.interval_seconds * 1000
        verdict = canary_verdict(
            spec.checks, champion, challenger, live.outcomes(),
            previous_p=status.get("p"), final=final,
        )  # fmt: skip
        if verdict.always_valid_p is not None:
            status["p"] = verdict.always_valid_p
            live.set_status(status)
        if verdict.passed is False:
            assert verdict.failed is not None
            self._rollback(live, verdict.failed, verdict.figures)
        elif verdict.passed:
            step = int(status["step"])
            self.store.log(
                live.record.id, "step_passed",
                {"step": step, "share": spec.steps[step], "figures": verdict.figures}, now=now,
            )  # fmt: skip
            if step + 1 >= len(spec.steps):
                self._promote(live.record, 1, f"canary passed {len(spec.steps)} steps")
                return
            status.update(step=step + 1, step_started_at=now)
            live.set_canary_step(status)
            live.new_windows()
            self.store.save_status(live.record.id, status)
            log.info(
                events.DEPLOYMENT_STEPPED,
                deployment=live.name,
                service=live.record.service,
                step=step + 1,
                share=spec.steps[step + 1],
            )

    def _judge_ab(self, live: LiveDeployment) -> None:
        now = self._now()
        if now - self._ab_judged.get(live.record.id, 0) < AB_EVERY * 1000:
            return
        self._ab_judged[live.record.id] = now
        status = dict(live.record.status)
        rows, mins = arm_outcomes(live.outcomes(), [a.name for a in live.arms], status.get("p", {}))
        if mins != status.get("p", {}):
            status["p"] = mins
            live.set_status(status)
            self.store.save_status(live.record.id, status)
        if not live.spec.stop:
            return
        winner, why = ab_decision(rows, min_samples=live.spec.min_samples, alpha=live.spec.alpha)
        if winner is None:
            return
        names = [a.name for a in live.arms]
        if live.spec.promote and winner != names[0]:
            self._promote(live.record, names.index(winner), f"A/B test decided: {why}")
        else:
            self._close(live.record, "ended", f"A/B test decided: {why}", winner=winner)
