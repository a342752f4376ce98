"""Statistics a deployment report states: a success rate's interval, and how an arm's
rate compares with the control's, at a fixed horizon and under continuous peeking.

Only the standard library (`math`, `statistics.NormalDist`) is used, so importing this
module and calling it from a request handler stay cheap.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from operator import index
from statistics import NormalDist
from typing import Any

from litemlops.errors import ValidationError

_NORMAL = NormalDist()


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a success rate (Wilson, JASA 1927).

    Unlike the Wald interval it stays inside [0, 1] and keeps near its nominal coverage
    at rates near 0 or 1 and at small counts. No trials give (0.0, 1.0).
    """
    successes, trials = _counts("successes", successes, "trials", trials)
    z = _z(confidence)
    if trials == 0:
        return 0.0, 1.0
    rate = successes / trials
    z2_n = z * z / trials
    centre = (rate + z2_n / 2) / (1 + z2_n)
    half = z / (1 + z2_n) * math.sqrt(rate * (1 - rate) / trials + z2_n / (4 * trials))
    # At 0 or n successes the formula's bound is 0 or 1 up to rounding; say so exactly.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return low, high


@dataclass(frozen=True)
class Comparison:
    """An arm's success rate against the control's.

    diff: the arm's rate minus the control's (0.0 when either has no trials).
    low, high: a two-sided confidence interval for diff, within [-1, 1].
    p_value: two-sided pooled two-proportion z-test; valid only if looked at once, at a
    horizon fixed in advance. 1.0 when undefined (no trials, or all outcomes alike).
    always_valid_p: the mSPRT p-value of this data; see `compare_rates`.
    """

    diff: float
    low: float
    high: float
    p_value: float
    always_valid_p: float

    def as_dict(self) -> dict[str, float]:
        """The fields by name, JSON-able."""
        return asdict(self)


def compare_rates(
    s_control: int,
    n_control: int,
    s_arm: int,
    n_arm: int,
    *,
    confidence: float = 0.95,
    mixture_variance: float = 0.0025,
) -> Comparison:
    """Compare an arm's success rate with the control's.

    The interval is Newcombe's hybrid score interval (Newcombe, Stat. Med. 1998, method
    10), built from each rate's Wilson interval; it keeps its coverage where the Wald
    interval collapses (rates near 0 or 1, small counts).

    always_valid_p is the mixture sequential probability ratio test of Johari, Koomen,
    Pekelis & Walsh ("Peeking at A/B Tests", KDD 2017; "Always Valid Inference", Oper.
    Res. 2021) for the difference of the two rates, with a normal mixture N(0,
    mixture_variance) over that difference: min(1, 1 / Lambda) for this data. It is
    only always valid as a running minimum: a caller that peeks again as data comes in
    must keep `running_min` of the values it has seen and act on that, which bounds
    the chance of ever seeing a false p < alpha by alpha however often it looks.

    mixture_variance: tau**2, the squared size of difference the test is tuned to find
    fastest (0.0025 is a difference of about 0.05).
    """
    s_control, n_control = _counts("s_control", s_control, "n_control", n_control)
    s_arm, n_arm = _counts("s_arm", s_arm, "n_arm", n_arm)
    _z(confidence)  # checked even where an arm has no trials to use it
    tau2 = float(mixture_variance)
    if not (math.isfinite(tau2) and tau2 > 0):
        raise ValidationError(
            f"mixture_variance is {mixture_variance!r}: it must be a finite number > 0"
        )
    if n_control == 0 or n_arm == 0:
        return Comparison(diff=0.0, low=-1.0, high=1.0, p_value=1.0, always_valid_p=1.0)

    rate_control, rate_arm = s_control / n_control, s_arm / n_arm
    diff = rate_arm - rate_control
    low_arm, high_arm = wilson_interval(s_arm, n_arm, confidence)
    low_control, high_control = wilson_interval(s_control, n_control, confidence)
    low = diff - math.hypot(rate_arm - low_arm, high_control - rate_control)
    high = diff + math.hypot(high_arm - rate_arm, rate_control - low_control)

    # Both tests plug in the variance of diff under the null (one pooled rate): it is
    # 0 only when every outcome is alike (no evidence either way), where the unpooled
    # estimate is also 0 at a rate of exactly 0 or 1 with a real difference.
    pooled = (s_control + s_arm) / (n_control + n_arm)
    variance = pooled * (1 - pooled) * (1 / n_control + 1 / n_arm)
    if variance > 0:
        p_value = math.erfc(abs(diff) / math.sqrt(variance) / math.sqrt(2))
        always_valid_p = _msprt_p_value(diff, variance, tau2)
    else:
        p_value = always_valid_p = 1.0
    return Comparison(
        diff=diff,
        low=max(-1.0, low),
        high=min(1.0, high),
        p_value=min(1.0, p_value),
        always_valid_p=always_valid_p,
    )


