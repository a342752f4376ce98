"""`search_runs` against a brute-force oracle, plus the grammar's corners and refusals.

The oracle reads runs as logged (not from the database) and applies the
documented semantics: a run lacking a field never matches a clause on it and
sorts after the runs that have it; ties go to run_id; LIKE is case-sensitive,
ILIKE folds ASCII letters only.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest import mock

import pytest
from depth import examples
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from litemlops.errors import ExperimentNotFoundError, ValidationError
from litemlops.store.tracking import search
from litemlops.store.tracking.search import RunsPage, search_runs
from litemlops.store.tracking.tracker import Tracker

T0 = datetime(2026, 1, 1, tzinfo=UTC)
T0_MS = int(T0.timestamp() * 1000)
EXPERIMENTS = ("exp-a", "exp-b")
METRIC_KEYS = ("loss", "val loss", "f1/macro")
PARAM_KEYS = ("lr", "x y", "n.layers")
TAG_KEYS = ("team", "note", "k-v")
METRIC_VALUES = (-1.5, 0.0, 0.5, 1.0, 2.0)
NAMES = ("r1", "R1", "r_2", "it's", "a%b")
STATUSES = ("running", "finished", "failed", "killed")
TEXT = st.text(alphabet="aAb%_'\" ;-*?[é", max_size=3)
OPS = ("=", "!=", "<", "<=", ">", ">=")
STRING_OPS = (*OPS, "LIKE", "ILIKE")
ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class Clock:
    """A clock the test sets by hand: every tracker call in between sees the same time."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def at(self, offset_ms: int) -> None:
        self.now = T0 + timedelta(milliseconds=offset_ms)


@dataclass
class Spec:
    """One run as the test logs it, and as the oracle sees it."""

    experiment: str
    name: str
    status: str
    start: int  # ms after T0
    end: int
    params: dict[str, str]
    metric_log: list[tuple[str, float, int]]  # (key, value, step) in logging order
    tags: dict[str, str]
    run_id: str = ""
    metrics: dict[str, float] = field(default_factory=dict)

    def latest(self) -> dict[str, float]:
        """Per key the value at the highest step; among equal steps the last logged."""
        best: dict[str, tuple[int, float]] = {}
        for key, value, step in self.metric_log:
            if key not in best or step >= best[key][0]:
                best[key] = (step, value)
        return {k: v for k, (_, v) in best.items()}


@dataclass(frozen=True)
class Wanted:
    """A filter clause as the oracle evaluates it (kind: metric, param, tag or attr)."""

    kind: str
    key: str
    op: str
    value: Any


SPEC_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": st.sampled_from(NAMES),
    "status": st.sampled_from(STATUSES),
    "start": st.sampled_from((0, 1000, 2000)),
    "end": st.sampled_from((2000, 3000)),
    "params": st.dictionaries(st.sampled_from(PARAM_KEYS), TEXT, max_size=2),
    "tags": st.dictionaries(st.sampled_from(TAG_KEYS), TEXT, max_size=2),
}
specs = st.builds(
    Spec,
    experiment=st.sampled_from(EXPERIMENTS),
    metric_log=st.lists(
        st.tuples(
            st.sampled_from(METRIC_KEYS),
            st.sampled_from(METRIC_VALUES),
            st.integers(0, 2),
        ),
        max_size=6,
    ),
    **SPEC_FIELDS,
)


def build(tracker: Tracker, clock: Clock, runs: list[Spec]) -> None:
    for spec in runs:
        clock.at(spec.start)
        run = tracker.start_run(spec.experiment, spec.name, tags=spec.tags)
        run.log_params(spec.params)
        for key, value, step in spec.metric_log:
            run.log_metric(key, value, step=step)
        spec.run_id, spec.metrics = run.id, spec.latest()
        if spec.status != "running":
            clock.at(spec.end)
            run.end(spec.status)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def tracker(tmp_path: Any, clock: Clock) -> Iterator[Tracker]:
    with Tracker(tmp_path / "registry.db", clock=clock, code_dir=tmp_path) as t:
        yield t


# -- the oracle ----------------------------------------------------------------------------


