"""Mutation-test the core modules with Cosmic Ray and write each one's result to results.md.

`python mutation/run.py [MODULE ...]` (all of modules.toml when none is named), from the
repository's root, in an environment with Cosmic Ray and this folder's SQL operators
(`tox -e mutation` makes one). For each module: its tests must pass unmutated, then every
mutant of Cosmic Ray's operators and the SQL ones runs those tests once; the module's
section of results.md is then replaced, so the file keeps the last result of each.
Mutants listed in equivalent.toml are reported apart; any other mutant the tests do not
kill, on a line they run or not, is a survivor. Mutants an annotation rule of
equivalent.toml covers are marked done before the tests run (about a quarter of the
mutants of a typed module, each a test run saved) and reported with the rule's why.

`--survivors` runs again only the mutants a module's last whole run left alive, from
that run's session (kept in mutation/sessions): after tests were added for them, at a
fraction of a whole run's time. The module's own code must not have changed since.

Cosmic Ray mutates the module's file in place while it runs: leave the tree alone
meanwhile. The file is put back afterwards, also when the run is interrupted.
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import datetime
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path

import forkserver
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.md"
SESSIONS = HERE / "sessions"  # each module's last Cosmic Ray session (not committed)
HEADER = """# Mutation testing: the last result of each core module

Written by `mutation/run.py` (`tox -e mutation`, see CONTRIBUTING.md); each module's
section is replaced when that module is run again. A survivor is a mutant the module's
tests (mutation/modules.toml) did not fail on; equivalent mutants are those
mutation/equivalent.toml explains.
"""


@dataclass
class Mutant:
    """One mutant's outcome, with the changed line before and after (indentation off)."""

    operator: str
    position: tuple[int, int]  # line, column
    line: str
    mutant: str
    outcome: str  # killed, timeout, survived or error
    equivalent: str | None = None  # why, from equivalent.toml


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="paths as in modules.toml (default: all)")
    parser.add_argument(
        "--survivors",
        action="store_true",
        help="run again only the mutants the module's last run left alive (after adding "
        "tests): its other outcomes are kept from that run's session in mutation/sessions",
    )
    args = parser.parse_args()
    config = tomllib.loads((HERE / "modules.toml").read_text())
    unknown = set(args.modules) - set(config["modules"])
    if unknown:
        parser.error(f"not in mutation/modules.toml: {', '.join(sorted(unknown))}")
    equivalents = tomllib.loads((HERE / "equivalent.toml").read_text())
    # Hypothesis's `mutation` profile (tests/conftest.py): the same examples on every run
    # (each test's full count, twice CI's), and no shrinking of a failure, which only
    # costs time here.
    os.environ["CI"] = "1"
    os.environ["HYPOTHESIS_PROFILE"] = "mutation"
    for module in args.modules or list(config["modules"]):
        settings = {**config["defaults"], **config["modules"][module]}
        section = run_module(module, settings, equivalents, survivors=args.survivors)
        write_section(module, section)
    return 0


def session_of(module: str) -> Path:
    """Where a module's Cosmic Ray session is kept (ignored by git): `--survivors` runs
    again what it left alive, without making and running every mutant anew."""
    return SESSIONS / (module.replace("/", "_") + ".sqlite")


