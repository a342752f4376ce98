import json
import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from litemlops.errors import ValidationError
from litemlops.monitoring import DriftThresholds, build_profile, compare, drift_report
from litemlops.monitoring.drift import EPSILON

# The course's drift check: five reference rows, and the same rows shifted up by 0.70.
COURSE = pd.DataFrame(
    {
        "conv_rate": [0.10, 0.22, 0.31, 0.45, 0.52],
        "acc_rate": [0.60, 0.65, 0.71, 0.80, 0.90],
        "avg_daily_trips": [0.12, 0.30, 0.33, 0.41, 0.58],
    }
)


def test_the_course_case_drifts_with_the_exact_ks_p_value():
    report = compare(COURSE, COURSE + 0.70)

    # 5 against 5, fully separated: 2 of the C(10, 5) = 252 orderings are as extreme
    for name in COURSE.columns:
        feature = report.features[name]
        assert feature.stats["ks_stat"] == 1.0
        assert feature.stats["ks_pvalue"] == pytest.approx(2 / 252, rel=1e-12)
        assert feature.drifted
    assert report.dataset_drift
    assert report.share_drifted == 1.0
    assert report.status == "ok"
    assert (report.n_reference, report.n_current) == (5, 5)
    assert report.metrics()["drift.dataset"] == 1.0


def test_the_course_reference_against_itself_does_not_drift():
    report = compare(COURSE, COURSE)

    assert not report.dataset_drift
    assert all(f.stats["ks_pvalue"] == 1.0 for f in report.features.values())


def test_ks_matches_scipy_exact_on_small_samples():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(size=20), rng.normal(0.5, 1, size=30)

    feature = compare(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]

    expected = stats.ks_2samp(ref, cur, method="exact")
    assert feature.stats["ks_stat"] == pytest.approx(expected.statistic)
    assert feature.stats["ks_pvalue"] == pytest.approx(expected.pvalue)


def test_psi_by_hand_on_two_bins():
    # reference 1..6 in two bins split at the median 3.5: shares 1/2, 1/2
    reference = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6]})
    current = pd.DataFrame({"x": [1.0, 1, 1, 1, 1, 6]})  # shares 5/6, 1/6

    report = compare(reference, current, bins=2)

    by_hand = (5 / 6 - 1 / 2) * math.log((5 / 6) / (1 / 2)) + (1 / 6 - 1 / 2) * math.log(
        (1 / 6) / (1 / 2)
    )
    assert report.features["x"].stats["psi"] == pytest.approx(by_hand)
    assert by_hand == pytest.approx(math.log(5) / 3)


def test_psi_counts_an_empty_bin_as_epsilon():
    reference = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6]})
    current = pd.DataFrame({"x": [1.0, 1, 2, 2, 3]})  # all in the first bin

    psi = compare(reference, current, bins=2).features["x"].stats["psi"]

    by_hand = (1 - 0.5) * math.log(1 / 0.5) + (EPSILON - 0.5) * math.log(EPSILON / 0.5)
    assert psi == pytest.approx(by_hand)
    assert math.isfinite(psi)


def test_wasserstein_is_scaled_by_the_reference_std():
    rng = np.random.default_rng(5)
    ref, cur = rng.normal(0, 2, size=500), rng.normal(1, 2, size=400)

    feature = compare(pd.DataFrame({"x": ref}), pd.DataFrame({"x": cur})).features["x"]

    expected = stats.wasserstein_distance(ref, cur) / np.std(ref)
    assert feature.stats["wasserstein"] == pytest.approx(expected)
    assert expected == pytest.approx(0.5, abs=0.15)  # a shift of half a std


def test_a_constant_reference_keeps_the_raw_wasserstein_distance():
    report = compare(pd.DataFrame({"x": [2.0] * 6}), pd.DataFrame({"x": [2.5] * 6}))

    assert report.features["x"].stats["wasserstein"] == pytest.approx(0.5)