def value_of(spec: Spec, kind: str, key: str) -> Any:
    if kind == "metric":
        return spec.metrics.get(key)
    if kind == "param":
        return spec.params.get(key)
    if kind == "tag":
        return spec.tags.get(key)
    return {
        "run_id": spec.run_id,
        "run_name": spec.name,
        "status": spec.status,
        "start_time": T0_MS + spec.start,
        "end_time": None if spec.status == "running" else T0_MS + spec.end,
    }[key]


def like(value: str, pattern: str, fold: bool) -> bool:
    if fold:
        value, pattern = value.translate(ASCII_LOWER), pattern.translate(ASCII_LOWER)
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.DOTALL) is not None


def matches(spec: Spec, clause: Wanted) -> bool:
    have = value_of(spec, clause.kind, clause.key)
    want = clause.value.lower() if clause.key == "status" else clause.value
    if have is None:
        return False
    if clause.op in ("LIKE", "ILIKE"):
        return like(have, want, clause.op == "ILIKE")
    return {
        "=": have == want,
        "!=": have != want,
        "<": have < want,
        "<=": have <= want,
        ">": have > want,
        ">=": have >= want,
    }[clause.op]


def oracle(
    runs: list[Spec],
    experiments: list[str] | None,
    clauses: list[Wanted],
    order: list[tuple[str, str, bool]],
) -> list[str]:
    chosen = [
        s
        for s in runs
        if (experiments is None or s.experiment in experiments)
        and all(matches(s, c) for c in clauses)
    ]
    terms = order or [("attr", "start_time", True)]

    def compare(a: Spec, b: Spec) -> int:
        for kind, key, descending in terms:
            x, y = value_of(a, kind, key), value_of(b, kind, key)
            if x is None or y is None:  # missing values come last, in either direction
                if (x is None) != (y is None):
                    return 1 if x is None else -1
                continue
            if x != y:
                return (-1 if x < y else 1) * (-1 if descending else 1)
        return -1 if a.run_id < b.run_id else 1 if a.run_id > b.run_id else 0

    return [s.run_id for s in sorted(chosen, key=functools.cmp_to_key(compare))]


# -- rendering what the oracle evaluates as filter and order_by text ----------------------


@st.composite
def key_text(draw: st.DrawFn, key: str) -> str:
    options = ["`" + key.replace("`", "``") + "`", '"' + key.replace('"', '""') + '"']
    if re.fullmatch(r"[A-Za-z0-9_\-/:]+", key):
        options.append(key)
    return draw(st.sampled_from(options))


@st.composite
def field_text(draw: st.DrawFn, kind: str, key: str) -> str:
    if kind == "attr":
        prefix = draw(st.sampled_from(["attributes.", "attr.", "run.", "ATTRIBUTES.", ""]))
        return prefix + key
    prefixes = {
        "metric": ["metrics.", "metric.", "Metrics."],
        "param": ["params.", "param.", "parameter."],
        "tag": ["tags.", "tag."],
    }[kind]
    return draw(st.sampled_from(prefixes)) + draw(key_text(key))


@st.composite
def value_text(draw: st.DrawFn, value: Any) -> str:
    if isinstance(value, str):
        quote = draw(st.sampled_from(["'", '"']))
        return quote + value.replace(quote, quote * 2) + quote
    if value == int(value):
        forms = [str(int(value)), repr(float(value))]
        return draw(st.sampled_from([*forms, f"{value:e}"] if abs(value) < 1e6 else forms))
    return repr(value)


@st.composite
def clause_text(draw: st.DrawFn, clause: Wanted) -> str:
    op = clause.op if clause.op in OPS else draw(st.sampled_from([clause.op, clause.op.lower()]))
    space = draw(st.sampled_from([" ", "  ", ""])) if clause.op in OPS else " "
    return (
        f"{draw(field_text(clause.kind, clause.key))}{space}{op}{space}"
        f"{draw(value_text(clause.value))}"
    )


