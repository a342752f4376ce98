"""The reference profile: what the training data looked like, kept with the model version.

Drift is always "the served features against what the model learnt from", but the
training frame itself is not kept around (it may be large, and it is not the
registry's to keep). A profile is what drift needs of it, small enough to store as
a JSON artifact: per numeric feature its quantile bins with their counts, summary
statistics and a capped random sample; per categorical feature its category
counts. It is computed in DuckDB over the registered frame.
"""

from __future__ import annotations

import itertools
import json
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from litemlops.errors import NotFoundError, ValidationError
from litemlops.monitoring.duck import connection

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True)
class FeatureProfile:
    """One feature of the reference data. Statistics are over its non-null, finite values.

    bin_edges: the interior cut points of the quantile bins, increasing; bin i holds
    values in [edge[i-1], edge[i]), the first and last bins are open-ended, so a
    value outside the reference range still falls in a bin. bin_counts: reference
    values per bin (len(bin_edges) + 1). std is the population standard deviation.
    categories: count per category (the most frequent `max_categories`);
    other: reference values of the categories beyond those.
    """

    name: str
    kind: Kind
    count: int
    nulls: int
    mean: float | None = None
    std: float | None = None
    min: float | None = None
    max: float | None = None
    bin_edges: tuple[float, ...] = ()
    bin_counts: tuple[int, ...] = ()
    sample: tuple[float, ...] = ()
    categories: Mapping[str, int] = field(default_factory=dict)
    other: int = 0

    def to_dict(self) -> dict[str, Any]:
        common = {"name": self.name, "kind": self.kind, "count": self.count, "nulls": self.nulls}
        if self.kind == "categorical":
            return {**common, "categories": dict(self.categories), "other": self.other}
        return {
            **common,
            "mean": self.mean,
            "std": self.std,
            "min": self.min,
            "max": self.max,
            "bin_edges": list(self.bin_edges),
            "bin_counts": list(self.bin_counts),
            "sample": list(self.sample),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureProfile:
        kind = data.get("kind")
        if kind not in ("numeric", "categorical"):
            raise ValidationError(f"feature profile {data.get('name')!r}: unknown kind {kind!r}")
        try:
            return cls(
                name=str(data["name"]),
                kind=kind,
                count=int(data["count"]),
                nulls=int(data["nulls"]),
                mean=_optional_float(data.get("mean")),
                std=_optional_float(data.get("std")),
                min=_optional_float(data.get("min")),
                max=_optional_float(data.get("max")),
                bin_edges=tuple(float(x) for x in data.get("bin_edges", ())),
                bin_counts=tuple(int(x) for x in data.get("bin_counts", ())),
                sample=tuple(float(x) for x in data.get("sample", ())),
                categories={str(k): int(v) for k, v in data.get("categories", {}).items()},
                other=int(data.get("other", 0)),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ValidationError(
                f"feature profile {data.get('name')!r} is malformed: {exc!r}"
            ) from None


@dataclass(frozen=True)
class Profile:
    """The reference profile of a frame: its features by name, in the frame's order.

    rows: rows of the profiled frame; bins, sample_size, seed: how it was built.
    """

    FORMAT: ClassVar[int] = 1

    features: Mapping[str, FeatureProfile]
    rows: int
    bins: int
    sample_size: int
    seed: int

    @property
    def kinds(self) -> dict[str, Kind]:
        """Feature name -> "numeric" or "categorical" (what `read_predictions` takes)."""
        return {n: f.kind for n, f in self.features.items()}

    @property
    def numeric(self) -> list[str]:
        return [n for n, f in self.features.items() if f.kind == "numeric"]

    @property
    def categorical(self) -> list[str]:
        return [n for n, f in self.features.items() if f.kind == "categorical"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.FORMAT,
            "rows": self.rows,
            "bins": self.bins,
            "sample_size": self.sample_size,
            "seed": self.seed,
            "features": [f.to_dict() for f in self.features.values()],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Profile:
        if not isinstance(data, Mapping) or data.get("format") != cls.FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise ValidationError(
                f"not a reference profile of format {cls.FORMAT} (found {found!r}); "
                "build it again with build_profile"
            )
        features = [FeatureProfile.from_dict(f) for f in data.get("features", [])]
        try:
            return cls(
                features={f.name: f for f in features},
                rows=int(data["rows"]),
                bins=int(data["bins"]),
                sample_size=int(data["sample_size"]),
                seed=int(data["seed"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValidationError(f"reference profile is malformed: {exc!r}") from None

    def save(self, path: Path | str) -> Path:
        """Write the profile as JSON through a temporary file, so a reader never sees half."""
        from litemlops.store.files import write_text_atomic

        path = Path(path)
        write_text_atomic(path, json.dumps(self.to_dict(), allow_nan=False, separators=(",", ":")))
        return path

    @classmethod
    def load(cls, path: Path | str) -> Profile:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFoundError(f"no reference profile at {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValidationError(f"{path}: cannot be read as a reference profile: {exc}") from None
        return cls.from_dict(data)


def build_profile(
    frame: pd.DataFrame,
    *,
    bins: int = 10,
    sample_size: int = 5000,
    seed: int = 0,
    categorical: Iterable[str] | None = None,
    max_categories: int = 100,
) -> Profile:
    """Profile every numeric and categorical column of `frame` (others, e.g. times, are left out).

    bins: quantile bins per numeric feature (fewer when values tie).
    sample_size: the most values kept per numeric feature for the KS test and the
    Wasserstein distance; a seeded uniform sample without replacement when there are more.
    categorical: columns to treat as categories even if numeric (codes, ids);
    bool, string, object and category columns always are.
    max_categories: categories kept per feature; rarer ones are pooled as `other`,
    so an id-like column cannot blow the profile up.
    """
    if bins < 1 or sample_size < 1 or max_categories < 1:
        raise ValidationError("bins, sample_size and max_categories must be at least 1")
    work, kinds = _prepare(frame, categorical)
    if not kinds:  # nothing to profile, and DuckDB cannot register a frame with no column
        return Profile(features={}, rows=len(work), bins=bins, sample_size=sample_size, seed=seed)
    with connection() as con:
        con.register("frame", work)
        numeric = [n for n, k in kinds.items() if k == "numeric"]
        summaries = _numeric_summaries(con, numeric, bins)
        counts = _bin_counts(con, {n: s["edges"] for n, s in summaries.items()})
        features: dict[str, FeatureProfile] = {}
        for name, kind in kinds.items():
            if kind == "numeric":
                s = summaries[name]
                features[name] = FeatureProfile(
                    name=name,
                    kind="numeric",
                    count=s["count"],
                    nulls=len(work) - s["count"],
                    mean=s["mean"],
                    std=s["std"],
                    min=s["min"],
                    max=s["max"],
                    bin_edges=tuple(s["edges"]),
                    bin_counts=tuple(counts[name]),
                    sample=_sample(work[name].to_numpy(), sample_size, _rng(seed, name)),
                )
            else:
                features[name] = _categorical(con, name, len(work), max_categories)
    return Profile(
        features=features, rows=len(work), bins=bins, sample_size=sample_size, seed=seed
    )


def _prepare(
    frame: pd.DataFrame, categorical: Iterable[str] | None = None
) -> tuple[pd.DataFrame, dict[str, Kind]]:
    """The profiled columns, as DuckDB and drift read them, and the kind of each.

    Numeric columns become float64 with NaN for null and non-finite values;
    categorical ones become category labels (see `category_labels`).
    """
    import pandas as pd

    wanted = set(categorical or ())
    unknown = sorted(wanted - {str(c) for c in frame.columns})
    if unknown:
        raise ValidationError(
            f"categorical column(s) {unknown} are not in the frame; it has {list(frame.columns)}"
        )
    columns: dict[str, Any] = {}
    kinds: dict[str, Kind] = {}
    for column in frame.columns:
        name = str(column)
        if name in columns:
            raise ValidationError(f"the frame repeats column {name!r}")
        series = frame[column]
        if name in wanted or _is_categorical(series):
            columns[name] = category_labels(series)
            kinds[name] = "categorical"
        elif pd.api.types.is_numeric_dtype(series) and series.dtype.kind not in "mM":
            columns[name] = numeric_values(series)
            kinds[name] = "numeric"
    return pd.DataFrame(columns, index=pd.RangeIndex(len(frame))), kinds


def numeric_values(series: pd.Series) -> np.ndarray:
    """A column as float64, NaN for null and non-finite values (statistics skip them).

    Text that is not a number (a window whose JSON carried strings) is null too.
    """
    import numpy as np
    import pandas as pd

    if pd.api.types.is_bool_dtype(series) or not pd.api.types.is_numeric_dtype(series):
        series = pd.to_numeric(series.astype(object), errors="coerce")
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    return np.where(np.isfinite(values), values, np.nan)


def category_labels(series: pd.Series) -> pd.Series:
    """Categories as text, the same whatever the column's dtype: `true`, `3` (3.0 too), `a`.

    The reference and a window of served features often differ in dtype (an int
    column gains a null and becomes float; JSON brings booleans back as objects),
    and a category must still match itself. Nulls become None.
    """
    import numpy as np
    import pandas as pd

    if isinstance(series.dtype, pd.CategoricalDtype):
        series = series.astype(object)
    labels = np.full(len(series), None, dtype=object)
    if pd.api.types.is_bool_dtype(series):
        present = series.notna().to_numpy()
        flags = series.to_numpy(dtype=object)[present].astype(bool)
        labels[present] = np.where(flags, "true", "false")
    elif pd.api.types.is_numeric_dtype(series):
        values = series.to_numpy(dtype="float64", na_value=np.nan)
        present = ~np.isnan(values)
        whole = present & (np.floor(values) == values) & (np.abs(values) < 2**53)
        labels[whole] = values[whole].astype(np.int64).astype(str)
        labels[present & ~whole] = values[present & ~whole].astype(str)
    elif pd.api.types.infer_dtype(series, skipna=True) in ("string", "empty"):
        present = series.notna().to_numpy()
        labels[present] = series.to_numpy(dtype=object)[present]
    else:
        labels[:] = [_label(v) for v in series.tolist()]
    return pd.Series(labels, index=series.index, dtype=object)


def _label(value: Any) -> str | None:
    """One value of a mixed column as `category_labels` writes it."""
    import numpy as np
    import pandas as pd

    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        if number != number:  # NaN
            return None
        if number.is_integer() and abs(number) < 2**53:
            return str(int(number))
        return str(np.float64(number))
    return str(value)


def _is_categorical(series: pd.Series) -> bool:
    import pandas as pd

    return (
        pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_object_dtype(series)
        or pd.api.types.is_string_dtype(series)
        or isinstance(series.dtype, pd.CategoricalDtype)
    )


def ident(name: str) -> str:
    """A column name quoted for SQL (names come from users' frames)."""
    return '"' + name.replace('"', '""') + '"'


def _numeric_summaries(
    con: Any, names: list[str], bins: int
) -> dict[str, dict[str, Any]]:
    if not names:
        return {}
    cuts = [i / bins for i in range(1, bins)]
    parts = []
    for name in names:
        c = ident(name)
        parts += [
            f"count({c})",
            f"avg({c})",
            f"stddev_pop({c})",
            f"min({c})",
            f"max({c})",
            f"quantile_cont({c}, {cuts!r})" if cuts else "NULL",
        ]
    # The cut points are ours (i / bins), so they are written into the SQL as literals.
    row = con.execute(f"SELECT {', '.join(parts)} FROM frame").fetchall()[0]
    summaries = {}
    for i, name in enumerate(names):
        count, mean, std, low, high, quantiles = row[i * 6 : i * 6 + 6]
        # Interpolated quantiles of equal values can land a rounding error outside
        # [min, max]; only cut points strictly inside the range split anything.
        edges = sorted({float(q) for q in quantiles or [] if low < q <= high}) if count else []
        summaries[name] = {
            "count": int(count),
            "mean": _optional_float(mean),
            "std": _optional_float(std),
            "min": _optional_float(low),
            "max": _optional_float(high),
            "edges": edges,
        }
    return summaries


def _bin_counts(con: Any, edges: Mapping[str, list[float]]) -> dict[str, list[int]]:
    """Reference values per bin, counted in one scan: bin i is [edge[i-1], edge[i])."""
    parts: list[str] = []
    params: list[float] = []
    for name, cut in edges.items():
        c = ident(name)
        if not cut:
            parts.append(f"count({c})")
            continue
        parts.append(f"count(*) FILTER (WHERE {c} < ?)")
        params.append(cut[0])
        for low, high in itertools.pairwise(cut):
            parts.append(f"count(*) FILTER (WHERE {c} >= ? AND {c} < ?)")
            params += [low, high]
        parts.append(f"count(*) FILTER (WHERE {c} >= ?)")
        params.append(cut[-1])
    if not parts:
        return {}
    row = con.execute(f"SELECT {', '.join(parts)} FROM frame", params).fetchall()[0]
    counts: dict[str, list[int]] = {}
    at = 0
    for name, cut in edges.items():
        counts[name] = [int(x) for x in row[at : at + len(cut) + 1]]
        at += len(cut) + 1
    return counts


def _categorical(con: Any, name: str, rows: int, max_categories: int) -> FeatureProfile:
    c = ident(name)
    # Ties in frequency are broken by the label, so the kept categories do not
    # depend on the order of the rows.
    top = con.execute(
        f"SELECT {c}, count(*) AS n FROM frame WHERE {c} IS NOT NULL "
        f"GROUP BY {c} ORDER BY n DESC, {c} LIMIT ?",
        [max_categories],
    ).fetchall()
    row = con.execute(f"SELECT count({c}) FROM frame").fetchall()[0]
    total = int(row[0]) if row else 0
    categories = {str(value): int(n) for value, n in top}
    return FeatureProfile(
        name=name,
        kind="categorical",
        count=total,
        nulls=rows - total,
        categories=categories,
        other=total - sum(categories.values()),
    )


def _sample(values: np.ndarray, size: int, rng: np.random.Generator) -> tuple[float, ...]:
    """A seeded uniform sample, sorted. numpy's generator rather than DuckDB's reservoir
    sample: DuckDB 2.0's `reservoir(n ROWS)` with n below about 50 draws only from the
    first few thousand rows, so small samples of large frames would be biased."""
    import numpy as np

    valid = values[~np.isnan(values)]
    if len(valid) > size:
        valid = valid[rng.choice(len(valid), size=size, replace=False)]
    return tuple(float(x) for x in np.sort(valid))


def _rng(seed: int, name: str) -> np.random.Generator:
    """A generator per feature, so a feature's sample does not depend on the columns
    profiled before it."""
    import numpy as np

    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _optional_float(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if number == number and abs(number) != float("inf") else None
