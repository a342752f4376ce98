"""Which tests a mutant runs: those that ran its statement, or all of them."""

import ast
import json

import mutant
import pytest

SOURCE = """\
import os

LIMIT = 3


def f(x):
    total = (x
             + LIMIT)
    if (x > 1
            and x < 9):
        return total
    else:
        return 0
"""


def mutated(old: str, new: str) -> str:
    assert SOURCE.count(old) == 1
    return SOURCE.replace(old, new)


def test_changed_lines_are_the_originals_replaced_or_removed():
    assert mutant.changed_lines(SOURCE, mutated("x > 1", "x >= 1")) == [9]
    joined = mutated("(x\n             + LIMIT)", "(x - LIMIT)")
    assert mutant.changed_lines(SOURCE, joined) == [7, 8]
    assert mutant.changed_lines(SOURCE, mutated("        return 0\n", "")) == [13]
    assert mutant.changed_lines(SOURCE, SOURCE) == []


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (8, range(7, 9)),  # a simple statement over two lines: all of it
        (7, range(7, 9)),
        (10, range(9, 11)),  # a compound statement's header, not its body
        (11, range(11, 12)),
        (12, range(12, 13)),  # `else:` is no statement's header: the line alone
        (6, range(6, 7)),  # `def f(x):` (its body starts at 7)
        (5, range(5, 6)),  # outside any statement
        (3, range(3, 4)),
    ],
)
def test_a_lines_statement_is_a_simple_one_whole_or_a_compound_ones_header(line, expected):
    assert mutant.statement_lines(ast.parse(SOURCE), line) == expected


def test_the_tests_are_those_that_ran_any_line_of_the_statement():
    by_line = {7: ["t::a", "t::b"], 9: ["t::a"], 10: ["t::c"], 11: ["t::a"], 3: [""]}

    # A continuation line no test is recorded on: its statement's first line counts.
    assert mutant.tests_for(SOURCE, mutated("+ LIMIT", "- LIMIT"), by_line) == ["t::a", "t::b"]
    # A condition's second line: the header's lines, not the body's.
    assert mutant.tests_for(SOURCE, mutated("x < 9", "x <= 9"), by_line) == ["t::a", "t::c"]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("LIMIT = 3", "LIMIT = 4"),  # run at import: every test depends on it
        ("return 0", "return 1"),  # run by no test the map knows (a thread, a subprocess)
    ],
)
def test_all_tests_run_for_an_import_time_line_or_one_no_test_ran(old, new):
    by_line = {3: [""], 7: ["t::a"], 9: ["t::a"], 11: ["t::a"]}
    assert mutant.tests_for(SOURCE, mutated(old, new), by_line) is None


def test_all_tests_run_for_a_mutant_no_line_of_which_differs():
    assert mutant.tests_for(SOURCE, SOURCE, {n: ["t::a"] for n in range(1, 14)}) is None


def test_one_line_run_at_import_among_others_runs_all():
    by_line = {7: ["t::a"], 9: [""], 10: ["t::a"]}
    assert mutant.tests_for(SOURCE, mutated("x > 1", "x >= 1"), by_line) is None


@pytest.mark.parametrize(
    ("context", "test"),
    [
        ("tests/x.py::test_y|run", "tests/x.py::test_y"),
        ("tests/x.py::test_y[3-a|b]|setup", "tests/x.py::test_y"),
        ("tests/x.py::Machine::runTest|teardown", "tests/x.py::Machine::runTest"),
        ("", ""),
    ],
)
def test_a_context_names_its_test_without_parameters(context, test):
    assert mutant.test_id(context) == test


def test_the_command_runs_the_chosen_tests_through_the_server(tmp_path, monkeypatch):
    module, original = tmp_path / "m.py", tmp_path / "original.py"
    original.write_text(SOURCE)
    module.write_text(mutated("x > 1", "x >= 1"))
    (tmp_path / "lines.json").write_text(json.dumps({"9": ["t::a"], "10": ["t::b"]}))
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps({
        "module": str(module), "original": str(original), "map": str(tmp_path / "lines.json"),
        "socket": "S", "pytest": ["-x"], "tests": ["t"],
        "seconds": {"t::a": 2.0, "t::b": 1.0, "t::c": 5.0},
    }))  # fmt: skip
    ran = []
    monkeypatch.setattr(
        mutant.forkserver, "run", lambda socket, args, timeout: ran.append((args, timeout)) or 1
    )

    assert mutant.main([str(plan)]) == 1
    module.write_text(SOURCE.replace("LIMIT = 3", "LIMIT = 4"))
    assert mutant.main([str(plan)]) == 1

    # The chosen tests run from the quickest on, for a few times their seconds; all the
    # timed tests too, for a few times the seconds of all; without times, the files.
    plan.write_text(json.dumps({**json.loads(plan.read_text()), "seconds": {}}))
    assert mutant.main([str(plan)]) == 1
    assert ran == [
        (["-x", "t::b", "t::a"], mutant.SLACK * 3.0 + 30),
        (["-x", "t::b", "t::a", "t::c"], mutant.SLACK * 8.0 + 30),
        (["-x", "t"], None),
    ]
