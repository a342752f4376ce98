"""`Service`: lookup -> score -> choose -> `prediction_served`, without HTTP."""

from __future__ import annotations

import pandas as pd
import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_world import DRIVERS, MODEL, REFS, World

from litemlops.errors import NotFoundError, ValidationError
from litemlops.modeling import scores
from litemlops.serving.errors import (
    FeaturesMismatchError,
    InvalidModelError,
    InvalidRequestError,
    ModelUnavailableError,
    ServedModelUnavailableError,
    ServiceNotReadyError,
    UnknownEntitiesError,
)
from litemlops.serving.service import Service, ServiceSpec
from litemlops.store.tracking.signature import infer_signature


def model_scores(world: World, ids: list[int]) -> list[float]:
    """The oracle: the champion's own method on the drivers' features."""
    model = world.registry.load_model(f"{MODEL}@champion")
    return list(scores(model.model, [list(DRIVERS[i]) for i in ids]))


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ids=st.lists(st.sampled_from(sorted(DRIVERS)), min_size=1, unique=True))
def test_infer_answers_the_candidate_the_model_scores_highest(world: World, ids: list[int]):
    choice = world.service.infer("r-1", ids)

    expected = model_scores(world, ids)
    assert list(choice.scores) == [str(i) for i in ids]
    assert list(choice.scores.values()) == pytest.approx(expected, rel=1e-12)
    assert choice.prediction == ids[expected.index(max(expected))]
    assert (choice.request_id, choice.model, choice.version) == ("r-1", MODEL, 1)


def test_infer_logs_one_prediction_served_event_with_what_it_scored(world: World):
    choice = world.service.infer("r-2", [1002, 1001])

    [event] = world.served()
    assert event["request_id"] == "r-2"
    assert event["service"] == "inference"
    assert (event["model"], event["version"]) == (MODEL, 1)
    assert event["entities"] == [1002, 1001]
    assert event["features"] == [
        {"conv_rate": 0.1, "acc_rate": 0.2},
        {"conv_rate": 0.9, "acc_rate": 0.8},
    ]
    assert event["scores"] == list(choice.scores.values())
    assert event["output"] == choice.prediction == 1001
    assert event["latency_ms"] >= 0


def test_infer_refuses_repeated_candidates_before_choosing_a_model(world: World):
    with pytest.raises(InvalidRequestError, match=r"driver_ids repeats \[1001\]") as caught:
        world.service.infer("r", [1001, 1002, 1001])

    assert caught.value.model is None
    assert world.served() == []


def test_unknown_candidates_are_named_with_the_model_that_was_chosen(world: World):
    with pytest.raises(UnknownEntitiesError, match="9999") as caught:
        world.service.infer("r", [1001, 9999])

    assert caught.value.entities == [9999]
    assert (caught.value.model, caught.value.version) == (MODEL, 1)
    assert isinstance(caught.value, NotFoundError)
    assert world.served() == []


def test_choose_model_is_where_the_answering_model_is_decided(world: World):
    world.train()  # version 2 is the champion now

    class Pinned(Service):
        def choose_model(self, request_id, ids):
            return self.model(f"{MODEL}/1")

    pinned = Pinned(world.service.spec, world.store, world.service.models)

    assert world.service.infer("r", [1001]).version == 2
    assert pinned.infer("r", [1001]).version == 1


def test_a_missing_served_model_is_the_service_down_another_is_not_found(world: World):
    gone = Service(
        ServiceSpec("inference", "nobody", "driver_id", REFS), world.store, world.service.models
    )

    with pytest.raises(ServedModelUnavailableError, match="nobody@champion"):
        gone.infer("r", [1001])
    with pytest.raises(
        ModelUnavailableError,
        match="no model to serve for 'nobody@champion': no registered model named 'nobody'",
    ) as caught:
        world.service.predict("nobody", features=[{"conv_rate": 1, "acc_rate": 1}])
    assert type(caught.value) is ModelUnavailableError
    with pytest.raises(
        InvalidModelError, match="model URI 'runs:/nothing/model' is not 'runs:/<run_id>/"
    ):
        world.service.predict("runs:/nothing/model", features=[{"conv_rate": 1, "acc_rate": 1}])


def test_predict_scores_entity_rows_by_the_features_the_model_was_trained_on(world: World):
    ids = [1003, 1001]
    result = world.service.predict(MODEL, entities=[{"driver_id": i} for i in ids])

    assert result.predictions == pytest.approx(model_scores(world, ids), rel=1e-12)
    assert (result.model, result.version) == (MODEL, 1)
    [event] = world.served()
    assert event["service"] == "predict"
    assert event["output"] == result.predictions


def test_predict_scores_feature_rows_and_names_the_inputs_they_lack(world: World):
    rows = [{"conv_rate": c, "acc_rate": a} for c, a in DRIVERS.values()]

    result = world.service.predict(MODEL, features=rows, request_id="p")

    assert result.predictions == pytest.approx(model_scores(world, list(DRIVERS)), rel=1e-12)
    with pytest.raises(InvalidRequestError, match=r"lack \['acc_rate'\]"):
        world.service.predict(MODEL, features=[{"conv_rate": 0.5}])


def test_predict_takes_entities_or_features_not_both_nor_neither(world: World):
    with pytest.raises(InvalidRequestError, match="either"):
        world.service.predict(
            MODEL, entities=[{"driver_id": 1001}], features=[{"conv_rate": 1, "acc_rate": 1}]
        )
    with pytest.raises(InvalidRequestError, match="send 'entities'"):
        world.service.predict(MODEL)
    assert world.served() == []


def test_entity_rows_need_a_model_that_recorded_its_features(world: World):
    world.train(structured=False)  # the old way: the param alone still tells them
    assert world.service.predict(MODEL, entities=[{"driver_id": 1001}]).version == 2

    model = world.registry.load_model(f"{MODEL}/1").model
    inputs = pd.DataFrame([[0.0, 0.0]], columns=["conv_rate", "acc_rate"])
    with world.tracker.start_run(MODEL) as run:  # no references recorded at all
        run.log_model(model, "model", signature=infer_signature(inputs))
    with pytest.raises(InvalidRequestError, match="does not record which features"):
        world.service.predict(f"runs:/{run.id}/model", entities=[{"driver_id": 1001}])


def test_a_model_whose_inputs_its_features_lack_is_a_mismatch(world: World):
    world.train(["driver_stats:conv_rate", "driver_stats:acc_rate"])
    wrong = Service(
        ServiceSpec("inference", MODEL, "driver_id", ["driver_stats:conv_rate"]),
        world.store,
        world.service.models,
    )

    with pytest.raises(FeaturesMismatchError, match="acc_rate"):
        wrong.infer("r", [1001])


def test_key_type_says_why_the_service_cannot_run_yet(world: World):
    assert world.service.key_type() is int
    absent = Service(
        ServiceSpec("inference", MODEL, "driver_id", ["nothing:here"]),
        world.store,
        world.service.models,
    )
    with pytest.raises(ServiceNotReadyError, match="service 'inference' cannot run"):
        absent.key_type()


def test_serving_errors_are_the_library_errors_callers_already_catch():
    assert issubclass(InvalidRequestError, ValidationError)
    assert issubclass(ModelUnavailableError, NotFoundError)
    assert issubclass(ServedModelUnavailableError, ModelUnavailableError)
