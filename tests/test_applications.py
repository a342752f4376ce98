"""Applications on the platform: named in config, found by entry point or as
module:attribute, bringing config sections, pipelines, preloads and a set-up."""

import textwrap
import uuid

import pytest

from litemlops.applications import Application, installed, load_applications
from litemlops.bootstrap import bootstrap
from litemlops.config import Config
from litemlops.errors import ConfigError
from litemlops.platform import Platform, pipeline_catalog
from litemlops.store import Entity, FeatureView, Field

APP = '''
from dataclasses import dataclass

from litemlops.applications import Application
from litemlops.config_parse import positive
from litemlops.scheduler.pipeline import Pipeline, task


@dataclass(frozen=True)
class ShopConfig:
    batch: int = 10
    label: str = "orders"


@task
def count(ctx):
    return {"batch": ctx.config.section("shop").batch}


class Shop(Application):
    name = "shop"
    sections = {"shop": ShopConfig}
    checks = {("shop", "batch"): positive}
    defaults = {"server": {"model": "shop_model@champion", "entity": "shop_id"}}
    preload = ("json",)

    def pipelines(self, config):
        return [Pipeline("shop_count", [count])]

    def bootstrap(self, platform, report):
        report.fresh = True
        report.steps.append("shop set up")


application = Shop()
'''


@pytest.fixture
def shop(tmp_path, monkeypatch):
    """The name of a small application in a module of its own (`module:application`)."""
    module = f"shop_app_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(APP))
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{module}:application"


def write_config(home, text):
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(text)


def test_the_demo_is_the_installed_application_and_the_default_one(tmp_path):
    assert "demo" in installed()
    config = Config.load(tmp_path, env={})

    assert config.applications == ("demo",)
    assert [a.name for a in load_applications(config.applications)] == ["demo"]


def test_a_config_made_directly_has_its_applications_default_sections(tmp_path):
    config = Config(home=tmp_path)

    assert config.section("demo").drivers == 20
    assert config.demo.drivers == 20  # the attribute of before the demo was an application
    assert "training" in pipeline_catalog(config)
    with pytest.raises(ConfigError, match=r"no config section \[demo\]"):
        Config(home=tmp_path, applications=()).section("demo")


def test_a_home_that_names_no_application_has_the_built_ins_and_its_own_modules(tmp_path):
    home = tmp_path / "home"
    write_config(home, 'applications = []\n[pipelines]\nmodules = "mine.py"\n')
    (home / "mine.py").write_text(
        "from litemlops import Pipeline, task\n\n"
        "@task\ndef hello(ctx):\n    return {'hi': 1}\n\n"
        "nightly = Pipeline('nightly', [hello])\n"
    )
    config = Config.load(home, env={})

    assert config.applications == ()
    assert config.sections == ()
    assert pipeline_catalog(config).names() == ["monitoring", "nightly"]
    assert (config.server.model, config.server.entity, config.server.features) == ("", "", "")
    with pytest.raises(ConfigError, match=r"no config section \[demo\]"):
        config.section("demo")


def test_monitoring_runs_on_a_home_whose_applications_serve_no_model(tmp_path):
    config = Config.load(tmp_path / "home", env={}, overrides={"applications": []})

    with Platform(config) as platform:
        run = platform.pipelines.run(platform.catalog.get("monitoring"))

        assert run.state == "success", platform.pipelines.task_runs(run.run_id)
        collect = next(t for t in platform.pipelines.task_runs(run.run_id) if t.task == "collect")
        assert collect.output["profile_path"] is None


def test_the_testing_fixture_runs_the_demo_by_default(request):
    config = request.getfixturevalue("litemlops_config")
    assert "demo" in config.applications


@pytest.mark.parametrize("litemlops_config", [{"applications": []}], indirect=True)
def test_the_testing_fixture_leaves_the_demo_sizes_out_where_no_demo_runs(litemlops_config):
    assert litemlops_config.applications == ()


@pytest.mark.parametrize("where", ["file", "env", "overrides"])
def test_an_unknown_application_is_a_clear_error(tmp_path, where):
    env, overrides = {}, {}
    if where == "file":
        write_config(tmp_path, 'applications = ["demo", "nope"]\n')
    elif where == "env":
        env = {"LITEMLOPS_APPLICATIONS": "demo,nope"}
    else:
        overrides = {"applications": ["nope"]}

    with pytest.raises(ConfigError, match=r"unknown application 'nope'.*known applications: "
                       r"\[.*'demo'.*\]"):
        Config.load(tmp_path, env=env, overrides=overrides)


