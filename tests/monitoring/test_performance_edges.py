"""Delayed-label performance at its edges: defaults, keyword-only options, the window's
ends, which row a label is about, ids and times of any shape, and metrics by hand."""

import math

import pandas as pd
import pytest
from test_performance import at, inference, labels, preds, single

from litemlops.monitoring.performance import labelled_rows, performance_report


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


def test_labels_without_a_request_id_are_unknown_even_beside_a_prediction_without_one():
    rows = [single("a", 0, 0.9), single(None, 0, 0.9), single(math.nan, 0, 0.9)]
    fb = labels(("a", at(1), 1), (None, at(1), 1), (math.nan, at(1), 1), (pd.NA, at(1), 0))

    report = performance_report(preds(rows), fb)

    assert (report.predictions, report.labelled, report.unknown_labels) == (1, 1, 3)
    assert report.accuracy == 1.0
