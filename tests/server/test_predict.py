"""The prediction server's public endpoints against a real home: what they answer,
what they log, how they refuse bad input, and what /metrics says about them."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from litemlops import events
from litemlops.platform import Platform
from litemlops.server import create_app
from litemlops.testing import FixedClock

#: What a client sending raw bytes must add: bodies not sent as JSON get 415.
JSON_BODY = {"content-type": "application/json"}

pytestmark = pytest.mark.filterwarnings(
    # pytest drops the filter the server sets at import once the first test ends.
    "ignore:X does not have valid feature names"
)

MODEL = "driver_ranker"
FEATURES = ["driver_stats:conv_rate", "driver_stats:acc_rate", "driver_stats:avg_daily_trips"]
COLUMNS = [ref.split(":")[1] for ref in FEATURES]
DRIVERS = [1001, 1002, 1003, 1004, 1005]
MAX_ITEMS = 8


@pytest.fixture(scope="module")
def served_overrides() -> dict[str, Any]:
    return {"server.max_items": MAX_ITEMS}


def online_rows(platform: Platform, ids: list[int]) -> list[list[float]]:
    """The online feature values of `ids`, in the model's column order."""
    columns = platform.features.get_online_features(
        FEATURES, [{"driver_id": i} for i in ids]
    ).to_dict()
    return [[float(columns[c][k]) for c in COLUMNS] for k in range(len(ids))]


def expected_scores(platform: Platform, uri: str, rows: list[list[float]]) -> list[float]:
    """The oracle: the registry's own model, scored outside the server."""
    import pandas as pd

    model = platform.registry.load_model(uri)
    proba = model.predict_proba(pd.DataFrame(rows, columns=COLUMNS))
    return [float(p) for p in proba[:, 1]]


def metric_samples(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of /metrics by (sample name, sorted labels)."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def labels(**values: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(values.items()))


# -- /inference ---------------------------------------------------------------------------------


def test_inference_answers_the_best_driver_with_every_score(client, served_platform):
    response = client.post("/inference", json={"request_id": "r-best", "driver_ids": DRIVERS})

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"request_id", "prediction", "scores", "model", "version"}
    assert body["request_id"] == "r-best"
    assert (body["model"], body["version"]) == (MODEL, 1)
    assert list(body["scores"]) == [str(i) for i in DRIVERS]
    oracle = expected_scores(
        served_platform, f"{MODEL}@champion", online_rows(served_platform, DRIVERS)
    )
    assert list(body["scores"].values()) == pytest.approx(oracle, rel=1e-12)
    best = max(DRIVERS, key=lambda i: body["scores"][str(i)])
    assert body["prediction"] == best


def test_inference_with_one_candidate_answers_that_candidate(client):
    response = client.post("/inference", json={"request_id": "r-one", "driver_ids": [1004]})

    assert response.status_code == 200, response.text
    assert response.json()["prediction"] == 1004
    assert list(response.json()["scores"]) == ["1004"]


def test_each_prediction_is_logged_with_the_features_and_scores_it_used(
    client, served_platform, read_events
):
    ids = [1002, 1005, 1001]
    answer = client.post("/inference", json={"request_id": "r-logged", "driver_ids": ids}).json()

    logged = [e for e in read_events(events.PREDICTION_SERVED) if e["request_id"] == "r-logged"]

    assert len(logged) == 1
    event = logged[0]
    assert not events.missing_keys(events.PREDICTION_SERVED, event)
    assert (event["model"], event["version"], event["service"]) == (MODEL, 1, "inference")
    assert event["entities"] == ids
    rows = online_rows(served_platform, ids)
    assert event["features"] == [dict(zip(COLUMNS, row, strict=True)) for row in rows]
    assert event["scores"] == [answer["scores"][str(i)] for i in ids]
    assert event["output"] == answer["prediction"]
    assert isinstance(event["latency_ms"], float) and 0 <= event["latency_ms"] < 60_000


DROP = object()
NOT_JSON = (400, "invalid_json")
INVALID = (422, "invalid_request")