def run_module(module: str, settings: dict, equivalents: dict, *, survivors: bool = False) -> str:
    """Runs one module's mutants (or only its last run's survivors) and returns its
    section of results.md."""
    session = session_of(module)
    about = session.with_suffix(".json")
    if survivors and not (session.exists() and about.exists()):
        sys.exit(f"{module}: no session of a whole run in {SESSIONS}; run it without --survivors")
    digest = hashlib.sha256((ROOT / module).read_bytes()).hexdigest()
    if survivors and json.loads(about.read_text()).get("sha256") != digest:
        sys.exit(f"{module} changed since its last whole run: its mutants are not this code's; "
                 "run it without --survivors")  # fmt: skip
    timeout = float(settings["timeout"])
    source = (ROOT / module).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        started = time.monotonic()
        by_line, seconds = lines_run(module, settings, Path(folder))
        took = time.monotonic() - started
        if took * 2 > timeout:
            sys.exit(f"{module}: the tests take {took:.0f} s; raise its timeout in modules.toml")
        print(f"{module}: tests pass unmutated in {took:.1f} s (with coverage); mutating",
              flush=True)  # fmt: skip
        plan = Path(folder) / "plan.json"
        (Path(folder) / "original.py").write_bytes(source)
        (Path(folder) / "lines.json").write_text(json.dumps(by_line))
        plan.write_text(json.dumps({
            "module": str(ROOT / module), "original": str(Path(folder) / "original.py"),
            "map": str(Path(folder) / "lines.json"), "socket": str(Path(folder) / "fork.sock"),
            "pytest": settings["pytest"], "tests": settings["tests"], "seconds": seconds,
        }))  # fmt: skip
        command = shlex.join([sys.executable, str(HERE / "mutant.py"), str(plan)])
        with fork_server(Path(folder) / "fork.sock"):
            took, again = mutate(module, settings, equivalents, survivors, session, about,
                                 folder, command, timeout, source)  # fmt: skip
    with use_db(str(session), WorkDB.Mode.open) as db:
        mutants = [mutant(item, result) for item, result in db.completed_work_items]
    if survivors:
        first = json.loads(about.read_text())
        retested = {"again": again, "took": took, "commit": commit_now()}
        return section(module, mutants, equivalents, settings, first["took"], timeout,
                       first=first, retested=retested)  # fmt: skip
    first = {"date": datetime.date.today().isoformat(), "commit": commit_now(), "took": took,
             "sha256": digest}  # fmt: skip
    about.write_text(json.dumps(first))
    return section(module, mutants, equivalents, settings, took, timeout, first=first)


def mutate(module, settings, equivalents, survivors, session, about, folder, command, timeout,
           source):  # fmt: skip
    """Makes the module's mutants (or forgets its survivors) and runs them; returns the
    time taken and how many survivors ran again."""
    cosmic = Path(folder) / "cosmic-ray.toml"
    cosmic.write_text(  # a JSON string is a TOML one
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(command)}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
    )
    started = time.monotonic()
    again = 0
    try:
        if survivors:
            again = forget_survivors(session)
            print(f"{module}: {again} survivors of the last run run again", flush=True)
        else:
            SESSIONS.mkdir(exist_ok=True)
            session.unlink(missing_ok=True)
            about.unlink(missing_ok=True)
            cosmic_ray("init", cosmic, session)
            skipped = skip_annotations(session, module, equivalents)
            if skipped:
                print(f"{module}: {skipped} mutants inside annotations not run", flush=True)
        cosmic_ray("exec", cosmic, session)
    finally:
        if (ROOT / module).read_bytes() != source:
            (ROOT / module).write_bytes(source)
    return time.monotonic() - started, again


def lines_run(
    module: str, settings: dict, folder: Path
) -> tuple[dict[int, list[str]], dict[str, float]]:
    """Runs the module's tests unmutated, under coverage with a context per test; exits
    when they fail. Returns, for each line of the module that ran, the tests that ran it
    ("" for a line run at import), and each test's seconds: a mutant runs its tests from
    the quickest on, so the first to fail comes soon, and stops them when they take a few
    times what they took here."""
    import mutant as chooser
    from coverage import CoverageData

    data_file = folder / "coverage"
    command = [sys.executable, "-m", "pytest", *settings["pytest"], "-p", "no:randomly",
               "--dist=no", "--cov=litemlops", "--cov-context=test", "--cov-report=",
               "--durations=0", "--durations-min=0", *settings["tests"]]  # fmt: skip
    env = {**os.environ, "COVERAGE_FILE": str(data_file)}
    baseline = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    if baseline.returncode != 0:
        sys.exit(f"{module}: its tests fail unmutated:\n{baseline.stdout[-3000:]}")
    data = CoverageData(basename=str(data_file))
    data.read()
    by_line = data.contexts_by_lineno(str(ROOT / module))
    took: dict[str, float] = {}
    for seconds, test in DURATION.findall(baseline.stdout):
        took[chooser.test_id(test)] = took.get(chooser.test_id(test), 0.0) + float(seconds)
    lines = {n: sorted({chooser.test_id(c) for c in contexts}) for n, contexts in by_line.items()}
    return lines, took


# A line of pytest's --durations report: "0.52s call     tests/x.py::test_y[1]".
DURATION = re.compile(r"^([0-9.]+)s (?:setup|call|teardown) +(\S.*?)\s*$", re.MULTILINE)


