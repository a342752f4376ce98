"""Delayed-label performance at its edges: defaults, keyword-only options, the window's
ends, which row a label is about, ids and times of any shape, and metrics by hand."""

import math
import warnings
from dataclasses import FrozenInstanceError
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import example, given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk
from test_performance import T0, at, inference, labels, preds, single

from litemlops.errors import ValidationError
from litemlops.monitoring.performance import PerformanceReport, labelled_rows, performance_report

COUNTS = (
    "predictions",
    "labelled",
    "unlabeled",
    "duplicate_labels",
    "unknown_labels",
    "invalid_labels",
    "ambiguous_requests",
)


def test_a_report_counts_nothing_by_default_and_is_frozen():
    report = PerformanceReport(kind="classifier", status="no predictions")

    assert {name: getattr(report, name) for name in COUNTS} == dict.fromkeys(COUNTS, 0)
    assert report.metrics()["performance.labels"] == 0.0
    with pytest.raises(FrozenInstanceError, match="cannot assign to field 'labelled'"):
        report.labelled = 1  # type: ignore[misc]


def test_options_are_keyword_only():
    rows, fb = preds([single("a", 0, 1.0)]), labels(("a", at(1), 1.0))

    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        performance_report(rows, fb, "regressor")  # type: ignore[misc]
    with pytest.raises(TypeError, match="takes 2 positional arguments but 3 were given"):
        labelled_rows(rows, fb, "regressor")  # type: ignore[misc]


@pytest.mark.parametrize(
    "window", [0, 0.0, -0.5, timedelta(0), -timedelta(seconds=1), math.nan, math.inf]
)
def test_a_window_must_be_a_positive_finite_duration(window):
    with pytest.raises(ValidationError, match="window must be a positive duration, got"):
        performance_report(preds([single("a", 0, 1.0)]), labels(), window=window)


def test_a_window_holds_the_predictions_at_both_its_ends():
    # Now is 60 s after T0 and the window 30 s long: [30 s, 60 s], ends included.
    times = {"before": 29.999, "start": 30, "middle": 45, "end": 60, "after": 60.001}
    rows = [single(name, t, 0.9) for name, t in times.items()]
    fb = labels(*[(name, at(61), 1) for name in times])

    report = performance_report(preds(rows), fb, window=30, now=T0 + timedelta(seconds=60))

    assert (report.predictions, report.labelled, report.unknown_labels) == (3, 3, 0)
    assert (report.window_start, report.window_end) == (
        T0 + timedelta(seconds=30),
        T0 + timedelta(seconds=60),
    )


def test_a_kind_read_at_run_time_measures_as_its_literal_does():
    kind = "REGRESSOR".lower()  # as a flag or a config file gives it: a string of its own
    rows = [single("a", 0, 2.0), single("b", 0, 5.0)]
    fb = labels(("a", at(1), 1.0), ("b", at(1), 7.5))

    report = performance_report(preds(rows), fb, kind=kind)

    assert (report.kind, report.labelled, report.invalid_labels) == ("regressor", 2, 0)
    assert report.rmse == pytest.approx(math.sqrt((1 + 2.5**2) / 2))
    assert report.mae == pytest.approx(1.75)
    assert report.accuracy is None


@settings(max_examples=examples(30), deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-100, 100), st.floats(-100, 100)),
        min_size=1,
        max_size=20,
    )
)
@example([(3.0, 1.0), (1.0, 4.0)])
def test_regressor_metrics_agree_with_scikit_learn(pairs):
    rows = [single(str(i), 0, score) for i, (score, _) in enumerate(pairs)]
    fb = labels(*[(str(i), at(1), y) for i, (_, y) in enumerate(pairs)])
    score, y = [p[0] for p in pairs], [p[1] for p in pairs]

    report = performance_report(preds(rows), fb, kind="regressor")

    assert report.rmse == pytest.approx(math.sqrt(sk.mean_squared_error(y, score)), abs=1e-9)
    assert report.mae == pytest.approx(sk.mean_absolute_error(y, score), abs=1e-9)


def test_classifier_metrics_count_each_cell_and_warn_nothing():
    # One of each: true positive, false positive, false negative, true negative.
    rows = [single("tp", 0, 0.9), single("fp", 0, 0.8), single("fn", 0, 0.3), single("tn", 0, 0.2)]
    fb = labels(("tp", at(1), 1), ("fp", at(1), 0), ("fn", at(1), 1), ("tn", at(1), 0))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = performance_report(preds(rows), fb)

    assert (report.accuracy, report.precision, report.recall, report.f1) == (0.5, 0.5, 0.5, 0.5)
    assert report.auc == 0.75  # 3 of the 4 (positive, negative) pairs ordered right


def test_the_chosen_entity_is_the_one_equal_to_the_output():
    # The chosen driver is listed first and sorts after the other (as number and as text).
    rows = [
        *inference("a", 0, {1002: 0.9, 1001: 0.1}, chosen=1002),
        *inference("b", 1, {"z": 0.2, "y": 0.7}, chosen="z"),
    ]
    fb = labels(("a", at(2), 1), ("b", at(2), 0))

    got = labelled_rows(preds(rows), fb)
    report = performance_report(preds(rows), fb)

    assert got["entity"].tolist() == [1002, "z"]
    assert got["score"].tolist() == [0.9, 0.2]
    assert (report.labelled, report.ambiguous_requests, report.accuracy) == (2, 0, 1.0)