def ask(**changes: Any) -> dict[str, Any]:
    """A valid /inference body with `changes` (DROP removes a field), as client kwargs."""
    body = {"request_id": "a", "driver_ids": [1001], **changes}
    return {"json": {key: value for key, value in body.items() if value is not DROP}}


def raw(text: bytes) -> dict[str, Any]:
    return {"content": text, "headers": JSON_BODY}


BAD_INFERENCE: list[tuple[str, dict[str, Any], tuple[int, str]]] = [
    ("malformed json", raw(b'{"request_id": "a", "driver_ids": [1001,'), NOT_JSON),
    ("empty body", raw(b""), NOT_JSON),
    ("not utf-8", raw(b'{"request_id": "\xff", "driver_ids": [1]}'), NOT_JSON),
    ("deep nesting", raw(b"[" * 100_000 + b"]" * 100_000), NOT_JSON),
    ("NaN", raw(b'{"request_id": "a", "driver_ids": [NaN]}'), NOT_JSON),
    ("Infinity", raw(b'{"request_id": "a", "driver_ids": [Infinity]}'), NOT_JSON),
    ("-Infinity", raw(b'{"request_id": "a", "driver_ids": [-Infinity]}'), NOT_JSON),
    ("1e400", raw(b'{"request_id": "a", "driver_ids": [1e400]}'), NOT_JSON),
    ("a list body", {"json": [1001, 1002]}, INVALID),
    ("a string body", {"json": "1001"}, INVALID),
    ("a null body", raw(b"null"), INVALID),
    ("string ids", ask(driver_ids=["1001"]), INVALID),
    ("fractional ids", ask(driver_ids=[1001.5]), INVALID),
    ("bool ids", ask(driver_ids=[True]), INVALID),
    ("nested ids", ask(driver_ids=[[1001]]), INVALID),
    ("null ids", ask(driver_ids=None), INVALID),
    ("object ids", ask(driver_ids={"1001": 1}), INVALID),
    ("ids beyond int64", ask(driver_ids=[2**63]), INVALID),
    ("empty list", ask(driver_ids=[]), INVALID),
    ("extra field", ask(k=3), INVALID),
    ("missing request_id", ask(request_id=DROP), INVALID),
    ("empty request_id", ask(request_id=""), INVALID),
    ("number request_id", ask(request_id=7), INVALID),
    ("missing driver_ids", ask(driver_ids=DROP), INVALID),
]


@pytest.mark.parametrize(
    ("sent", "status", "code"),
    [pytest.param(sent, *answer, id=name) for name, sent, answer in BAD_INFERENCE],
)
def test_inference_refuses_bad_input_with_a_json_error(client, error_of, sent, status, code):
    response = client.post("/inference", **sent)

    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


def test_a_type_error_names_the_field_that_is_wrong(client, error_of):
    response = client.post("/inference", json={"request_id": "a", "driver_ids": [1001, "x"]})

    assert "driver_ids.1" in error_of(response)["message"]


def test_unknown_drivers_get_a_404_naming_them(client, error_of):
    response = client.post("/inference", json={"request_id": "a", "driver_ids": [1001, 9999, 8888]})

    assert response.status_code == 404
    error = error_of(response)
    assert error["code"] == "unknown_entities"
    assert "9999" in error["message"] and "8888" in error["message"]
    assert "1001" not in error["message"]


def test_repeated_drivers_are_refused_naming_them(client, error_of):
    response = client.post("/inference", json={"request_id": "a", "driver_ids": [1001, 1002, 1001]})

    assert response.status_code == 422
    assert "1001" in error_of(response)["message"]


def test_more_candidates_than_max_items_are_refused(client, error_of):
    ids = list(range(1001, 1001 + MAX_ITEMS + 1))

    response = client.post("/inference", json={"request_id": "a", "driver_ids": ids})

    assert response.status_code == 422
    assert str(MAX_ITEMS) in error_of(response)["message"]


