import json

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st

from litemlops.errors import NotFoundError, ValidationError
from litemlops.monitoring import Profile, build_profile
from litemlops.monitoring.profile import category_labels


@pytest.fixture
def frame():
    rng = np.random.default_rng(7)
    n = 10_000
    return pd.DataFrame(
        {
            "conv_rate": rng.random(n),
            "avg_daily_trips": rng.integers(0, 1000, n),
            "city": rng.choice(["hanoi", "saigon", "danang"], n, p=[0.5, 0.3, 0.2]),
            "premium": rng.random(n) < 0.25,
            "datetime": pd.date_range("2026-01-01", periods=n, freq="min", tz="UTC"),
        }
    )


def test_numeric_summaries_match_numpy(frame):
    profile = build_profile(frame)

    values = frame["conv_rate"].to_numpy()
    feature = profile.features["conv_rate"]
    assert feature.kind == "numeric"
    assert feature.count == len(values) and feature.nulls == 0
    assert feature.mean == pytest.approx(values.mean())
    assert feature.std == pytest.approx(values.std())  # population std (ddof=0)
    assert feature.min == values.min() and feature.max == values.max()
    # quantile_cont interpolates linearly, as numpy's default does
    expected = np.quantile(values, np.arange(1, 10) / 10)
    assert feature.bin_edges == pytest.approx(expected)


def test_bin_counts_are_the_reference_values_per_half_open_bin(frame):
    feature = build_profile(frame).features["avg_daily_trips"]

    values = frame["avg_daily_trips"].to_numpy()
    expected = np.bincount(
        np.searchsorted(feature.bin_edges, values, side="right"),
        minlength=len(feature.bin_edges) + 1,
    )
    assert list(feature.bin_counts) == expected.tolist()
    assert sum(feature.bin_counts) == len(values)


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.one_of(st.floats(-1e6, 1e6), st.integers(-5, 5).map(float), st.just(float("nan"))),
        min_size=0,
        max_size=60,
    ),
    st.integers(1, 12),
)
# Equal values: an interpolated quantile once landed a rounding error above the maximum.
@example(values=[-27.0, -27.0], bins=11)
def test_bins_agree_with_a_brute_force_count(values, bins):
    profile = build_profile(pd.DataFrame({"x": np.asarray(values, dtype="float64")}), bins=bins)

    feature = profile.features["x"]
    finite = [v for v in values if v == v]
    assert feature.count == len(finite)
    assert feature.nulls == len(values) - len(finite)
    edges = feature.bin_edges
    assert list(edges) == sorted(set(edges))
    assert len(edges) <= bins - 1
    assert all(feature.min < e <= feature.max for e in edges)
    brute = [0] * (len(edges) + 1)
    for v in finite:
        brute[sum(e <= v for e in edges)] += 1
    assert list(feature.bin_counts) == brute


def test_nulls_and_infinities_are_excluded_and_counted():
    frame = pd.DataFrame({"x": [1.0, np.nan, np.inf, -np.inf, 2.0, None, 3.0]})

    feature = build_profile(frame).features["x"]

    assert feature.count == 3
    assert feature.nulls == 4
    assert feature.mean == pytest.approx(2.0)
    assert sorted(feature.sample) == [1.0, 2.0, 3.0]


def test_a_nullable_integer_column_is_numeric():
    frame = pd.DataFrame({"x": pd.array([1, None, 3], dtype="Int64")})

    feature = build_profile(frame).features["x"]

    assert feature.kind == "numeric"
    assert (feature.count, feature.nulls, feature.max) == (2, 1, 3.0)


def test_the_sample_is_capped_seeded_and_drawn_from_the_whole_column():
    frame = pd.DataFrame({"x": np.arange(100_000, dtype="float64")})

    first = build_profile(frame, sample_size=20, seed=1).features["x"].sample
    again = build_profile(frame, sample_size=20, seed=1).features["x"].sample
    other = build_profile(frame, sample_size=20, seed=2).features["x"].sample

    assert len(first) == 20 and len(set(first)) == 20
    assert first == again
    assert first != other
    # uniform over the column, not the first rows only
    assert max(first) > 50_000
    assert len(build_profile(frame.head(7), sample_size=20).features["x"].sample) == 7


