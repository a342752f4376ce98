import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from litemlops import ModelURI
from litemlops.errors import ValidationError

RUN_ID = "0123456789abcdef" * 2

names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}", fullmatch=True)
aliases = st.from_regex(r"[A-Za-z][A-Za-z0-9_\-]{0,63}", fullmatch=True).filter(
    lambda a: not re.fullmatch(r"latest|v\d+", a, re.IGNORECASE)
)
versions = st.integers(min_value=1, max_value=10**18 - 1)
run_ids = st.from_regex(r"[0-9a-f]{32}", fullmatch=True)
# What a run's model may be called: the tracker's key rule (any script, '/' inside).
logged_names = st.from_regex(r"[\w\-. /]{1,250}", fullmatch=True).filter(
    lambda n: ".." not in n and not n.startswith("/")
)
uris = st.one_of(
    st.builds(lambda n, a: ModelURI(n, alias=a), names, aliases),
    st.builds(lambda n, v: ModelURI(n, version=v), names, versions),
    st.builds(lambda n, r: ModelURI(n, run_id=r), logged_names, run_ids),
)


@given(uris)
def test_the_canonical_form_parses_back_to_the_same_uri(uri):
    assert ModelURI.parse(str(uri)) == uri


@given(uris)
def test_every_accepted_spelling_parses_to_the_canonical_value(uri):
    spellings = [str(uri)]
    if uri.by_alias:
        spellings += [f"models:/{uri.name}@{uri.alias}"]
    if uri.by_version:
        spellings += [f"models:/{uri.name}/{uri.version}"]
        if len(str(uri.version)) <= 16:  # a version is at most 18 digits, zeros included
            spellings += [f"{uri.name}/00{uri.version}"]
    for text in spellings:
        parsed = ModelURI.parse(text)
        assert parsed == uri and str(parsed) == str(uri), text


@given(names)
def test_a_bare_name_means_the_default_alias_only_when_one_is_given(name):
    assert ModelURI.parse(name, default_alias="champion") == ModelURI(name, alias="champion")
    with pytest.raises(ValidationError, match="cannot read model URI"):
        ModelURI.parse(name)


@given(uris)
def test_exactly_one_kind_of_uri(uri):
    kinds = (uri.by_alias, uri.by_version, uri.from_run)
    assert kinds.count(True) == 1
    assert (uri.alias is not None, uri.version is not None, uri.run_id is not None) == kinds


def test_the_parts_and_canonical_forms():
    by_alias = ModelURI.parse("models:/driver_ranker@champion")
    assert (by_alias.name, by_alias.alias, by_alias.version, by_alias.run_id) == (
        "driver_ranker",
        "champion",
        None,
        None,
    )
    assert str(by_alias) == "driver_ranker@champion"
    assert str(ModelURI.parse("models:/driver_ranker/3")) == "driver_ranker/3"
    from_run = ModelURI.parse(f"runs:/{RUN_ID}/sub/model")
    assert (from_run.name, from_run.run_id) == ("sub/model", RUN_ID)
    assert str(from_run) == f"runs:/{RUN_ID}/sub/model"
    assert by_alias.at_version(4) == ModelURI("driver_ranker", version=4)
    assert ModelURI.parse("driver_ranker/1") != ModelURI.parse("driver_ranker/2")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", r"model URI must be one of .*'name@alias'.*got ''"),
        ("   ", r"model URI must be one of .*got '   '"),
        (None, r"model URI must be one of .*got None"),
        ("m", r"cannot read model URI 'm': use 'name@alias', 'name/3'"),
        ("models:/m", r"cannot read model URI 'models:/m'"),
        ("s3://bucket/m", r"'s3://bucket/m' has an unknown scheme 's3': use 'name@alias'"),
        ("models:m@champion", r"unknown scheme 'models'"),
        ("bad name@champion", r"cannot read model URI 'bad name@champion': invalid model name"),
        ("-m/1", r"cannot read model URI '-m/1': invalid model name"),
        ("a/b/1", r"invalid model name 'a/b'"),
        ("/1", r"invalid model name ''"),
        ("m@", r"invalid alias ''"),
        ("m@latest", r"'m@latest': invalid alias 'latest'.*reserved"),
        ("m@V2", r"invalid alias 'V2'.*reserved"),
        ("m@a@b", r"invalid alias 'a@b'"),
        ("m/one", r"model version in 'm/one' must be a number from 1, got 'one'; use"),
        ("m/0", r"model version in 'm/0' must be a number from 1, got '0'"),
        ("m/-1", r"must be a number from 1, got '-1'"),
        ("m/", r"must be a number from 1, got ''"),
        ("m/99999999999999999999999", r"must be a number from 1"),
        ("m/²", r"must be a number from 1, got '²'"),
        ("runs:/zz/model", r"'runs:/zz/model' is not 'runs:/<run_id>/<model name>'"),
        (f"runs:/{RUN_ID.upper()}/model", r"is not 'runs:/<run_id>/<model name>'"),
        (f"runs:/{RUN_ID}0/model", r"is not 'runs:/<run_id>/<model name>'"),
        (f"runs:/{RUN_ID}", r"is not 'runs:/<run_id>/<model name>'"),
        (f"runs:/{RUN_ID}/", r"is not 'runs:/<run_id>/<model name>': invalid logged model"),
        (f"runs:/{RUN_ID}/../model", r"is not 'runs:/<run_id>/<model name>': invalid"),
    ],
)
def test_bad_uris_are_refused_naming_the_text_and_the_accepted_forms(text, message):
    with pytest.raises(ValidationError, match=message):
        ModelURI.parse(text)


def test_a_bare_name_is_refused_with_the_default_alias_form_named():
    with pytest.raises(ValidationError, match=r"'name' \(name@champion\)"):
        ModelURI.parse("", default_alias="champion")
    with pytest.raises(ValidationError, match="cannot read model URI 'models:/m'"):
        ModelURI.parse("models:/m", default_alias="champion")


@pytest.mark.parametrize(
    ("parts", "message"),
    [
        ({"name": "m"}, "exactly one of"),
        ({"name": "m", "alias": "champion", "version": 1}, "exactly one of"),
        ({"name": "m", "version": 0}, "must be a number from 1"),
        ({"name": "m", "version": True}, "must be a number from 1"),
        ({"name": "m", "version": 2**63}, "must be a number from 1"),
        ({"name": "m", "run_id": "xyz"}, "not 32 hex characters"),
        ({"name": "no good", "alias": "champion"}, "invalid model name"),
    ],
)
def test_a_uri_built_from_parts_checks_them(parts, message):
    with pytest.raises(ValidationError, match=message):
        ModelURI(**parts)


def test_a_run_uri_has_no_other_version():
    with pytest.raises(ValidationError, match="logged in a run"):
        ModelURI("model", run_id=RUN_ID).at_version(1)


def test_the_value_is_frozen_and_hashable():
    uri = ModelURI.parse("m@champion")
    assert {uri: 1}[ModelURI.parse("models:/m@champion")] == 1
    with pytest.raises(AttributeError, match="cannot assign to field 'name'"):
        uri.name = "other"  # type: ignore[misc]
