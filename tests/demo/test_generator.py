from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from litemlops.demo.generator import (
    DEFAULT_END,
    completion_probability,
    generate_driver_stats,
    generate_labels,
    latest_per_event_time,
    write_sample,
)
from litemlops.errors import LitemlopsError, ValidationError

DATA_DIR = Path(__file__).resolve().parents[2] / "data"


@pytest.fixture(scope="module")
def stats():
    return generate_driver_stats(n_drivers=20, hours=24 * 7, random_state=1)


@pytest.fixture(scope="module")
def labels(stats):
    return generate_labels(stats, n_rows=2000, random_state=2)


def brute_force_point_in_time(stats, labels):
    """The features each label sees, found row by row: an oracle for merge_asof."""
    rows = []
    for label in labels.itertuples():
        seen = stats[
            (stats.driver_id == label.driver_id) & (stats.datetime <= label.event_timestamp)
        ]
        rows.append(seen.sort_values(["datetime", "created"]).iloc[-1])
    return pd.DataFrame(rows).reset_index(drop=True)


def auc(score, outcome):
    """Probability that a random positive outranks a random negative (rank formula)."""
    ranks = pd.Series(score).rank().to_numpy()
    positives = int(outcome.sum())
    negatives = len(outcome) - positives
    return (ranks[outcome == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives)


def test_driver_stats_have_the_published_columns_and_dtypes(stats):
    assert list(stats.columns) == [
        "driver_id",
        "datetime",
        "created",
        "conv_rate",
        "acc_rate",
        "avg_daily_trips",
    ]
    assert str(stats.driver_id.dtype) == "int64"
    assert str(stats.datetime.dtype) == "datetime64[us, UTC]"
    assert str(stats.created.dtype) == "datetime64[us, UTC]"
    assert str(stats.conv_rate.dtype) == "float64"
    assert str(stats.acc_rate.dtype) == "float64"
    assert str(stats.avg_daily_trips.dtype) == "int64"
    assert stats.index.equals(pd.RangeIndex(len(stats)))


def test_driver_stats_values_are_in_range(stats):
    assert set(stats.driver_id) == set(range(1001, 1021))
    assert stats.conv_rate.between(0, 1).all()
    assert stats.acc_rate.between(0, 1).all()
    assert (stats.avg_daily_trips >= 0).all()
    assert (stats.created >= stats.datetime).all()
    end = pd.Timestamp(DEFAULT_END)
    assert stats.datetime.min() >= end - pd.Timedelta(hours=24 * 7)
    assert stats.datetime.max() < end
    assert stats.created.max() <= end


def test_rows_come_in_arrival_order_not_event_order(stats):
    assert stats.created.is_monotonic_increasing
    assert not stats.datetime.is_monotonic_increasing


def test_times_are_irregular_with_some_hours_missing(stats):
    unique = stats.drop_duplicates(["driver_id", "datetime"])
    per_driver = unique.groupby("driver_id").size()
    assert (per_driver < 24 * 7).all()
    assert per_driver.mean() > 0.9 * 24 * 7
    assert unique.datetime.dt.minute.nunique() > 30


def test_drivers_differ_persistently(stats):
    means = stats.groupby("driver_id")[["conv_rate", "acc_rate", "avg_daily_trips"]].mean()
    within = stats.groupby("driver_id")["conv_rate"].std().mean()
    assert means.conv_rate.std() > 2 * within / np.sqrt(24 * 7)
    assert means.conv_rate.max() - means.conv_rate.min() > 0.1
    assert means.avg_daily_trips.max() / means.avg_daily_trips.min() > 1.5


def test_about_one_percent_are_exact_duplicates(stats):
    share = stats.duplicated().mean()
    assert 0.005 <= share <= 0.02


def test_about_one_percent_are_corrections_with_later_created_and_other_values(stats):
    distinct = stats.drop_duplicates()
    versions = distinct.groupby(["driver_id", "datetime"]).size()
    corrected_keys = versions[versions > 1].index
    assert 0.005 <= len(corrected_keys) / len(stats) <= 0.02

    corrected = distinct.set_index(["driver_id", "datetime"]).loc[corrected_keys]
    for _, group in corrected.groupby(level=["driver_id", "datetime"]):
        assert group.created.nunique() == len(group)
        assert group.avg_daily_trips.nunique() == len(group)


def test_about_two_percent_arrive_hours_late(stats):
    originals = stats.drop_duplicates(["driver_id", "datetime"], keep="first")
    lag = originals.created - originals.datetime
    share = (lag >= pd.Timedelta(hours=1)).mean()
    assert 0.01 <= share <= 0.03
    assert (lag[lag < pd.Timedelta(hours=1)] <= pd.Timedelta(minutes=2)).all()


def test_same_seed_gives_the_same_data_and_another_seed_other_data():
    a = generate_driver_stats(5, 48, random_state=7)
    b = generate_driver_stats(5, 48, random_state=np.random.default_rng(7))
    c = generate_driver_stats(5, 48, random_state=8)

    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(c)
    pd.testing.assert_frame_equal(generate_labels(a, 50, 3), generate_labels(a, 50, 3))


def test_end_sets_the_window_in_any_timezone():
    end = datetime(2025, 6, 1, 12, tzinfo=timezone(timedelta(hours=7)))

    stats = generate_driver_stats(3, 5, end=end)

    assert stats.datetime.max() < pd.Timestamp(end)
    assert stats.datetime.min() >= pd.Timestamp(end) - pd.Timedelta(hours=5)
    assert str(stats.datetime.dtype) == "datetime64[us, UTC]"


@pytest.mark.parametrize(("n_drivers", "hours"), [(1, 1), (1, 2), (3, 1), (100_000, 1)])
def test_works_from_one_driver_and_one_hour_to_many_drivers(n_drivers, hours):
    stats = generate_driver_stats(n_drivers, hours)

    assert stats.driver_id.nunique() == n_drivers
    assert len(generate_labels(stats, 5)) == 5


@pytest.mark.parametrize(
    "kwargs",
    [
        {"n_drivers": 0},
        {"n_drivers": -3},
        {"hours": 0},
        {"hours": 2.5},
        {"n_drivers": True},
        {"end": datetime(2026, 1, 1)},
    ],
)
def test_invalid_arguments_raise_validation_error(kwargs):
    (name,) = kwargs
    with pytest.raises(ValidationError, match=f"^{name} must be ") as info:
        generate_driver_stats(**kwargs)

    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, LitemlopsError)