def test_the_distribution_shows_both_sides_on_the_psi_bins():
    reference = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6]})
    current = pd.DataFrame({"x": [1.0, 1, 1, 1, 1, 6, float("nan")]})

    feature = compare(reference, current, bins=2).features["x"]

    assert feature.distribution == {"edges": [3.5], "reference": [3, 3], "current": [5, 1]}
    assert json.loads(json.dumps(feature.to_dict()))["distribution"] == feature.distribution


def test_a_value_on_a_bin_edge_counts_in_the_bin_above_it():
    reference = pd.DataFrame({"x": [1.0, 2, 3, 4, 5, 6]})  # one edge: 3.5
    current = pd.DataFrame({"x": [3.5, 3.5, 3.5, 3.5, 3.5, 1.0]})

    feature = compare(reference, current, bins=2).features["x"]

    assert feature.distribution["current"] == [1, 5]


def test_a_categorical_distribution_pools_unseen_categories_as_other():
    feature = compare(cities(50, 30, 20), cities(40, 30, 20, hue=10)).features["city"]

    shown = feature.distribution
    assert dict(zip(shown["categories"], shown["reference"], strict=True)) == {
        "hanoi": 50, "saigon": 30, "danang": 20, "(other)": 0,
    }
    assert dict(zip(shown["categories"], shown["current"], strict=True)) == {
        "hanoi": 40, "saigon": 30, "danang": 20, "(other)": 10,
    }


def test_too_few_values_show_no_distribution():
    feature = compare(COURSE, COURSE.head(1)).features["conv_rate"]

    assert feature.status == "not enough data" and feature.distribution == {}


def cities(hanoi, saigon, danang, hue=0):
    return pd.DataFrame(
        {"city": ["hanoi"] * hanoi + ["saigon"] * saigon + ["danang"] * danang + ["hue"] * hue}
    )


def test_chi_square_and_jensen_shannon_on_a_categorical_shift():
    report = compare(cities(50, 30, 20), cities(20, 30, 50))

    feature = report.features["city"]
    expected = stats.chisquare([20, 30, 50], [50, 30, 20])
    assert feature.kind == "categorical"
    assert feature.stats["chi2_stat"] == pytest.approx(63.0)  # 30²/50 + 0 + 30²/20
    assert feature.stats["chi2_pvalue"] == pytest.approx(expected.pvalue)
    assert feature.stats["js"] == pytest.approx(
        jensenshannon([0.5, 0.3, 0.2], [0.2, 0.3, 0.5], base=2)
    )
    assert feature.drifted and report.dataset_drift


def test_unseen_categories_share_the_other_bucket_and_are_counted():
    report = compare(cities(50, 30, 20), cities(40, 30, 20, hue=10))

    feature = report.features["city"]
    shares = np.maximum([0.5, 0.3, 0.2, 0.0], EPSILON)
    expected = stats.chisquare([40, 30, 20, 10], shares / shares.sum() * 100)
    assert feature.stats["chi2_pvalue"] == pytest.approx(expected.pvalue)
    assert feature.stats["js"] == pytest.approx(
        jensenshannon([0.5, 0.3, 0.2, 0.0], [0.4, 0.3, 0.2, 0.1], base=2)
    )
    assert feature.quality["unseen"] == pytest.approx(0.1)
    assert report.metrics()["quality.city.unseen"] == pytest.approx(0.1)


def test_the_same_categories_do_not_drift():
    report = compare(cities(50, 30, 20), cities(51, 29, 20))

    assert not report.features["city"].drifted


def test_a_large_window_of_practically_the_same_distribution_drifts_only_without_the_cap():
    # A shift of 2% of a standard deviation matters to no model, but at 200,000
    # rows a side the KS test calls it significant; capped at 5,000 it does not.
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"x": rng.normal(size=200_000)})
    current = pd.DataFrame({"x": rng.normal(0.02, 1, size=200_000)})
    profile = build_profile(reference, sample_size=200_000)

    capped = drift_report(profile, current)
    uncapped = drift_report(profile, current, sample_cap=None)

    assert capped.features["x"].stats["ks_pvalue"] > 0.05
    assert not capped.dataset_drift
    assert uncapped.features["x"].stats["ks_pvalue"] < 0.05
    assert uncapped.dataset_drift
    # the distances do not grow with the sample: both call it no drift
    for report in (capped, uncapped):
        assert report.features["x"].stats["psi"] < 0.2
        assert report.features["x"].stats["wasserstein"] < 0.1


