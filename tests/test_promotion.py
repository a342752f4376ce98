"""Moving models between homes: bundles, their checks, and `promote` through the target's gate."""

import json
import re
import shutil

import pytest
from click.testing import CliRunner

from litemlops.cli.main import cli
from litemlops.config import Config
from litemlops.platform import Platform
from litemlops.store.bundle import BundleError, export_bundle, import_bundle, read_bundle

PROJECT = """
[demo]
drivers = 10
hours = 72
labels = 400

[env.dev]
home = "dev"
[env.dev.training]
min_auc = 0.0
max_rmse = 1.0
[env.staging]
home = "staging"
[env.staging.demo]
seed = 7
[env.prod]
home = "prod"
[env.prod.demo]
seed = 11

# Each home's data comes from its own seed (so no two homes train the same bytes):
# which of two sound models is better on a home's test set is chance, so the checks
# here ask for the thresholds (min_auc 0.55 by default) and allow any loss against
# the champion; a model scored on another seed's data may miss the default max_rmse
# (0.5) by a little, so that is lifted too: min_auc alone tells a useless model.
[training]
tolerance = 1.0
max_rmse = 1.0
"""
MODEL = "driver_ranker"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """A project whose dev, staging and prod homes each ran the demo's set-up (each has
    data, labels and a champion of its own); dev also holds a useless version 2."""
    from litemlops.bootstrap import bootstrap

    folder = tmp_path_factory.mktemp("promotion") / "project"
    folder.mkdir()
    (folder / "config.toml").write_text(PROJECT)
    for name in ("dev", "staging", "prod"):
        config = Config.load(folder, env={}, environment=name)
        config.ensure_home()
        with Platform(config) as platform:
            assert bootstrap(platform).no_champion is None
            if name == "dev":
                _register_useless(platform)
    return folder


def _register_useless(platform):
    """Version 2 of the model in dev: it predicts one class whatever the features (an
    AUC of 0.5), with the champion's signature and feature views."""
    import numpy as np
    from sklearn.dummy import DummyClassifier

    from litemlops.store.tracking.signature import Signature

    champion = platform.registry.get_alias(MODEL, "champion")
    logged = platform.tracker.logged_model(champion.run_id, champion.model_name)
    signature = Signature.from_dict(logged.signature)
    columns = [c.name for c in signature.inputs]
    dummy = DummyClassifier(strategy="most_frequent").fit(np.zeros((4, len(columns))), [0, 1, 1, 1])
    with platform.tracker.start_run("training", "useless") as run:
        run.log_params({"estimator": "logistic_regression"})
        run.log_input(feature_views={"driver_stats": 1})
        run.log_model(dummy, signature=signature)
    version = platform.registry.register_model(f"runs:/{run.id}/model", MODEL)
    assert version.version == 2


@pytest.fixture
def project(template, tmp_path):
    return shutil.copytree(template, tmp_path / "project")


def opened(project, environment):
    return Platform(Config.load(project, env={}, environment=environment))


def invoke(*args):
    return CliRunner().invoke(cli, [*args], env={"LITEMLOPS_ENV": ""}, catch_exceptions=False)


def versions(project, environment):
    with opened(project, environment) as platform:
        return [(v.version, v.sha256, v.aliases) for v in platform.registry.list_versions(MODEL)]


# -- bundles ----------------------------------------------------------------------------------


