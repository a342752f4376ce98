import itertools
import re
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression

from litemlops.errors import (
    AliasNotFoundError,
    ArtifactNotFoundError,
    ModelNotFoundError,
    ModelVersionNotFoundError,
    RegistryStateError,
    SignatureError,
    TamperedArtifactError,
    ValidationError,
)
from litemlops.store.tracking.registry import ModelRegistry
from litemlops.store.tracking.signature import infer_signature

T0 = datetime(2026, 1, 1, tzinfo=UTC)



@pytest.fixture
def registry(tracker):
    return ModelRegistry(tracker)


def data():
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"conv_rate": rng.random(200), "acc_rate": rng.random(200)})
    y = (X["conv_rate"] + 0.2 * rng.random(200) > 0.6).astype(int)
    return X, y


def train(tracker, C=1.0, with_signature=True):
    X, y = data()
    model = LogisticRegression(C=C).fit(X, y)
    with tracker.start_run("driver") as run:
        run.log_params({"C": C})
        run.log_metric("auc", 0.8 + C / 100)
        run.log_input("training", data=X, feature_views={"driver_stats": 3})
        info = run.log_model(
            model,
            "model",
            signature=infer_signature(X, y) if with_signature else None,
            input_example=X.head(2),
        )
    return run, info, model, X


def test_register_versions_aliases_and_load_by_every_uri(tracker, registry):
    _, info1, model1, X = train(tracker, C=1.0)
    run2, _, _, _ = train(tracker, C=0.1)
    v1 = registry.register_model(info1.uri, "driver_ranker", description="first")
    v2 = registry.register_model(f"runs:/{run2.id}/model", "driver_ranker")
    assert (v1.version, v2.version) == (1, 2)
    registry.set_alias("driver_ranker", "champion", 1, reason="first deploy")
    expected = model1.predict_proba(X)[:, 1]
    for uri in (
        "driver_ranker@champion",
        "models:/driver_ranker@champion",
        "driver_ranker/1",
        "models:/driver_ranker/1",
        info1.uri,
    ):
        loaded = registry.load_model(uri)
        np.testing.assert_allclose(loaded.predict_proba(X)[:, 1], expected)
    assert registry.get_registered_model("driver_ranker").aliases == {"champion": 1}
    assert registry.get_model_version("driver_ranker", 1).aliases == ("champion",)


def test_loading_enforces_the_signature_column_order(tracker, registry):
    _, info, model, X = train(tracker)
    registry.register_model(info.uri, "m")
    loaded = registry.load_model("m/1")
    reordered = X[["acc_rate", "conv_rate"]]
    np.testing.assert_allclose(loaded.predict_proba(reordered), model.predict_proba(X))
    with pytest.raises(SignatureError, match="conv_rate"):
        loaded.predict(X.drop(columns=["conv_rate"]))