def test_max_items_candidates_are_still_read(client, error_of):
    # All known drivers plus unknown ones up to the limit: past the length check.
    ids = DRIVERS + list(range(9001, 9001 + MAX_ITEMS - len(DRIVERS)))

    response = client.post("/inference", json={"request_id": "a", "driver_ids": ids})

    assert response.status_code == 404
    assert error_of(response)["code"] == "unknown_entities"


BIG = b'{"request_id": "' + b"a" * 1_000_001 + b'", "driver_ids": [1001]}'


def test_a_body_over_1_mb_gets_413(client, error_of):
    response = client.post("/inference", content=BIG, headers=JSON_BODY)

    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_a_body_over_1_mb_under_a_small_content_length_gets_413(client, error_of):
    response = client.post("/inference", content=BIG, headers={**JSON_BODY, "content-length": "40"})

    assert response.request.headers["content-length"] == "40"
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_a_large_content_length_is_refused_before_the_body_is_read(client, error_of):
    small = b'{"request_id": "a", "driver_ids": [1001]}'

    headers = {**JSON_BODY, "content-length": "5000000"}
    response = client.post("/inference", content=small, headers=headers)

    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_a_chunked_body_over_1_mb_gets_413(client, error_of):
    def chunks():
        for _ in range(20):
            yield b" " * 100_000

    response = client.post("/inference", content=chunks(), headers=JSON_BODY)

    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"


def test_a_chunked_body_under_the_limit_is_served(client):
    def chunks():
        yield b'{"request_id": "chunked", '
        yield b'"driver_ids": [1001]}'

    response = client.post("/inference", content=chunks(), headers=JSON_BODY)

    assert response.status_code == 200, response.text


def test_a_content_length_that_is_not_a_number_gets_400(client, error_of):
    headers = {**JSON_BODY, "content-length": "ten"}
    response = client.post("/inference", content=b"{}", headers=headers)

    assert response.status_code == 400
    assert error_of(response)["code"] == "bad_request"


def test_unknown_paths_and_methods_answer_json_errors(client, error_of):
    assert client.get("/nowhere").status_code == 404
    assert error_of(client.get("/nowhere"))["code"] == "not_found"
    assert client.get("/inference").status_code == 405
    assert error_of(client.get("/inference"))["code"] == "method_not_allowed"


# -- /predict -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [MODEL, f"{MODEL}@champion", f"{MODEL}/1", f"models:/{MODEL}@champion", f"models:/{MODEL}/1"],
)
def test_predict_scores_entity_rows_from_the_online_store(client, served_platform, model):
    ids = [1003, 1001]

    response = client.post(f"/predict/{model}", json={"entities": [{"driver_id": i} for i in ids]})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model"], body["version"]) == (MODEL, 1)
    oracle = expected_scores(served_platform, f"{MODEL}/1", online_rows(served_platform, ids))
    assert body["predictions"] == pytest.approx(oracle, rel=1e-12)


def test_training_records_the_features_the_served_model_takes(served_platform):
    from litemlops.serving.lineage import feature_refs

    version = served_platform.registry.get_model_version(MODEL, 1)
    # The structured record, not the param: the param's old form would read the same.
    refs = feature_refs(served_platform.tracker, version.run_id, {})

    assert refs == tuple(served_platform.config.server.feature_refs())


def test_predict_scores_feature_rows_as_given(client, served_platform):
    rows = [[0.1, 0.9, 12], [0.9, 0.2, 400]]
    sent = [dict(zip(COLUMNS, row, strict=True)) for row in rows]

    response = client.post(f"/predict/{MODEL}", json={"features": sent, "request_id": "p-1"})

    assert response.status_code == 200, response.text
    oracle = expected_scores(served_platform, f"{MODEL}/1", rows)
    assert response.json()["predictions"] == pytest.approx(oracle, rel=1e-12)