def test_a_bundle_carries_the_bytes_lineage_and_views_and_lands_as_one_version(project, tmp_path):
    with opened(project, "dev") as platform:
        source = platform.registry.get_model_version(MODEL, 1)
        bundle = export_bundle(platform.registry, platform.history, MODEL, 1, tmp_path / "b",
                               source={"environment": "dev"})  # fmt: skip
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["model"]["sha256"] == source.sha256
    assert manifest["files"]["model.joblib"]["sha256"] == source.sha256
    assert manifest["lineage"]["params"] == source.lineage["params"]
    (view,) = manifest["feature_views"]
    assert view["name"] == "driver_stats" and ["conv_rate", "float64"] in view["features"]

    before = versions(project, "prod")
    with opened(project, "prod") as platform:
        landed = import_bundle(platform.registry, platform.history, bundle,
                               target={"environment": "prod"})  # fmt: skip
        again = import_bundle(platform.registry, platform.history, bundle,
                              target={"environment": "prod"})  # fmt: skip
        run = platform.tracker.get_run(landed.run_id)
        loaded = platform.registry.load_model(f"{MODEL}/{landed.version}")

    assert landed.sha256 == source.sha256  # the same bytes: checked at every load
    assert again.version == landed.version or again.sha256 == landed.sha256
    assert len(versions(project, "prod")) in (len(before), len(before) + 1)
    assert landed.version not in [v for v, _, _ in before]  # other data, other bytes
    assert "champion" not in landed.aliases  # an import moves no alias
    assert run.experiment == "promotions"
    assert run.tags["promotion.source_model"] == f"{MODEL}/1"
    assert run.tags["promotion.bundle"] == bundle.digest
    assert landed.lineage["params"] == source.lineage["params"]
    assert loaded.metadata["sha256"] == source.sha256


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: (b / "model.joblib").write_bytes(b"not the model"), "does not match"),
        (lambda b: (b / "extra.py").write_text("import os"), "does not list"),
        (lambda b: (b / "model.joblib").unlink(), "lacks model.joblib"),
        (lambda b: (b / "manifest.json").unlink(), "has no manifest.json"),
        (lambda b: (b / "manifest.json").write_text("{"), "cannot be read as JSON"),
        (lambda b: _edit(b, format_version=99), "format version 99"),
        (lambda b: _edit(b, model={"sha256": "0" * 64}), "the model's sha256 differs"),
    ],
)
def test_a_damaged_bundle_is_refused_and_nothing_is_registered(project, tmp_path, damage, message):
    with opened(project, "dev") as platform:
        bundle = export_bundle(platform.registry, platform.history, MODEL, 1, tmp_path / "b",
                               source={})  # fmt: skip
    before = versions(project, "prod")
    damage(tmp_path / "b")

    result = invoke("models", "import", str(tmp_path / "b"), "--home", str(project),
                    "--env", "prod")  # fmt: skip

    assert result.exit_code == 1
    assert message in result.output
    assert versions(project, "prod") == before
    with pytest.raises(BundleError, match=re.escape(message)):
        read_bundle(bundle.folder)


def _edit(folder, **changes):
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    for key, value in changes.items():
        manifest[key] = {**manifest[key], **value} if isinstance(value, dict) else value
    path.write_text(json.dumps(manifest))


def test_a_home_whose_feature_views_cannot_feed_the_model_is_refused(project, tmp_path):
    from litemlops.store.features.definitions import FeatureView, Field

    with opened(project, "dev") as platform:
        bundle = export_bundle(platform.registry, platform.history, MODEL, 1, tmp_path / "b",
                               source={})  # fmt: skip
    with opened(project, "prod") as platform:
        view = platform.history.get_feature_view("driver_stats")
        changed = [Field(f.name, "string" if f.name == "conv_rate" else f.dtype)
                   for f in view.schema]  # fmt: skip
        platform.history.apply(
            [FeatureView(name="driver_stats", entities=view.entities, schema=changed,
                         ttl=view.ttl)],
            force=True,
        )
    before = versions(project, "prod")

    result = invoke("models", "import", str(bundle.folder), "--home", str(project),
                    "--env", "prod")  # fmt: skip

    assert result.exit_code == 1
    assert "feature driver_stats:conv_rate is string here, float64 where the model was" in (
        result.output
    )
    assert versions(project, "prod") == before


def test_export_never_writes_over_a_folder_that_holds_files(project, tmp_path):
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "keep.txt").write_text("mine")

    result = invoke("models", "export", f"{MODEL}/1", "-o", str(taken), "--home", str(project),
                    "--env", "dev")  # fmt: skip
    bad = invoke("models", "export", "driver_ranker", "-o", str(tmp_path / "x"),
                 "--home", str(project), "--env", "dev")  # fmt: skip

    assert result.exit_code == 1 and "is not an empty folder" in result.output
    assert [p.name for p in taken.iterdir()] == ["keep.txt"]
    assert bad.exit_code == 2 and "NAME/VERSION" in bad.output
    assert not (tmp_path / "x").exists()


# -- promote ----------------------------------------------------------------------------------