def running_min(previous: float | None, current: float) -> float:
    """The always-valid p-value after one more peek: the least seen so far.

    previous: the running minimum before this peek (None at the first).
    current: `Comparison.always_valid_p` at this peek.
    """
    return current if previous is None else min(previous, current)


def directional_min(previous: Any, comparison: Comparison) -> dict[str, float]:
    """The running minima of the always-valid p-value kept apart for the peeks where the
    arm was ahead of the control ("better") and behind it ("worse").

    A single running minimum remembers evidence without its direction: an arm that led
    significantly early and trails by noise later would be declared worse. Each of
    these is the minimum over a subset of the peeks, so under equal rates each stays
    above alpha at least as often as the single one (1 - alpha).
    previous: the last result (anything else, such as an older single float, starts
    afresh, which only costs power).
    """
    found = {"better": 1.0, "worse": 1.0}
    if isinstance(previous, dict):
        found.update({k: float(previous[k]) for k in found if k in previous})
    if comparison.diff:
        side = "better" if comparison.diff > 0 else "worse"
        found[side] = min(found[side], comparison.always_valid_p)
    return found


def _msprt_p_value(diff: float, variance: float, tau2: float) -> float:
    """min(1, 1/Lambda) of the normal-mixture SPRT for a difference seen as N(theta, V).

    Lambda = integral of the likelihood ratio N(diff; theta, V) / N(diff; 0, V) over
    theta ~ N(0, tau2), which is sqrt(V / (V + tau2)) * exp(tau2 diff^2 / (2 V (V + tau2))).
    With n per arm and V = sigma^2 / n this is the paper's Lambda_n.
    """
    log_lambda = 0.5 * math.log(variance / (variance + tau2)) + tau2 * diff * diff / (
        2 * variance * (variance + tau2)
    )
    # exp of a large statistic overflows; its p-value is 0 to double precision anyway.
    return math.exp(-log_lambda) if log_lambda > 0 else 1.0


def _z(confidence: float) -> float:
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise ValidationError(
            f"confidence is {confidence!r}: it must lie strictly between 0 and 1 (e.g. 0.95)"
        )
    return _NORMAL.inv_cdf(0.5 + confidence / 2)


def _counts(s_name: str, successes: int, n_name: str, trials: int) -> tuple[int, int]:
    checked = []
    for name, value in ((s_name, successes), (n_name, trials)):
        if isinstance(value, bool):
            raise ValidationError(f"{name} is {value!r}: it must be a whole number")
        try:
            checked.append(index(value))
        except TypeError:
            raise ValidationError(f"{name} is {value!r}: it must be a whole number") from None
    successes, trials = checked
    if not 0 <= successes <= trials:
        raise ValidationError(
            f"{s_name} is {successes} and {n_name} is {trials}: "
            f"they must satisfy 0 <= {s_name} <= {n_name}"
        )
    return successes, trials