def test_predict_logs_what_it_served(client, read_events):
    sent = {"features": [dict(zip(COLUMNS, [0.3, 0.4, 50], strict=True))], "request_id": "p-log"}
    answer = client.post(f"/predict/{MODEL}", json=sent).json()

    logged = [e for e in read_events(events.PREDICTION_SERVED) if e["request_id"] == "p-log"]

    assert len(logged) == 1
    assert not events.missing_keys(events.PREDICTION_SERVED, logged[0])
    assert logged[0]["service"] == "predict"
    assert logged[0]["scores"] == answer["predictions"] == logged[0]["output"]
    assert logged[0]["features"] == [{"conv_rate": 0.3, "acc_rate": 0.4, "avg_daily_trips": 50}]


@pytest.mark.parametrize(
    ("model", "status", "code"),
    [
        ("no_such_model", 404, "model_unavailable"),
        ("no_such_model@champion", 404, "model_unavailable"),
        (f"{MODEL}@no_such_alias", 404, "model_unavailable"),
        (f"{MODEL}/99", 404, "model_unavailable"),
        (f"{MODEL}/one", 422, "invalid_model"),
        ("runs:/nothing/model", 422, "invalid_model"),
        ("%20", 422, "invalid_model"),
    ],
)
def test_predict_names_a_model_it_cannot_serve(client, error_of, model, status, code):
    response = client.post(f"/predict/{model}", json={"entities": [{"driver_id": 1001}]})

    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


def row(**changes: Any) -> dict[str, Any]:
    return {"conv_rate": 0.5, "acc_rate": 0.5, "avg_daily_trips": 3, **changes}


BAD_PREDICT: list[tuple[str, Any, int]] = [
    ("neither rows", {}, 422),
    ("both rows", {"entities": [{"driver_id": 1001}], "features": [row()]}, 422),
    ("no entity rows", {"entities": []}, 422),
    ("too many rows", {"entities": [{"driver_id": 1001}] * (MAX_ITEMS + 1)}, 422),
    ("entity without its key", {"entities": [{"driver": 1001}]}, 422),
    ("entity key of the wrong type", {"entities": [{"driver_id": "abc"}]}, 422),
    ("entity key beyond int64", {"entities": [{"driver_id": 2**63}]}, 422),
    ("unknown entity", {"entities": [{"driver_id": 9999}]}, 404),
    ("feature row lacking a column", {"features": [{"conv_rate": 0.5, "acc_rate": 0.5}]}, 422),
    ("feature value null", {"features": [row(avg_daily_trips=None)]}, 422),
    ("feature value a list", {"features": [row(conv_rate=[0.5])]}, 422),
    ("no feature rows", {"features": []}, 422),
    ("extra field", {"features": [row()], "model": "x"}, 422),
]


@pytest.mark.parametrize(
    ("body", "status"), [pytest.param(body, status, id=name) for name, body, status in BAD_PREDICT]
)
def test_predict_refuses_bad_rows(client, error_of, body, status):
    response = client.post(f"/predict/{MODEL}", json=body)

    assert response.status_code == status, response.text
    error_of(response)


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_predict_refuses_nan_and_infinite_features(client, error_of, constant):
    body = b'{"features": [{"conv_rate": %s, "acc_rate": 0.5, "avg_daily_trips": 3}]}' % constant

    response = client.post(f"/predict/{MODEL}", content=body, headers=JSON_BODY)

    assert response.status_code == 400
    assert constant.decode() in error_of(response)["message"]


def test_predict_refuses_a_number_that_overflows_to_infinity(client, error_of):
    body = b'{"features": [{"conv_rate": 1e999, "acc_rate": 0.5, "avg_daily_trips": 3}]}'

    response = client.post(f"/predict/{MODEL}", content=body, headers=JSON_BODY)

    assert response.status_code == 400  # not a number JSON can hold as a double
    assert "infinity" in error_of(response)["message"]


def test_predict_names_the_columns_a_feature_row_lacks(client, error_of):
    response = client.post(f"/predict/{MODEL}", json={"features": [{"conv_rate": 0.5}]})

    assert response.status_code == 422
    message = error_of(response)["message"]
    assert "acc_rate" in message and "avg_daily_trips" in message