def test_labels_have_the_published_columns_and_dtypes(labels):
    assert list(labels.columns) == ["driver_id", "event_timestamp", "trip_completed"]
    assert str(labels.driver_id.dtype) == "int64"
    assert str(labels.event_timestamp.dtype) == "datetime64[us, UTC]"
    assert str(labels.trip_completed.dtype) == "int64"
    assert set(labels.trip_completed) == {0, 1}
    assert labels.event_timestamp.is_monotonic_increasing
    assert len(labels) == 2000


def test_every_label_comes_after_its_drivers_first_features(stats, labels):
    first = stats.groupby("driver_id").datetime.min()
    assert (labels.event_timestamp.to_numpy() >= first[labels.driver_id].to_numpy()).all()
    assert labels.event_timestamp.max() <= stats.datetime.max()


def test_labels_depend_on_the_point_in_time_features(stats, labels):
    features = brute_force_point_in_time(stats, labels.iloc[::4].reset_index(drop=True))
    outcome = labels.trip_completed.iloc[::4].to_numpy()

    completed = features.conv_rate[outcome == 1].mean()
    not_completed = features.conv_rate[outcome == 0].mean()
    assert completed - not_completed > 0.05
    assert auc(completion_probability(features), outcome) > 0.7


def test_latest_per_event_time_matches_the_brute_force_join(stats, labels):
    sample = labels.iloc[:200]
    expected = brute_force_point_in_time(stats, sample)

    got = pd.merge_asof(
        sample,
        latest_per_event_time(stats),
        left_on="event_timestamp",
        right_on="datetime",
        by="driver_id",
    )

    for column in ["datetime", "created", "conv_rate", "acc_rate", "avg_daily_trips"]:
        assert got[column].tolist() == expected[column].tolist(), column


def test_labels_reject_frames_without_the_feature_columns(stats):
    with pytest.raises(ValidationError, match="conv_rate") as info:
        generate_labels(stats.drop(columns="conv_rate"))

    assert info.value.column == "conv_rate"


def read_sample(directory: Path) -> dict[str, pd.DataFrame]:
    frames = {}
    for name in ("driver_stats", "labels"):
        frame = pd.read_csv(directory / f"{name}.csv")
        for column in ("datetime", "created", "event_timestamp"):
            if column in frame:
                frame[column] = pd.to_datetime(frame[column], utc=True).dt.as_unit("us")
        frames[name] = frame
    return frames


def test_sample_timestamps_are_iso_utc_and_floats_have_six_decimals(tmp_path):
    paths = write_sample(tmp_path)

    assert set(paths) == {"driver_stats", "labels"}
    header, first = paths["driver_stats"].read_text().splitlines()[:2]
    assert header == "driver_id,datetime,created,conv_rate,acc_rate,avg_daily_trips"
    _, event, created, conv, acc, _ = first.split(",")
    assert event.endswith("+00:00") and "T" in event
    assert datetime.fromisoformat(created).tzinfo == UTC
    assert len(conv.split(".")[1]) == 6
    assert len(acc.split(".")[1]) == 6


def test_sample_round_trips_through_csv(tmp_path):
    write_sample(tmp_path, random_state=5)

    frames = read_sample(tmp_path)
    rng = np.random.default_rng(5)
    stats = generate_driver_stats(5, 48, random_state=rng)
    labels = generate_labels(stats, 40, random_state=rng)

    pd.testing.assert_frame_equal(frames["driver_stats"], stats, check_exact=False, atol=1e-6)
    pd.testing.assert_frame_equal(frames["labels"], labels)


def test_committed_sample_is_what_write_sample_makes(tmp_path):
    write_sample(tmp_path)

    committed = read_sample(DATA_DIR)
    regenerated = read_sample(tmp_path)

    for name in ("driver_stats", "labels"):
        pd.testing.assert_frame_equal(
            committed[name], regenerated[name], check_exact=False, atol=1e-6
        )


def test_committed_sample_holds_duplicates_corrections_and_late_rows():
    stats = read_sample(DATA_DIR)["driver_stats"]

    assert stats.duplicated().any()
    assert (stats.drop_duplicates().duplicated(["driver_id", "datetime"])).any()
    assert ((stats.created - stats.datetime) >= pd.Timedelta(hours=1)).any()