@contextlib.contextmanager
def fork_server(path: Path):
    """A fork server (forkserver.py) on `path` while the block runs."""
    server = subprocess.Popen([sys.executable, str(HERE / "forkserver.py"), "serve", str(path)],
                              cwd=ROOT)  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not path.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                sys.exit("the fork server did not start")
            time.sleep(0.1)
        yield
    finally:
        server.kill()
        server.wait()


def forget_survivors(session: Path) -> int:
    """Makes the session's surviving mutants pending again; returns how many."""
    import sqlite3

    con = sqlite3.connect(session)
    try:
        with con:
            return con.execute(
                "DELETE FROM work_results WHERE test_outcome = 'SURVIVED'"
            ).rowcount
    finally:
        con.close()


def annotation_rule(module: str, equivalents: dict) -> str | None:
    """The why of the annotation rule covering the module, if one does."""
    for rule in equivalents.get("rule", []):
        if rule["kind"] == "annotation" and module in rule["modules"]:
            return str(rule["why"])
    return None


def inside(spans: list[tuple[tuple[int, int], tuple[int, int]]], at: tuple[int, int]) -> bool:
    return any(start <= at < end for start, end in spans)


def skip_annotations(session: Path, module: str, equivalents: dict) -> int:
    """Marks the pending mutants inside the module's annotations done (skipped), when an
    annotation rule covers the module: the report counts them equivalent, unrun."""
    if annotation_rule(module, equivalents) is None:
        return 0
    spans = annotations(ROOT / module)
    skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            (mutation,) = item.mutations
            if inside(spans, tuple(mutation.start_pos)):
                db.set_result(item.job_id, WorkResult(WorkerOutcome.SKIPPED, output=SKIPPED))
                skipped += 1
    return skipped


SKIPPED = "inside an annotation: not run"


def cosmic_ray(command: str, config: Path, session: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "cosmic_ray.cli", command, str(config), str(session)],
        cwd=ROOT, check=True,
    )


def mutant(item, result) -> Mutant:
    """A finished work item as a Mutant: its outcome and the lines its diff changes."""
    (mutation,) = item.mutations
    diff = (result.diff or "").splitlines()  # none for a mutant skipped before it ran
    removed = [d[1:].strip() for d in diff if d[:1] == "-" and d[:3] != "---"]
    added = [d[1:].strip() for d in diff if d[:1] == "+" and d[:3] != "+++"]
    if result.worker_outcome == WorkerOutcome.SKIPPED and result.output == SKIPPED:
        outcome = "skipped"
    elif result.worker_outcome != WorkerOutcome.NORMAL:
        outcome = "error"
    elif result.test_outcome == TestOutcome.SURVIVED:
        outcome = "survived"
    elif result.test_outcome == TestOutcome.KILLED:
        stopped = result.output == "timeout" or forkserver.TIMED_OUT in (result.output or "")
        outcome = "timeout" if stopped else "killed"
    else:
        outcome = "error"
    return Mutant(
        mutation.operator_name, tuple(mutation.start_pos), " ".join(removed), " ".join(added),
        outcome,
    )


