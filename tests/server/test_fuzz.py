"""Whatever a client sends, the server answers with JSON and never with a 5xx: any
JSON value, bodies one mutation away from valid, raw bytes, and any path segment."""

from __future__ import annotations

import copy
import json
from typing import Any
from urllib.parse import quote

import pytest
from depth import examples
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.filterwarnings(
    "ignore:X does not have valid feature names",
    "ignore:overflow encountered:RuntimeWarning",
)

DRIVERS = [1001, 1002, 1003, 1004, 1005]
ROW = {
    "driver_id": 1001,
    "datetime": "2026-01-01T00:00:00Z",
    "created": "2026-01-01T00:00:00Z",
    "conv_rate": 0.5,
    "acc_rate": 0.5,
    "avg_daily_trips": 10,
}
#: Endpoint -> bodies it accepts; fuzzing starts from these.
VALID: dict[str, list[Any]] = {
    "/inference": [{"request_id": "f", "driver_ids": [1001, 1002]}],
    "/predict/driver_ranker": [
        {"request_id": "f", "entities": [{"driver_id": 1001}]},
        {"features": [{"conv_rate": 0.5, "acc_rate": 0.5, "avg_daily_trips": 3}]},
    ],
    "/push/driver_stats": [{"rows": [ROW], "to": "online"}],
    "/feedback": [{"request_id": "f", "label": 1}],
}
ENDPOINTS = sorted(VALID)
FUZZ = settings(
    max_examples=examples(120),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.sampled_from(DRIVERS)
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
    | st.sampled_from(["2026-01-01T00:00:00Z", "online", "both", "driver_ranker", ""])
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=16,
)


def places(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `value`, the whole body included."""
    found = [at]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*at, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*at, index))
    return found


@st.composite
def near_valid(draw: st.DrawFn, valid: Any) -> Any:
    """`valid` with one thing changed: a value replaced, a field or element removed,
    an element repeated, or a field added."""
    body = copy.deepcopy(valid)
    where = draw(st.sampled_from(places(body)))
    how = draw(st.sampled_from(["replace", "remove", "repeat", "add"]))
    if not where:
        return draw(json_values) if how == "replace" else body
    parent = body
    for step in where[:-1]:
        parent = parent[step]
    last = where[-1]
    if how == "replace":
        parent[last] = draw(json_values)
    elif how == "remove":
        del parent[last]
    elif how == "repeat" and isinstance(parent, list):
        parent.extend([parent[last]] * draw(st.integers(1, 1200)))
    elif isinstance(parent[last], dict):
        parent[last][draw(st.text(max_size=10))] = draw(json_values)
    return body


def check(response: Any, error_of: Any) -> None:
    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        error_of(response)
    else:
        response.json()


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=json_values)
def test_any_json_value_gets_an_answer_not_a_5xx(client, auth, error_of, endpoint, body):
    check(client.post(endpoint, json=body, headers=auth), error_of)


@FUZZ
@given(data=st.data(), endpoint=st.sampled_from(ENDPOINTS))
def test_a_body_one_change_from_valid_gets_an_answer_not_a_5xx(
    client, auth, error_of, data, endpoint
):
    valid = data.draw(st.sampled_from(VALID[endpoint]))
    body = data.draw(near_valid(valid))

    check(client.post(endpoint, json=body, headers=auth), error_of)


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), raw=st.binary(max_size=80))
def test_any_bytes_get_an_answer_not_a_5xx(client, auth, error_of, endpoint, raw):
    headers = {**auth, "content-type": "application/json"}
    check(client.post(endpoint, content=raw, headers=headers), error_of)


@FUZZ
@given(
    data=st.data(),
    endpoint=st.sampled_from(ENDPOINTS),
    constant=st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "-1e999"]),
)
def test_non_finite_numbers_anywhere_are_refused(client, auth, error_of, data, endpoint, constant):
    valid = data.draw(st.sampled_from(VALID[endpoint]))
    where = data.draw(st.sampled_from([p for p in places(valid) if p]))
    marker = "\u2603marker\u2603"
    body = copy.deepcopy(valid)
    parent = body
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = marker
    text = json.dumps(body).replace(json.dumps(marker), constant)

    headers = {**auth, "content-type": "application/json"}
    response = client.post(endpoint, content=text.encode(), headers=headers)

    assert 400 <= response.status_code < 500, (text, response.text)
    error_of(response)


segments = st.text(st.characters(codec="utf-8"), max_size=40)


@FUZZ
@given(segment=segments, keep_slashes=st.booleans())
def test_any_model_in_the_predict_path_gets_an_answer_not_a_5xx(
    client, error_of, segment, keep_slashes
):
    path = "/predict/" + quote(segment, safe="/@:" if keep_slashes else "")

    response = client.post(path, json={"entities": [{"driver_id": 1001}]})

    check(response, error_of)


@FUZZ
@given(segment=segments)
def test_any_view_in_the_push_path_gets_an_answer_not_a_5xx(client, auth, error_of, segment):
    response = client.post("/push/" + quote(segment, safe=""), json={"rows": [ROW]}, headers=auth)

    check(response, error_of)


@pytest.mark.parametrize(
    ("column", "value"),
    [("driver_id", [2**63]), ("conv_rate", {"a": 2**64}), ("datetime", [[2**63]])],
    ids=["key in a list", "feature in an object", "timestamp in nested lists"],
)
def test_a_pushed_value_holding_a_huge_integer_gets_a_4xx(client, auth, column, value):
    # Found by the tests above: pyarrow's OverflowError once escaped as a 500.
    from starlette.testclient import TestClient

    answering = TestClient(client.app, raise_server_exceptions=False)  # the same running app

    response = answering.post(
        "/push/driver_stats", json={"rows": [{**ROW, column: value}]}, headers=auth
    )

    assert response.status_code == 422, response.text
