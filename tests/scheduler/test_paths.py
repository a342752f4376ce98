"""Path params stay inside the home or the directories config allows: `..` and symlinks
are followed before the check, and a run gets the path that was checked."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops import Pipeline, task
from litemlops.config import Config
from litemlops.scheduler.paths import PathNotAllowedError, PathRoots
from litemlops.scheduler.pipeline import PipelineDefinitionError
from litemlops.scheduler.runner import PipelineRunner
from litemlops.store.tracking.tracking_db import TrackingDB


@task
def copy_labels(ctx):
    return {"labels": ctx.params["labels"], "out": ctx.params["out"]}


PIPE = Pipeline(
    "copy", [copy_labels], params={"labels": "data/labels.csv", "out": "data/out", "n": 1},
    path_params=("labels", "out"),
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    made = tmp_path / "home"
    (made / "data").mkdir(parents=True)
    return made


@pytest.fixture
def runner(home: Path, tmp_path: Path) -> PipelineRunner:
    db = TrackingDB(str(home / "registry.db"))
    return PipelineRunner(db, home / "runs", paths=PathRoots.of(home, [tmp_path / "shared"]))


def test_a_path_outside_the_home_is_refused_naming_param_path_and_roots(home, tmp_path):
    roots = PathRoots.of(home, [tmp_path / "shared"])

    with pytest.raises(
        PathNotAllowedError,
        match="param 'output_dir': path '/tmp/elsewhere' is outside the allowed directories",
    ) as caught:
        roots.confine("output_dir", "/tmp/elsewhere")

    message = str(caught.value)
    assert "'output_dir'" in message and "'/tmp/elsewhere'" in message
    assert str(home.resolve()) in message and str((tmp_path / "shared").resolve()) in message
    assert "allowed_dirs" in message
    assert caught.value.param == "output_dir"


@pytest.mark.parametrize("value", ["/etc/passwd", "../outside.csv", "data/../../x", "/", ""])
def test_escapes_are_refused(home, value):
    if value:
        expected = rf"param 'labels': path {re.escape(repr(value))} .*is outside the allowed"
    else:
        expected = "param 'labels' must be a file path"
    with pytest.raises(PathNotAllowedError, match=expected):
        PathRoots.of(home).confine("labels", value)


def test_a_symlink_inside_the_home_that_leads_out_is_refused(home, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (home / "data" / "link").symlink_to(outside)

    with pytest.raises(
        PathNotAllowedError, match=r"\(resolves to .*\) is outside the allowed directories"
    ) as caught:
        PathRoots.of(home).confine("labels", str(home / "data" / "link" / "labels.csv"))

    assert str(outside.resolve()) in str(caught.value)


def test_paths_inside_are_resolved_from_the_home(home):
    roots = PathRoots.of(home)

    assert roots.confine("labels", "data/labels.csv") == str(home.resolve() / "data/labels.csv")
    assert roots.confine("labels", str(home / "data/./x/../y")) == str(home.resolve() / "data/y")


def test_a_directory_config_names_is_allowed(home, tmp_path):
    shared = tmp_path / "shared"
    config = Config.load(home, env={}, overrides={"pipelines.allowed_dirs": f" {shared} , more"})
    roots = PathRoots.of(config.home, config.pipelines.allowed_paths(config.home))

    assert roots.confine("out", str(shared / "p.parquet")) == str(shared.resolve() / "p.parquet")
    assert roots.confine("out", "more/p") == str(home.resolve() / "more/p")
    with pytest.raises(PathNotAllowedError, match=r"param 'out': path '.*/sharedx/p' is outside"):
        roots.confine("out", str(tmp_path / "sharedx" / "p"))  # a sibling, not inside


@pytest.mark.parametrize("value", [3, None, ["a"], "a\x00b"])
def test_a_path_param_that_is_not_text_is_refused_or_left_alone(home, value):
    roots = PathRoots.of(home)
    if value is None:
        assert roots.confine_params(["labels"], {"labels": None}) == {"labels": None}
        return
    with pytest.raises(PathNotAllowedError, match="must be a file path"):
        roots.confine("labels", value)


SEGMENT = st.sampled_from(["..", ".", "data", "a", "b", "home"])


@given(segments=st.lists(SEGMENT, min_size=1, max_size=8), absolute=st.booleans())
def test_confinement_agrees_with_normalised_paths(tmp_path_factory, segments, absolute):
    base = tmp_path_factory.getbasetemp() / "prop" / "home"
    base.mkdir(parents=True, exist_ok=True)
    home = base.resolve()
    value = os.path.join(str(home) if absolute else "", *segments)
    expected = os.path.normpath(os.path.join(home, value))  # no symlinks here: the oracle
    inside = expected == str(home) or expected.startswith(str(home) + os.sep)

    try:
        got = PathRoots.of(home).confine("p", value)
    except PathNotAllowedError:
        assert not inside, value
    else:
        assert inside and got == expected, value


# -- runs -------------------------------------------------------------------------------------


def test_a_run_outside_is_refused_before_it_is_recorded(runner):
    with pytest.raises(PathNotAllowedError, match="'labels'"):
        runner.run(PIPE, {"labels": "/etc/passwd"})

    assert runner.list_runs(pipeline="copy") == []


def test_a_run_gets_the_resolved_paths(runner, home, tmp_path):
    shared = tmp_path / "shared"

    run = runner.run(PIPE, {"out": str(shared / "x" / ".." / "out")})

    assert run.state == "success"
    assert run.params["labels"] == str(home.resolve() / "data/labels.csv")
    assert run.params["out"] == str(shared.resolve() / "out")
    assert runner.task_runs(run.run_id)[0].output == {
        "labels": run.params["labels"],
        "out": run.params["out"],
    }


def test_a_resumed_run_is_checked_again(home, tmp_path):
    db = TrackingDB(str(home / "registry.db"))
    calls = []

    @task
    def flaky(ctx):
        calls.append(ctx.params["out"])
        if len(calls) == 1:
            raise RuntimeError("first try fails")
        return "ok"

    pipe = Pipeline("flaky", [flaky], params={"out": "data"}, path_params=("out",))
    shared = tmp_path / "shared"
    loose = PipelineRunner(db, home / "runs", paths=PathRoots.of(home, [shared]))
    failed = loose.run(pipe, {"out": str(shared)})
    assert failed.state == "failed"
    strict = PipelineRunner(db, home / "runs", paths=PathRoots.of(home))

    with pytest.raises(PathNotAllowedError, match=r"param 'out': path '.*/shared' is outside"):
        strict.resume(pipe, failed.run_id)

    assert len(calls) == 1


def test_a_pipeline_must_declare_path_params_among_its_params():
    with pytest.raises(PipelineDefinitionError, match="path_params"):
        Pipeline("bad", [copy_labels], params={"labels": "x"}, path_params=("nope",))


def test_the_demo_pipelines_declare_their_file_params(tmp_path):
    from litemlops.demo.pipelines import demo_pipelines

    declared = {p.name: set(p.path_params) for p in demo_pipelines(Config.load(tmp_path, env={}))}

    assert declared == {
        "data": {"source"},
        "training": {"labels"},
        "batch_predictions": {"requests", "output_dir"},
        "model_check": {"labels"},
    }
