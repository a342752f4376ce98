import pytest

from litemlops.config import Config
from litemlops.errors import NotFoundError
from litemlops.platform import Platform
from litemlops.scheduler.catalog import PipelineCatalog
from litemlops.scheduler.pipeline import Pipeline, PipelineDefinitionError, task

MODULE = '''
from helpers import double
from litemlops.scheduler import pipeline as p

@p.task
def one(ctx):
    return double(ctx.params["n"])

mine = p.Pipeline("mine", [one], params={"n": 2})
alias = mine  # the same object twice is one pipeline
'''


@task
def noop(ctx):
    return None


def write(tmp_path, text, name="pipes.py"):
    (tmp_path / "helpers.py").write_text("def double(x):\n    return 2 * x\n")
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_module_adds_its_pipelines_and_sibling_imports_work(tmp_path):
    catalog = PipelineCatalog()
    found = catalog.load(write(tmp_path, MODULE))
    assert [p.name for p in found] == ["mine"]
    assert catalog.names() == ["mine"] and "mine" in catalog and len(catalog) == 1
    assert catalog.get("mine").task("one").fn(type("C", (), {"params": {"n": 4}})) == 8


def test_names_are_unique_unless_replaced_on_purpose(tmp_path):
    catalog = PipelineCatalog([Pipeline("mine", [noop])])
    with pytest.raises(PipelineDefinitionError, match="'mine' is defined twice"):
        catalog.load(write(tmp_path, MODULE))
    catalog.load(write(tmp_path, MODULE), replace=True)
    assert catalog.get("mine").params == {"n": 2}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1\n", "defines no Pipeline at module level"),
        ("raise RuntimeError('boom')\n", "failed while loading: RuntimeError: boom"),
        (
            "from litemlops.scheduler.pipeline import Pipeline\nPipeline('bad name!', [])\n",
            "invalid pipeline name 'bad name!'",
        ),
    ],
)
def test_bad_modules_are_clear_errors(tmp_path, text, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        PipelineCatalog().load(write(tmp_path, text))


def test_unknown_names_and_missing_files_are_clear(tmp_path):
    catalog = PipelineCatalog([Pipeline("a", [noop])])
    with pytest.raises(NotFoundError, match=r"no pipeline named 'b'; known pipelines: \['a'\]"):
        catalog.get("b")
    with pytest.raises(PipelineDefinitionError, match="not a Python file"):
        catalog.load(tmp_path / "missing.py")
    with pytest.raises(PipelineDefinitionError, match="expected a Pipeline"):
        catalog.add(noop)


def test_a_home_knows_the_demo_pipelines_and_its_own_modules(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    write(home, MODULE)
    config = Config.load(home, env={"LITEMLOPS_PIPELINES_MODULES": "pipes.py"})
    with Platform(config) as platform:
        assert platform.catalog.names() == [
            "batch_predictions", "data", "mine", "model_check", "monitoring", "training"
        ]
        run = platform.pipelines.run(platform.catalog.get("mine"), {"n": 5})
        assert platform.pipelines.task_runs(run.run_id)[0].output == 10
    broken = Config.load(home, env={"LITEMLOPS_PIPELINES_MODULES": "pipes.py, nope.py"})
    with pytest.raises(PipelineDefinitionError, match=r"nope\.py: not a Python file"):
        Platform(broken)
    with Platform(config):  # a failed open released the home
        pass


def test_a_users_module_may_replace_a_built_in_but_not_another_module(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    mine = MODULE.replace('Pipeline("mine"', 'Pipeline("training"')
    write(home, mine, "a.py")
    write(home, mine, "b.py")
    config = Config.load(home, env={"LITEMLOPS_PIPELINES_MODULES": "a.py"})
    with Platform(config) as platform:
        assert platform.catalog.get("training").order == ("one",)
    both = Config.load(home, env={"LITEMLOPS_PIPELINES_MODULES": "a.py,b.py"})
    with pytest.raises(PipelineDefinitionError, match="'training' is defined twice"):
        Platform(both)


def test_a_scheduler_that_cannot_be_built_leaves_no_subscription_behind(tmp_path, monkeypatch):
    from litemlops.scheduler.scheduler import Scheduler

    home = tmp_path / "home"
    home.mkdir()
    (home / "pipes.py").write_text(
        "from litemlops import Pipeline, task\n"
        "@task\n"
        "def t(ctx):\n"
        "    return None\n"
        "a = Pipeline('a_retrain', [t], on=['alert:drift', 'alert:drift'])\n"
        "z = Pipeline('z_last', [t])\n"
    )
    config = Config.load(home, env={"LITEMLOPS_PIPELINES_MODULES": "pipes.py"})
    real = Scheduler.add_pipeline

    def add(self, pipeline):
        if pipeline.name == "z_last":
            raise RuntimeError("refused")
        real(self, pipeline)

    with Platform(config) as platform:
        assert platform.catalog.get("a_retrain").on == ("alert:drift",)  # each topic once
        monkeypatch.setattr(Scheduler, "add_pipeline", add)
        with pytest.raises(RuntimeError, match="refused"):
            platform.scheduler  # noqa: B018
        assert platform.bus.publish("alert:drift") == 0  # nobody left subscribed
        monkeypatch.setattr(Scheduler, "add_pipeline", real)
        platform.scheduler.run_pending()
        assert platform.bus.publish("alert:drift") == 1
        assert len(platform.pipelines.list_runs(pipeline="a_retrain")) == 1
