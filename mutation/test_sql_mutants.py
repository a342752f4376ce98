"""The SQL operators mutate what they say, and only inside SQL literals."""

import pytest

pytest.importorskip("cosmic_ray")

import sql_mutants
from cosmic_ray.mutating import mutate_code
from cosmic_ray.plugins import get_operator


@pytest.mark.parametrize(
    ("name", "example"),
    [(name, ex) for name, cls in sql_mutants.OPERATORS.items() for ex in cls.examples()],
)
def test_each_example_mutates_as_shown(name, example):
    operator = sql_mutants.OPERATORS[name]()

    assert mutate_code(example.pre_mutation_code, operator, example.occurrence) == (
        example.post_mutation_code
    )


def test_every_operator_has_an_example_and_cosmic_ray_finds_it_by_name():
    for name, cls in sql_mutants.OPERATORS.items():
        assert cls.examples(), name
        assert get_operator(f"sql/{name}") is cls


@pytest.mark.parametrize(
    ("name", "code"),
    [
        # Not SQL: prose, a docstring, a dict key.
        ("SqlAndToOr", 'm = "lower and upper bounds, ordered by name"'),
        ("SqlAndToOr", 'def f():\n    """SELECT a FROM t WHERE a AND b."""\n'),
        ("SqlEqualsToNotEquals", 'm = "a = b"'),
        # SQL, but no such mutation: an assignment, `INSERT OR`, a JSON path, a word inside
        # a word, an explicit direction, a function's name in an expression.
        ("SqlEqualsToNotEquals", 'q = "UPDATE t SET a = ?, b = ?"'),
        ("SqlEqualsToNotEquals", "q = \"SELECT * FROM read_json(?, format='auto')\""),
        ("SqlOrToAnd", 'q = "INSERT OR REPLACE INTO t VALUES (?)"'),
        ("SqlOrToAnd", 'q = "CREATE OR REPLACE TABLE t AS SELECT 1"'),
        ("SqlDropDistinct", 'q = "SELECT a FROM t WHERE a IS NOT DISTINCT FROM b"'),
        ("SqlOrToAnd", 'q = "SELECT a FROM t ORDER BY a"'),
        ("SqlGreaterToGreaterEqual", "q = \"SELECT j->>'k' FROM t\""),
        ("SqlLessToLessEqual", 'q = "SELECT a FROM t WHERE a <> b"'),
        ("SqlInnerJoinToLeft", 'q = "FROM e LEFT JOIN f ON x"'),
        ("SqlOrderByDescending", 'q = "SELECT a FROM t ORDER BY a ASC"'),
        ("SqlOrderByDescending", 'q = "SELECT a FROM t ORDER BY count(*)"'),
        ("SqlMaxToMin", 'q = "SELECT a FROM t WHERE maxima = 1"'),
    ],
)
def test_no_mutation_outside_sql_or_where_it_means_something_else(name, code):
    assert mutate_code(code, sql_mutants.OPERATORS[name](), 0) is None


def test_a_fragment_is_sql_when_its_concatenation_is_and_each_match_is_its_own_mutant():
    code = 'q = (\n    "SELECT a FROM t "\n    f"WHERE a >= {x} "\n    "AND b >= ?"\n)\n'
    operator = sql_mutants.SqlGreaterEqualToGreater()

    first, second = (mutate_code(code, operator, i) for i in (0, 1))

    assert first == code.replace("a >= {x}", "a > {x}")
    assert second == code.replace("b >= ?", "b > ?")
    assert mutate_code(code, operator, 2) is None
    positions = [p for leaf in _leaves(code) for p in operator.mutation_positions(leaf)]
    assert positions == [((3, 14), (3, 16)), ((4, 11), (4, 13))]


def test_a_literal_inside_a_sql_f_strings_braces_is_sql_too():
    code = "q = f\"SELECT a FROM t ON {' AND '.join(f'e.{k} = f.{k}' for k in ks)}\"\n"

    assert mutate_code(code, sql_mutants.SqlAndToOr(), 0) == code.replace(" AND ", " OR ")
    assert mutate_code(code, sql_mutants.SqlEqualsToNotEquals(), 0) == code.replace(
        "e.{k} = f", "e.{k} != f"
    )


def _leaves(code):
    from cosmic_ray.ast import ast_nodes, get_ast

    return list(ast_nodes(get_ast(code)))