def test_a_good_model_goes_dev_to_staging_to_prod_and_a_bad_one_stops_at_staging(project):
    # The CI sequence: train in dev, promote to staging through staging's checks, then
    # to prod; a version that fails staging's checks never gets there.
    prod_before = versions(project, "prod")

    to_staging = invoke("promote", f"{MODEL}/1", "--from", "dev", "--to", "staging",
                        "--home", str(project), "--json")  # fmt: skip
    staged = json.loads(to_staging.stdout)
    to_prod = invoke("promote", staged["target"], "--from", "staging", "--to", "prod",
                     "--home", str(project), "--json")  # fmt: skip
    bad = invoke("promote", f"{MODEL}/2", "--from", "dev", "--to", "staging",
                 "--home", str(project), "--reason", "try it")  # fmt: skip

    assert to_staging.exit_code == 0, to_staging.output
    assert staged["gate"]["state"] == "success" and staged["alias"] == "champion"
    assert to_prod.exit_code == 0, to_prod.output
    promoted = json.loads(to_prod.stdout)
    with opened(project, "prod") as platform:
        champion = platform.registry.get_alias(MODEL, "champion")
        history = platform.registry.alias_history(MODEL, "champion")
    assert f"{MODEL}/{champion.version}" == promoted["target"]
    assert history[-1].reason == f"promoted from staging ({staged['target']})"
    assert len(versions(project, "prod")) <= len(prod_before) + 1

    assert bad.exit_code == 1
    assert "is registered in staging but not promoted: its checks failed" in bad.output
    assert "auc 0.5000 is below min_auc" in bad.output
    with opened(project, "staging") as platform:
        still = platform.registry.get_alias(MODEL, "champion")
        exports = platform.tracker.list_runs("promotions")
    assert f"{MODEL}/{still.version}" == staged["target"]
    with opened(project, "dev") as platform:
        sent = {r.name: r.tags for r in platform.tracker.list_runs("promotions")}
    assert sent[f"export {MODEL}/2"]["promotion.gate"] == "failed"
    assert sent[f"export {MODEL}/1"]["promotion.gate"] == "success"
    assert any(r.tags.get("promotion.direction") == "export" for r in exports)


def test_promote_needs_two_homes_and_a_gate_unless_told_to_skip_it(project):
    (project / "config.toml").write_text(PROJECT + '[env.same]\nhome = "dev"\n')

    same = invoke("promote", f"{MODEL}/1", "--from", "dev", "--to", "same",
                  "--home", str(project))  # fmt: skip
    unknown = invoke("promote", f"{MODEL}/1", "--from", "dev", "--to", "qa",
                     "--home", str(project))  # fmt: skip
    missing = invoke("promote", f"{MODEL}/9", "--from", "dev", "--to", "prod",
                     "--home", str(project))  # fmt: skip
    skipped = invoke("promote", f"{MODEL}/2", "--from", "dev", "--to", "prod", "--skip-gate",
                     "--alias", "challenger", "--home", str(project))  # fmt: skip

    assert same.exit_code == 1 and "share the home" in same.output
    assert unknown.exit_code == 1 and "unknown environment 'qa'" in unknown.output
    assert missing.exit_code == 1 and "has no version 9" in missing.output
    assert skipped.exit_code == 0, skipped.output
    with opened(project, "prod") as platform:
        moved = platform.registry.alias_history(MODEL, "challenger")[-1]
    assert moved.reason == f"promoted from dev ({MODEL}/2) without the model checks"


# -- check and the CI workflow ------------------------------------------------------------------


def test_check_runs_the_pipeline_data_and_model_checks_and_fails_on_any(project):
    good = invoke("check", "--home", str(project), "--env", "staging", "--json")
    bad = invoke("check", "--home", str(project), "--env", "staging", "--model", f"{MODEL}/1",
                 "--json")  # fmt: skip
    (project / "staging" / "data" / "labels.parquet").unlink()
    no_data = invoke("check", "--home", str(project), "--env", "staging", "--json")

    assert good.exit_code == 0, good.output
    checks = {(c["kind"], c["check"]): c for c in json.loads(good.stdout)["checks"]}
    assert {k for k, _ in checks} == {"pipeline", "data", "model"}
    assert checks[("pipeline", "training")]["passed"]
    assert checks[("model", "check_model")]["detail"].startswith(f"{MODEL}/")
    assert bad.exit_code == 0  # version 1 is staging's own champion: it passes
    failed = json.loads(no_data.stdout)
    assert no_data.exit_code == 1 and not failed["passed"]
    lines = {c["check"]: c for c in failed["checks"]}
    assert not lines["extract"]["passed"] and "labels.parquet" in lines["extract"]["detail"]
    assert not lines["check_model"]["passed"]
    assert "did not succeed" in lines["check_model"]["detail"]


