from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as sk

from litemlops.errors import ValidationError
from litemlops.monitoring.performance import PerformanceReport, performance_report

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> str:
    """Times as the event log writes them (ISO text, with or without fractions)."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def inference(request_id, seconds, scores, chosen, model="driver_ranker", version=1):
    """The rows of one /inference answer: a row per candidate driver."""
    return [
        {
            "request_id": request_id,
            "timestamp": at(seconds),
            "model": model,
            "version": version,
            "entity": driver,
            "score": score,
            "output": chosen,
        }
        for driver, score in scores.items()
    ]


def single(request_id, seconds, score):
    """The row of a /predict answer with one feature row (no entity)."""
    return {
        "request_id": request_id,
        "timestamp": at(seconds),
        "model": "m",
        "version": 1,
        "entity": None,
        "score": score,
        "output": [score],
    }


def frame(rows, columns):
    return pd.DataFrame(rows, columns=columns)


PRED_COLUMNS = ["request_id", "timestamp", "model", "version", "entity", "score", "output"]
FB_COLUMNS = ["request_id", "timestamp", "label"]


def preds(rows):
    return frame(rows, PRED_COLUMNS)


def labels(*rows):
    return frame(list(rows), FB_COLUMNS)


def test_labels_join_the_chosen_entity_of_each_inference_request():
    rows = [
        *inference("a", 0, {1001: 0.9, 1002: 0.2}, chosen=1001),
        *inference("b", 1, {1001: 0.1, 1002: 0.7}, chosen=1002),
        *inference("c", 2, {1001: 0.4, 1002: 0.3}, chosen=1001),
    ]
    fb = labels(("a", at(10), 1), ("b", at(11), 0), ("c", at(12), 0))

    report = performance_report(preds(rows), fb)

    # The scores judged are the chosen drivers' 0.9, 0.7, 0.4 against labels 1, 0, 0.
    assert report.status == "ok"
    assert (report.predictions, report.labelled, report.unlabeled) == (3, 3, 0)
    assert report.accuracy == pytest.approx(2 / 3)
    assert report.precision == pytest.approx(0.5)
    assert report.recall == pytest.approx(1.0)
    assert report.f1 == pytest.approx(2 / 3)
    assert report.auc == pytest.approx(sk.roc_auc_score([1, 0, 0], [0.9, 0.7, 0.4]))
    assert report.rmse is None and report.mae is None


def test_entity_and_output_match_across_int_and_text():
    rows = inference("a", 0, {"1001": 0.8, "1002": 0.1}, chosen=1001)

    report = performance_report(preds(rows), labels(("a", at(1), 1)))

    assert report.labelled == 1 and report.accuracy == 1.0


def test_fractional_entities_match_their_output_by_their_full_value():
    from litemlops.monitoring.performance import labelled_rows

    rows = [
        *inference("a", 0, {1.25: 0.9, 1.75: 0.2}, chosen=1.25),  # not both driver 1
        *inference("b", 0, {"2.5": 0.3, "2.75": 0.8}, chosen=2.5),  # text against float
    ]
    fb = labels(("a", at(1), 0), ("b", at(1), 1))

    got = labelled_rows(preds(rows), fb)
    report = performance_report(preds(rows), fb)

    assert got["entity"].tolist() == [1.25, "2.5"]
    assert got["score"].tolist() == [0.9, 0.3]
    assert (report.labelled, report.ambiguous_requests, report.accuracy) == (2, 0, 0.0)


def test_a_label_written_before_its_prediction_still_joins_with_no_lag():
    rows = [single("a", 100, 0.9), single("b", 100, 0.2)]
    fb = labels(("a", at(40), 1), ("b", at(130), 0))

    report = performance_report(preds(rows), fb)

    assert report.labelled == 2
    assert report.accuracy == 1.0
    assert report.label_lag_p50_seconds == pytest.approx(15.0)  # median of 0 and 30


def test_duplicate_labels_keep_the_latest_and_are_counted():
    rows = [single("a", 0, 0.9), single("b", 0, 0.9)]
    # Listed out of time order: the correction at 50 s wins over the label at 20 s.
    fb = labels(("a", at(50), 1), ("a", at(20), 0), ("b", at(5), 0), ("b", at(6), 0))

    report = performance_report(preds(rows), fb)

    assert report.duplicate_labels == 2
    assert report.labelled == 2
    assert report.accuracy == 0.5  # a: 0.9 vs 1 right; b: 0.9 vs 0 wrong


def test_labels_for_unknown_requests_are_counted_and_ignored():
    rows = [single("a", 0, 0.9)]
    fb = labels(("a", at(1), 1), ("nope", at(2), 0), ("nope", at(3), 1), (None, at(4), 1))

    report = performance_report(preds(rows), fb)

    assert report.unknown_labels == 3
    assert report.labelled == 1 and report.accuracy == 1.0
    assert report.duplicate_labels == 0


def test_unlabelled_predictions_are_kept_in_the_coverage():
    rows = [single(r, 0, 0.9) for r in "abcd"]

    report = performance_report(preds(rows), labels(("a", at(10), 1)))

    assert (report.predictions, report.labelled, report.unlabeled) == (4, 1, 3)
    assert report.label_coverage == 0.25


def test_labels_that_are_not_classes_are_counted_as_invalid():
    rows = [single(r, 0, 0.9) for r in "abc"]
    fb = labels(("a", at(1), 1), ("b", at(1), 2), ("c", at(1), "yes"))

    report = performance_report(preds(rows), fb)

    assert report.invalid_labels == 2
    assert report.labelled == 1


def test_regressors_report_rmse_and_mae():
    rows = [single("a", 0, 2.0), single("b", 0, 5.0), single("c", 0, 1.0)]
    fb = labels(("a", at(1), 1.0), ("b", at(1), 7.0), ("c", at(1), 1.0))

    report = performance_report(preds(rows), fb, kind="regressor")

    assert report.rmse == pytest.approx(np.sqrt((1 + 4 + 0) / 3))
    assert report.mae == pytest.approx(1.0)
    assert report.accuracy is None and report.auc is None
    flat = report.metrics()
    assert "performance.rmse" in flat and "performance.accuracy" not in flat


def test_label_lag_reports_median_and_p95_seconds():
    rows = [single(str(i), 0, 0.9) for i in range(21)]
    fb = labels(*[(str(i), at(i * 10), 1) for i in range(21)])

    report = performance_report(preds(rows), fb)

    assert report.label_lag_p50_seconds == pytest.approx(100.0)
    assert report.label_lag_p95_seconds == pytest.approx(190.0)


@pytest.mark.parametrize(
    "predictions", [pd.DataFrame(), preds([])], ids=["no columns", "no rows"]
)
@pytest.mark.parametrize("feedback", [pd.DataFrame(), labels()], ids=["no columns", "no rows"])
def test_empty_inputs_report_no_predictions(predictions, feedback):
    report = performance_report(predictions, feedback)

    assert report.status == "no predictions"
    assert report.metrics() == {
        "performance.labels": 0.0,
        "performance.predictions": 0.0,
        "performance.unlabeled": 0.0,
        "performance.unknown_labels": 0.0,
        "performance.duplicate_labels": 0.0,
        "performance.invalid_labels": 0.0,
    }


def test_predictions_without_labels_report_no_labels_yet():
    report = performance_report(preds([single("a", 0, 0.3)]), labels())

    assert report.status == "no labels yet"
    flat = report.metrics()
    assert flat["performance.label_coverage"] == 0.0
    assert flat["performance.labels"] == 0.0
    assert "performance.accuracy" not in flat
    assert "performance.label_lag_p50_seconds" not in flat


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_labels_of_predictions_without_a_numeric_score_measure_no_metric(kind):
    rows = [single("a", 0, None), single("b", 0, "n/a")]

    report = performance_report(preds(rows), labels(("a", at(10), 1), ("b", at(30), 0)), kind=kind)

    assert report.status == "ok"
    assert (report.predictions, report.labelled, report.label_coverage) == (2, 2, 1.0)
    assert report.label_lag_p50_seconds == pytest.approx(20.0)  # the labels still came
    measured = ("accuracy", "precision", "recall", "f1", "auc", "rmse", "mae")
    assert all(getattr(report, name) is None for name in measured)
    flat = report.metrics()
    assert flat["performance.labels"] == 2.0
    assert not {f"performance.{name}" for name in measured} & set(flat)


def test_labels_without_predictions_are_all_unknown():
    report = performance_report(preds([]), labels(("a", at(1), 1)))

    assert report.status == "no predictions"
    assert report.unknown_labels == 1


def test_auc_needs_both_classes():
    rows = [single("a", 0, 0.9), single("b", 0, 0.6)]

    report = performance_report(preds(rows), labels(("a", at(1), 1), ("b", at(1), 1)))

    assert report.auc is None
    assert report.accuracy == 1.0
    assert "performance.auc" not in report.metrics()


def test_window_measures_only_recent_predictions_and_keeps_old_ids_known():
    rows = [single("old", 0, 0.9), single("new", 3000, 0.9)]
    fb = labels(("old", at(3100), 0), ("new", at(3100), 1))

    report = performance_report(
        preds(rows), fb, window=timedelta(minutes=10), now=T0 + timedelta(seconds=3600)
    )

    assert report.predictions == 1
    assert report.accuracy == 1.0
    assert report.unknown_labels == 0  # "old" is known, just outside the window
    assert report.window_start == T0 + timedelta(seconds=3000)
    earlier = performance_report(preds(rows), fb, window=600, now=T0 + timedelta(seconds=60))
    assert (earlier.predictions, earlier.accuracy) == (1, 0.0)  # only "old", labelled 0


def test_a_request_answered_twice_is_judged_by_its_latest_answer():
    rows = [single("a", 0, 0.1), single("a", 5, 0.9)]

    report = performance_report(preds(rows), labels(("a", at(9), 1)))

    assert report.predictions == 1 and report.accuracy == 1.0


def test_an_earlier_answer_under_the_same_id_is_not_judged_even_when_it_chose():
    # The earlier /inference answer chose a driver; the latest answer is a /predict (no
    # entity to choose), then an /inference that chose none of its two drivers.
    answered = [*inference("a", 0, {"1001": 0.1}, "1001"), single("a", 5, 0.9)]
    report = performance_report(preds(answered), labels(("a", at(9), 1)))
    assert (report.predictions, report.accuracy) == (1, 1.0)
    undecided = [*answered, *inference("a", 7, {"1002": 0.9, "1003": 0.8}, None)]
    report = performance_report(preds(undecided), labels(("a", at(9), 1)))
    assert (report.predictions, report.ambiguous_requests) == (0, 1)


def test_several_rows_and_no_chosen_entity_cannot_take_a_label():
    rows = [single("batch", 0, 0.9), {**single("batch", 0, 0.1), "entity": 7}]

    report = performance_report(preds(rows), labels(("batch", at(1), 1)))

    assert report.ambiguous_requests == 1
    assert report.predictions == 0 and report.unknown_labels == 0


def test_datetime_columns_are_accepted_as_well_as_text():
    rows = preds([single("a", 0, 0.9)])
    rows["timestamp"] = pd.to_datetime(rows["timestamp"], utc=True)
    fb = labels(("a", T0 + timedelta(seconds=4), True))

    report = performance_report(rows, fb)

    assert report.label_lag_p50_seconds == 4.0
    assert report.accuracy == 1.0


def test_missing_columns_and_bad_arguments_are_refused_clearly():
    with pytest.raises(ValidationError, match="predictions lacks columns \\['score'\\]"):
        performance_report(preds([single("a", 0, 1.0)]).drop(columns="score"), labels())
    with pytest.raises(ValidationError, match="kind must be one of classifier, regressor"):
        performance_report(preds([]), labels(), kind="ranker")
    with pytest.raises(ValidationError, match="window must be a positive duration"):
        performance_report(preds([]), labels(), window=-5)


def test_metrics_are_flat_numbers_named_performance_dot():
    rows = [single("a", 0, 0.9), single("b", 0, 0.2)]
    report = performance_report(preds(rows), labels(("a", at(2), 1), ("b", at(4), 0)))

    flat = report.metrics()

    assert isinstance(report, PerformanceReport)
    assert all(k.startswith("performance.") for k in flat)
    assert all(isinstance(v, float) for v in flat.values())
    assert {
        "performance.accuracy", "performance.precision", "performance.recall",
        "performance.f1", "performance.auc", "performance.label_coverage",
        "performance.label_lag_p50_seconds", "performance.labels",
        "performance.unknown_labels", "performance.duplicate_labels",
    } <= set(flat)
    assert report.as_dict()["status"] == "ok"


@settings(max_examples=examples(60), deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from([0, 1]), st.floats(0, 1, allow_nan=False)),
        min_size=1,
        max_size=40,
    )
)
def test_classifier_metrics_agree_with_scikit_learn(pairs):
    rows = [single(str(i), 0, score) for i, (_, score) in enumerate(pairs)]
    fb = labels(*[(str(i), at(1), y) for i, (y, _) in enumerate(pairs)])
    y = [p[0] for p in pairs]
    hit = [int(p[1] >= 0.5) for p in pairs]

    report = performance_report(preds(rows), fb)

    assert report.accuracy == pytest.approx(sk.accuracy_score(y, hit))
    assert report.precision == pytest.approx(sk.precision_score(y, hit, zero_division=0))
    assert report.recall == pytest.approx(sk.recall_score(y, hit, zero_division=0))
    assert report.f1 == pytest.approx(sk.f1_score(y, hit, zero_division=0))
    if len(set(y)) == 2:
        assert report.auc == pytest.approx(sk.roc_auc_score(y, [p[1] for p in pairs]))
    else:
        assert report.auc is None


def test_labelled_rows_are_the_rows_labels_were_given_for_with_every_column():
    from litemlops.monitoring.performance import labelled_rows

    rows = [
        *inference("a", 1, {"1001": 0.2, "1002": 0.9}, "1002"),
        *inference("b", 2, {"1003": 0.4}, "1003"),
        *inference("c", 3, {"1004": 0.7}, "1004"),  # no label
        single("p", 4, 0.3),
        *inference("amb", 5, {"1005": 0.1, "1006": 0.2}, None),  # none chosen
    ]
    predictions = preds(rows).assign(x=np.arange(len(rows), dtype=float))
    predictions.index = predictions.index * 10  # any index
    feedback = labels(("b", at(20), 1), ("a", at(10), 1), ("b", at(30), 0), ("p", at(11), 1),
                      ("nobody", at(12), 1), ("amb", at(13), 1), ("a", at(14), "x"))

    got = labelled_rows(predictions, feedback)

    assert got["request_id"].tolist() == ["a", "b", "p"]  # oldest prediction first
    assert got["entity"].fillna("-").tolist() == ["1002", "1003", "-"]
    assert got["x"].tolist() == [1.0, 2.0, 4.0]  # the chosen row's own values
    assert got["label"].tolist() == [1.0, 0.0, 1.0]  # the latest valid label
    assert got["label_ts"].tolist()[1] == pd.Timestamp(at(30))
    assert list(got.columns) == [*predictions.columns, "label", "label_ts"]
    assert labelled_rows(predictions.iloc[:0], feedback).empty
    assert labelled_rows(predictions, feedback.iloc[:0]).empty
    with pytest.raises(ValidationError, match="kind must be one of"):
        labelled_rows(predictions, feedback, kind="ranker")