def test_a_changed_model_file_is_refused_before_unpickling(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    registry.set_alias("m", "champion", 1)
    path = tracker.artifacts.path(info.sha256)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.chmod(0o644)
    path.write_bytes(bytes(raw))
    with pytest.raises(TamperedArtifactError, match=info.sha256):
        registry.load_model("m@champion")


def test_alias_history_records_every_move_and_rollbacks_walk_back(tracker, registry):
    for c in (1.0, 0.5, 0.1):
        _, info, _, _ = train(tracker, C=c)
        registry.register_model(info.uri, "m")
    registry.set_alias("m", "champion", 1, reason="first")
    registry.set_alias("m", "champion", 2, reason="better auc")
    registry.set_alias("m", "champion", 2, reason="no-op")  # not a move, not recorded
    registry.set_alias("m", "champion", 3)
    assert registry.rollback("m", "champion", reason="v3 broke").version == 2
    assert registry.get_alias("m", "champion").version == 2
    # a second rollback goes further back, never to the version just rolled back from
    assert registry.rollback("m", "champion", reason="v2 broke too").version == 1
    moves = [
        (c.from_version, c.to_version, c.action, c.reason)
        for c in registry.alias_history("m", "champion")
    ]
    assert moves == [
        (None, 1, "set", "first"),
        (1, 2, "set", "better auc"),
        (2, 3, "set", "set"),
        (3, 2, "rollback", "v3 broke"),
        (2, 1, "rollback", "v2 broke too"),
    ]
    with pytest.raises(RegistryStateError, match="no earlier version"):
        registry.rollback("m", "champion")
    assert all(c.at.tzinfo is not None for c in registry.alias_history("m"))


def test_a_deleted_alias_can_be_rolled_back_into_place(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    registry.set_alias("m", "champion", 1)
    registry.delete_alias("m", "champion", reason="incident")
    with pytest.raises(AliasNotFoundError, match="model 'm' has no alias 'champion'"):
        registry.get_alias("m", "champion")
    assert registry.rollback("m", "champion").version == 1


def test_rollback_without_an_earlier_version_is_refused(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    registry.set_alias("m", "champion", 1)
    with pytest.raises(RegistryStateError, match="no earlier version"):
        registry.rollback("m", "champion")
    with pytest.raises(AliasNotFoundError, match="alias 'shadow'"):
        registry.rollback("m", "shadow")


def test_a_rollback_past_a_delete_is_refused_and_moves_nothing(tracker, registry):
    # Before version 2 was set the alias did not exist: a rollback has no version to
    # go back to (it does not delete the alias).
    for i in range(2):
        registry.register_model(log_bytes(tracker, {"w": i}).uri, "m")
    registry.set_alias("m", "champion", 1)
    registry.delete_alias("m", "champion", reason="incident")
    registry.set_alias("m", "champion", 2)
    with pytest.raises(RegistryStateError, match="no earlier version to roll back to"):
        registry.rollback("m", "champion")
    assert registry.get_alias("m", "champion").version == 2
    assert len(registry.alias_history("m", "champion")) == 3


def test_setting_an_alias_where_it_is_records_nothing_at_any_version(tracker, registry):
    # Versions past 256 are distinct int objects in Python: equal, not identical.
    for i in range(258):
        registry.register_model(log_bytes(tracker, {"w": i}).uri, "m")
    for version in (3, 258):
        registry.set_alias("m", f"at-{version}", version)
        registry.set_alias("m", f"at-{version}", int(str(version)), reason="again")
        history = registry.alias_history("m", f"at-{version}")
        assert [(c.to_version, c.action) for c in history] == [(version, "set")]


def test_a_registered_version_keeps_its_model_file(tracker, registry):
    run = tracker.start_run("e")
    X, y = data()
    info = run.log_model(LogisticRegression(C=1.0).fit(X, y), "model")
    registry.register_model(info.uri, "m", allow_unfinished=True)
    with pytest.raises(ValidationError, match="already logged a model named 'model'"):
        run.log_model(LogisticRegression(C=0.001).fit(X, y), "model")
    run.end()
    assert registry.load_model("m/1").model.C == 1.0


def test_registering_from_a_failed_or_unfinished_run_is_refused(tracker, registry):
    X, y = data()
    with pytest.raises(RuntimeError, match="training diverged"), tracker.start_run("e") as failed:
        info = failed.log_model(LogisticRegression().fit(X, y), "model")
        raise RuntimeError("training diverged")
    with pytest.raises(RegistryStateError, match="failed"):
        registry.register_model(info.uri, "m")
    running = tracker.start_run("e")
    info = running.log_model(LogisticRegression().fit(X, y), "model")
    with pytest.raises(RegistryStateError, match="still running"):
        registry.register_model(info.uri, "m")
    assert registry.register_model(info.uri, "m", allow_unfinished=True).version == 1
    running.end()


def test_lineage_freezes_run_params_metrics_and_inputs(tracker, registry):
    run, info, _, X = train(tracker, C=0.5)
    version = registry.register_model(info.uri, "m")
    lineage = version.lineage
    assert lineage["run_id"] == run.id and lineage["params"] == {"C": "0.5"}
    assert lineage["metrics"] == {"auc": 0.805}
    (inp,) = lineage["inputs"]
    assert inp["feature_views"] == {"driver_stats": 3} and inp["rows"] == len(X)
    assert lineage["model"]["sha256"] == info.sha256
    assert "scikit-learn" in lineage["model"]["environment"]
    # Kept in one order whatever the run logged first: the same lineage reads (and
    # shows, in the CLI and the API) the same way every time.
    assert list(lineage) == sorted(lineage)
    assert list(lineage["model"]) == sorted(lineage["model"])


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda r: r.get_registered_model("nope"), ModelNotFoundError, "'nope'"),
        (lambda r: r.get_model_version("m", 9), ModelVersionNotFoundError, "no version 9"),
        (lambda r: r.get_alias("m", "gone"), AliasNotFoundError, "no alias 'gone'"),
        (lambda r: r.load_model("m@gone"), AliasNotFoundError, "gone"),
        (lambda r: r.load_model("nope/1"), ModelNotFoundError, "nope"),
        (lambda r: r.load_model("m"), ValidationError, "cannot read model URI"),
        (lambda r: r.load_model("m/one"), ValidationError, "must be a number"),
        (lambda r: r.load_model("runs:/zz/model"), ValidationError, "runs:/"),
        (lambda r: r.register_model("runs:/" + "0" * 32 + "/model", "m"), KeyError, "0" * 32),
        (lambda r: r.set_alias("m", "latest", 1), ValidationError, "reserved"),
        (lambda r: r.set_alias("m", "v2", 1), ValidationError, "reserved"),
        (lambda r: r.set_alias("m", "champion", 7), ModelVersionNotFoundError, "7"),
        (lambda r: r.create_registered_model("../evil"), ValidationError, "invalid model name"),
    ],
)
def test_bad_requests_get_typed_errors_naming_what_was_asked(
    tracker, registry, call, error, message
):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    with pytest.raises(error, match=message):
        call(registry)


