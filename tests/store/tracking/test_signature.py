import json
import re

import numpy as np
import pandas as pd
import pytest

from litemlops.errors import SignatureError, ValidationError
from litemlops.store.tracking.signature import ColSpec, Signature, enforce, infer_signature

DRIVER_SIGNATURE = Signature(
    (
        ColSpec("conv_rate", "float64"),
        ColSpec("acc_rate", "float64"),
        ColSpec("avg_daily_trips", "int64"),
    )
)


def driver_frame(**overrides):
    columns = {
        "conv_rate": [0.1, 0.5, 0.9],
        "acc_rate": [0.7, 0.2, 0.4],
        "avg_daily_trips": [10, 250, 31],
    }
    columns.update(overrides)
    return pd.DataFrame(columns)


def test_infer_signature_keeps_dataframe_column_order_and_normalises_dtypes():
    frame = pd.DataFrame(
        {
            "z_int": np.array([1, 2], dtype="int32"),
            "a_float": np.array([0.5, 1.5], dtype="float32"),
            "unsigned": np.array([1, 2], dtype="uint8"),
            "flag": [True, False],
            "text": pd.Series(["x", "y"], dtype=object),
            "text_dtype": pd.Series(["x", "y"], dtype="string"),
            "when": pd.to_datetime(["2024-01-01", "2024-01-02"]),
            "when_utc": pd.to_datetime(["2024-01-01", "2024-01-02"], utc=True),
            "kind": pd.Categorical(["p", "q"]),
            "nullable": pd.array([1, None], dtype="Int64"),
        }
    )

    signature = infer_signature(frame)

    assert [(c.name, c.dtype) for c in signature.inputs] == [
        ("z_int", "int32"),
        ("a_float", "float32"),
        ("unsigned", "uint8"),
        ("flag", "bool"),
        ("text", "string"),
        ("text_dtype", "string"),
        ("when", "datetime"),
        ("when_utc", "datetime"),
        ("kind", "category"),
        ("nullable", "int64"),
    ]
    assert signature.outputs == ()


def test_infer_signature_names_numpy_columns_by_position():
    signature = infer_signature(np.zeros((4, 3), dtype="float32"))

    assert signature.input_names == ("0", "1", "2")
    assert {c.dtype for c in signature.inputs} == {"float32"}


def test_infer_signature_reads_a_list_of_dicts_as_a_table():
    rows = [{"driver_id": 1, "conv_rate": 0.5}, {"driver_id": 2, "conv_rate": 0.1}]

    signature = infer_signature(rows)

    assert signature.inputs == (ColSpec("driver_id", "int64"), ColSpec("conv_rate", "float64"))


@pytest.mark.parametrize(
    "y, expected",
    [
        (pd.Series([0, 1], name="trip_completed"), (ColSpec("trip_completed", "int64"),)),
        (pd.Series([0.5, 1.0]), (ColSpec("prediction", "float64"),)),
        (np.array([True, False]), (ColSpec("prediction", "bool"),)),
        (np.zeros((2, 2), dtype="float32"), (ColSpec("0", "float32"), ColSpec("1", "float32"))),
        (None, ()),
    ],
)
def test_infer_signature_describes_outputs(y, expected):
    assert infer_signature(driver_frame().head(2), y).outputs == expected


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([1.0, 2.0]), "from an array of shape (2,); give a 2-D array"),
        (np.zeros((2, 2, 2)), "from an array of shape (2, 2, 2); give a 2-D array"),
        (np.zeros((3, 0)), "from an array of shape (3, 0); give a 2-D array"),
        (3.5, "cannot infer a signature from float;"),
        ("conv_rate", "cannot infer a signature from str;"),
        (pd.DataFrame(index=[0, 1]), "cannot infer a signature from a table without columns"),
        ([1, 2, 3], "a list of rows must hold dicts"),
        (pd.Series([1, 2]), "cannot infer a signature from Series;"),
    ],
    ids=["1-D", "3-D", "no-column-array", "scalar", "string", "no-column-frame", "list", "series"],
)
def test_infer_signature_refuses_what_is_not_a_table(X, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        infer_signature(X)


def test_signature_round_trips_through_json():
    signature = Signature(DRIVER_SIGNATURE.inputs, (ColSpec("trip_completed", "int64"),))

    restored = Signature.from_dict(json.loads(json.dumps(signature.to_dict())))

    assert restored == signature
    assert restored.input_names == ("conv_rate", "acc_rate", "avg_daily_trips")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, r"not a signature: .*KeyError\('inputs'\)"),
        ({"inputs": [{"name": "a"}]}, r"not a signature: .*KeyError\('dtype'\)"),
        ({"inputs": "ab"}, r"not a signature: .*TypeError\(.*string indices"),
        ({"inputs": [{"name": "", "dtype": "int64"}]}, "column name must be a non-empty string"),
    ],
)
def test_malformed_signature_dicts_are_refused(data, message):
    with pytest.raises(ValidationError, match=message):
        Signature.from_dict(data)


def test_signature_refuses_repeated_names_and_no_inputs():
    with pytest.raises(ValidationError, match="'a'"):
        Signature((ColSpec("a", "int64"), ColSpec("a", "float64")))
    with pytest.raises(ValidationError, match="at least one input"):
        Signature(())


def test_signature_accepts_lists_and_stores_tuples():
    signature = Signature([ColSpec("a", "int64")])  # type: ignore[arg-type]

    assert signature.inputs == (ColSpec("a", "int64"),)
    assert hash(signature) == hash(Signature((ColSpec("a", "int64"),)))