@pytest.mark.parametrize("value", ["0.5", True], ids=["string", "bool"])
def test_predict_refuses_a_feature_value_that_is_not_a_number(client, value):
    row = {"conv_rate": value, "acc_rate": 0.5, "avg_daily_trips": 3}

    response = client.post(f"/predict/{MODEL}", json={"features": [row]})

    assert response.status_code == 422, response.text


# -- /push, /feedback ---------------------------------------------------------------------------


def test_a_pushed_row_is_what_the_next_inference_scores(
    client, auth, served_platform, served_clock: FixedClock
):
    now = served_clock.advance(60).strftime("%Y-%m-%dT%H:%M:%SZ")
    pushed = {"conv_rate": 0.99, "acc_rate": 0.98, "avg_daily_trips": 777}
    row = {"driver_id": 1002, "datetime": now, "created": now, **pushed}

    pushing = client.post("/push/driver_stats", json={"rows": [row]}, headers=auth)
    answer = client.post("/inference", json={"request_id": "after-push", "driver_ids": [1002]})

    assert pushing.status_code == 200, pushing.text
    assert pushing.json() == {
        "view": "driver_stats",
        "rows": 1,
        "to": "online",
        "online_written": 1,
        "stale_rows": 0,
        "late_rows": 0,
    }
    oracle = expected_scores(served_platform, f"{MODEL}/1", [[0.99, 0.98, 777.0]])
    assert answer.json()["scores"] == {"1002": pytest.approx(oracle[0], rel=1e-12)}


def test_a_push_older_than_the_online_value_is_counted_stale(client, auth):
    row = {
        "driver_id": 1003,
        "datetime": "2025-12-31T00:00:00Z",
        "created": "2025-12-31T00:00:00Z",
        "conv_rate": 0.5,
        "acc_rate": 0.5,
        "avg_daily_trips": 5,
    }

    response = client.post("/push/driver_stats", json={"rows": [row]}, headers=auth)

    assert response.status_code == 200, response.text
    assert response.json()["stale_rows"] == 1 and response.json()["online_written"] == 0


def test_a_push_from_the_future_is_refused_and_the_driver_keeps_taking_updates(
    client, auth, error_of, served_clock: FixedClock
):
    def push(at: datetime, rate: float):
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        row = {"driver_id": 2002, "datetime": stamp, "created": stamp, "conv_rate": rate,
               "acc_rate": 0.5, "avg_daily_trips": 5}
        return client.post("/push/driver_stats", json={"rows": [row]}, headers=auth)

    now = served_clock.advance(60)
    refused = push(now + timedelta(days=365), 0.9)
    taken = push(now, 0.1)

    assert refused.status_code == 422, refused.text
    assert error_of(refused)["code"] == "invalid_rows"
    assert "ahead of the clock" in error_of(refused)["message"]
    assert taken.status_code == 200 and taken.json()["online_written"] == 1


def test_a_driver_whose_current_feature_is_null_is_refused_not_scored(
    client, auth, error_of, served_clock: FixedClock
):
    def push(conv_rate: float | None) -> None:
        now = served_clock.advance(60).strftime("%Y-%m-%dT%H:%M:%SZ")
        row = {"driver_id": 2001, "datetime": now, "created": now, "conv_rate": conv_rate}
        rows = [{**row, "acc_rate": 0.5, "avg_daily_trips": 5}]
        pushed = client.post("/push/driver_stats", json={"rows": rows}, headers=auth)
        assert pushed.status_code == 200 and pushed.json()["online_written"] == 1

    ask = {"request_id": "a", "driver_ids": [1001, 2001]}
    push(0.5)
    complete = client.post("/inference", json=ask)
    push(None)
    response = client.post("/inference", json=ask)

    assert complete.status_code == 200, complete.text
    assert response.status_code == 404
    assert "2001" in error_of(response)["message"]
    assert "1001" not in error_of(response)["message"]


