"""Data drift and data quality of a window of served features against the reference profile.

Which statistic decides, by default (`DriftThresholds`):

- numeric features: the two-sample Kolmogorov-Smirnov test, p < 0.05. It needs
  no binning and no assumption about the distribution, and on small windows it
  is exact. A test's power grows with the sample, so on a window of a million
  rows it would call any shift significant, however small; both sides are
  therefore capped at `sample_cap` values (a seeded sample), which keeps "drift"
  meaning a shift that matters at a few thousand rows. PSI (>= 0.2, the usual
  "significant shift" in credit scoring) and the Wasserstein distance in units of
  the reference's standard deviation (>= 0.1) are computed too and can decide
  instead: they are distances, so they do not grow with the sample.
- categorical features: Pearson's chi-square test of the window's counts against
  the reference's frequencies, p < 0.05, its counts scaled down to `sample_cap`
  for the same reason; Jensen-Shannon distance (base 2, in [0, 1]; >= 0.1) can
  decide instead.

The dataset drifts when at least `dataset_share` (0.5) of the features that
could be judged drifted. Too little data is a verdict of its own ("not enough
data"), never a crash and never drift.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from litemlops.errors import ValidationError
from litemlops.monitoring.profile import (
    FeatureProfile,
    Profile,
    build_profile,
    category_labels,
    numeric_values,
)

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

NUMERIC_METHODS = ("ks", "psi", "wasserstein")
CATEGORICAL_METHODS = ("chi2", "js")

#: The share an empty bin (or a category absent on one side) counts as in PSI and
#: in the chi-square's expected frequencies: log(0) and division by zero would
#: make one empty bin infinite drift. 1e-4 keeps its term large but finite.
EPSILON = 1e-4
OTHER = "(other)"  # the categories a distribution pools: the reference's rare and unseen

#: Above this many values on either side, the KS p-value is asymptotic: the exact
#: distribution is slow there and scipy may give up on it, and the two agree.
EXACT_KS_MAX = 1000

#: The statistics each kind publishes in `DriftReport.metrics()`.
METRIC_STATS = {
    "numeric": ("ks_pvalue", "ks_stat", "psi", "wasserstein"),
    "categorical": ("chi2_pvalue", "js"),
}

OK = "ok"
NOT_ENOUGH_DATA = "not enough data"
MISSING = "missing"


@dataclass(frozen=True)
class DriftThresholds:
    """When a feature drifts: a p-value below its threshold, or a distance at or above.

    numeric_method: the statistic that decides for numeric features, one of "ks",
    "psi", "wasserstein". categorical_method: "chi2" or "js".
    dataset_share: the dataset drifts when this share of judged features drifted.
    """

    ks_pvalue: float = 0.05
    psi: float = 0.2
    wasserstein: float = 0.1
    chi2_pvalue: float = 0.05
    js: float = 0.1
    numeric_method: str = "ks"
    categorical_method: str = "chi2"
    dataset_share: float = 0.5

    def __post_init__(self) -> None:
        if self.numeric_method not in NUMERIC_METHODS:
            raise ValidationError(
                f"numeric_method must be one of {NUMERIC_METHODS}, got {self.numeric_method!r}"
            )
        if self.categorical_method not in CATEGORICAL_METHODS:
            raise ValidationError(
                f"categorical_method must be one of {CATEGORICAL_METHODS}, "
                f"got {self.categorical_method!r}"
            )
        for name in ("ks_pvalue", "chi2_pvalue", "dataset_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValidationError(f"{name} must be in [0, 1], got {value!r}")
        for name in ("psi", "wasserstein", "js"):
            if not getattr(self, name) >= 0:
                raise ValidationError(f"{name} must be >= 0, got {getattr(self, name)!r}")

    def decides(self, method: str, value: float) -> bool:
        """Whether `value` of statistic `method` means drift."""
        if method in ("ks", "chi2"):
            return value < getattr(self, f"{method}_pvalue")
        return value >= getattr(self, method)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's verdict. stats hold what could be computed (NaN otherwise).

    n_reference: reference values behind the statistics (count, not the sample);
    n_current: non-null current values; nulls: null or non-finite current values.
    quality: null_rate, and out_of_range (numeric) or unseen (categorical).
    """

    name: str
    kind: str
    method: str
    status: str
    drifted: bool
    n_reference: int
    n_current: int
    nulls: int
    stats: dict[str, float] = field(default_factory=dict)
    quality: dict[str, float] = field(default_factory=dict)
    #: Both sides binned alike: numeric features on the reference's quantile bins ({"edges",
    #: "reference", "current"} counts), categorical ones by category, rare and unseen
    #: pooled ({"categories", ...}). Empty when the window has too few values.
    distribution: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stats"] = {k: _json_number(v) for k, v in self.stats.items()}
        data["quality"] = {k: _json_number(v) for k, v in self.quality.items()}
        return data