def test_a_row_without_an_entity_is_never_the_chosen_one():
    # "a" chose nothing (output None) and one of its rows has no entity; entities of mixed
    # types and list outputs keep the None of both as it was logged.
    rows = [
        {**single("a", 0, 0.9), "output": None},
        {**single("a", 0, 0.1), "entity": 7, "output": None},
        *inference("b", 0, {"x": 0.8}, chosen="x"),
        single("c", 0, 0.4),
    ]
    fb = labels(("a", at(1), 1), ("b", at(1), 1), ("c", at(1), 0))

    report = performance_report(preds(rows), fb)

    assert (report.predictions, report.labelled, report.ambiguous_requests) == (2, 2, 1)
    assert (report.unknown_labels, report.accuracy) == (0, 1.0)


def test_bool_labels_are_joined_as_numbers():
    rows = [single("a", 0, 0.9), single("b", 0, 0.6)]
    fb = labels(("a", at(1), True), ("b", at(2), False))

    got = labelled_rows(preds(rows), fb)

    assert got["label"].dtype == np.float64
    assert got["label"].tolist() == [1.0, 0.0]
    assert performance_report(preds(rows), fb).accuracy == 0.5


def test_request_ids_are_matched_never_ordered():
    # A number and a tuple do not order with each other; neither needs to.
    rows = [
        single(7, 0, 0.9),
        single(("batch", 1), 1, 0.2),
        *inference("x", 2, {1: 0.3, 2: 0.8}, chosen=2),
    ]
    fb = labels((7, at(3), 1), (("batch", 1), at(3), 1), ("x", at(4), 1), ((9,), at(4), 1))

    report = performance_report(preds(rows), fb)
    got = labelled_rows(preds(rows), fb)

    assert (report.predictions, report.labelled, report.unknown_labels) == (3, 3, 1)
    assert report.accuracy == pytest.approx(2 / 3)
    assert got["request_id"].tolist() == [7, ("batch", 1), "x"]
    assert got["score"].tolist() == [0.9, 0.2, 0.8]


def test_the_first_missing_column_is_named():
    rows = preds([single("a", 0, 1.0)]).drop(columns=["output", "entity"])
    fb = labels(("a", at(1), 1)).drop(columns=["label", "timestamp"])

    with pytest.raises(ValidationError, match=r"lacks columns \['entity', 'output'\]") as caught:
        performance_report(rows, labels())
    assert caught.value.column == "entity"
    with pytest.raises(ValidationError, match=r"lacks columns \['timestamp', 'label'\]") as caught:
        performance_report(preds([single("a", 0, 1.0)]), fb)
    assert caught.value.column == "timestamp"


def test_naive_datetime_columns_are_read_as_utc():
    rows = preds([single("a", 0, 0.9), single("b", 100, 0.2)])
    rows["timestamp"] = pd.to_datetime(rows["timestamp"]).dt.tz_localize(None)
    fb = labels(("a", at(4), 1), ("b", at(110), 0))
    fb["timestamp"] = pd.to_datetime(fb["timestamp"]).dt.tz_localize(None)

    report = performance_report(rows, fb, window=50, now=T0 + timedelta(seconds=120))

    assert (report.predictions, report.labelled, report.accuracy) == (1, 1, 1.0)
    assert report.label_lag_p50_seconds == 10.0
    got = labelled_rows(rows, fb)
    assert got["label_ts"].tolist() == [pd.Timestamp(at(4)), pd.Timestamp(at(110))]


def test_labels_without_a_request_id_are_unknown_even_beside_a_prediction_without_one():
    rows = [single("a", 0, 0.9), single(None, 0, 0.9), single(math.nan, 0, 0.9)]
    fb = labels(("a", at(1), 1), (None, at(1), 1), (math.nan, at(1), 1), (pd.NA, at(1), 0))

    report = performance_report(preds(rows), fb)

    assert (report.predictions, report.labelled, report.unknown_labels) == (1, 1, 3)
    assert report.accuracy == 1.0


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
def test_frames_of_nullable_or_arrow_types_report_as_plain_ones(backend):
    rows = [
        *inference("a", 0, {"1": 0.9, "2": 0.1}, chosen="1"),
        *inference("b", 5, {"3": 0.8, "4": 0.2}, chosen=None),
        {**single("c", 10, 0.4), "output": None},
        {**single("d", 20, 0.7), "output": None},
        {**single("d", 30, 0.2), "output": None},
    ]
    fb = labels(("a", at(40), 1), ("c", at(42), 0), ("c", at(43), 1), ("d", at(44), 0),
                ("b", at(41), 1), ("zz", at(44), 0), (None, at(45), 1))  # fmt: skip
    typed = {"dtype_backend": backend}
    now = T0 + timedelta(seconds=50)

    for kind in ("classifier", "regressor"):
        for window in (None, 25):
            plain = performance_report(preds(rows), fb, kind=kind, window=window, now=now)
            report = performance_report(
                preds(rows).convert_dtypes(**typed), fb.convert_dtypes(**typed),
                kind=kind, window=window, now=now,
            )  # fmt: skip
            assert report == plain
    got = labelled_rows(preds(rows).convert_dtypes(**typed), fb.convert_dtypes(**typed))
    assert got["request_id"].tolist() == ["a", "c", "d"]
    assert got["label"].tolist() == [1, 1, 0]