@st.composite
def clauses_for(draw: st.DrawFn, runs: list[Spec], kinds: list[str]) -> Wanted:
    kind = draw(st.sampled_from(kinds))
    if kind == "metric":
        key = draw(st.sampled_from((*METRIC_KEYS, *METRIC_KEYS, "missing")))
        return Wanted(kind, key, draw(st.sampled_from(OPS)), draw(st.sampled_from(METRIC_VALUES)))
    if kind in ("param", "tag"):
        keys = PARAM_KEYS if kind == "param" else TAG_KEYS
        key = draw(st.sampled_from((*keys, "missing")))
        return Wanted(kind, key, draw(st.sampled_from(STRING_OPS)), draw(TEXT))
    key = draw(st.sampled_from(["run_id", "run_name", "status", "start_time", "end_time"]))
    if key in ("start_time", "end_time"):
        offset = draw(st.sampled_from((0, 1000, 2000, 3000)))
        return Wanted(kind, key, draw(st.sampled_from(OPS)), float(T0_MS + offset))
    op = draw(st.sampled_from(STRING_OPS))
    if key == "run_id":
        run_id = draw(st.sampled_from([s.run_id for s in runs] or ["0" * 32]))
        value = run_id if op not in ("LIKE", "ILIKE") else run_id[:1].upper() + "%"
    elif key == "run_name":
        value = draw(st.sampled_from((*NAMES, "r%", "R_", "%")))
    elif op in ("=", "!="):
        value = draw(st.sampled_from(STATUSES)).upper()
    else:
        value = draw(st.sampled_from(("FIN%", "f%", "running", "k_lled")))
    return Wanted(kind, key, op, value)


order_terms = st.one_of(
    st.tuples(st.just("metric"), st.sampled_from((*METRIC_KEYS, "missing")), st.booleans()),
    st.tuples(st.just("param"), st.sampled_from(PARAM_KEYS), st.booleans()),
    st.tuples(st.just("tag"), st.sampled_from(TAG_KEYS), st.booleans()),
    st.tuples(
        st.just("attr"),
        st.sampled_from(["start_time", "end_time", "run_name", "status", "run_id"]),
        st.booleans(),
    ),
)


@st.composite
def order_text(draw: st.DrawFn, term: tuple[str, str, bool]) -> str:
    kind, key, descending = term
    words = ["DESC", "desc"] if descending else ["ASC", "asc", ""]
    direction = draw(st.sampled_from(words))
    return f"{draw(field_text(kind, key))} {direction}".strip()


def page_through(tracker: Tracker, size: int, **query: Any) -> list[RunsPage]:
    pages = [search_runs(tracker, max_results=size, **query)]
    while pages[-1].next_page_token is not None:
        pages.append(
            search_runs(tracker, max_results=size, page_token=pages[-1].next_page_token, **query)
        )
        assert len(pages) < 100
    return pages