def test_too_few_current_rows_is_not_enough_data_never_drift():
    report = compare(COURSE, COURSE.head(3) + 10)

    assert report.status == "not enough data"
    assert "3 current rows" in report.message
    assert not report.dataset_drift
    assert all(f.status == "not enough data" and not f.drifted for f in report.features.values())
    metrics = report.metrics()
    assert metrics["drift.dataset"] == 0.0
    assert "drift.conv_rate.ks_pvalue" not in metrics
    assert metrics["drift.conv_rate.drifted"] == 0.0


def test_a_window_where_no_feature_has_enough_values_is_not_enough_data():
    current = (COURSE + 0.7).assign(conv_rate=np.nan, acc_rate=np.nan, avg_daily_trips=np.nan)
    few = drift_report(build_profile(COURSE.head(3)), COURSE + 0.7)  # 3 reference values

    for report in (compare(COURSE, current), few):
        assert report.n_current == 5  # enough rows: no feature has enough values
        assert report.status == "not enough data"
        assert report.message == "no feature has enough non-null values on both sides"
        assert all(f.status == "not enough data" for f in report.features.values())
        assert report.share_drifted == 0.0 and not report.dataset_drift


def test_an_empty_window_is_a_report_too():
    report = compare(COURSE, COURSE.head(0))

    assert report.status == "not enough data"
    assert report.n_current == 0
    assert report.metrics() == {
        "drift.dataset": 0.0,
        "drift.share": 0.0,
        **{f"drift.{name}.drifted": 0.0 for name in COURSE.columns},
    }


def test_null_and_non_finite_values_are_left_out_of_the_statistics_and_counted():
    rng = np.random.default_rng(2)
    reference = pd.DataFrame({"x": rng.normal(size=300)})
    clean = rng.normal(size=100)
    dirty = pd.DataFrame({"x": [*clean, np.nan, None, np.inf, -np.inf]}, dtype="float64")

    with_nulls = compare(reference, dirty).features["x"]
    without = compare(reference, pd.DataFrame({"x": clean})).features["x"]

    assert with_nulls.stats == without.stats
    assert with_nulls.nulls == 4 and with_nulls.n_current == 100
    assert with_nulls.quality["null_rate"] == pytest.approx(4 / 104)


def test_a_feature_with_only_nulls_is_not_judged_and_the_others_are():
    current = (COURSE + 0.7).assign(acc_rate=np.nan)

    report = compare(COURSE, current)

    assert report.features["acc_rate"].status == "not enough data"
    assert report.features["acc_rate"].quality["null_rate"] == 1.0
    assert report.share_drifted == 1.0  # 2 of the 2 judged features
    assert report.dataset_drift


def test_values_outside_the_reference_range_are_a_quality_share():
    reference = pd.DataFrame({"x": [0.0, 1, 2, 3, 4, 5]})
    current = pd.DataFrame({"x": [-1.0, 0, 2, 5, 6, 7, np.nan]})

    report = compare(reference, current)

    assert report.features["x"].quality["out_of_range"] == pytest.approx(3 / 6)
    assert report.metrics()["quality.x.out_of_range"] == pytest.approx(0.5)
    assert report.metrics()["quality.x.null_rate"] == pytest.approx(1 / 7)


def test_a_profiled_feature_missing_from_the_window_is_reported_missing():
    report = drift_report(build_profile(COURSE), (COURSE + 0.7).drop(columns="acc_rate"))

    feature = report.features["acc_rate"]
    assert feature.status == "missing"
    assert not feature.drifted
    assert report.metrics()["quality.acc_rate.null_rate"] == 1.0
    assert report.dataset_drift  # the two present features drifted