@pytest.mark.parametrize(
    ("raw", "message"),
    [("[1]", "must be a list of application names"), ('["a b"]', "'a b' is not an application"),
     ("{ demo = true }", "must be a list of application names")],
)
def test_misshapen_application_lists_are_refused(tmp_path, raw, message):
    write_config(tmp_path, f"applications = {raw}\n")

    with pytest.raises(ConfigError, match=message):
        Config.load(tmp_path, env={})


def test_a_module_attribute_application_brings_its_sections_pipelines_and_defaults(
    tmp_path, shop
):
    write_config(tmp_path, f'applications = ["{shop}"]\n[shop]\nbatch = 3\n')

    config = Config.load(tmp_path, env={"LITEMLOPS_SHOP_LABEL": "carts"})

    assert (config.section("shop").batch, config.section("shop").label) == (3, "carts")
    assert (config.server.model, config.server.entity) == ("shop_model@champion", "shop_id")
    assert pipeline_catalog(config).names() == ["monitoring", "shop_count"]
    with pytest.raises(ConfigError, match=r"shop\.batch from overrides must be an integer >= 1"):
        Config.load(tmp_path, env={}, overrides={"shop.batch": 0})
    with pytest.raises(ConfigError, match=r"unknown section \[demo\]"):
        write_config(tmp_path, f'applications = ["{shop}"]\n[demo]\ndrivers = 3\n')
        Config.load(tmp_path, env={})


def test_two_applications_add_up_and_their_pipelines_run_with_their_config(tmp_path, shop):
    config = Config.load(
        tmp_path / "home", env={}, overrides={"applications": f"demo,{shop}", "shop.batch": 4}
    )

    assert pipeline_catalog(config).names() == [
        "batch_predictions", "data", "model_check", "monitoring", "shop_count", "training"
    ]
    with Platform(config) as platform:
        run = platform.pipelines.run(platform.catalog.get("shop_count"))
        assert run.state == "success"
        assert platform.pipelines.task_runs(run.run_id)[0].output == {"batch": 4}


def test_an_application_may_not_take_a_section_of_the_platform(tmp_path, monkeypatch):
    class Greedy(Application):
        name = "greedy"
        sections = {"server": object}  # noqa: RUF012

    module = f"greedy_{uuid.uuid4().hex}"
    import sys
    import types

    fake = types.ModuleType(module)
    fake.application = Greedy()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module, fake)

    with pytest.raises(ConfigError, match=r"'greedy' declares config section \[server\]"):
        Config.load(tmp_path, env={}, overrides={"applications": f"{module}:application"})


def test_an_application_section_with_a_key_of_another_type_is_refused(tmp_path, monkeypatch):
    import dataclasses
    import sys
    import types

    class Listy(Application):
        name = "listy"
        sections = {"listy": dataclasses.make_dataclass("L", [("xs", list, ())])}  # noqa: RUF012

    module = f"listy_{uuid.uuid4().hex}"
    fake = types.ModuleType(module)
    fake.application = Listy()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, module, fake)

    with pytest.raises(ConfigError, match=r"listy\.xs is declared as list; a config key is"):
        Config.load(tmp_path, env={}, overrides={"applications": f"{module}:application",
                                                 "listy.xs": "a"})


def test_a_module_attribute_that_is_not_an_application_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"is a str, not a litemlops\.applications\.Application"):
        Config.load(tmp_path, env={}, overrides={"applications": "litemlops.config:ENV_PREFIX"})
    with pytest.raises(ConfigError, match="cannot load application 'no_such_module:x'"):
        Config.load(tmp_path, env={}, overrides={"applications": "no_such_module:x"})


def test_the_platform_preloads_what_its_applications_name(tmp_path, shop):
    config = Config.load(tmp_path / "home", env={}, overrides={"applications": f"demo,{shop}"})

    preload = [m for a in load_applications(config.applications) for m in a.preload]

    assert preload == ["litemlops.demo.pipelines", "json"]


def test_bootstrap_without_applications_only_catches_up(tmp_path):
    config = Config.load(tmp_path / "home", env={}, overrides={"applications": []})
    own = FeatureView("orders", entities=[Entity("shop")], schema=[Field("total", "float64")])

    with Platform(config) as platform:
        platform.features.apply(own)
        report = bootstrap(platform)
        views = [v.name for v in platform.features.list_feature_views()]

    assert views == ["orders"]
    assert not report.fresh and report.pipeline_runs == []
    assert len(report.steps) == 1 and report.steps[0].startswith("materialized orders")
    assert report.online is None and report.training_rows is None


def test_bootstrap_lets_each_application_set_itself_up(tmp_path, shop):
    config = Config.load(tmp_path / "home", env={}, overrides={"applications": [shop]})

    with Platform(config) as platform:
        report = bootstrap(platform)

    assert report.fresh and report.steps == ["shop set up"]
