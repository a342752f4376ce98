"""What a deployment asks for: its strategy, its arms and their settings, validated.

One parse for every way a deployment is asked for (the admin API's JSON body,
`[deployments.<name>]` in config.toml, the CLI's flags): a mapping in,
a `DeploymentSpec` out, or a `ValidationError` naming the key that was wrong.
Challengers are versions of the service's own registered model (`5`, `"5"`,
`"name/5"`, `"name@alias"`); the registry pins them to versions when the
deployment starts (`Deployments.start`), so an alias moving later changes nothing.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from litemlops.errors import ValidationError

if TYPE_CHECKING:
    from litemlops.store.tracking.model_uri import ModelURI
    from litemlops.store.tracking.registry import ModelRegistry

STRATEGIES = ("canary", "shadow", "ab", "bandit")
ALGORITHMS = ("thompson", "epsilon_greedy")
STICKY = ("request", "entities")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class CanaryChecks:
    """What each canary interval checks, the challenger against the champion.

    max_error_increase: the challenger's error rate may exceed the champion's by at
    most this (0.01 = one percentage point). max_latency_ratio: the challenger's p99
    may be at most this many times the champion's, and latency_floor_ms more (so
    sub-millisecond noise never fails a step). max_score_drift: the two-sample
    Kolmogorov-Smirnov distance between the arms' scores. min_requests: requests per
    arm in an interval before it is judged (else the interval is extended). alpha:
    the labelled success rate fails when the challenger is worse with an always-valid
    p-value below this.
    """

    max_error_increase: float = 0.01
    max_latency_ratio: float = 2.0
    latency_floor_ms: float = 2.0
    max_score_drift: float = 0.3
    min_requests: int = 50
    alpha: float = 0.05


@dataclass(frozen=True)
class DeploymentSpec:
    """A validated deployment request; fields a strategy does not use keep defaults.

    challengers: what the user named (pinned to versions at start). shares: for `ab`,
    one fraction per arm, the champion's first. steps: for `canary`, the challenger's
    share at each step (fractions, increasing, the last <= 1). sample: for `shadow`,
    the fraction of requests the challenger also scores.
    """

    strategy: str
    challengers: tuple[str, ...]
    name: str | None = None
    shares: tuple[float, ...] = ()
    steps: tuple[float, ...] = (0.05, 0.25, 0.5, 1.0)
    interval_seconds: float = 60.0
    checks: CanaryChecks = field(default_factory=CanaryChecks)
    sample: float = 1.0
    queue_size: int = 1000
    algorithm: str = "thompson"
    epsilon: float = 0.1
    min_share: float = 0.05
    min_samples: int = 200
    alpha: float = 0.05
    stop: bool = True
    promote: bool = False
    sticky: str = "request"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["challengers"] = list(self.challengers)
        data["shares"] = list(self.shares)
        data["steps"] = list(self.steps)
        return data

    @classmethod
    def restore(cls, data: Mapping[str, Any]) -> DeploymentSpec:
        """The spec `as_dict` gave (as stored), without parsing it again."""
        values = dict(data)
        for key in ("challengers", "shares", "steps"):
            values[key] = tuple(values[key])
        values["checks"] = CanaryChecks(**values["checks"])
        return cls(**values)

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DeploymentSpec:
        """The spec `body` asks for (percentages where the docs say %, see `KEYS`)."""
        if not isinstance(body, Mapping):
            raise ValidationError("a deployment is a JSON object / TOML table")
        strategy = body.get("strategy")
        if strategy not in STRATEGIES:
            raise ValidationError(
                f"strategy must be one of {list(STRATEGIES)}, got {strategy!r}"
            )
        allowed = KEYS[strategy]
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ValidationError(
                f"{strategy} deployment: unknown key(s) {unknown}; it takes {sorted(allowed)}"
            )
        challengers = _challengers(body, strategy)
        args: dict[str, Any] = {"strategy": strategy, "challengers": challengers}
        if "name" in body:
            args["name"] = _name(body["name"])
        if strategy == "canary":
            if "steps" in body:
                args["steps"] = _steps(body["steps"])
            if "interval_seconds" in body:
                args["interval_seconds"] = _number(
                    body, "interval_seconds", low=0.0, low_open=True
                )
            args["checks"] = _checks(body.get("checks", {}))
        elif strategy == "shadow":
            if "sample" in body:
                args["sample"] = _percent(body, "sample", low_open=True)
            if "queue_size" in body:
                args["queue_size"] = _integer(body, "queue_size", low=1)
        elif strategy == "ab":
            args["shares"] = _shares(body.get("shares"), len(challengers) + 1)
            for key in ("min_samples",):
                if key in body:
                    args[key] = _integer(body, key, low=1)
            if "alpha" in body:
                args["alpha"] = _number(body, "alpha", low=0.0, high=1.0, low_open=True,
                                        high_open=True)
            for key in ("stop", "promote"):
                if key in body:
                    args[key] = _flag(body, key)
        else:  # bandit
            if "algorithm" in body:
                if body["algorithm"] not in ALGORITHMS:
                    raise ValidationError(
                        f"algorithm must be one of {list(ALGORITHMS)}, got {body['algorithm']!r}"
                    )
                args["algorithm"] = body["algorithm"]
            if "epsilon" in body:
                args["epsilon"] = _percent(body, "epsilon")
            if "min_share" in body:
                args["min_share"] = _percent(body, "min_share")
            arms = len(challengers) + 1
            if args.get("min_share", cls.min_share) * arms > 1 + 1e-9:
                raise ValidationError(
                    f"min_share {args.get('min_share', cls.min_share) * 100:g}% for {arms} "
                    f"arms is over 100% in all; at most {100 / arms:g}%"
                )
        if "sticky" in body:
            if strategy not in ("canary", "ab") or body["sticky"] not in STICKY:
                raise ValidationError(
                    f"sticky must be one of {list(STICKY)} (canary and ab only), "
                    f"got {body['sticky']!r}"
                )
            args["sticky"] = body["sticky"]
        return cls(**args)


_COMMON = {"strategy", "name"}
KEYS: dict[str, set[str]] = {
    "canary": _COMMON
    | {"challenger", "challengers", "steps", "interval_seconds", "checks", "sticky"},
    "shadow": _COMMON | {"challenger", "challengers", "sample", "queue_size"},
    "ab": _COMMON
    | {"challenger", "challengers", "shares", "min_samples", "alpha", "stop", "promote",
       "sticky"},
    "bandit": _COMMON | {"challenger", "challengers", "algorithm", "epsilon", "min_share"},
}
"""The keys each strategy takes. Shares, steps, sample, epsilon and min_share are
percentages (0-100); interval_seconds in seconds."""

_CHECK_KEYS = {
    "max_error_increase": "percent",
    "max_latency_ratio": "ratio",
    "latency_floor_ms": "ms",
    "max_score_drift": "fraction",
    "min_requests": "count",
    "alpha": "fraction",
}


def _challengers(body: Mapping[str, Any], strategy: str) -> tuple[str, ...]:
    one, many = body.get("challenger"), body.get("challengers")
    if one is not None and many is not None:
        raise ValidationError("give 'challenger' or 'challengers', not both")
    if many is None:
        if one is None:
            raise ValidationError(
                f"{strategy} deployment: name the challenger model version ('challenger')"
            )
        many = [one]
    if not isinstance(many, Sequence) or isinstance(many, str) or not many:
        raise ValidationError("challengers must be a non-empty list of model versions")
    if strategy in ("canary", "shadow") and len(many) != 1:
        raise ValidationError(f"a {strategy} deployment has one challenger, got {len(many)}")
    names = []
    for item in many:
        if isinstance(item, bool) or not isinstance(item, (int, str)) or item == "":
            raise ValidationError(
                f"a challenger is a model version (5, 'name/5' or 'name@alias'), got {item!r}"
            )
        names.append(str(item))
    if len(set(names)) != len(names):
        raise ValidationError(f"challengers repeat: {names}")
    return tuple(names)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise ValidationError(
            f"deployment name must be letters, digits, '_', '.', '-' (at most 64), got {value!r}"
        )
    return value


def _real(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValidationError(f"{what} must be a finite number, got {value!r}")
    return float(value)


def _number(
    body: Mapping[str, Any],
    key: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    value = _real(body[key], key)
    if low is not None and (value < low or (low_open and value == low)):
        raise ValidationError(f"{key} must be {'>' if low_open else '>='} {low:g}, got {value:g}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValidationError(f"{key} must be {'<' if high_open else '<='} {high:g}, got {value:g}")
    return value


def _percent(body: Mapping[str, Any], key: str, *, low_open: bool = False) -> float:
    """A percentage 0-100 (above 0 when low_open) as a fraction."""
    return _number(body, key, low=0.0, high=100.0, low_open=low_open) / 100.0


def _integer(body: Mapping[str, Any], key: str, *, low: int) -> int:
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValidationError(f"{key} must be a whole number >= {low}, got {value!r}")
    return value


def _flag(body: Mapping[str, Any], key: str) -> bool:
    if not isinstance(body[key], bool):
        raise ValidationError(f"{key} must be true or false, got {body[key]!r}")
    return bool(body[key])


def _steps(value: Any) -> tuple[float, ...]:
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        raise ValidationError(f"steps must be a non-empty list of percentages, got {value!r}")
    steps = [_real(v, "each step") for v in value]
    if any(not 0 < s <= 100 for s in steps):
        raise ValidationError(f"each step must be a percentage in (0, 100], got {steps}")
    if any(b <= a for a, b in itertools.pairwise(steps)):
        raise ValidationError(f"steps must increase, got {steps}")
    return tuple(s / 100.0 for s in steps)


def _shares(value: Any, arms: int) -> tuple[float, ...]:
    if value is None:
        return tuple([1.0 / arms] * arms)
    if not isinstance(value, Sequence) or isinstance(value, str):
        raise ValidationError(f"shares must be a list of percentages, got {value!r}")
    shares = [_real(v, "each share") for v in value]
    if len(shares) != arms:
        raise ValidationError(
            f"shares needs one percentage per arm, the champion's first: {arms} arms, "
            f"got {len(shares)}"
        )
    if any(s < 0 for s in shares):
        raise ValidationError(f"shares must not be negative, got {shares}")
    if abs(sum(shares) - 100.0) > 1e-6:
        raise ValidationError(f"shares must sum to 100, got {shares} (sum {sum(shares):g})")
    return tuple(s / 100.0 for s in shares)


def _checks(value: Any) -> CanaryChecks:
    if not isinstance(value, Mapping):
        raise ValidationError(f"checks must be an object of thresholds, got {value!r}")
    unknown = sorted(set(value) - set(_CHECK_KEYS))
    if unknown:
        raise ValidationError(f"checks: unknown key(s) {unknown}; known: {sorted(_CHECK_KEYS)}")
    args: dict[str, Any] = {}
    for key, kind in _CHECK_KEYS.items():
        if key not in value:
            continue
        if kind == "count":
            args[key] = _integer(value, key, low=1)
        elif kind == "percent":
            args[key] = _percent(value, key)
        elif kind == "ratio":
            args[key] = _number(value, key, low=1.0)
        elif kind == "ms":
            args[key] = _number(value, key, low=0.0)
        else:
            args[key] = _number(value, key, low=0.0, high=1.0, low_open=True)
    return CanaryChecks(**args)


def pin_version(registry: ModelRegistry, champion: ModelURI, challenger: str) -> int:
    """The version a challenger names now (`5`, `name/5`, `name@alias`), of the
    champion's registered model; `InvalidDeploymentError` for any other."""
    from litemlops.errors import LitemlopsError
    from litemlops.serving.errors import InvalidDeploymentError
    from litemlops.store.tracking.model_uri import ModelURI

    assert champion.name is not None
    text = challenger if not challenger.isdigit() else f"{champion.name}/{challenger}"
    try:
        uri = ModelURI.parse(text)
        if uri.name != champion.name:
            raise InvalidDeploymentError(
                f"challenger {challenger!r} is not a version of {champion.name!r}, the "
                "service's model"
            )
        if uri.by_alias:
            assert uri.alias is not None
            return registry.get_alias(uri.name, uri.alias).version
        assert uri.version is not None
        return registry.get_model_version(uri.name, uri.version).version
    except InvalidDeploymentError:
        raise
    except LitemlopsError as exc:
        raise InvalidDeploymentError(f"challenger {challenger!r}: {exc}") from None