def test_a_model_logged_without_signature_loads_and_predicts(tracker, registry):
    _, info, model, X = train(tracker, with_signature=False)
    loaded = registry.load_model(info.uri)
    assert loaded.signature is None
    np.testing.assert_allclose(loaded.predict(X), model.predict(X))


def test_huge_or_odd_versions_and_unknown_alias_history_are_typed_errors(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    for uri in ("m/99999999999999999999999", "m/²", "m/١"):
        with pytest.raises(
            (ValidationError, ModelVersionNotFoundError),
            match=f"model version in '{re.escape(uri)}' must be a number from 1",
        ):
            registry.load_model(uri)
    with pytest.raises(ModelVersionNotFoundError, match=f"model 'm' has no version {2**70}$"):
        registry.get_model_version("m", 2**70)
    with pytest.raises(AliasNotFoundError, match="never had an alias 'nope'"):
        registry.alias_history("m", "nope")


def log_bytes(tracker, content):
    """A finished run that logged `content` (any picklable object) as its model."""
    with tracker.start_run("driver") as run:
        info = run.log_model(content, "model")
    return info


def test_registering_the_same_bytes_again_returns_that_version_and_says_so(tracker, registry):
    from structlog.testing import capture_logs

    first = registry.register_model(log_bytes(tracker, {"w": 1}).uri, "m", description="one")
    registry.set_alias("m", "champion", 1)
    again = log_bytes(tracker, {"w": 1})
    with capture_logs() as logs:
        same = registry.register_model(again.uri, "m", description="retrained")
    assert same == registry.get_model_version("m", 1)
    assert (same.version, same.description, same.run_id) == (1, "one", first.run_id)
    (event,) = [e for e in logs if e["event"] == "model_version_reused"]
    assert event | {"log_level": "info"} == {
        "event": "model_version_reused", "log_level": "info", "registered_model": "m",
        "existing_version": 1, "sha256": first.sha256, "tracking_run": again.run_id,
        "registered_by": first.run_id,
    }
    assert [v.version for v in registry.list_versions("m")] == [1]
    assert registry.register_model(again.uri, "m", allow_duplicate=True).version == 2
    assert registry.register_model(log_bytes(tracker, {"w": 2}).uri, "m").version == 3
    # Another model name is another history: the same bytes are its own first version.
    assert registry.register_model(again.uri, "other").version == 1


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=7))
def test_a_version_per_distinct_model_unless_a_duplicate_is_asked_for(tmp_path_factory, steps):
    from litemlops.store.tracking.tracker import Tracker

    home = tmp_path_factory.mktemp("registry")
    with Tracker(home / "registry.db", artifacts=home / "artifacts", code_dir=home) as tracker:
        registry = ModelRegistry(tracker)
        versions: list[int] = []  # the model: which content each version holds
        for content, duplicate in steps:
            info = log_bytes(tracker, {"weights": [content] * 3})
            got = registry.register_model(info.uri, "m", allow_duplicate=duplicate)
            if not duplicate and content in versions:
                expected = max(i for i, c in enumerate(versions, 1) if c == content)
            else:
                versions.append(content)
                expected = len(versions)
            assert got.version == expected
            assert got.sha256 == info.sha256
        stored = registry.list_versions("m")
        assert [v.version for v in stored] == list(range(len(versions), 0, -1))
        shas = {v.version: v.sha256 for v in stored}
        for (a, content_a), (b, content_b) in itertools.product(enumerate(versions, 1), repeat=2):
            assert (shas[a] == shas[b]) == (content_a == content_b)