def section(
    module: str,
    mutants: list[Mutant],
    equivalents: dict,
    settings: dict,
    took: float,
    timeout: float,
    *,
    first: dict | None = None,
    retested: dict | None = None,
) -> str:
    """The module's part of results.md: counts, scores, survivors, equivalents. `first`
    is the whole run's date and commit; `retested`, when its survivors ran again."""
    entries = [e for e in equivalents.get("equivalent", []) if e["module"] == module]
    why = annotation_rule(module, equivalents)
    spans = annotations(ROOT / module)
    used: set[int] = set()
    for m in mutants:
        if why is not None and m.outcome in ("survived", "skipped") and inside(spans, m.position):
            m.equivalent = why
        for i, e in enumerate(entries):
            same = (e["operator"], e["line"], e["mutant"]) == (m.operator, m.line, m.mutant)
            if same and m.outcome == "survived":
                used.add(i)
                m.equivalent = e["why"]
        if m.outcome == "skipped" and m.equivalent is None:
            m.outcome = "error"  # skipped outside an annotation: the module changed meanwhile
    count = {o: sum(m.outcome == o for m in mutants) for o in ("killed", "timeout", "error")}
    survived = [m for m in mutants if m.outcome == "survived" and m.equivalent is None]
    equivalent = [m for m in mutants if m.equivalent is not None]
    # Mutants inside annotations are not counted (an annotation is never evaluated here,
    # and mutmut makes none there); those equivalent.toml lists are, as equivalent.
    hints = [m for m in equivalent if why is not None and m.equivalent == why]
    others = len(equivalent) - len(hints)
    detected = count["killed"] + count["timeout"]
    total = len(mutants)
    counted = total - len(hints)
    first = first or {"date": datetime.date.today().isoformat(), "commit": commit_now()}
    again = ""
    if retested:
        when = f"{datetime.date.today().isoformat()} on {retested['commit']}"
        again = (
            f" Its {retested['again']} survivors ran again {when} ({retested['took'] / 60:.0f} "
            "min); the other outcomes are the first run's."
            if retested["again"]
            else f" Reported again {when}; it left no survivor to run again."
        )
    lines = [
        f"## {module}",
        "",
        f"Run {first['date']} on {first['commit']}: {total} mutants in "
        f"{took / 60:.0f} min ({took / max(total, 1):.1f} s a mutant, timeout {timeout:.0f} s); "
        f"tests: {', '.join(f'`{t}`' for t in settings['tests'])}.{again}",
        "",
        "| mutants | in annotations (not counted) | killed | timeouts | survived | equivalent "
        "| errors | score | score without equivalent |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| {total} | {len(hints)} | {count['killed']} | {count['timeout']} | {len(survived)} "
        f"| {others} | {count['error']} | {percent(detected, counted)} "
        f"| {percent(detected, counted - others)} |",
        "",
    ]
    if hints:
        lines += [
            f"The score counts the {counted} mutants outside type annotations. The "
            f"{len(hints)} inside one are not run: annotations are never evaluated here "
            "(`from __future__ import annotations`, no hint read at run time), and a tool "
            "such as mutmut makes no mutant there. Counted as not caught, the score would be "
            f"{percent(detected, total)}.",
            "",
        ]
    if survived:
        lines += ["Survivors:", "", "```diff"]
        for m in sorted(survived, key=lambda m: (m.position, m.operator)):
            lines += [f"# {module}:{m.position[0]} {m.operator}", f"- {m.line}", f"+ {m.mutant}"]
        lines += ["```", ""]
    if equivalent:
        lines += ["Equivalent:", ""]
        for why in dict.fromkeys(m.equivalent for m in equivalent):
            covered = sorted(m.position[0] for m in equivalent if m.equivalent == why)
            numbers = [str(n) for n in dict.fromkeys(covered)]
            plural = "s" if len(numbers) > 1 else ""
            lines.append(f"- {len(covered)} on line{plural} {', '.join(numbers)}: {why}")
        lines.append("")
    stale = [e for i, e in enumerate(entries) if i not in used]
    if stale:
        lines += ["Stale entries of equivalent.toml (killed, or no longer made):", ""]
        lines += [f"- {e['operator']}: `{e['line']}` -> `{e['mutant']}`" for e in stale]
        lines.append("")
    print("\n".join(lines[4:7]), flush=True)
    return "\n".join(lines)


def annotations(path: Path) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Where the module's annotations are: (line, column) from and to, as Cosmic Ray counts."""
    spans = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.arg | ast.AnnAssign):
            found = node.annotation
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found = node.returns
        else:
            continue
        if found is not None and found.end_lineno is not None:
            start = (found.lineno, found.col_offset)
            spans.append((start, (found.end_lineno, found.end_col_offset or 0)))
    return spans


def percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def commit_now() -> str:
    """The checkout's short commit, and whether the code or tests differ from it."""
    commit = git("rev-parse", "--short", "HEAD")
    if git("status", "--porcelain", "--", "litemlops", "tests"):
        commit += " with uncommitted changes"
    return commit


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def write_section(module: str, text: str) -> None:
    """Replaces the module's section of results.md (or adds it), in modules.toml's order."""
    order = list(tomllib.loads((HERE / "modules.toml").read_text())["modules"])
    sections: dict[str, str] = {}
    if RESULTS.exists():
        for part in RESULTS.read_text().split("\n## ")[1:]:
            name = part.split("\n", 1)[0]
            sections[name] = "## " + part.rstrip("\n") + "\n"
    sections[module] = text.rstrip("\n") + "\n"
    ordered = sorted(sections, key=lambda m: order.index(m) if m in order else len(order))
    RESULTS.write_text(HEADER + "".join("\n" + sections[m] for m in ordered))


if __name__ == "__main__":
    sys.exit(main())