def test_metrics_are_flat_numbers_with_the_documented_names():
    reference = COURSE.assign(city=["a", "b", "a", "b", "a"])
    current = (COURSE + 0.7).assign(city=["a", "a", "a", "a", "c"])

    metrics = compare(reference, current).metrics()

    expected = {"drift.dataset", "drift.share"}
    for name in COURSE.columns:
        expected |= {f"drift.{name}.{s}" for s in ("ks_pvalue", "ks_stat", "psi", "wasserstein")}
        expected |= {f"drift.{name}.drifted", f"quality.{name}.null_rate"}
        expected.add(f"quality.{name}.out_of_range")
    expected |= {"drift.city.chi2_pvalue", "drift.city.js", "drift.city.drifted"}
    expected |= {"quality.city.null_rate", "quality.city.unseen"}
    assert set(metrics) == expected
    assert all(isinstance(v, float) and math.isfinite(v) for v in metrics.values())


def test_the_deciding_statistic_and_the_thresholds_are_configurable():
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({"x": rng.normal(size=2000)})
    current = pd.DataFrame({"x": rng.normal(0.15, 1, size=2000)})

    by_ks = compare(reference, current)
    by_psi = compare(reference, current, thresholds=DriftThresholds(numeric_method="psi"))
    by_wasserstein = compare(
        reference, current, thresholds=DriftThresholds(numeric_method="wasserstein")
    )

    assert by_ks.features["x"].drifted  # significant at 2,000 rows...
    assert not by_psi.features["x"].drifted  # ...but a small shift by PSI (< 0.2)
    assert by_wasserstein.features["x"].drifted  # and above 0.1 std
    assert by_psi.features["x"].method == "psi"
    strict = DriftThresholds(ks_pvalue=1e-12)
    assert not compare(reference, current, thresholds=strict).features["x"].drifted


def test_the_dataset_share_decides_dataset_drift():
    current = (COURSE + 0.7).assign(acc_rate=COURSE["acc_rate"])  # 2 of 3 drift

    assert compare(COURSE, current).dataset_drift
    high = DriftThresholds(dataset_share=0.75)
    report = compare(COURSE, current, thresholds=high)
    assert report.share_drifted == pytest.approx(2 / 3)
    assert not report.dataset_drift


@pytest.mark.parametrize(
    "kwargs",
    [{"numeric_method": "t-test"}, {"categorical_method": "ks"}, {"ks_pvalue": 2.0},
     {"dataset_share": -0.1}, {"psi": -1.0}],
)
def test_bad_thresholds_are_refused(kwargs):
    (field,) = kwargs
    with pytest.raises(ValidationError, match=f"^{field} must be "):
        DriftThresholds(**kwargs)


def test_the_report_is_json_safe_and_records_its_window():
    current = (COURSE + 0.7).assign(
        timestamp=pd.date_range("2026-01-01", periods=5, freq="min", tz="UTC")
    )
    since = datetime(2026, 1, 1, tzinfo=UTC)

    report = drift_report(
        build_profile(COURSE), current.head(3), window={"since": since, "last": None}
    )

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["window"]["since"] == "2026-01-01T00:00:00+00:00"
    assert data["window"]["start"] == "2026-01-01T00:00:00+00:00"
    assert data["window"]["end"] == "2026-01-01T00:02:00+00:00"
    assert data["window"]["rows"] == 3
    assert data["features"]["conv_rate"]["stats"]["ks_pvalue"] is None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sample_cap": 1}, r"^sample_cap must be at least 2 \(or None\), got 1$"),
        ({"sample_cap": -5}, r"^sample_cap must be at least 2 \(or None\), got -5$"),
        ({"min_rows": 0}, r"^min_rows must be at least 1, got 0$"),
    ],
)
def test_a_sample_cap_below_two_or_no_minimum_of_rows_is_refused(kwargs, message):
    with pytest.raises(ValidationError, match=message):
        drift_report(build_profile(COURSE), COURSE + 0.7, **kwargs)


def test_the_smallest_sample_cap_and_minimum_of_rows_are_accepted():
    smallest = drift_report(build_profile(COURSE), COURSE + 0.7, sample_cap=2, min_rows=1)
    one_row = drift_report(build_profile(COURSE), COURSE.head(1) + 0.7, min_rows=1)

    assert smallest.status == "ok" and len(smallest.features) == 3
    assert one_row.status == "ok" and one_row.n_current == 1
    assert all(f.n_current == 1 for f in one_row.features.values())