def test_a_model_whose_file_is_gone_says_so_and_keeps_its_version(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    tracker.artifacts.path(info.sha256).unlink()
    with pytest.raises(
        ArtifactNotFoundError,
        match=rf"^the file of model 'm/1' \(sha256 {info.sha256}\) is missing from the "
        r"artifact store; it was deleted or the home was copied without artifacts/$",
    ):
        registry.load_model("m/1")
    assert [v.sha256 for v in registry.list_versions("m")] == [info.sha256]


def test_a_registered_version_cannot_be_registered_again_from_its_models_uri(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    with pytest.raises(
        ValidationError,
        match=r"^model URI 'models:/m/1' is not 'runs:/<run_id>/<model name>': versions are "
        r"registered from models logged in runs$",
    ):
        registry.register_model("models:/m/1", "copy")
    with pytest.raises(ModelNotFoundError, match="'copy'"):
        registry.get_registered_model("copy")
    assert [v.version for v in registry.list_versions("m")] == [1]


def test_a_rollback_sees_the_rollbacks_made_while_it_waited(tracker, registry):
    for c in (1.0, 0.5, 0.1):
        _, info, _, _ = train(tracker, C=c)
        registry.register_model(info.uri, "m")
    for version in (1, 2, 3):
        registry.set_alias("m", "champion", version)
    elsewhere = ModelRegistry(tracker)  # another process on the same registry
    meanwhile = [lambda: [elsewhere.rollback("m", "champion", "elsewhere") for _ in range(2)]]
    clock = tracker.clock

    def clock_of_a_slow_rollback() -> datetime:
        if meanwhile:  # the other process rolls back twice, 3 -> 2 -> 1, while this one waits
            meanwhile.pop()()
        return clock()

    tracker.clock = clock_of_a_slow_rollback
    # Back to 2 would undo a rollback from it: there is nothing earlier than 1 to go to.
    with pytest.raises(RegistryStateError, match="no earlier version to roll back to"):
        registry.rollback("m", "champion", "here")
    assert registry.get_alias("m", "champion").version == 1
    moves = [(c.to_version, c.action, c.reason) for c in registry.alias_history("m", "champion")]
    assert moves[3:] == [(2, "rollback", "elsewhere"), (1, "rollback", "elsewhere")]


@pytest.mark.parametrize(
    ("version", "error", "match"),
    [
        # Outside 1 .. 2**63 - 1 (SQLite's integers): refused before any read, for any
        # model, known or not.
        (0, ModelVersionNotFoundError, "model 'nope' has no version 0$"),
        (-1, ModelVersionNotFoundError, "model 'nope' has no version -1$"),
        (2**63, ModelVersionNotFoundError, f"model 'nope' has no version {2**63}$"),
        # Not an int (a bool is one to Python, SQLite would read True as 1): refused too.
        (True, ModelVersionNotFoundError, "model 'nope' has no version True$"),
        ("1", ModelVersionNotFoundError, "model 'nope' has no version '1'$"),
        # Inside it, the model is looked up: an unknown one is named as such.
        (1, ModelNotFoundError, "no registered model named 'nope'"),
        (127, ModelNotFoundError, "no registered model named 'nope'"),
        (2**63 - 1, ModelNotFoundError, "no registered model named 'nope'"),
    ],
)
def test_a_version_outside_sqlites_integers_is_refused_before_the_model_is_looked_up(
    registry, version, error, match
):
    with pytest.raises(error, match=match):
        registry.get_model_version("nope", version)


def test_a_versions_uri_names_its_model_and_number(tracker, registry):
    _, info, _, _ = train(tracker)
    version = registry.register_model(info.uri, "m")
    assert version.uri == "models:/m/1"
    assert registry.load_model(version.uri).predict is not None


def test_a_description_is_text_and_changes_only_what_it_describes(tracker, registry):
    _, info, _, _ = train(tracker)
    registry.register_model(info.uri, "m")
    registry.register_model(info.uri, "other")
    before = registry.get_registered_model("other").updated_at
    with pytest.raises(ValidationError, match="a description is text of at most 5000"):
        registry.set_description("m", 5)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="a description is text of at most 5000"):
        registry.set_description("m", "x" * 5001)
    registry.set_description("m", "x" * 5000)
    registry.set_description("m", "first", version=1)
    assert registry.get_registered_model("m").description == "x" * 5000
    assert registry.get_model_version("m", 1).description == "first"
    assert registry.get_registered_model("other").description == ""
    assert registry.get_model_version("other", 1).description == ""
    assert registry.get_registered_model("other").updated_at == before
    assert registry.get_registered_model("m").updated_at != before


@pytest.mark.parametrize("uri", ["runs:/zz/model", "models:/", 7])
def test_registering_from_an_unreadable_uri_says_what_form_it_must_have(registry, uri):
    with pytest.raises(
        ValidationError, match=rf"model URI {re.escape(repr(uri))} is not 'runs:/<run_id>/<model"
    ):
        registry.register_model(uri, "m")  # type: ignore[arg-type]
    assert registry.list_registered_models() == []


def test_a_rollback_says_which_version_it_left_and_records_are_immutable(tracker, registry):
    import dataclasses

    _, info, _, _ = train(tracker)
    for n in (1, 2, 3):
        registry.register_model(info.uri, "m", allow_duplicate=n > 1)
        registry.set_alias("m", "champion", n)
    assert registry.rollback("m", "champion").version == 2
    last = registry.alias_history("m", "champion")[-1]
    assert (last.action, last.from_version, last.to_version) == ("rollback", 3, 2)
    assert last.reason == "rollback from version 3"
    version, model = registry.get_model_version("m", 2), registry.get_registered_model("m")
    for record in (version, model, last):
        with pytest.raises(dataclasses.FrozenInstanceError, match="cannot assign to field"):
            record.name = "other"  # type: ignore[misc]