@dataclass(frozen=True)
class DriftReport:
    """Drift and quality of one window. status: "ok" or "not enough data" (message says why).

    n_reference: rows of the profiled reference; n_current: rows of the window.
    window: what the caller said about the window, and its first and last timestamp
    when the frame has a `timestamp` column.
    """

    features: dict[str, FeatureDrift]
    share_drifted: float
    dataset_drift: bool
    n_reference: int
    n_current: int
    status: str
    message: str
    thresholds: DriftThresholds
    window: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return [name for name, f in self.features.items() if f.drifted]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "message": self.message,
            "dataset_drift": self.dataset_drift,
            "share_drifted": self.share_drifted,
            "drifted_features": self.drifted_features,
            "n_reference": self.n_reference,
            "n_current": self.n_current,
            "window": dict(self.window),
            "thresholds": self.thresholds.to_dict(),
            "features": {name: f.to_dict() for name, f in self.features.items()},
        }

    def metrics(self) -> dict[str, float]:
        """Flat numbers for gauges and alert rules: `drift.dataset`, `drift.share`,
        `drift.<feature>.<statistic>`, `drift.<feature>.drifted`, `quality.<feature>.<check>`.

        A statistic that could not be computed (not enough data) is left out rather
        than reported as NaN, so a rule on it neither fires nor resolves on no data.
        """
        out: dict[str, float] = {
            "drift.dataset": float(self.dataset_drift),
            "drift.share": float(self.share_drifted),
        }
        for name, feature in self.features.items():
            for stat in METRIC_STATS[feature.kind]:
                value = feature.stats.get(stat, math.nan)
                if math.isfinite(value):
                    out[f"drift.{name}.{stat}"] = float(value)
            out[f"drift.{name}.drifted"] = float(feature.drifted)
            for check, value in feature.quality.items():
                if math.isfinite(value):
                    out[f"quality.{name}.{check}"] = float(value)
        return out


def drift_report(
    profile: Profile,
    current: pd.DataFrame,
    *,
    thresholds: DriftThresholds | None = None,
    sample_cap: int | None = 5000,
    seed: int = 0,
    min_rows: int = 5,
    window: Mapping[str, Any] | None = None,
) -> DriftReport:
    """Drift and quality of `current` (one row per served prediction) against `profile`.

    Columns of `current` the profile does not know (request ids, scores) are
    ignored; a profiled feature absent from `current` is reported as missing.
    sample_cap: the most values per side the KS test and the Wasserstein distance
    see, and the count the chi-square test is scaled to (None: all); seed: the
    subsampling's seed. min_rows: fewer non-null values
    than this on either side and a feature is not judged.
    window: anything to record about the window (its size, its period).
    """
    import numpy as np

    thresholds = thresholds or DriftThresholds()
    if sample_cap is not None and sample_cap < 2:
        raise ValidationError(f"sample_cap must be at least 2 (or None), got {sample_cap!r}")
    if min_rows < 1:
        raise ValidationError(f"min_rows must be at least 1, got {min_rows!r}")
    rows = len(current)
    features: dict[str, FeatureDrift] = {}
    for name, reference in profile.features.items():
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        if name not in current.columns:
            features[name] = _missing(reference, thresholds, rows)
        elif reference.kind == "numeric":
            values = numeric_values(current[name])
            features[name] = _numeric(reference, values, thresholds, sample_cap, rng, min_rows)
        else:
            labels = category_labels(current[name])
            features[name] = _categorical(reference, labels, thresholds, sample_cap, min_rows)
    judged = [f for f in features.values() if f.status == OK]
    share = sum(f.drifted for f in judged) / len(judged) if judged else 0.0
    if rows < min_rows:
        status, message = NOT_ENOUGH_DATA, f"{rows} current rows; at least {min_rows} are needed"
    elif not judged:
        status, message = NOT_ENOUGH_DATA, "no feature has enough non-null values on both sides"
    else:
        status = OK
        message = (
            f"{sum(f.drifted for f in judged)} of {len(judged)} features drifted "
            f"(share {share:.2f}, dataset drift at >= {thresholds.dataset_share:g})"
        )
    return DriftReport(
        features=features,
        share_drifted=share,
        dataset_drift=status == OK and share >= thresholds.dataset_share,
        n_reference=profile.rows,
        n_current=rows,
        status=status,
        message=message,
        thresholds=thresholds,
        window=_window(current, window),
    )


