"""Search runs with MLflow's filter and order_by syntax, a page at a time.

Filter: clauses joined by `and`, each `<field> <op> <value>`:

- `metrics.<key>` and `attributes.start_time|end_time` (ms since the epoch)
  take a number and `= != < <= > >=`;
- `params.<key>`, `tags.<key>` and `attributes.run_name|run_id|status` take a
  quoted string ('single' or "double"; a doubled quote inside is one quote)
  and also `LIKE` / `ILIKE` (`%` any run of characters, `_` one; no escape
  character; ILIKE folds ASCII letters only, as SQLite does). Strings compare
  by code point. `status` is compared case-insensitively (MLflow writes FINISHED).

`run_name` and `status` (and the other attributes) may drop `attributes.`.
Keys with spaces, dots or other characters go in backticks: metrics.`val loss`.
A run without the metric, param, tag or end time a clause names never matches
it, whatever the operator.

order_by: `<field> [ASC|DESC]` over metrics, params, tags and the attributes
start_time, end_time, run_name, status, run_id; default `attributes.start_time
DESC`; ties go to run_id (ascending). Runs lacking an ordered value come after
all runs that have it, in either direction (as MLflow).

Pages are keyset pages: the token holds the last row's sort key and a
fingerprint of the query, so pages stay consistent while runs are added and a
token cannot be replayed against another query.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litemlops.clock import from_ms
from litemlops.errors import ValidationError
from litemlops.store.tracking.search_syntax import (
    ATTRS,
    Clause,
    OrderTerm,
    parse_filter,
    parse_order_by,
)
from litemlops.store.tracking.tracking_types import RunInfo

if TYPE_CHECKING:
    from litemlops.store.tracking.tracker import Tracker
    from litemlops.store.tracking.tracking_db import TrackingDB

MAX_RESULTS = 50_000
# A metric clause matching fewer runs than this drives the search from its index
# range; counting costs at most this many index entries per clause (and MAX_PROBES clauses).
PROBE_LIMIT = 10_000
MAX_PROBES = 4

_TABLES = {"metric": "latest_metrics", "param": "params", "tag": "run_tags"}
_RANGE_OPS = ("=", "<", "<=", ">", ">=")  # ops an index range can serve

_GLOB_SPECIAL = {"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}


@dataclass(frozen=True)
class RunsPage:
    """One page of runs; pass `next_page_token` back for the next (None: no more)."""

    runs: list[RunInfo]
    next_page_token: str | None


def search_runs(
    tracker: Tracker,
    experiments: str | Sequence[str] | None = None,
    filter_string: str = "",
    order_by: Sequence[str] | None = None,
    max_results: int = 100,
    page_token: str | None = None,
) -> RunsPage:
    """Runs of `experiments` (names; None: all) matching `filter_string`, in `order_by` order.

    Raises ValidationError for a malformed filter, order_by, max_results or
    page token, and ExperimentNotFoundError for an unknown experiment.
    """
    if isinstance(max_results, bool) or not isinstance(max_results, int):
        raise ValidationError(f"max_results must be an integer, got {max_results!r}")
    if not 1 <= max_results <= MAX_RESULTS:
        raise ValidationError(f"max_results must be between 1 and {MAX_RESULTS}, got {max_results}")
    clauses = parse_filter(filter_string)
    terms = parse_order_by(order_by)
    if experiments is None:
        ids = [r[0] for r in tracker.db.read("SELECT experiment_id FROM experiments")]
        scope: Any = "*"
    else:
        names = [experiments] if isinstance(experiments, str) else list(experiments)
        ids = sorted({tracker.get_experiment(name).experiment_id for name in names})
        scope = ids
    fingerprint = _fingerprint(scope, clauses, terms)
    after = _decode_token(page_token, fingerprint, terms) if page_token is not None else None
    if not ids:
        return RunsPage([], None)
    keys = _Query(tracker.db, ids, clauses, terms).keys(after, max_results + 1)
    token = None
    if len(keys) > max_results:
        keys = keys[:max_results]
        token = _encode_token(fingerprint, keys[-1])
    return RunsPage(fetch_runs(tracker.db, [k[-1] for k in keys]), token)


# -- parsing -------------------------------------------------------------------------------


# -- the query ---------------------------------------------------------------------------------


class _Sql:
    """Collects named parameters: every value and key goes in through `bind`."""

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params)}"
        self.params[name] = value
        return f":{name}"


class _Query:
    """The SQL for one search, in at most two phases, and where each phase starts.

    When the first order term may be missing (a metric, param, tag or end_time),
    runs that have it come first (phase "has"), then runs without it (phase
    "lacks"). A phase is driven by one of: "index", walking latest_by_key in the
    order of the first metric and stopping after a page; "filter", the index
    range of the metric clause that matches fewest runs, then a sort; "runs",
    the experiment's runs (runs_by_experiment is in start_time order). Sort keys
    are (term values..., run_id).

    Costs at 100k runs: a lookup per row is about 1 us, so walking every run
    while testing a clause by lookup takes ~100 ms; a clause tested against the
    set of its runs costs ~0.3 us per row plus ~0.5 us per run in the set.
    """

    def __init__(
        self, db: TrackingDB, ids: list[int], clauses: list[Clause], terms: list[OrderTerm]
    ):
        self.db, self.ids, self.clauses, self.terms = db, ids, clauses, terms
        self.first = terms[0]
        # Every clause needs its field to be present, so one on the first term's
        # field empties the "lacks" phase.
        self.on_first = any((c.kind, c.key) == (self.first.kind, self.first.key) for c in clauses)
        self._narrowest: tuple[Clause | None, int] | None = None

    def keys(self, after: list[Any] | None, limit: int) -> list[list[Any]]:
        rows: list[list[Any]] = []
        if after is None or after[0] is not None:
            rows = self._run("has", after, limit)
        if len(rows) < limit and self.first.nullable and not self.on_first and self._some_lack():
            resume = after if after is not None and after[0] is None else None
            rows += self._run("lacks", resume, limit - len(rows))
        return rows

    def _some_lack(self) -> bool:
        """False when every run has the first metric (two index counts beat a scan)."""
        if self.first.kind != "metric":
            return True
        sql = _Sql()
        return bool(
            self.db.read(
                f"SELECT (SELECT count(*) FROM runs WHERE experiment_id {self._in(sql)}) > "
                f"(SELECT count(*) FROM latest_metrics WHERE experiment_id {self._in(sql)} "
                f"AND key = {sql.bind(self.first.key)})",
                sql.params,
            )[0][0]
        )

    def _narrowest_clause(self) -> tuple[Clause | None, int]:
        """The metric clause matching fewest runs (counted up to PROBE_LIMIT), if any.

        On a tie, a clause on the first order term's metric wins: its range is walked in order.
        """
        if self._narrowest is None:
            best: tuple[Clause | None, int] = (None, PROBE_LIMIT)
            metric = [c for c in self.clauses if c.kind == "metric"]
            metric.sort(key=lambda c: (c.key != self.first.key, c.op not in _RANGE_OPS))
            for clause in metric[:MAX_PROBES]:
                sql = _Sql()
                count = self.db.read(
                    "SELECT count(*) FROM (SELECT 1 FROM latest_metrics WHERE experiment_id "
                    f"{self._in(sql)} AND key = {sql.bind(clause.key)} AND "
                    f"{_compare(sql, 'value', clause.op, clause.value)} "
                    f"LIMIT {sql.bind(PROBE_LIMIT)})",
                    sql.params,
                )[0][0]
                if best[0] is None or count < best[1]:
                    best = (clause, count)
            self._narrowest = best
        return self._narrowest

    def _driver(self, phase: str) -> tuple[str, Clause | None, Clause | None]:
        """(driver, the clause it reads the range of, the clause to test as a set)."""
        first = self.first
        clause, count = self._narrowest_clause()
        index = phase == "has" and first.kind == "metric"
        if index and clause is not None and clause.key == first.key:
            return "index", None, None  # walk the clause's range of the index, in order
        walks = index or (phase == "has" and (first.kind, first.key) == ("attr", "start_time"))
        if clause is not None and (not walks or count < PROBE_LIMIT):
            return "filter", clause, None
        # A walk in order stops after a page. Testing the narrowest clause against
        # the set of its runs (built once) costs a fraction of a lookup per row.
        return ("index" if index else "runs"), None, clause

    def _run(self, phase: str, after: list[Any] | None, limit: int) -> list[list[Any]]:
        sql = _Sql()
        driver, via, as_set = self._driver(phase)
        first, rest = self.first, self.terms[1:]
        base = "r" if driver == "runs" else "d"
        tables: list[str] = []
        where: list[str] = []
        if driver == "runs":
            tables.append("runs r")
            where.append(f"r.experiment_id {self._in(sql)}")
        else:
            tables.append("latest_metrics d")
            key = via.key if via is not None else first.key
            where += [f"d.experiment_id {self._in(sql)}", f"d.key = {sql.bind(key)}"]
            if via is not None:
                where.append(_compare(sql, "d.value", via.op, via.value))
            if any(c.kind == "attr" for c in self.clauses) or any(
                t.kind == "attr" for t in self.terms
            ):
                tables.append("CROSS JOIN runs r ON r.run_id = d.run_id")
        # (expression, descending, may be NULL) per sort key component
        parts: list[tuple[str, bool, bool]] = []
        if phase == "has":
            if driver == "index":
                expr = "d.value"
            elif first.kind == "attr":
                expr = f"r.{ATTRS[first.key][0]}"
                if first.nullable:
                    where.append(f"{expr} IS NOT NULL")
            else:
                tables.append(
                    f"CROSS JOIN {_TABLES[first.kind]} o0 ON o0.run_id = {base}.run_id "
                    f"AND o0.key = {sql.bind(first.key)}"
                )
                expr = "o0.value"
            parts.append((expr, first.descending, False))
        elif first.kind == "attr":
            where.append(f"r.{ATTRS[first.key][0]} IS NULL")
        else:
            where.append(f"NOT {_exists(sql, base, first.kind, first.key)}")
        for n, term in enumerate(rest, start=1):
            if term.kind == "attr":
                parts.append((f"r.{ATTRS[term.key][0]}", term.descending, term.nullable))
                continue
            tables.append(
                f"LEFT JOIN {_TABLES[term.kind]} o{n} ON o{n}.run_id = {base}.run_id "
                f"AND o{n}.key = {sql.bind(term.key)}"
            )
            parts.append((f"o{n}.value", term.descending, True))
        parts.append((f"{base}.run_id", False, False))
        for clause in self.clauses:
            if clause is via:
                continue
            if clause is as_set:
                test = _compare(sql, "value", clause.op, clause.value)
                where.append(
                    f"{base}.run_id IN (SELECT run_id FROM latest_metrics WHERE experiment_id "
                    f"{self._in(sql)} AND key = {sql.bind(clause.key)} AND {test})"
                )
            elif clause.kind == "attr":
                where.append(_compare(sql, f"r.{ATTRS[clause.key][0]}", clause.op, clause.value))
            elif driver == "index" and clause.kind == "metric" and clause.key == first.key:
                where.append(_compare(sql, "d.value", clause.op, clause.value))
            else:
                test = _compare(sql, "value", clause.op, clause.value)
                where.append(_exists(sql, base, clause.kind, clause.key, f" AND {test}"))
        if after is not None:
            last = after if phase == "has" else after[1:]
            where.append(_after(sql, parts, last))
            expr0, desc0, nullable0 = parts[0]
            if not nullable0:  # a plain range the planner can seek to in an index
                where.append(f"{expr0} {'<=' if desc0 else '>='} {sql.bind(last[0])}")
        order = ", ".join(
            f"{e} {'DESC' if desc else 'ASC'}{' NULLS LAST' if nullable else ''}"
            for e, desc, nullable in parts
        )
        text = (
            f"SELECT {', '.join(p[0] for p in parts)} FROM {' '.join(tables)} "
            f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {sql.bind(limit)}"
        )
        found = [list(row) for row in self.db.read(text, sql.params)]
        return found if phase == "has" else [[None, *row] for row in found]

    def _in(self, sql: _Sql) -> str:
        if len(self.ids) == 1:
            return f"= {sql.bind(self.ids[0])}"
        return f"IN ({', '.join(sql.bind(i) for i in self.ids)})"


def _exists(sql: _Sql, base: str, kind: str, key: str, test: str = "") -> str:
    return (
        f"EXISTS (SELECT 1 FROM {_TABLES[kind]} WHERE run_id = {base}.run_id "
        f"AND key = {sql.bind(key)}{test})"
    )


def _compare(sql: _Sql, expr: str, op: str, value: float | str) -> str:
    if op == "LIKE":  # SQLite's LIKE ignores ASCII case; GLOB is the case-sensitive match
        return f"{expr} GLOB {sql.bind(like_to_glob(str(value)))}"
    if op == "ILIKE":
        return f"{expr} LIKE {sql.bind(value)}"
    return f"{expr} {op} {sql.bind(value)}"


def like_to_glob(pattern: str) -> str:
    """The GLOB pattern matching exactly what the LIKE pattern matches, case-sensitively."""
    return "".join(_GLOB_SPECIAL.get(char, char) for char in pattern)


def _after(sql: _Sql, parts: list[tuple[str, bool, bool]], key: Sequence[Any]) -> str:
    """Rows whose sort key comes after `key` (NULLs last in either direction)."""
    ors, equal = [], []
    for (expr, desc, nullable), value in zip(parts, key, strict=True):
        if value is None:  # nothing sorts after a missing value within its term
            equal.append(f"{expr} IS NULL")
            continue
        bound = sql.bind(value)
        later = f"{expr} {'<' if desc else '>'} {bound}"
        if nullable:
            later = f"({later} OR {expr} IS NULL)"
        ors.append(" AND ".join([*equal, later]))
        equal.append(f"{expr} = {bound}")
    return "(" + " OR ".join(f"({o})" for o in ors) + ")" if ors else "0"


# -- page tokens ---------------------------------------------------------------------------------


def _fingerprint(scope: Any, clauses: list[Clause], terms: list[OrderTerm]) -> str:
    described = {
        "experiments": scope,
        "filter": [[c.kind, c.key, c.op, c.value] for c in clauses],
        "order": [[t.kind, t.key, t.descending] for t in terms],
    }
    return hashlib.sha256(json.dumps(described, sort_keys=True).encode()).hexdigest()[:24]


def _encode_token(fingerprint: str, key: list[Any]) -> str:
    text = json.dumps({"q": fingerprint, "k": key}, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode_token(token: object, fingerprint: str, terms: list[OrderTerm]) -> list[Any]:
    bad = ValidationError(
        f"page_token {token!r} is not a token search_runs returned; start again without page_token"
    )
    if not isinstance(token, str) or not token:
        raise bad
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        raise bad from None
    if not isinstance(data, dict) or not isinstance(data.get("k"), list):
        raise bad
    if data.get("q") != fingerprint:
        raise ValidationError(
            "page_token belongs to a search with other experiments, filter or order_by; "
            "use it with the same arguments, or start again without page_token"
        )
    key = data["k"]
    if len(key) != len(terms) + 1 or not isinstance(key[-1], str):
        raise bad
    for term, value in zip(terms, key, strict=False):
        numeric = term.kind == "metric" or (term.kind == "attr" and ATTRS[term.key][1])
        wanted = (int, float) if numeric else (str,)
        if value is None and term.nullable:
            continue
        if isinstance(value, bool) or not isinstance(value, wanted):
            raise bad
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise bad  # SQLite integers are 64-bit; a forged token must not overflow
    return key


# -- fetching runs ---------------------------------------------------------------------------


def fetch_runs(db: TrackingDB, run_ids: list[str]) -> list[RunInfo]:
    """Full `RunInfo`s for `run_ids`, in that order: one query per table (unknown ids are
    left out)."""
    if not run_ids:
        return []
    ids = json.dumps(run_ids)
    among = "run_id IN (SELECT value FROM json_each(?))"
    rows = {
        r["run_id"]: r
        for r in db.read(
            "SELECT r.*, e.name AS experiment FROM runs r JOIN experiments e "
            f"USING (experiment_id) WHERE r.{among}",
            [ids],
        )
    }
    data: dict[str, dict[str, dict[str, Any]]] = {}
    for table in ("params", "latest_metrics", "run_tags"):
        grouped: dict[str, dict[str, Any]] = defaultdict(dict)
        for r in db.read(
            f"SELECT run_id, key, value FROM {table} WHERE {among} ORDER BY run_id, key", [ids]
        ):
            grouped[r["run_id"]][r["key"]] = r["value"]
        data[table] = grouped
    runs = []
    for run_id in run_ids:
        if run_id not in rows:
            continue
        row = rows[run_id]
        start = from_ms(row["start_time"])
        assert start is not None
        runs.append(
            RunInfo(
                run_id=run_id,
                experiment_id=row["experiment_id"],
                experiment=row["experiment"],
                name=row["name"],
                status=row["status"],
                start_time=start,
                end_time=from_ms(row["end_time"]),
                parent_run_id=row["parent_run_id"],
                git_commit=row["git_commit"],
                error=row["error"],
                params=dict(data["params"].get(run_id, {})),
                metrics=dict(data["latest_metrics"].get(run_id, {})),
                tags=dict(data["run_tags"].get(run_id, {})),
                lifecycle_stage=row["lifecycle_stage"],
            )
        )
    return runs
