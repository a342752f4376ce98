"""Drift at its edges: exact boundaries, defaults, categorical quality, missing features."""

import json
import math
import warnings
from dataclasses import FrozenInstanceError

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st
from import_probe import loaded_after
from scipy import stats
from scipy.spatial.distance import jensenshannon

from litemlops.monitoring import DriftThresholds, Profile, build_profile, compare, drift_report
from litemlops.monitoring.drift import EPSILON

COURSE = pd.DataFrame(
    {
        "conv_rate": [0.10, 0.22, 0.31, 0.45, 0.52],
        "acc_rate": [0.60, 0.65, 0.71, 0.80, 0.90],
        "avg_daily_trips": [0.12, 0.30, 0.33, 0.41, 0.58],
    }
)


def cities(hanoi, saigon, danang, hue=0):
    return pd.DataFrame(
        {"city": ["hanoi"] * hanoi + ["saigon"] * saigon + ["danang"] * danang + ["hue"] * hue}
    )


CITIES = build_profile(cities(50, 30, 20))  # shares 0.5, 0.3, 0.2; nothing pooled


def test_importing_the_drift_module_loads_no_third_party_library():
    assert loaded_after("import litemlops.monitoring.drift")["third_party"] == []


def test_thresholds_features_and_reports_are_frozen():
    report = compare(COURSE, COURSE + 0.7)

    for obj, name in (
        (report.thresholds, "ks_pvalue"),
        (report.features["conv_rate"], "drifted"),
        (report, "dataset_drift"),
    ):
        with pytest.raises(FrozenInstanceError, match=f"cannot assign to field '{name}'"):
            setattr(obj, name, False)


@pytest.mark.parametrize("bound", [0.0, 1.0])
def test_thresholds_accept_the_ends_of_their_ranges(bound):
    thresholds = DriftThresholds(
        ks_pvalue=bound, chi2_pvalue=bound, dataset_share=bound, psi=0.0, wasserstein=0.0, js=0.0
    )

    assert (thresholds.ks_pvalue, thresholds.chi2_pvalue, thresholds.dataset_share) == (bound,) * 3
    assert (thresholds.psi, thresholds.wasserstein, thresholds.js) == (0.0, 0.0, 0.0)


@settings(max_examples=examples(30), deadline=None)
@given(threshold=st.floats(0, 1), value=st.floats(0, 1), equal=st.booleans())
def test_a_p_value_drifts_below_its_threshold_and_a_distance_at_or_above(threshold, value, equal):
    value = threshold if equal else value
    thresholds = DriftThresholds(
        ks_pvalue=threshold, chi2_pvalue=threshold, psi=threshold, wasserstein=threshold,
        js=threshold,
    )  # fmt: skip

    for method in ("ks", "chi2"):
        assert thresholds.decides(method, value) is (value < threshold)
    for method in ("psi", "wasserstein", "js"):
        assert thresholds.decides(method, value) is (value >= threshold)


def test_a_statistic_equal_to_its_threshold_decides_as_documented():
    numeric = compare(COURSE, COURSE + 0.7).features["conv_rate"].stats
    categorical = compare(cities(50, 30, 20), cities(20, 30, 50)).features["city"].stats

    def drifted(reference, current, name, **kwargs):
        return compare(reference, current, thresholds=DriftThresholds(**kwargs)).features[name]

    # a p-value at the threshold is not below it: no drift
    assert not drifted(COURSE, COURSE + 0.7, "conv_rate", ks_pvalue=numeric["ks_pvalue"]).drifted
    assert not drifted(
        cities(50, 30, 20), cities(20, 30, 50), "city", chi2_pvalue=categorical["chi2_pvalue"]
    ).drifted
    # a distance at the threshold drifts
    for method in ("psi", "wasserstein"):
        kwargs = {"numeric_method": method, method: numeric[method]}
        assert drifted(COURSE, COURSE + 0.7, "conv_rate", **kwargs).drifted
    js = {"categorical_method": "js", "js": categorical["js"]}
    assert drifted(cities(50, 30, 20), cities(20, 30, 50), "city", **js).drifted


def test_dataset_drift_at_exactly_the_dataset_share():
    current = (COURSE + 0.7).assign(acc_rate=COURSE["acc_rate"])[["conv_rate", "acc_rate"]]

    report = compare(COURSE[["conv_rate", "acc_rate"]], current)

    assert report.share_drifted == 0.5 and report.thresholds.dataset_share == 0.5
    assert report.dataset_drift


def test_not_enough_data_is_never_dataset_drift_even_at_a_zero_share():
    anything = DriftThresholds(dataset_share=0.0)

    few_rows = compare(COURSE, COURSE.head(2), thresholds=anything)
    no_values = compare(COURSE, COURSE * np.nan, thresholds=anything)

    for report in (few_rows, no_values):
        assert report.status == "not enough data" and report.share_drifted == 0.0
        assert not report.dataset_drift
    assert compare(COURSE, COURSE, thresholds=anything).dataset_drift  # judged: 0 >= 0