def compare(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    *,
    columns: Iterable[str] | None = None,
    categorical: Iterable[str] | None = None,
    bins: int = 10,
    thresholds: DriftThresholds | None = None,
    sample_cap: int | None = 5000,
    seed: int = 0,
    min_rows: int = 5,
) -> DriftReport:
    """Drift of `current` against `reference`, both in memory: profile one, judge the other.

    columns: the features to compare (default: the reference's numeric and
    categorical columns). The reference sample holds `sample_cap` values, so the
    test sees as many reference values as `drift_report` would allow it.
    """
    reference, current = reference.rename(columns=str), current.rename(columns=str)
    chosen = list(columns) if columns is not None else list(reference.columns)
    for label, frame in (("reference", reference), ("current", current)):
        absent = [c for c in chosen if c not in frame.columns]
        if absent and columns is not None:  # else current alone can lack one: "missing"
            raise ValidationError(
                f"{label} has no column(s) {absent}; it has {list(frame.columns)}"
            )
    if not set(chosen) & set(current.columns):
        raise ValidationError(
            f"reference and current share no column: reference has {chosen}, "
            f"current has {list(current.columns)}"
        )
    wanted = list(categorical or ())
    unknown = [c for c in wanted if c not in chosen]
    if unknown:
        raise ValidationError(f"categorical column(s) {unknown} are not among {chosen}")
    profile = build_profile(
        reference[chosen],
        bins=bins,
        sample_size=sample_cap or max(len(reference), 1),
        seed=seed,
        categorical=wanted,
    )
    if not profile.features:
        raise ValidationError(f"none of {chosen} is numeric or categorical")
    return drift_report(
        profile,
        current,
        thresholds=thresholds,
        sample_cap=sample_cap,
        seed=seed,
        min_rows=min_rows,
    )


# -- numeric ----------------------------------------------------------------------------------


def _numeric(
    reference: FeatureProfile,
    column: np.ndarray,
    thresholds: DriftThresholds,
    sample_cap: int | None,
    rng: np.random.Generator,
    min_rows: int,
) -> FeatureDrift:
    import numpy as np

    values = column[~np.isnan(column)]
    nulls = len(column) - len(values)
    quality = {"null_rate": nulls / len(column) if len(column) else math.nan}
    if len(values) and reference.min is not None and reference.max is not None:
        outside = (values < reference.min) | (values > reference.max)
        quality["out_of_range"] = float(outside.mean())
    else:
        quality["out_of_range"] = math.nan
    method = thresholds.numeric_method
    stats = dict.fromkeys(METRIC_STATS["numeric"], math.nan)
    ref = np.asarray(reference.sample, dtype="float64")
    if len(values) < min_rows or len(ref) < min_rows:
        n = len(values)
        return _verdict(reference, method, NOT_ENOUGH_DATA, False, n, nulls, stats, quality)
    from scipy import stats as st

    ref_s, cur_s = _cap(ref, sample_cap, rng), _cap(values, sample_cap, rng)
    exact = max(len(ref_s), len(cur_s)) <= EXACT_KS_MAX
    ks = st.ks_2samp(ref_s, cur_s, method="exact" if exact else "asymp")
    stats["ks_stat"], stats["ks_pvalue"] = float(ks.statistic), float(ks.pvalue)
    current = bin_counts(reference.bin_edges, values)
    stats["psi"] = psi(reference.bin_counts, current)
    # A constant reference has no spread to scale by: its distance stays in raw units.
    scale = reference.std if reference.std else 1.0
    stats["wasserstein"] = float(st.wasserstein_distance(ref_s, cur_s)) / scale
    drifted = thresholds.decides(method, stats[deciding_statistic(method)])
    shown: dict[str, list[Any]] = {"edges": list(reference.bin_edges),
             "reference": list(reference.bin_counts),
             "current": current.astype(int).tolist()}  # fmt: skip
    return _verdict(reference, method, OK, drifted, len(values), nulls, stats, quality, shown)


def bin_counts(edges: Iterable[float], values: np.ndarray) -> np.ndarray:
    """How many `values` fall in each bin of the interior cut points `edges` (bin i holds
    [edge[i-1], edge[i]); the first and last are open)."""
    import numpy as np

    # A pass per edge (a few) counting what lies below it is several times faster
    # than a binary search per value.
    below = [np.count_nonzero(values < edge) for edge in edges]
    return np.diff(np.asarray([0, *below, len(values)], dtype="float64"))


def psi(reference_counts: Iterable[int], current: np.ndarray) -> float:
    """Population stability index of `current` counts on the reference's bins.

    Sum over bins of (current share - reference share) * ln(current / reference),
    each share at least EPSILON so an empty bin adds a large finite term.
    """
    import numpy as np

    ref = np.asarray(list(reference_counts), dtype="float64")
    p = np.maximum(ref / ref.sum(), EPSILON)
    q = np.maximum(current / current.sum(), EPSILON)
    return float(np.sum((q - p) * np.log(q / p)))