@pytest.mark.parametrize(
    ("view", "body", "status", "code"),
    [
        ("no_such_view", {"rows": [{"driver_id": 1}]}, 404, "not_found"),
        ("driver_stats", {"rows": [{"driver_id": 1001, "conv_rate": 0.5}]}, 422, "invalid_rows"),
        ("driver_stats", {"rows": []}, 422, "invalid_request"),
        ("driver_stats", {"rows": [1]}, 422, "invalid_request"),
        ("driver_stats", {"rows": [{"driver_id": 1}], "to": "cloud"}, 422, "invalid_request"),
        ("driver_stats", {"rows": [{"driver_id": 1}] * (MAX_ITEMS + 1)}, 422, "invalid_request"),
    ],
)
def test_push_refuses_what_it_cannot_write(client, auth, error_of, view, body, status, code):
    response = client.post(f"/push/{view}", json=body, headers=auth)

    assert response.status_code == status, response.text
    assert error_of(response)["code"] == code


@pytest.mark.parametrize(("column", "value"), [("driver_id", "1001"), ("conv_rate", "0.5")])
def test_push_refuses_a_number_sent_as_a_string(client, auth, served_clock, column, value):
    now = served_clock.advance(1).strftime("%Y-%m-%dT%H:%M:%SZ")
    row = {"driver_id": 1005, "datetime": now, "created": now, "conv_rate": 0.4}
    row = {**row, "acc_rate": 0.6, "avg_daily_trips": 20, column: value}

    response = client.post("/push/driver_stats", json={"rows": [row]}, headers=auth)

    assert response.status_code == 422, response.text


def test_feedback_is_accepted_and_logged(client, auth, read_events):
    response = client.post("/feedback", json={"request_id": "fb-1", "label": 1}, headers=auth)

    assert response.status_code == 202
    assert response.json() == {"accepted": True, "request_id": "fb-1"}
    logged = [e for e in read_events(events.FEEDBACK_RECEIVED) if e["request_id"] == "fb-1"]
    assert len(logged) == 1 and logged[0]["label"] == 1


@pytest.mark.parametrize(
    "body",
    [
        {"request_id": "fb"},
        {"label": 1},
        {"request_id": "", "label": 1},
        {"request_id": "fb", "label": None},
        {"request_id": "fb", "label": [1]},
        {"request_id": "fb", "label": 1, "score": 2},
    ],
)
def test_feedback_refuses_bad_bodies(client, auth, error_of, body):
    response = client.post("/feedback", json=body, headers=auth)

    assert response.status_code == 422, response.text
    error_of(response)


@pytest.mark.parametrize("label", ["1", True], ids=["string", "bool"])
def test_feedback_refuses_a_label_that_is_not_a_number(client, auth, label):
    response = client.post("/feedback", json={"request_id": "fb", "label": label}, headers=auth)

    assert response.status_code == 422, response.text


# -- /health, /ready ----------------------------------------------------------------------------


def test_health_and_ready_answer_when_a_champion_is_loaded(client):
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() == {"ready": True, "model": MODEL, "version": 1}


def test_without_a_champion_ready_and_inference_say_why_until_one_exists(
    home_factory, serve, error_of
):
    with serve(home_factory(champion=False)) as (platform, client):
        not_ready = client.get("/ready")
        refused = client.post("/inference", json={"request_id": "a", "driver_ids": [1001]})
        platform.registry.set_alias(MODEL, "champion", 1)
        ready = client.get("/ready")
        served = client.post("/inference", json={"request_id": "a", "driver_ids": [1001]})

    assert not_ready.status_code == 503
    assert error_of(not_ready)["code"] == "not_ready"
    assert "champion" in error_of(not_ready)["message"]
    assert refused.status_code == 503
    assert "champion" in error_of(refused)["message"]
    assert ready.status_code == 200 and ready.json()["version"] == 1
    assert served.status_code == 200, served.text


