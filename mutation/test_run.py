"""The report: survivors, equivalents by entry and by rule, stale entries, one section each."""

import pytest

pytest.importorskip("cosmic_ray")

import run

MODULE = "litemlops/alert_rules.py"
SETTINGS = {"tests": ["tests/test_x.py"]}


def mutant(line, mutant, outcome="survived", position=(40, 4), operator="core/Op"):
    return run.Mutant(operator, position, line, mutant, outcome)


def test_the_section_counts_and_lists_survivors_equivalents_and_stale_entries():
    equivalents = {
        "equivalent": [
            {"module": MODULE, "operator": "core/Op", "line": "a < b", "mutant": "a <= b",
             "why": "a and b are never equal"},
            {"module": MODULE, "operator": "core/Op", "line": "gone", "mutant": "went",
             "why": "stale"},
            {"module": "other.py", "operator": "core/Op", "line": "x", "mutant": "y", "why": "-"},
        ],
    }
    mutants = [
        mutant("a < b", "a <= b"),
        mutant("c < d", "c <= d", position=(7, 0)),
        mutant("e", "f", outcome="killed"),
        mutant("g", "h", outcome="timeout"),
        mutant("i", "j", outcome="error"),
    ]

    text = run.section(MODULE, mutants, equivalents, SETTINGS, 60.0, 30.0)

    assert "| 5 | 0 | 1 | 1 | 1 | 1 | 1 | 40.0% | 50.0% |" in text
    assert f"# {MODULE}:7 core/Op\n- c < d\n+ c <= d" in text
    assert "- 1 on line 40: a and b are never equal" in text
    assert "- core/Op: `gone` -> `went`" in text
    assert "other.py" not in text