def _cap(values: np.ndarray, cap: int | None, rng: np.random.Generator) -> np.ndarray:
    if cap is None or len(values) <= cap:
        return values
    return values[rng.choice(len(values), size=cap, replace=False)]


# -- categorical ------------------------------------------------------------------------------


def _categorical(
    reference: FeatureProfile,
    labels: pd.Series,
    thresholds: DriftThresholds,
    sample_cap: int | None,
    min_rows: int,
) -> FeatureDrift:
    import numpy as np

    counts = labels.value_counts(dropna=True)
    n = int(counts.sum())
    nulls = len(labels) - n
    known = list(reference.categories)
    observed = [int(counts.get(k, 0)) for k in known]
    unseen = n - sum(observed)
    quality = {
        "null_rate": nulls / len(labels) if len(labels) else math.nan,
        "unseen": unseen / n if n else math.nan,
    }
    method = thresholds.categorical_method
    stats = {"chi2_stat": math.nan, "chi2_pvalue": math.nan, "js": math.nan}
    if n < min_rows or reference.count < min_rows:
        return _verdict(reference, method, NOT_ENOUGH_DATA, False, n, nulls, stats, quality)
    from scipy import stats as st
    from scipy.spatial.distance import jensenshannon

    # Unseen categories and the reference's pooled rare ones share one "other" bucket.
    expected = np.asarray([*reference.categories.values(), reference.other], dtype="float64")
    got = np.asarray([*observed, unseen], dtype="float64")
    if expected[-1] == 0 and got[-1] == 0:
        expected, got = expected[:-1], got[:-1]
    shares = expected / expected.sum()
    stats["js"] = float(jensenshannon(shares, got / n, base=2))
    if len(got) < 2:
        stats["chi2_stat"], stats["chi2_pvalue"] = 0.0, 1.0  # one category: nothing can shift
    else:
        # The statistic grows with the count as the KS test's power does, so the counts
        # are scaled down to `sample_cap` values: the test as if on a capped sample,
        # without a sample's noise.
        size = min(n, sample_cap) if sample_cap is not None else n
        smoothed = np.maximum(shares, EPSILON)
        test = st.chisquare(got * (size / n), smoothed / smoothed.sum() * size)
        stats["chi2_stat"], stats["chi2_pvalue"] = float(test.statistic), float(test.pvalue)
    drifted = thresholds.decides(method, stats[deciding_statistic(method)])
    shown: dict[str, list[Any]] = {"categories": [*known, OTHER], "current": [*observed, unseen],
             "reference": [*reference.categories.values(), reference.other]}  # fmt: skip
    return _verdict(reference, method, OK, drifted, n, nulls, stats, quality, shown)


def _missing(reference: FeatureProfile, thresholds: DriftThresholds, rows: int) -> FeatureDrift:
    """A profiled feature the window does not have: every value of it is missing."""
    numeric = reference.kind == "numeric"
    stats = dict.fromkeys(
        METRIC_STATS["numeric"] if numeric else ("chi2_stat", "chi2_pvalue", "js"), math.nan
    )
    method = thresholds.numeric_method if numeric else thresholds.categorical_method
    quality = {"null_rate": 1.0 if rows else math.nan}
    return _verdict(reference, method, MISSING, False, 0, rows, stats, quality)


def _verdict(
    reference: FeatureProfile,
    method: str,
    status: str,
    drifted: bool,
    n_current: int,
    nulls: int,
    stats: dict[str, float],
    quality: dict[str, float],
    distribution: dict[str, list[Any]] | None = None,
) -> FeatureDrift:
    return FeatureDrift(
        name=reference.name,
        kind=reference.kind,
        method=method,
        status=status,
        drifted=drifted,
        n_reference=reference.count,
        n_current=n_current,
        nulls=nulls,
        stats=stats,
        quality=quality,
        distribution=distribution or {},
    )


def deciding_statistic(method: str) -> str:
    """The statistic (and threshold) a method decides by: the tests by their p-value."""
    return {"ks": "ks_pvalue", "chi2": "chi2_pvalue"}.get(method, method)


def _window(current: pd.DataFrame, given: Mapping[str, Any] | None) -> dict[str, Any]:
    import pandas as pd

    window: dict[str, Any] = {
        k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in (given or {}).items()
    }
    window.setdefault("rows", len(current))
    if "timestamp" in current.columns and len(current):
        times = pd.to_datetime(current["timestamp"], errors="coerce", utc=True).dropna()
        if len(times):
            window["start"] = times.min().isoformat()
            window["end"] = times.max().isoformat()
    return window


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None
