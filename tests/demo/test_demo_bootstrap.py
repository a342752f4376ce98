import pytest

from litemlops.bootstrap import bootstrap
from litemlops.demo import definitions as demo
from litemlops.platform import Platform
from litemlops.store import Entity, FeatureView, Field


@pytest.fixture
def litemlops_config_overrides():
    """Three drivers, and labels enough for the training gate to judge a model."""
    return {"demo.drivers": 3, "demo.hours": 24, "demo.labels": 300}


@pytest.fixture
def open_platform(litemlops_config, litemlops_clock):
    """Opens the one home afresh each time, as successive `litemlops run`s would."""
    return lambda: Platform(litemlops_config, clock=litemlops_clock)


def test_fresh_home_gets_the_demo_project_then_only_catches_up(open_platform, litemlops_config):
    with open_platform() as platform:
        first = bootstrap(platform)
    assert first.fresh
    assert any("generated" in s for s in first.steps)
    assert first.training_rows is not None and len(first.training_rows) == 5
    assert first.online is not None and first.online["driver_id"] == [1001, 1002, 1003]
    assert all(v is not None for v in first.online["conv_rate"])
    assert (litemlops_config.runs_dir / "bootstrap" / "done").exists()
    assert [r.pipeline for r in first.pipeline_runs] == ["data", "training"]
    assert first.no_champion is None
    with open_platform() as platform:
        rows = platform.features.describe("driver_stats")["offline_rows"]
        second = bootstrap(platform)
        assert platform.features.describe("driver_stats")["offline_rows"] == rows
    assert not second.fresh
    assert not any("generated" in s or "pipeline" in s for s in second.steps)
    assert second.online == first.online


def test_a_set_up_interrupted_after_apply_is_finished_by_the_next_run(open_platform):
    with open_platform() as platform:
        platform.features.apply([demo.driver, demo.driver_stats])  # then the process died
    with open_platform() as platform:
        report = bootstrap(platform)
        assert platform.features.describe("driver_stats")["offline_rows"] > 0
    assert report.fresh and "pipeline data: success" in " ".join(report.steps)
    assert report.online is not None and report.online["conv_rate"][0] is not None


def test_a_home_with_the_users_own_project_gets_no_demo(open_platform, litemlops_config):
    own = FeatureView("orders", entities=[Entity("shop")], schema=[Field("total", "float64")])
    with open_platform() as platform:
        platform.features.apply(own)
        report = bootstrap(platform)
        names = [v.name for v in platform.features.list_feature_views()]
    assert names == ["orders"]
    assert not report.fresh and report.online is None and report.training_rows is None
    assert not (litemlops_config.runs_dir / "bootstrap" / "done").exists()


def test_a_set_up_without_a_champion_is_tried_again_at_the_next_start(
    litemlops_config, litemlops_clock
):
    strict = litemlops_config.replace_section("training", min_auc=0.999)
    with Platform(strict, clock=litemlops_clock) as platform:
        first = bootstrap(platform)
    assert first.no_champion and "below min_auc 0.999" in first.no_champion
    assert not (strict.runs_dir / "bootstrap" / "done").exists()
    with Platform(litemlops_config, clock=litemlops_clock) as platform:
        second = bootstrap(platform)
        assert platform.registry.get_alias("driver_ranker", "champion").version == 1
    assert second.fresh and second.no_champion is None
    assert (litemlops_config.runs_dir / "bootstrap" / "done").exists()