def test_a_rule_covers_survivors_inside_annotations_only(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("def f(a: int | None) -> int | str:\n    return a | 1\n")
    monkeypatch.setattr(run, "ROOT", tmp_path)
    rules = {"rule": [{"kind": "annotation", "modules": ["m.py"], "why": "not evaluated"}]}
    mutants = [
        mutant("def f", "def f", position=(1, 13)),
        mutant("def f", "def f", position=(1, 28)),
        mutant("return a | 1", "return a + 1", position=(2, 13)),
        mutant("def f", "def f", position=(1, 13), outcome="killed"),
    ]
    monkeypatch.setattr(run, "git", lambda *args: "abc1234")

    text = run.section("m.py", mutants, rules, SETTINGS, 60.0, 30.0)

    assert "- 2 on line 1: not evaluated" in text
    assert "# m.py:2 core/Op" in text
    assert "| 4 | 2 | 1 | 0 | 1 | 0 | 0 | 50.0% | 50.0% |" in text
    assert "The score counts the 2 mutants outside" in text
    assert "Counted as not caught, the score would be 25.0%." in text


def test_each_run_replaces_its_modules_section_and_keeps_the_others_in_order(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(run, "RESULTS", tmp_path / "results.md")
    last = "litemlops/serving/routing.py"

    run.write_section(last, f"## {last}\n\nfirst\n")
    run.write_section(MODULE, f"## {MODULE}\n\nsecond\n")
    run.write_section(last, f"## {last}\n\nthird\n")

    text = (tmp_path / "results.md").read_text()
    assert text.startswith(run.HEADER)
    assert text.index("second") < text.index("third")
    assert "first" not in text


def test_skipped_mutants_inside_annotations_are_equivalent_and_outside_an_error(
    tmp_path, monkeypatch
):
    (tmp_path / "m.py").write_text("def f(a: int | None) -> int | str:\n    return a | 1\n")
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "git", lambda *args: "abc1234")
    rules = {"rule": [{"kind": "annotation", "modules": ["m.py"], "why": "not evaluated"}]}
    mutants = [
        mutant("", "", position=(1, 13), outcome="skipped"),
        mutant("", "", position=(2, 13), outcome="skipped"),  # not an annotation: the file moved
        mutant("return a | 1", "return a + 1", position=(2, 13), outcome="killed"),
    ]

    text = run.section("m.py", mutants, rules, SETTINGS, 60.0, 30.0)

    assert "- 1 on line 1: not evaluated" in text
    assert "| 3 | 1 | 1 | 0 | 0 | 0 | 1 | 50.0% | 50.0% |" in text
    assert "The score counts the 2 mutants outside type annotations. The 1 inside" in text
    assert "Counted as not caught, the score would be 33.3%." in text


def test_only_mutants_inside_a_covered_modules_annotations_are_skipped(tmp_path, monkeypatch):
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import MutationSpec, WorkerOutcome, WorkItem, WorkResult

    (tmp_path / "m.py").write_text("def f(a: int | None) -> int | str:\n    return a | 1\n")
    monkeypatch.setattr(run, "ROOT", tmp_path)
    session = tmp_path / "session.sqlite"
    at = [(1, 13), (1, 28), (2, 13), (1, 4)]  # in a's hint, in the return hint, code, name
    with use_db(str(session), WorkDB.Mode.create) as db:
        db.add_work_items(
            WorkItem.single(f"job{i}",
                            MutationSpec("m.py", "core/Op", 0, start, (start[0], start[1] + 1)))
            for i, start in enumerate(at)
        )  # fmt: skip
        db.set_result("job3", WorkResult(WorkerOutcome.NORMAL, output="ran already"))
    rules = {"rule": [{"kind": "annotation", "modules": ["m.py"], "why": "not evaluated"}]}

    assert run.skip_annotations(session, "other.py", rules) == 0
    assert run.skip_annotations(session, "m.py", {}) == 0
    assert run.skip_annotations(session, "m.py", rules) == 2

    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = {item.job_id for item in db.pending_work_items}
        completed = db.completed_work_items
    done = {item.job_id: result for item, result in completed}
    assert pending == {"job2"}
    assert {job: (r.worker_outcome, r.output) for job, r in done.items()} == {
        "job0": (WorkerOutcome.SKIPPED, run.SKIPPED),
        "job1": (WorkerOutcome.SKIPPED, run.SKIPPED),
        "job3": (WorkerOutcome.NORMAL, "ran already"),
    }
    outcomes = {item.job_id: run.mutant(item, result).outcome for item, result in completed}
    assert outcomes == {"job0": "skipped", "job1": "skipped", "job3": "error"}


def test_forgetting_survivors_makes_only_them_pending_again(tmp_path):
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import MutationSpec, TestOutcome, WorkerOutcome, WorkItem, WorkResult

    session = tmp_path / "session.sqlite"
    outcomes = {"a": TestOutcome.SURVIVED, "b": TestOutcome.KILLED, "c": TestOutcome.SURVIVED}
    with use_db(str(session), WorkDB.Mode.create) as db:
        db.add_work_items(
            WorkItem.single(job, MutationSpec("m.py", "core/Op", 0, (i + 1, 0), (i + 1, 1)))
            for i, job in enumerate([*outcomes, "d"])
        )
        for job, outcome in outcomes.items():
            db.set_result(job, WorkResult(WorkerOutcome.NORMAL, test_outcome=outcome))

    assert run.forget_survivors(session) == 2

    with use_db(str(session), WorkDB.Mode.open) as db:
        assert {item.job_id for item in db.pending_work_items} == {"a", "c", "d"}
        assert [(i.job_id, r.test_outcome) for i, r in db.completed_work_items] == [
            ("b", TestOutcome.KILLED)
        ]


def test_a_retested_section_keeps_the_first_runs_date_and_says_what_ran_again(monkeypatch):
    monkeypatch.setattr(run, "git", lambda *args: "")
    first = {"date": "2026-12-01", "commit": "abc1234", "took": 600.0}
    again = {"again": 3, "took": 120.0, "commit": "def5678"}
    mutants = [mutant("e", "f", outcome="killed"), mutant("g", "h")]

    text = run.section(MODULE, mutants, {}, SETTINGS, 600.0, 30.0, first=first, retested=again)

    assert text.startswith(f"## {MODULE}\n\nRun 2026-12-01 on abc1234: 2 mutants in 10 min")
    assert "Its 3 survivors ran again " in text and " on def5678 (2 min); the other " in text
    assert "| 2 | 0 | 1 | 0 | 1 | 0 | 0 | 50.0% | 50.0% |" in text

    none = run.section(MODULE, mutants[:1], {}, SETTINGS, 600.0, 30.0, first=first,
                       retested={**again, "again": 0})  # fmt: skip
    assert " on abc1234: 1 mutants in 10 min" in none
    assert " Reported again " in none and " on def5678; it left no survivor to run again." in none


def test_survivors_are_run_again_only_from_a_whole_run_of_the_same_code(tmp_path, monkeypatch):
    monkeypatch.setattr(run, "ROOT", tmp_path)
    monkeypatch.setattr(run, "SESSIONS", tmp_path / "sessions")
    (tmp_path / "m.py").write_text("x = 1\n")
    settings = {"tests": [], "pytest": ["--version"], "timeout": 60}
    with pytest.raises(SystemExit, match="no session of a whole run"):
        run.run_module("m.py", settings, {}, survivors=True)
    (tmp_path / "sessions").mkdir()
    run.session_of("m.py").write_bytes(b"")
    run.session_of("m.py").with_suffix(".json").write_text(
        '{"sha256": "' + "0" * 64 + '", "date": "2026-12-01", "commit": "abc", "took": 1}'
    )
    with pytest.raises(SystemExit, match=r"m\.py changed since its last whole run"):
        run.run_module("m.py", settings, {}, survivors=True)


def test_the_durations_report_gives_each_tests_seconds_with_its_parameters():
    out = (
        "============ slowest durations ============\n"
        "1.50s call     tests/x.py::test_y[a b]\n"
        "0.25s setup    tests/x.py::test_y[a b]\n"
        "0.00s teardown tests/x.py::Machine::runTest\n"
        "3 passed in 2.00s\n"
    )
    assert run.DURATION.findall(out) == [
        ("1.50", "tests/x.py::test_y[a b]"),
        ("0.25", "tests/x.py::test_y[a b]"),
        ("0.00", "tests/x.py::Machine::runTest"),
    ]