PROPERTY = settings(
    max_examples=examples(100),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def check_against_oracle(
    data: st.DataObject,
    tmp_path: Any,
    runs: list[Spec],
    clause_kinds: list[str],
    order: st.SearchStrategy[list[tuple[str, str, bool]]],
    probe_limits: list[int],
) -> None:
    """Build `runs`, search with drawn clauses and order a page at a time, compare."""
    clock = Clock()
    with Tracker(":memory:", clock=clock, code_dir=tmp_path) as tracker:
        for name in EXPERIMENTS:
            tracker.create_experiment(name)
        build(tracker, clock, runs)
        clauses = data.draw(st.lists(clauses_for(runs, clause_kinds), max_size=3), label="where")
        terms = data.draw(order, label="order")
        experiments = data.draw(
            st.sampled_from([None, ["exp-a"], ["exp-b"], ["exp-a", "exp-b"]]), label="exps"
        )
        text = data.draw(st.sampled_from(["", "  "]))
        for n, clause in enumerate(clauses):
            join = data.draw(st.sampled_from([" and ", " AND ", "\nAnd\t"])) if n else ""
            text += join + data.draw(clause_text(clause))
        order_by = [data.draw(order_text(t)) for t in terms] or None
        size = data.draw(st.integers(1, 5), label="page size")
        note(f"filter={text!r} order_by={order_by!r}")
        # How many runs a metric clause must match before a search walks the order
        # and tests the clause as a set, rather than reading the clause's range first.
        probe_limit = data.draw(st.sampled_from(probe_limits), label="probe limit")

        with mock.patch.object(search, "PROBE_LIMIT", probe_limit):
            pages = page_through(
                tracker, size, experiments=experiments, filter_string=text, order_by=order_by
            )

        expected = oracle(runs, experiments, clauses, terms)
        got = [r for page in pages for r in page.runs]
        assert [r.run_id for r in got] == expected
        assert all(len(p.runs) == size for p in pages[:-1])
        assert len(pages) == max(1, -(-len(expected) // size))
        by_id = {s.run_id: s for s in runs}
        for info in got:
            spec = by_id[info.run_id]
            assert (info.name, info.status, info.experiment) == (
                spec.name,
                spec.status,
                spec.experiment,
            )
            assert (info.params, info.metrics, info.tags) == (spec.params, spec.metrics, spec.tags)


@pytest.mark.slow
@PROPERTY
@given(data=st.data())
def test_pages_concatenate_to_the_oracles_filtered_ordered_runs(data, tmp_path):
    runs = data.draw(st.lists(specs, max_size=12), label="runs")
    kinds = ["metric", "param", "tag", "attr"]
    order = st.lists(order_terms, max_size=3)
    check_against_oracle(data, tmp_path, runs, kinds, order, [1, search.PROBE_LIMIT])


@pytest.mark.slow
@PROPERTY
@given(data=st.data())
def test_metric_searches_agree_with_the_oracle_whichever_index_drives_them(data, tmp_path):
    logs = st.lists(
        st.tuples(st.sampled_from(METRIC_KEYS), st.sampled_from(METRIC_VALUES), st.just(0)),
        min_size=2,
        max_size=4,
    )
    runs = data.draw(
        st.lists(
            st.builds(Spec, metric_log=logs, experiment=st.just("exp-a"), **SPEC_FIELDS),
            min_size=4,
            max_size=15,
        ),
        label="runs",
    )
    first = st.one_of(
        st.tuples(st.just("metric"), st.sampled_from(METRIC_KEYS), st.booleans()),
        st.tuples(st.just("attr"), st.just("start_time"), st.booleans()),
    )
    order = st.lists(first, max_size=1).flatmap(
        lambda head: st.lists(order_terms, max_size=1).map(lambda tail: head + tail)
    )
    check_against_oracle(data, tmp_path, runs, ["metric"], order, [1, 2, 3, search.PROBE_LIMIT])


# -- examples --------------------------------------------------------------------------------


@pytest.fixture
def three(tracker: Tracker, clock: Clock) -> list[Spec]:
    """Three finished runs a second apart; the last has no `loss`."""
    runs = [
        Spec("exp", "alpha", "finished", 0, 10, {"lr": "0.1"}, [("loss", 0.5, 0)], {"team": "Ads"}),
        Spec("exp", "beta", "failed", 1000, 1010, {"lr": "0.01"}, [("loss", 0.25, 0)], {}),
        Spec("exp", "gamma", "finished", 2000, 2010, {}, [("acc", 0.9, 0)], {"team": "ads"}),
    ]
    build(tracker, clock, runs)
    return runs


def names(page: RunsPage) -> list[str]:
    return [r.name for r in page.runs]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.loss = 0.5", ["alpha"]),
        ("metrics.loss != 0.5", ["beta"]),
        ("metrics.loss < 0.5", ["beta"]),
        ("metrics.loss <= 0.5", ["beta", "alpha"]),
        ("metrics.loss > 0.25", ["alpha"]),
        ("metrics.loss >= 0.25", ["beta", "alpha"]),
        ("params.lr = '0.1'", ["alpha"]),
        ("params.lr != '0.1'", ["beta"]),
        ("params.lr LIKE '0.%'", ["beta", "alpha"]),
        ("params.lr like '0._'", ["alpha"]),
        ("tags.team LIKE 'ads'", ["gamma"]),
        ("tags.team ILIKE 'ADS'", ["gamma", "alpha"]),
        ("status = 'FINISHED'", ["gamma", "alpha"]),
        ("attributes.status != 'finished'", ["beta"]),
        ("run_name = 'beta'", ["beta"]),
        ("attr.run_name ILIKE '%A'", ["gamma", "beta", "alpha"]),
        (f"attributes.start_time >= {T0_MS + 1000}", ["gamma", "beta"]),
        (f"attributes.end_time < {T0_MS + 1010}", ["alpha"]),
        ("metrics.loss < 1 and params.lr = '0.1'", ["alpha"]),
        ("metrics.loss < 1 AND tags.team = 'Ads'", ["alpha"]),
    ],
)
def test_each_operator_and_field(tracker, three, text, expected):
    assert names(search_runs(tracker, "exp", text)) == expected


def test_a_run_without_the_field_never_matches_even_not_equal(tracker, three):
    assert names(search_runs(tracker, "exp", "metrics.acc != 5")) == ["gamma"]
    assert names(search_runs(tracker, "exp", "params.lr != 'x'")) == ["beta", "alpha"]


def test_like_treats_glob_characters_literally(tracker, clock):
    build(
        tracker,
        clock,
        [
            Spec("exp", "a*b", "finished", 0, 1, {}, [], {}),
            Spec("exp", "axb", "finished", 1, 2, {}, [], {}),
            Spec("exp", "[x]", "finished", 2, 3, {}, [], {}),
            Spec("exp", "a?", "finished", 3, 4, {}, [], {}),
        ],
    )
    assert names(search_runs(tracker, "exp", "run_name LIKE 'a*b'")) == ["a*b"]
    assert names(search_runs(tracker, "exp", "run_name LIKE '[x]'")) == ["[x]"]
    assert names(search_runs(tracker, "exp", "run_name LIKE 'a?'")) == ["a?"]
    assert names(search_runs(tracker, "exp", "run_name LIKE 'a_b'")) == ["axb", "a*b"]


def test_keys_with_spaces_and_dots_go_in_backticks_or_double_quotes(tracker, clock):
    build(
        tracker,
        clock,
        [
            Spec("exp", "one", "finished", 0, 1, {"a.b": "x"}, [("val loss", 1.0, 0)], {}),
            Spec("exp", "two", "finished", 1, 2, {"a.b": "y"}, [("val loss", 2.0, 0)], {}),
        ],
    )
    assert names(search_runs(tracker, "exp", "metrics.`val loss` > 1.5")) == ["two"]
    assert names(search_runs(tracker, "exp", 'metrics."val loss" < 1.5')) == ["one"]
    assert names(search_runs(tracker, "exp", "params.`a.b` = 'y'")) == ["two"]
    page = search_runs(tracker, "exp", order_by=["metrics.`val loss` DESC"])
    assert names(page) == ["two", "one"]
    with pytest.raises(ValidationError, match=r"backticks.*position 7"):
        search_runs(tracker, "exp", "params.a.b = 'y'")


def test_quotes_inside_strings_are_doubled(tracker, clock):
    build(tracker, clock, [Spec("exp", 'it\'s "x"', "finished", 0, 1, {}, [], {})])
    assert len(search_runs(tracker, "exp", "run_name = 'it''s \"x\"'").runs) == 1
    assert len(search_runs(tracker, "exp", 'run_name = "it\'s ""x"""').runs) == 1


@pytest.mark.parametrize("descending", [False, True])
def test_runs_without_the_ordered_metric_come_last_in_either_direction(tracker, three, descending):
    direction = "DESC" if descending else "ASC"
    full = search_runs(tracker, "exp", order_by=[f"metrics.loss {direction}"])
    expected = ["alpha", "beta", "gamma"] if descending else ["beta", "alpha", "gamma"]
    assert names(full) == expected
    pages = page_through(tracker, 1, experiments="exp", order_by=[f"metrics.loss {direction}"])
    assert [names(p)[0] for p in pages] == expected
    tags = search_runs(tracker, "exp", order_by=[f"tags.team {direction}", "params.lr"])
    assert names(tags)[-1] == "beta"


def test_a_missing_value_in_a_later_term_sorts_last_among_ties_across_pages(tracker, clock):
    runs = [
        Spec("exp", "has", "finished", 0, 1, {}, [("loss", 1.0, 0)], {}),
        Spec("exp", "lacks", "finished", 0, 1, {}, [], {}),
        Spec("exp", "later", "finished", 5, 6, {}, [], {}),
    ]
    build(tracker, clock, runs)
    for direction in ("ASC", "DESC"):
        order = ["attributes.start_time", f"metrics.loss {direction}"]
        pages = page_through(tracker, 1, experiments="exp", order_by=order)
        assert [names(p)[0] for p in pages] == ["has", "lacks", "later"]


def test_default_order_is_newest_first_and_ties_go_to_run_id(tracker, clock):
    runs = [Spec("exp", f"r{i}", "finished", 1000 * (i // 2), 9, {}, [], {}) for i in range(6)]
    build(tracker, clock, runs)
    got = [r.run_id for r in search_runs(tracker, "exp").runs]
    pairs = [sorted(s.run_id for s in runs[i : i + 2]) for i in (4, 2, 0)]
    assert got == [run_id for pair in pairs for run_id in pair]


def test_experiments_none_searches_all_and_an_unknown_name_is_refused(tracker, clock):
    build(
        tracker,
        clock,
        [
            Spec("a", "x", "finished", 0, 1, {}, [], {}),
            Spec("b", "y", "finished", 1, 2, {}, [], {}),
        ],
    )
    assert names(search_runs(tracker)) == ["y", "x"]
    assert names(search_runs(tracker, ["a", "b"], order_by=["run_name"])) == ["x", "y"]
    assert search_runs(tracker, []).runs == []
    with pytest.raises(ExperimentNotFoundError, match="nope"):
        search_runs(tracker, ["a", "nope"])


def test_a_page_is_fetched_with_a_fixed_number_of_queries(tracker, clock):
    runs = [
        Spec("exp", f"r{i}", "finished", i, i + 1, {"p": str(i)}, [("m", i, 0)], {"t": "x"})
        for i in range(60)
    ]
    build(tracker, clock, runs)
    statements: list[str] = []
    tracker.db.connection().set_trace_callback(statements.append)
    page = search_runs(tracker, "exp", "metrics.m >= 5", ["metrics.m DESC"], max_results=50)
    tracker.db.connection().set_trace_callback(None)
    assert len(page.runs) == 50 and all(r.params and r.metrics and r.tags for r in page.runs)
    assert len(statements) <= 8


def test_a_metric_ordered_search_walks_the_latest_by_key_index_without_sorting_it(tracker, clock):
    runs = [Spec("exp", f"r{i}", "finished", i, i + 1, {}, [("m", i, 0)], {}) for i in range(30)]
    build(tracker, clock, runs)
    statements: list[str] = []
    con = tracker.db.connection()
    con.set_trace_callback(statements.append)
    search_runs(tracker, "exp", order_by=["metrics.m DESC"], max_results=5)
    con.set_trace_callback(None)
    main = next(s for s in statements if "ORDER BY" in s and "LIMIT" in s)
    plan = " | ".join(row[3] for row in con.execute(f"EXPLAIN QUERY PLAN {main}"))
    assert "latest_by_key" in plan
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan  # only ties are sorted


# -- page tokens -----------------------------------------------------------------------------


def test_a_token_works_only_with_the_query_that_made_it(tracker, three):
    first = search_runs(tracker, "exp", "metrics.loss > 0", ["metrics.loss"], max_results=1)
    assert first.next_page_token is not None
    again = search_runs(
        tracker, "exp", " metrics.loss>0 ", ["metrics.loss ASC"], 1, first.next_page_token
    )
    assert names(again) == ["alpha"]
    for other in (
        {"filter_string": "metrics.loss > 1", "order_by": ["metrics.loss"]},
        {"filter_string": "metrics.loss > 0", "order_by": ["metrics.loss DESC"]},
        {"filter_string": "metrics.loss > 0", "order_by": ["metrics.loss"], "experiments": None},
    ):
        query: dict[str, Any] = {"experiments": "exp", **other}
        with pytest.raises(ValidationError, match="other experiments, filter or order_by"):
            search_runs(tracker, max_results=1, page_token=first.next_page_token, **query)


def token(data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def test_malformed_tokens_are_refused(tracker, three):
    real = search_runs(tracker, "exp", max_results=1).next_page_token
    assert real is not None and re.fullmatch(r"[A-Za-z0-9_\-]+", real)
    fingerprint = json.loads(base64.urlsafe_b64decode(real + "=" * (-len(real) % 4)))["q"]
    for bad in (
        "",
        "not base64!",
        "bm90IGpzb24",
        token([1, 2]),
        token({"q": fingerprint}),
        token({"q": fingerprint, "k": [1]}),
        token({"q": fingerprint, "k": ["x", "y"]}),  # start_time must be a number
        token({"q": fingerprint, "k": [None, "y"]}),  # start_time is never missing
        token({"q": fingerprint, "k": [True, "y"]}),
        token({"q": fingerprint, "k": [1, 2]}),
    ):
        with pytest.raises(ValidationError, match="page_token"):
            search_runs(tracker, "exp", max_results=1, page_token=bad)


def test_pages_stay_consistent_while_runs_are_added(tracker, three, clock):
    first = search_runs(tracker, "exp", order_by=["metrics.loss"], max_results=1)
    build(tracker, clock, [Spec("exp", "early", "finished", 5, 6, {}, [("loss", 0.0, 0)], {})])
    rest = page_through(
        tracker, 1, experiments="exp", order_by=["metrics.loss"]
    )  # a fresh search sees the new run first
    assert names(rest[0]) == ["early"]
    assert first.next_page_token is not None
    second = search_runs(
        tracker, "exp", order_by=["metrics.loss"], max_results=5, page_token=first.next_page_token
    )
    assert names(second) == ["alpha", "gamma"]  # no repeat of beta, and early is before it


# -- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected", "position"),
    [
        ("metrics.loss", "an operator", 12),
        ("metrics.loss ~ 1", "an operator", 13),
        ("metrics.loss > 'a'", "a number", 15),
        ("metrics.loss LIKE 1", "strings only", 13),
        ("params.lr = 0.1", "a quoted string", 12),
        ("params.lr = 'x", "a closing '", 12),
        ("metrics.`val loss > 1", "a closing `", 8),
        ("metrics. = 1", "a key", 8),
        ("metrics.`` = 1", "a key inside the quotes", 8),
        ("metricz.loss > 1", "metrics, params, tags or attributes", 0),
        ("metrics = 1", "'.' and a key", 7),
        ("attributes.color = 'x'", "an attribute", 11),
        ("loss > 1", "a field", 0),
        ("metrics.a > 1 or metrics.b > 1", "OR is not supported", 14),
        ("metrics.a > 1 metrics.b > 1", "'and'", 14),
        ("metrics.a > 1 and", "a field", 17),
        ("status = 'done'", "a status", 9),
        ("start_time > 'x'", "a number", 13),
        ("metrics.a > 1.2.3", "a number", 12),
        ("run_name = 'x'; DROP TABLE runs; --", "'and'", 14),
    ],
)
def test_syntax_errors_say_what_was_expected_where(tracker, three, text, expected, position):
    expected_where = rf"expected .*{re.escape(expected)}.* at position {position}, found"
    with pytest.raises(ValidationError, match=expected_where) as info:
        search_runs(tracker, "exp", text)
    message = str(info.value)
    assert expected in message and f"position {position}" in message, message


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        (["metrics.loss sideways"], "ASC, DESC or the end"),
        (["attributes.color"], "an attribute"),
        (["metrics."], "a key"),
        ("metrics.loss", "a list of strings"),
        ([1], "must be a string"),
        (["metrics.a"] * 11, "at most 10"),
    ],
)
def test_bad_order_by_is_refused(tracker, three, order_by, expected):
    with pytest.raises(ValidationError, match=re.escape(expected)):
        search_runs(tracker, "exp", order_by=order_by)


@pytest.mark.parametrize("max_results", [0, 50_001, -1, 1.5, True, "10"])
def test_max_results_must_be_between_1_and_50000(tracker, three, max_results):
    with pytest.raises(ValidationError, match="max_results"):
        search_runs(tracker, "exp", max_results=max_results)


@pytest.mark.parametrize(
    "text",
    [
        "metrics.`x'; DROP TABLE runs; --` > 0",
        "params.`a\"b` = 'x'",
        "params.lr = '0.1'' OR 1=1 --'",
        "tags.team = '; DELETE FROM runs; --'",
        "run_name LIKE '%'' OR ''1''=''1'",
        "tags.\"k`` ) OR 1=1 --\" = 'x'",
    ],
)
def test_quotes_semicolons_and_comments_are_data_not_sql(tracker, three, text):
    assert search_runs(tracker, "exp", text).runs == []
    assert len(search_runs(tracker, "exp").runs) == 3


def test_names_with_sql_in_them_match_exactly(tracker, clock):
    evil = "x'); DROP TABLE runs; --"
    build(tracker, clock, [Spec("exp", evil, "finished", 0, 1, {"p": evil}, [], {})])
    quoted = evil.replace("'", "''")
    assert names(search_runs(tracker, "exp", f"run_name = '{quoted}'")) == [evil]
    assert names(search_runs(tracker, "exp", f"params.p LIKE '%{quoted[-5:]}'")) == [evil]
    con = sqlite3.connect(tracker.db.path)
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
    con.close()