def test_categories_are_counted_and_rare_ones_pooled(frame):
    profile = build_profile(frame, max_categories=2)

    city = profile.features["city"]
    counts = frame["city"].value_counts()
    assert city.kind == "categorical"
    assert dict(city.categories) == {"hanoi": counts["hanoi"], "saigon": counts["saigon"]}
    assert city.other == counts["danang"]
    premium = profile.features["premium"]
    assert dict(premium.categories) == {
        "false": int((~frame["premium"]).sum()),
        "true": int(frame["premium"].sum()),
    }


def test_numeric_codes_become_categories_when_asked(frame):
    profile = build_profile(frame[["avg_daily_trips"]].head(50), categorical=["avg_daily_trips"])

    feature = profile.features["avg_daily_trips"]
    assert feature.kind == "categorical"
    assert feature.count == 50
    assert all(label.isdigit() for label in feature.categories)


def test_columns_that_are_neither_numeric_nor_categorical_are_left_out(frame):
    profile = build_profile(frame)

    assert list(profile.features) == ["conv_rate", "avg_daily_trips", "city", "premium"]
    assert profile.numeric == ["conv_rate", "avg_daily_trips"]
    assert profile.categorical == ["city", "premium"]
    assert profile.rows == len(frame)


def test_a_frame_with_nothing_to_profile_is_an_empty_profile(frame):
    profile = build_profile(frame[["datetime"]], bins=4, sample_size=10, seed=3)

    assert profile.features == {}
    assert (profile.rows, profile.bins, profile.sample_size, profile.seed) == (len(frame), 4, 10, 3)
    assert Profile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile


def test_an_unknown_categorical_column_is_an_error(frame):
    with pytest.raises(ValidationError, match="nope"):
        build_profile(frame, categorical=["nope"])


def test_category_labels_match_across_dtypes():
    assert category_labels(pd.Series([1, 2])).tolist() == ["1", "2"]
    assert category_labels(pd.Series([1.0, 2.5, np.nan])).tolist() == ["1", "2.5", None]
    assert category_labels(pd.Series([True, False])).tolist() == ["true", "false"]
    assert category_labels(pd.Series([True, None, 3, 3.0, "a"])).tolist() == [
        "true", None, "3", "3", "a",
    ]
    assert category_labels(pd.Series(["a", None], dtype="category")).tolist() == ["a", None]


def test_an_empty_or_all_null_column_has_no_statistics():
    frame = pd.DataFrame({"x": [np.nan, np.nan], "c": pd.Series([None, None], dtype=object)})

    profile = build_profile(frame)

    x = profile.features["x"]
    assert (x.count, x.nulls, x.mean, x.bin_edges, x.sample) == (0, 2, None, (), ())
    assert profile.features["c"].categories == {}


def test_a_profile_round_trips_through_json(frame, tmp_path):
    profile = build_profile(frame, sample_size=100)

    path = profile.save(tmp_path / "reference_profile.json")
    text = path.read_text()

    assert Profile.from_dict(json.loads(text)) == profile
    assert Profile.load(path) == profile
    assert "NaN" not in text
    assert [p.name for p in tmp_path.iterdir()] == ["reference_profile.json"]  # no temp file


def test_loading_a_missing_or_malformed_profile_says_what_is_wrong(tmp_path):
    with pytest.raises(NotFoundError, match="no reference profile"):
        Profile.load(tmp_path / "absent.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": 99}')
    with pytest.raises(ValidationError, match="format 1"):
        Profile.load(bad)
    bad.write_text("{not json")
    with pytest.raises(ValidationError, match="cannot be read"):
        Profile.load(bad)