def test_compare_refuses_columns_that_are_neither_numeric_nor_categorical():
    times = pd.DataFrame({"t": pd.date_range("2026-01-01", periods=5, freq="min", tz="UTC")})

    with pytest.raises(ValidationError, match=r"^none of \['t'\] is numeric or categorical$"):
        compare(times, times)
    both = times.assign(x=COURSE["conv_rate"])  # a numeric column, but not among those chosen
    with pytest.raises(ValidationError, match=r"^none of \['t'\] is numeric or categorical$"):
        compare(both, both, columns=["t"])


def test_a_feature_with_one_category_on_both_sides_cannot_shift():
    only = pd.DataFrame({"city": ["hanoi"] * 5})

    for method in ("chi2", "js"):
        thresholds = DriftThresholds(categorical_method=method)
        feature = compare(only, only, thresholds=thresholds).features["city"]
        assert feature.status == "ok" and not feature.drifted
        assert feature.stats == {"chi2_stat": 0.0, "chi2_pvalue": 1.0, "js": 0.0}
        assert feature.distribution["current"] == [5, 0]


@pytest.mark.filterwarnings("ignore:Could not infer format")
@pytest.mark.parametrize("times", [["not a time"] * 5, [None] * 5], ids=["text", "nulls"])
def test_a_timestamp_column_without_one_time_records_no_start_or_end(times):
    report = drift_report(build_profile(COURSE), (COURSE + 0.7).assign(timestamp=times))

    assert report.window == {"rows": 5}
    assert report.status == "ok"  # the timestamps are not a feature of the profile


def test_compare_says_which_columns_are_missing():
    with pytest.raises(ValidationError, match=r"current has no column\(s\) \['acc_rate'\]"):
        compare(COURSE, COURSE.drop(columns="acc_rate"), columns=["conv_rate", "acc_rate"])
    with pytest.raises(ValidationError, match="share no column"):
        compare(COURSE, pd.DataFrame({"other": [1.0] * 5}))
    with pytest.raises(ValidationError, match="categorical"):
        compare(COURSE, COURSE, categorical=["city"])


def test_subsampling_is_seeded():
    rng = np.random.default_rng(9)
    reference = pd.DataFrame({"x": rng.normal(size=20_000)})
    current = pd.DataFrame({"x": rng.normal(size=20_000)})

    first = compare(reference, current, seed=1).features["x"].stats
    again = compare(reference, current, seed=1).features["x"].stats
    other = compare(reference, current, seed=2).features["x"].stats

    assert first == again
    assert first["ks_pvalue"] != other["ks_pvalue"]


def test_a_large_categorical_window_is_tested_at_the_cap():
    # 50.5% against 50%: significant at 400,000 rows, not at 5,000
    reference = cities(50_000, 50_000, 0)
    current = cities(202_000, 198_000, 0)

    capped = compare(reference, current).features["city"]
    uncapped = compare(reference, current, sample_cap=None).features["city"]

    expected = stats.chisquare([202_000, 198_000], [200_000, 200_000])
    assert uncapped.stats["chi2_pvalue"] == pytest.approx(expected.pvalue)
    assert uncapped.drifted
    scaled = stats.chisquare([2525, 2475], [2500, 2500])
    assert capped.stats["chi2_pvalue"] == pytest.approx(scaled.pvalue)
    assert not capped.drifted


def test_the_config_defaults_are_the_reports_defaults():
    """`[monitoring]` repeats the thresholds (config imports no monitoring code): the two
    must not drift apart."""
    import dataclasses

    from litemlops.config import MonitoringConfig
    from litemlops.monitoring.drift import DriftThresholds

    shared = {f.name for f in dataclasses.fields(MonitoringConfig)} & {
        f.name for f in dataclasses.fields(DriftThresholds)
    }
    assert shared == {"ks_pvalue", "psi", "wasserstein", "chi2_pvalue", "js", "dataset_share"}
    for name in shared:
        assert getattr(MonitoringConfig(), name) == getattr(DriftThresholds(), name), name