@pytest.mark.parametrize(("rows", "method"), [(1000, "exact"), (1001, "asymp")])
def test_the_ks_p_value_is_exact_up_to_a_thousand_values_a_side(rows, method):
    rng = np.random.default_rng(7)
    ref, cur = rng.normal(size=rows), rng.normal(0.1, 1, size=rows)

    feature = compare(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]

    other = "asymp" if method == "exact" else "exact"
    expected = stats.ks_2samp(ref, cur, method=method).pvalue
    assert feature.stats["ks_pvalue"] == pytest.approx(expected, rel=1e-9)
    assert stats.ks_2samp(ref, cur, method=other).pvalue != pytest.approx(expected, rel=1e-3)


def test_the_options_are_keyword_only_and_the_frames_may_be_named():
    profile = build_profile(COURSE)

    by_name = drift_report(profile=profile, current=COURSE + 0.7)
    compared = compare(reference=COURSE, current=COURSE + 0.7)

    assert by_name.to_dict() == compared.to_dict()
    with pytest.raises(TypeError, match="positional argument"):
        drift_report(profile, COURSE, DriftThresholds())  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional argument"):
        compare(COURSE, COURSE, ["conv_rate"])  # type: ignore[misc]


@pytest.mark.parametrize(("hanoi", "saigon"), [(2600, 2400), (2600, 2401)])
def test_the_chi_square_is_scaled_to_5000_values_by_default(hanoi, saigon):
    profile = build_profile(cities(2500, 2500, 0))
    n = hanoi + saigon

    feature = drift_report(profile, cities(hanoi, saigon, 0)).features["city"]

    size = min(n, 5000)
    expected = stats.chisquare([hanoi * size / n, saigon * size / n], [size / 2, size / 2])
    assert feature.stats["chi2_stat"] == pytest.approx(expected.statistic, rel=1e-9)


def test_the_seed_defaults_to_zero():
    rng = np.random.default_rng(12)
    reference = pd.DataFrame({"x": rng.normal(size=300)})
    current = pd.DataFrame({"x": rng.normal(size=300)})
    profile = build_profile(reference)

    def capped(run, *args, **kwargs):
        return run(*args, sample_cap=50, **kwargs).features["x"].stats

    assert capped(drift_report, profile, current) == capped(drift_report, profile, current, seed=0)
    assert capped(drift_report, profile, current) != capped(drift_report, profile, current, seed=1)
    assert capped(compare, reference, current) == capped(compare, reference, current, seed=0)
    assert capped(compare, reference, current) != capped(compare, reference, current, seed=1)


def test_five_rows_are_needed_by_default():
    profile = build_profile(COURSE)

    for report in (compare(COURSE, COURSE.head(4)), drift_report(profile, COURSE.head(4))):
        assert report.status == "not enough data"
        assert report.message == "4 current rows; at least 5 are needed"
    assert compare(COURSE, COURSE.head(5)).status == "ok"


def test_ten_quantile_bins_by_default():
    reference = pd.DataFrame({"x": np.arange(100.0)})

    feature = compare(reference, reference).features["x"]

    assert len(feature.distribution["edges"]) == 9
    assert feature.distribution["reference"] == [10] * 10


def test_an_empty_reference_without_a_cap_is_not_enough_data():
    empty = pd.DataFrame({"x": pd.Series([], dtype="float64")})

    report = compare(empty, pd.DataFrame({"x": [1.0] * 5}), sample_cap=None)

    assert report.status == "not enough data"
    assert report.features["x"].n_reference == 0


def test_values_at_the_reference_range_ends_are_in_range():
    reference = pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5]})
    current = pd.DataFrame({"x": [0.0, 1, 2, 5, 6, 7]})  # 6 and 7 outside; 0 and 5 are the ends

    feature = compare(reference, current).features["x"]

    assert feature.quality["out_of_range"] == 2 / 6


def test_a_reference_with_no_values_judges_nothing_and_warns_nothing():
    reference = pd.DataFrame({"x": [np.nan] * 5, "y": [1.0, 2, 3, 4, 5]})
    current = pd.DataFrame({"x": [1.0] * 5, "y": [np.nan] * 5})

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = compare(reference, current)

    for name in ("x", "y"):
        assert report.features[name].status == "not enough data"
        assert math.isnan(report.features[name].quality["out_of_range"])


def test_a_reference_within_the_cap_does_not_change_the_windows_sample():
    # Against a constant reference (std 0: raw units) the Wasserstein distance is the
    # mean distance of the window's sample from it, whatever the reference's size.
    current = pd.DataFrame({"x": np.random.default_rng(3).exponential(size=300)})

    distances = {
        rows: drift_report(build_profile(pd.DataFrame({"x": [0.0] * rows})), current,
                           sample_cap=100).features["x"].stats["wasserstein"]
        for rows in (50, 100)
    }  # fmt: skip

    assert distances[50] == pytest.approx(distances[100], rel=1e-12)


def test_a_capped_sample_draws_each_value_at_most_once():
    values = pd.DataFrame({"x": np.arange(200.0)})

    feature = drift_report(build_profile(values), values, sample_cap=199).features["x"]

    # 199 of the same 200 values on each side: the two CDFs differ by one value at most
    assert feature.stats["ks_stat"] <= 1 / 199 + 1e-12