def test_without_a_champion_predict_answers_the_same_for_both_spellings(home_factory, serve):
    # `driver_ranker` means `driver_ranker@champion`: once, only the second got a 503.
    body = {"entities": [{"driver_id": 1001}]}
    with serve(home_factory(champion=False)) as (_, client):
        short = client.post(f"/predict/{MODEL}", json=body)
        full = client.post(f"/predict/{MODEL}@champion", json=body)

    assert short.status_code == full.status_code == 503


def test_a_home_without_the_demo_still_starts_and_says_why_it_is_not_ready(
    tmp_path, serve, error_of
):
    from litemlops.config import Config

    config = Config.load(tmp_path / "home", env={}, overrides={"logging.console": False})
    with serve(config) as (_, client):
        health = client.get("/health")
        ready = client.get("/ready")

    assert health.status_code == 200
    assert ready.status_code == 503 and error_of(ready)["code"] == "not_ready"


def test_an_app_given_a_config_opens_the_home_and_releases_it_after(home_factory):
    config = home_factory()

    with TestClient(create_app(config=config, start_scheduler=False)) as client:
        ready = client.get("/ready")

    assert ready.status_code == 200, ready.text
    with Platform(config, clock=FixedClock()):  # the lock was released
        pass


def test_create_app_takes_a_platform_or_a_config(served_platform, served_home):
    with pytest.raises(ValueError, match="not both"):
        create_app(served_platform, config=served_home)
    with pytest.raises(ValueError, match="not both"):
        create_app()


# -- /metrics -----------------------------------------------------------------------------------


def test_metrics_count_and_time_requests_per_endpoint_model_version_and_status(client):
    ok = labels(endpoint="/inference", model=MODEL, status="200", version="1")
    bad = labels(endpoint="/inference", model="", status="422", version="")
    before = metric_samples(client)

    for n in range(3):
        client.post("/inference", json={"request_id": f"m{n}", "driver_ids": [1001, 1002]})
    client.post("/inference", json={"request_id": "m", "driver_ids": []})
    after = metric_samples(client)

    def grew(name: str, series: tuple[tuple[str, str], ...]) -> float:
        return after[(name, series)] - before.get((name, series), 0.0)

    assert grew("litemlops_requests_total", ok) == 3
    assert grew("litemlops_request_latency_seconds_count", ok) == 3
    assert grew("litemlops_requests_total", bad) == 1
    assert after[("litemlops_request_latency_seconds_sum", ok)] > 0
    buckets = {
        dict(series)["le"]: value
        for (name, series), value in after.items()
        if name == "litemlops_request_latency_seconds_bucket"
        and dict(series)["endpoint"] == "/inference"
        and dict(series)["status"] == "200"
    }
    assert buckets["+Inf"] == after[("litemlops_request_latency_seconds_count", ok)]
    assert "0.0005" in buckets and "10.0" in buckets


def test_metrics_show_the_scrape_itself_in_flight_and_the_pipeline_runs(client):
    samples = metric_samples(client)

    assert samples[("litemlops_requests_in_flight", ())] == 1
    assert samples[("litemlops_pipeline_runs", labels(pipeline="data", state="success"))] == 1
    runs = labels(pipeline="training", state="success")
    assert samples[("litemlops_pipeline_runs", runs)] == 1


def test_metrics_put_unknown_paths_in_one_series(client):
    for n in range(5):
        client.get(f"/no-such-page-{n}")

    samples = metric_samples(client)

    endpoints = [dict(series).get("endpoint", "") for _, series in samples]
    unmatched = [
        series
        for name, series in samples
        if name == "litemlops_requests_total" and dict(series)["endpoint"] == "unmatched"
    ]
    assert unmatched == [labels(endpoint="unmatched", model="", status="404", version="")]
    assert not any("no-such-page" in endpoint for endpoint in endpoints)


def test_scores_are_finite_probabilities(client):
    scores = client.post("/inference", json={"request_id": "p", "driver_ids": DRIVERS}).json()

    assert all(math.isfinite(s) and 0 <= s <= 1 for s in scores["scores"].values())