def test_enforce_reorders_columns_and_drops_extra_ones():
    given = driver_frame()[["avg_daily_trips", "acc_rate", "conv_rate"]].assign(driver_id=[1, 2, 3])

    result = enforce(DRIVER_SIGNATURE, given)

    assert list(result.columns) == ["conv_rate", "acc_rate", "avg_daily_trips"]
    pd.testing.assert_frame_equal(result, driver_frame())


def test_enforce_returns_a_matching_frame_unchanged():
    frame = driver_frame()

    assert enforce(DRIVER_SIGNATURE, frame) is frame


def test_enforce_lists_every_missing_column_and_the_expected_order():
    with pytest.raises(
        SignatureError, match=r"missing column\(s\) \['conv_rate', 'avg_daily_trips'\]"
    ) as caught:
        enforce(DRIVER_SIGNATURE, driver_frame().drop(columns=["conv_rate", "avg_daily_trips"]))

    message = str(caught.value)
    assert "['conv_rate', 'avg_daily_trips']" in message
    assert "['conv_rate', 'acc_rate', 'avg_daily_trips'] in this order" in message


def test_enforce_casts_ints_to_float_and_whole_floats_to_int_without_touching_the_input():
    given = driver_frame(conv_rate=[0, 1, 1], avg_daily_trips=[10.0, 250.0, 31.0])

    result = enforce(DRIVER_SIGNATURE, given)

    assert result["conv_rate"].dtype == np.float64
    assert result["avg_daily_trips"].dtype == np.int64
    assert result["avg_daily_trips"].tolist() == [10, 250, 31]
    assert given["avg_daily_trips"].dtype == np.float64  # the caller's frame is left alone


def test_enforce_casts_between_integer_widths_when_values_fit():
    signature = Signature((ColSpec("n", "int8"),))

    assert enforce(signature, pd.DataFrame({"n": [1, -128, 127]}))["n"].dtype == np.int8
    with pytest.raises(SignatureError, match="'n' is int64 and the model expects int8"):
        enforce(signature, pd.DataFrame({"n": [1, 128]}))


@pytest.mark.parametrize(
    "trips, message",
    [
        ([10.5, 250.0, 31.0], "is float64 and the model expects int64"),
        ([np.nan, 250.0, 31.0], "has missing values and the model expects int64"),
        ([np.inf, 250.0, 31.0], "is float64 and the model expects int64"),
        ([1e30, 250.0, 31.0], "is float64 and the model expects int64"),
        (["10", "250", "31"], "is string and the model expects int64"),
        ([True, False, True], "is bool and the model expects int64"),
        (pd.to_datetime(["2024-01-01"] * 3), "is datetime and the model expects int64"),
    ],
    ids=["fraction", "nan", "inf", "overflow", "text", "bool", "datetime"],
)
def test_enforce_refuses_casts_that_would_change_values_naming_the_column(trips, message):
    with pytest.raises(SignatureError, match=f"column 'avg_daily_trips' {message}"):
        enforce(DRIVER_SIGNATURE, driver_frame(avg_daily_trips=trips))


def test_enforce_refuses_an_int_too_large_for_an_exact_float():
    signature = Signature((ColSpec("id", "float64"),))

    with pytest.raises(SignatureError, match="'id'"):
        enforce(signature, pd.DataFrame({"id": [2**53 + 1]}))


def test_enforce_refuses_a_text_column_where_numbers_are_expected():
    with pytest.raises(SignatureError, match="'conv_rate' is string and the model expects float64"):
        enforce(DRIVER_SIGNATURE, driver_frame(conv_rate=["a", "b", "c"]))


def test_enforce_turns_records_and_column_dicts_into_ordered_frames():
    records = [{"avg_daily_trips": 3, "acc_rate": 0.5, "conv_rate": 0.25}]
    columns = {"avg_daily_trips": [3], "conv_rate": [0.25], "acc_rate": [0.5]}

    for given in (records, columns):
        result = enforce(DRIVER_SIGNATURE, given)
        assert list(result.columns) == list(DRIVER_SIGNATURE.input_names)
        assert result.iloc[0].tolist() == [0.25, 0.5, 3]


def test_enforce_checks_the_column_count_of_a_numpy_array():
    with pytest.raises(SignatureError, match="2 column"):
        enforce(DRIVER_SIGNATURE, np.zeros((4, 2)))
    with pytest.raises(SignatureError, match="2-D"):
        enforce(DRIVER_SIGNATURE, np.zeros(3))


def test_enforce_passes_a_numpy_array_through_when_columns_are_positional():
    signature = infer_signature(np.zeros((2, 3)))
    array = np.ones((5, 3))

    assert enforce(signature, array) is array


def test_enforce_names_numpy_columns_when_the_signature_has_names():
    result = enforce(DRIVER_SIGNATURE, np.array([[0.1, 0.2, 7.0]]))

    assert list(result.columns) == list(DRIVER_SIGNATURE.input_names)
    assert result["avg_daily_trips"].tolist() == [7]


def test_enforce_matches_integer_column_labels_by_their_text():
    signature = infer_signature(pd.DataFrame(np.zeros((2, 2))))
    given = pd.DataFrame(np.ones((2, 3)))[[1, 0, 2]]

    result = enforce(signature, given)

    assert list(result.columns) == [0, 1]


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (3.0, "model input must be a DataFrame, .*; got float$"),
        ("conv_rate", "model input must be a DataFrame, .*; got str$"),
        (pd.Series([1.0]), "model input must be a DataFrame, .*; got Series$"),
        ([1, [2]], "model input rows are not a table"),
    ],
)
def test_enforce_refuses_inputs_that_are_not_tables(X, message):
    with pytest.raises(SignatureError, match=message):
        enforce(DRIVER_SIGNATURE, X)
