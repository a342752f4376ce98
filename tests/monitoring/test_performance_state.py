"""The join of labels to served predictions against a plain model of its documented
semantics: hypothesis serves `/inference` and `/predict` answers (some under a request id
already answered), posts labels late, early, out of order, twice, for unknown requests or
with values that are no class, and at any step runs the join; the report's counts,
accuracy and label lag, and the rows labels were given for, must agree with the model."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, rule

from litemlops.monitoring.performance import (
    FEEDBACK_COLUMNS,
    PREDICTION_COLUMNS,
    labelled_rows,
    performance_report,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
NOW = 60  # seconds after T0 when a windowed report is made
REQUESTS = ("r0", "r1", "r2")
UNKNOWN = ("nope", None)  # request ids no prediction has
DRIVERS = (1001, 1002, 1003)
LABELS = (0, 1, 0.5, "x")  # the last two are no class
seconds = st.integers(0, NOW)
request_ids = st.sampled_from(REQUESTS + UNKNOWN)
label_times = st.none() | seconds


def at(t: float | None) -> str | None:
    """A time as the event log writes it (ISO text, fractions when there are some)."""
    return None if t is None else (T0 + timedelta(seconds=t)).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Answer:
    """One served answer: when, its rows (entity, score) and the output it returned."""

    t: float
    rows: tuple[tuple[int | None, float], ...]
    output: object  # the chosen entity (a number or its text), None, or a /predict list

    def unit(self) -> tuple[int | None, float] | None:
        """The row a label of this answer is about: the entity the answer chose, else its
        only row; None when several rows and none chosen (ambiguous)."""
        chosen = [r for r in self.rows if r[0] is not None and str(r[0]) == str(self.output)]
        if chosen:
            return chosen[0]
        return self.rows[0] if len(self.rows) == 1 else None


@dataclass(frozen=True)
class Label:
    request_id: str | None
    t: int | None
    value: object
    seq: int  # the order it was posted in

    def age(self) -> tuple[bool, int, int]:
        """Sorts labels oldest first: those without a time, then by time, then as posted."""
        return (self.t is not None, self.t or 0, self.seq)


@dataclass(frozen=True)
class Joined:
    """A labelled request: when its latest answer was made, its row, and its label."""

    t: float
    entity: int | None
    score: float
    label: Label


class Join(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.served: list[tuple[str, Answer]] = []  # in the order the log has them
        self.answers: dict[str, list[Answer]] = {}
        self.labels: list[Label] = []

    def serve(self, request_id: str, t: int, rows: tuple, output: object) -> None:
        """Log an answer made `t` seconds after T0; a thousandth of a second per answer
        so far keeps any two answers' times apart, so one is the latest."""
        answer = Answer(t + len(self.served) / 1000, rows, output)
        self.served.append((request_id, answer))
        self.answers.setdefault(request_id, []).append(answer)

    @initialize(answers=st.lists(st.tuples(st.sampled_from(REQUESTS), seconds, st.floats(0, 1))),
                labels=st.lists(st.tuples(request_ids, label_times, st.sampled_from(LABELS))))
    def traffic(self, answers: list[tuple[str, int, float]], labels: list[tuple]) -> None:
        """Some /predict answers and labels first, so that most runs have labels to join
        however few of them the rules draw."""
        for request_id, t, score in answers:
            self.predict(request_id, t, score)
        for label in labels:
            self.label(*label)

    @rule(request_id=st.sampled_from(REQUESTS), t=seconds,
          scores=st.lists(st.floats(0, 1), min_size=1, max_size=len(DRIVERS)),
          chosen=st.integers(0, len(DRIVERS)), as_text=st.booleans())  # fmt: skip
    def inference(
        self, request_id: str, t: int, scores: list[float], chosen: int, as_text: bool
    ) -> None:
        """An /inference answer scoring a driver per score; it chose the `chosen`th (none
        when past the end), logged as a number or as text."""
        rows = tuple(zip(DRIVERS, scores, strict=False))
        output = rows[chosen][0] if chosen < len(rows) else None
        self.serve(request_id, t, rows, str(output) if as_text and output else output)

    @rule(request_id=st.sampled_from(REQUESTS), t=seconds, score=st.floats(0, 1))
    def predict(self, request_id: str, t: int, score: float) -> None:
        """A /predict answer with one feature row: no entity, the scores as output."""
        self.serve(request_id, t, ((None, score),), [score])

    @rule(request_id=request_ids, t=label_times, value=st.sampled_from(LABELS))
    def label(self, request_id: str | None, t: int | None, value: object) -> None:
        """A label posted now for any request, answered yet or not, at any time or none."""
        self.labels.append(Label(request_id, t, value, len(self.labels)))

    # -- the join -----------------------------------------------------------------------

    def frames(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The predictions and feedback as the event log gives them, in the order posted."""
        rows = [
            (request_id, at(a.t), "m", 1, entity, score, a.output)
            for request_id, a in self.served
            for entity, score in a.rows
        ]
        predictions = pd.DataFrame(rows, columns=list(PREDICTION_COLUMNS))
        feedback = pd.DataFrame(
            [(x.request_id, at(x.t), x.value) for x in self.labels], columns=list(FEEDBACK_COLUMNS)
        )
        return predictions, feedback

    def expected(self, window: int | None) -> tuple[dict[str, int], dict[str, Joined]]:
        """(the report's counts, the labelled requests) as the documents say: each request is
        judged by its latest answer; the latest valid label of a known request wins (by time,
        then as posted; labels without a time are the oldest), earlier ones are duplicates;
        labels of unknown requests and values that are no class are counted and left out."""
        latest = {r: max(answers, key=lambda a: a.t) for r, answers in self.answers.items()}
        units = {r: (a.t, a.unit()) for r, a in latest.items()}
        known = [x for x in self.labels if x.request_id in self.answers]
        valid = [x for x in known if x.value in (0, 1)]
        final = {x.request_id: x for x in sorted(valid, key=Label.age)}
        measured = {
            r: (t, unit)
            for r, (t, unit) in units.items()
            if unit is not None and (window is None or NOW - window <= t <= NOW)
        }
        counts = {
            "predictions": len(measured),
            "unknown_labels": len(self.labels) - len(known),
            "invalid_labels": len(known) - len(valid),
            "duplicate_labels": len(valid) - len(final),
            "ambiguous_requests": sum(unit is None for _, unit in units.values()),
        }
        joined = {r: Joined(t, *unit, final[r]) for r, (t, unit) in measured.items() if r in final}
        return counts, joined

    def teardown(self) -> None:
        """The join of everything served and posted, in full and in a window."""
        self.join(None)
        self.join(NOW // 2)

    @rule(window=st.none() | st.integers(1, NOW))
    def join(self, window: int | None) -> None:
        predictions, feedback = self.frames()
        counts, joined = self.expected(window)
        now = T0 + timedelta(seconds=NOW) if window else None
        report = performance_report(predictions, feedback, window=window, now=now)
        assert {name: getattr(report, name) for name in counts} == counts
        unlabeled = counts["predictions"] - len(joined)
        assert (report.labelled, report.unlabeled) == (len(joined), unlabeled)
        status = "ok" if joined else "no labels yet" if report.predictions else "no predictions"
        assert report.status == status
        hits = [(j.score >= 0.5) == (j.label.value == 1) for j in joined.values()]
        assert report.accuracy == (pytest.approx(np.mean(hits)) if hits else None)
        lags = [max(0.0, j.label.t - j.t) for j in joined.values() if j.label.t is not None]
        for q, got in ((50, report.label_lag_p50_seconds), (95, report.label_lag_p95_seconds)):
            assert got == (pytest.approx(np.percentile(lags, q)) if lags else None)
        if window is None:
            self.check_rows(predictions, feedback, joined)

    def check_rows(
        self, predictions: pd.DataFrame, feedback: pd.DataFrame, joined: dict[str, Joined]
    ) -> None:
        """`labelled_rows` gives each labelled request's row (oldest prediction first) with
        its label, as the report joined them."""
        rows = labelled_rows(predictions, feedback)
        order = sorted(joined.items(), key=lambda item: item[1].t)
        assert rows["request_id"].tolist() == [r for r, _ in order]
        entities = [None if pd.isna(e) else int(e) for e in rows["entity"]]
        assert list(zip(entities, rows["score"], strict=True)) == [
            (j.entity, j.score) for _, j in order
        ]
        assert rows["label"].tolist() == [float(j.label.value) for _, j in order]


TestJoin = pytest.mark.slow(Join.TestCase)
TestJoin.settings = settings(max_examples=examples(40), stateful_step_count=20,
                             deadline=None)  # fmt: skip
