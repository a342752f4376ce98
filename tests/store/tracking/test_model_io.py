import json
import platform
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression

from litemlops.errors import ArtifactNotFoundError, SignatureError, TamperedArtifactError
from litemlops.store.tracking.artifacts import ArtifactStore
from litemlops.store.tracking.model_io import (
    LoadedModel,
    dump_model,
    environment,
    load_model_bytes,
    load_verified_model,
)
from litemlops.store.tracking.signature import Signature, infer_signature

FEATURES = ["conv_rate", "acc_rate", "avg_daily_trips"]


class UnpickleMarker:
    """A "model" whose unpickling leaves a file behind: proof of whether loading ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)
        self.padding = b"p" * 256  # a harmless place to change a byte

    def __setstate__(self, state):
        Path(state["marker"]).write_text("unpickled")
        self.__dict__.update(state)


@pytest.fixture(scope="module")
def training_frame():
    rng = np.random.default_rng(7)
    n = 200
    frame = pd.DataFrame(
        {
            "conv_rate": rng.random(n),
            "acc_rate": rng.random(n),
            "avg_daily_trips": rng.integers(0, 500, n),
        }
    )
    completed = (frame["conv_rate"] + frame["acc_rate"] > 1.0).astype(int)
    return frame, completed


@pytest.fixture(scope="module")
def fitted(training_frame):
    frame, completed = training_frame
    return LogisticRegression(random_state=0).fit(frame, completed)


@pytest.fixture(scope="module")
def loaded(fitted, training_frame):
    frame, completed = training_frame
    return LoadedModel(fitted, infer_signature(frame, completed), {"name": "driver", "version": 3})


def flip_one_byte(path, position):
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_dumped_model_loads_back_with_identical_predictions(fitted, training_frame):
    frame, _ = training_frame

    restored = load_model_bytes(dump_model(fitted))

    np.testing.assert_array_equal(restored.predict_proba(frame), fitted.predict_proba(frame))


def test_columns_in_another_order_give_the_same_predictions(loaded, fitted, training_frame):
    frame, _ = training_frame
    shuffled = frame[["avg_daily_trips", "conv_rate", "acc_rate"]]

    # The raw model refuses the shuffled frame; through the signature it is put back in order.
    with pytest.raises(ValueError, match="order"):
        fitted.predict(shuffled)

    np.testing.assert_array_equal(loaded.predict(shuffled), fitted.predict(frame))
    np.testing.assert_array_equal(loaded.predict_proba(shuffled), fitted.predict_proba(frame))
    np.testing.assert_array_equal(
        loaded.decision_function(shuffled), fitted.decision_function(frame)
    )


def test_missing_column_is_refused_naming_it(loaded, training_frame):
    frame, _ = training_frame

    with pytest.raises(SignatureError, match=r"missing column\(s\) \['acc_rate'\]"):
        loaded.predict(frame.drop(columns=["acc_rate"]))


def test_extra_columns_and_json_style_records_are_accepted(loaded, fitted, training_frame):
    frame, _ = training_frame
    records = [{"driver_id": i, **row} for i, row in enumerate(frame.head(5).to_dict("records"))]

    np.testing.assert_array_equal(loaded.predict(records), fitted.predict(frame.head(5)))


def test_numpy_rows_get_the_training_column_names(loaded, fitted, training_frame):
    frame, _ = training_frame

    with warnings.catch_warnings():
        # scikit-learn warns when a model fitted with feature names gets none
        warnings.simplefilter("error")
        predictions = loaded.predict(frame.to_numpy())

    np.testing.assert_array_equal(predictions, fitted.predict(frame))


def test_numpy_rows_with_the_wrong_column_count_are_refused(loaded, training_frame):
    frame, _ = training_frame

    with pytest.raises(SignatureError, match="2 column"):
        loaded.predict(frame.to_numpy()[:, :2])


def test_whole_float_counts_are_cast_and_fractional_ones_refused(loaded, fitted, training_frame):
    frame, _ = training_frame
    as_floats = frame.astype({"avg_daily_trips": "float64"})

    np.testing.assert_array_equal(loaded.predict(as_floats), fitted.predict(frame))
    with pytest.raises(SignatureError, match="'avg_daily_trips' is float64"):
        loaded.predict(as_floats.assign(avg_daily_trips=as_floats["avg_daily_trips"] + 0.5))


def test_model_without_a_signature_gets_its_input_unchanged(fitted, training_frame):
    frame, _ = training_frame

    model = LoadedModel(fitted)

    np.testing.assert_array_equal(model.predict(frame), fitted.predict(frame))
    assert model.signature is None
    assert model.metadata == {}


def test_missing_prediction_method_raises_attribute_error_naming_it(training_frame):
    frame, completed = training_frame
    regression = LinearRegression().fit(frame, completed)
    model = LoadedModel(regression, infer_signature(frame))

    with pytest.raises(AttributeError, match=r"LinearRegression has no predict_proba\(\)"):
        model.predict_proba(frame)


def test_repr_shows_model_class_name_and_version(loaded, fitted):
    assert repr(loaded) == "LoadedModel(LogisticRegression, name='driver', version=3)"
    assert repr(LoadedModel(fitted)) == "LoadedModel(LogisticRegression)"


def test_signature_stored_as_json_still_enforces_order(fitted, training_frame):
    frame, completed = training_frame
    stored = json.dumps(infer_signature(frame, completed).to_dict())

    model = LoadedModel(fitted, Signature.from_dict(json.loads(stored)))

    np.testing.assert_array_equal(model.predict(frame[FEATURES[::-1]]), fitted.predict(frame))


def test_load_verified_model_loads_a_stored_model_and_records_its_digest(
    tmp_path, fitted, training_frame
):
    frame, _ = training_frame
    store = ArtifactStore(tmp_path / "artifacts")
    digest, _ = store.put_bytes(dump_model(fitted))

    model = load_verified_model(store, digest, metadata={"name": "driver"})

    assert model.metadata == {"sha256": digest, "name": "driver"}
    np.testing.assert_array_equal(model.predict(frame), fitted.predict(frame))


def test_one_changed_byte_in_a_stored_model_refuses_to_load(tmp_path, fitted):
    store = ArtifactStore(tmp_path / "artifacts")
    digest, size = store.put_bytes(dump_model(fitted))
    flip_one_byte(store.path(digest), size // 2)

    with pytest.raises(TamperedArtifactError, match=digest):
        load_verified_model(store, digest)


def test_tampered_model_is_never_unpickled(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")
    marker = tmp_path / "unpickled.txt"
    data = dump_model(UnpickleMarker(marker))
    digest, _ = store.put_bytes(data)

    # Control: the untouched bytes do run the unpickling code.
    load_verified_model(store, digest)
    assert marker.exists()
    marker.unlink()

    flip_one_byte(store.path(digest), data.index(b"p" * 256) + 10)
    with pytest.raises(TamperedArtifactError, match=f"artifact {digest} changed since"):
        load_verified_model(store, digest)
    assert not marker.exists()


def test_missing_model_object_raises_not_found(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts")

    with pytest.raises(ArtifactNotFoundError, match=r"no artifact with sha256 (ab){32} in "):
        load_verified_model(store, "ab" * 32)


def test_environment_reports_python_and_installed_library_versions():
    env = environment()

    assert env["python"] == platform.python_version()
    for name in ("scikit-learn", "numpy", "pandas", "joblib"):
        assert env[name] == metadata.version(name)
    assert set(env) <= {"python", "scikit-learn", "numpy", "pandas", "joblib", "scipy"}


def test_environment_returns_a_fresh_dict_each_call():
    environment()["python"] = "changed"

    assert environment()["python"] == platform.python_version()