LABELS = st.lists(st.sampled_from(["hanoi", "saigon", "danang", "hue", "hcm", None]), min_size=1)


@settings(max_examples=examples(25), deadline=None)
@given(labels=LABELS.map(lambda xs: xs[:40]))
@example(labels=["hanoi"] * 2 + ["hue"] * 3 + [None] * 7)  # unseen > seen, nulls > values
@example(labels=["hanoi"] * 2 + ["saigon"] * 3 + ["hue"])  # JS to the last bit
def test_categorical_quality_and_statistics_by_hand(labels):
    feature = drift_report(CITIES, pd.DataFrame({"city": labels})).features["city"]

    nulls = labels.count(None)
    n = len(labels) - nulls
    seen = [labels.count(k) for k in ("hanoi", "saigon", "danang")]
    unseen = n - sum(seen)
    assert (feature.nulls, feature.n_current) == (nulls, n)
    assert feature.quality["null_rate"] == nulls / len(labels)
    if n:
        assert feature.quality["unseen"] == unseen / n
    else:
        assert math.isnan(feature.quality["unseen"])
    if n < 5:
        assert feature.status == "not enough data" and not feature.drifted
        return
    assert feature.distribution["current"] == [*seen, unseen]
    shares = np.asarray([50.0, 30, 20, 0] if unseen else [50.0, 30, 20]) / 100
    got = np.asarray([*seen, unseen] if unseen else seen, dtype="float64")
    assert feature.stats["js"] == float(jensenshannon(shares, got / n, base=2))
    smoothed = np.maximum(shares, EPSILON)
    expected = stats.chisquare(got, smoothed / smoothed.sum() * n)
    assert feature.stats["chi2_stat"] == pytest.approx(expected.statistic, rel=1e-9)


def test_a_categorical_feature_needs_enough_values_on_each_side():
    short_window = compare(cities(50, 30, 20), cities(1, 1, 1)).features["city"]
    short_reference = compare(cities(2, 1, 0), cities(20, 30, 50)).features["city"]

    for feature in (short_window, short_reference):
        assert feature.status == "not enough data" and not feature.drifted
        assert all(math.isnan(v) for v in feature.stats.values())


def test_rare_categories_pooled_by_the_reference_keep_their_bucket():
    reference = build_profile(cities(50, 30, 15, hue=5), max_categories=3)  # hue: other
    feature = drift_report(reference, cities(50, 30, 20)).features["city"]

    assert feature.distribution["reference"] == [50, 30, 15, 5]
    expected = jensenshannon([0.5, 0.3, 0.15, 0.05], [0.5, 0.3, 0.2, 0.0], base=2)
    assert feature.stats["js"] == pytest.approx(expected, rel=1e-9)


def missing_case(profile):
    """The course's window without acc_rate, against a profile that also has a city."""
    thresholds = DriftThresholds(numeric_method="psi", categorical_method="js")
    return drift_report(profile, (COURSE + 0.7).drop(columns="acc_rate"), thresholds=thresholds)


def test_missing_features_report_their_kinds_statistics_and_method():
    profile = build_profile(COURSE.assign(city=["a", "b", "a", "b", "a"]))

    report = missing_case(profile)

    numeric, categorical = report.features["acc_rate"], report.features["city"]
    assert (numeric.kind, numeric.method) == ("numeric", "psi")
    assert list(numeric.stats) == ["ks_pvalue", "ks_stat", "psi", "wasserstein"]
    assert (categorical.kind, categorical.method) == ("categorical", "js")
    assert list(categorical.stats) == ["chi2_stat", "chi2_pvalue", "js"]
    for feature in (numeric, categorical):
        assert feature.status == "missing"
        assert all(math.isnan(v) for v in feature.stats.values())
        assert (feature.n_current, feature.nulls, feature.drifted) == (0, 5, False)
        assert feature.quality == {"null_rate": 1.0}


def test_a_profile_read_back_from_json_gives_the_same_report():
    profile = build_profile(COURSE.assign(city=["a", "b", "a", "b", "a"]))
    loaded = Profile.from_dict(json.loads(json.dumps(profile.to_dict())))

    window = (COURSE + 0.7).assign(city=["a", "a", "a", "a", "c"])
    assert drift_report(loaded, window).to_dict() == drift_report(profile, window).to_dict()
    assert missing_case(loaded).to_dict() == missing_case(profile).to_dict()


@pytest.mark.parametrize(
    "times",
    [
        ["2026-01-01 00:30", "2026-01-01 00:00"],
        ["2026-01-01T00:30:00+00:00", "2026-01-01T01:00:00+01:00"],
    ],
    ids=["naive", "mixed-offsets"],
)
def test_the_window_records_its_timestamps_in_utc(times):
    current = (COURSE + 0.7).assign(timestamp=[*times, *times, times[0]])

    report = drift_report(build_profile(COURSE), current)

    assert report.window["start"] == "2026-01-01T00:00:00+00:00"
    assert report.window["end"] == "2026-01-01T00:30:00+00:00"