def test_check_fails_a_home_with_no_model_checks_and_a_useless_model(project):
    useless = invoke("check", "--home", str(project), "--env", "staging", "--model",
                     f"{MODEL}@nothing")  # fmt: skip
    (project / "config.toml").write_text('applications = []\n[env.dev]\nhome = "dev"\n')
    bare = invoke("check", "--home", str(project), "--env", "dev", "--json")

    assert useless.exit_code == 1
    assert "FAILED" in useless.output and "no alias 'nothing'" in useless.output
    assert bare.exit_code == 1
    (line,) = [c for c in json.loads(bare.stdout)["checks"] if not c["passed"]]
    assert line["check"] == "model_check" and "has no model_check pipeline" in line["detail"]


def _workflow_commands():
    """The litemlops commands of the example workflow's jobs after `test`, in order."""
    import shlex
    from pathlib import Path

    import yaml

    path = Path(__file__).resolve().parents[1] / "deploy" / "ci" / "github-actions.yml"
    workflow = yaml.safe_load(path.read_text())
    env = {**workflow["env"], "GITHUB_RUN_ID": "42"}
    jobs, order, done = workflow["jobs"], [], {"test"}
    while len(done) < len(jobs):
        ready = [n for n, j in jobs.items() if n not in done and set(
            [j["needs"]] if isinstance(j.get("needs"), str) else j.get("needs", [])) <= done]
        assert ready, "the jobs' needs form a cycle"
        order.append(ready[0])
        done.add(ready[0])
    commands = []
    for name in order:
        for step in jobs[name]["steps"]:
            line = step["run"]
            for key, value in env.items():
                line = line.replace(f"${key}", value)
            words = shlex.split(line)
            assert words[0] == "litemlops", line
            commands.append((name, words[1:]))
    return env, commands


@pytest.mark.parametrize("trained", ["good", "bad"])
def test_the_example_workflow_promotes_a_good_model_and_stops_a_bad_one_at_staging(
    project, trained
):
    _, commands = _workflow_commands()
    assert [job for job, _ in commands] == ["train", "train", "staging", "staging", "prod",
                                            "prod"]  # fmt: skip
    prod_before = versions(project, "prod")
    runner = CliRunner()
    reached = []
    for job, args in commands:
        if trained == "bad" and args[:1] == ["check"] and job == "train":
            # The training produced a useless model that dev's lax checks let through.
            assert invoke("models", "alias", MODEL, "champion", "2",
                          "--home", str(project), "--env", "dev").exit_code == 0  # fmt: skip
        result = runner.invoke(cli, args, env={"LITEMLOPS_HOME": str(project),
                                                "LITEMLOPS_ENV": ""})  # fmt: skip
        reached.append((job, args[0], result.exit_code))
        if result.exit_code != 0:
            break
    if trained == "good":
        assert all(code == 0 for _, _, code in reached), reached
        assert len(reached) == len(commands)
        with opened(project, "prod") as platform:
            moved = platform.registry.alias_history(MODEL, "champion")[-1]
        assert moved.reason == "workflow 42, approved"
    else:
        assert reached[-1] == ("staging", "promote", 1), reached
        assert versions(project, "prod") == prod_before
        with opened(project, "staging") as platform:
            history = platform.registry.alias_history(MODEL, "champion")
        assert all(h.reason != "workflow 42" for h in history)


def test_promoting_bytes_the_target_serves_already_moves_nothing_and_says_so(project):
    first = invoke("promote", f"{MODEL}/1", "--from", "dev", "--to", "staging",
                   "--home", str(project), "--json")  # fmt: skip
    landed = json.loads(first.stdout)["target"]
    with opened(project, "staging") as platform:
        before = platform.registry.alias_history(MODEL, "champion")

    again = invoke("promote", f"{MODEL}/1", "--from", "dev", "--to", "staging",
                   "--home", str(project))  # fmt: skip

    assert first.exit_code == 0 and json.loads(first.stdout)["moved"] is True
    assert again.exit_code == 0, again.output
    assert f"is {landed} in staging, which is champion there already: nothing moved" in (
        again.output
    )
    with opened(project, "staging") as platform:
        assert platform.registry.alias_history(MODEL, "champion") == before
