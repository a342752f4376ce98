"""Model signatures: the ordered input columns (and outputs) a model was trained on.

A signature is recorded when a model is logged and enforced before every
prediction: columns are put in the trained order (a model fed columns in
another order predicts garbage without a word), missing columns are refused,
extra ones dropped, and numbers are cast only when no value changes.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from litemlops.errors import SignatureError, ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

INTEGER_DTYPES = frozenset(
    ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64"]
)
FLOAT_DTYPES = frozenset(["float16", "float32", "float64"])
DTYPES = INTEGER_DTYPES | FLOAT_DTYPES | {"bool", "string", "datetime", "category"}


@dataclass(frozen=True)
class ColSpec:
    """One column: its name and normalised dtype (see `DTYPES`; others keep numpy's name)."""

    name: str
    dtype: str

    def __post_init__(self) -> None:
        for field, value in (("name", self.name), ("dtype", self.dtype)):
            if not isinstance(value, str) or not value:
                raise ValidationError(f"column {field} must be a non-empty string, got {value!r}")


@dataclass(frozen=True)
class Signature:
    """Ordered input columns, and the outputs when known."""

    inputs: tuple[ColSpec, ...]
    outputs: tuple[ColSpec, ...] = ()

    def __post_init__(self) -> None:
        # Lists are accepted and frozen to tuples, so a signature stays hashable and immutable.
        for field in ("inputs", "outputs"):
            specs = tuple(getattr(self, field))
            if not all(isinstance(s, ColSpec) for s in specs):
                raise ValidationError(f"signature {field} must be ColSpec objects")
            counts = Counter(s.name for s in specs)
            repeated = sorted(n for n, k in counts.items() if k > 1)
            if repeated:
                raise ValidationError(f"signature {field} repeat column(s) {repeated}")
            object.__setattr__(self, field, specs)
        if not self.inputs:
            raise ValidationError("a signature needs at least one input column")

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs)

    def to_dict(self) -> dict[str, list[dict[str, str]]]:
        """A JSON-safe form; `from_dict` reads it back."""
        return {
            "inputs": [{"name": s.name, "dtype": s.dtype} for s in self.inputs],
            "outputs": [{"name": s.name, "dtype": s.dtype} for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        try:
            return cls(
                inputs=tuple(ColSpec(c["name"], c["dtype"]) for c in data["inputs"]),
                outputs=tuple(ColSpec(c["name"], c["dtype"]) for c in data.get("outputs", ())),
            )
        except (KeyError, TypeError) as exc:
            raise ValidationError(f"not a signature: {data!r} ({exc!r})") from exc


def dtype_name(dtype: Any) -> str:
    """The normalised name of a numpy or pandas dtype ("int64", "string", "datetime", ...)."""
    import numpy as np
    import pandas as pd

    if isinstance(dtype, pd.CategoricalDtype):
        return "category"
    if isinstance(dtype, pd.StringDtype) or dtype == np.dtype(object):
        return "string"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return "datetime"
    if isinstance(dtype, pd.api.extensions.ExtensionDtype):
        # Nullable Int64, Float32, boolean: named after the numpy type they hold.
        numpy_dtype = getattr(dtype, "numpy_dtype", None)
        return dtype_name(numpy_dtype) if numpy_dtype is not None else str(dtype)
    dtype = np.dtype(dtype)
    if dtype.kind == "b":
        return "bool"
    if dtype.kind in "iuf":
        return dtype.name
    if dtype.kind in "SU":
        return "string"
    if dtype.kind == "M":
        return "datetime"
    return dtype.name


def infer_signature(X: Any, y: Any = None) -> Signature:
    """The signature of training data.

    X: a DataFrame, a 2-D numpy array (columns named "0", "1", ...), or a list of
    dicts. y: a Series, a 1-D or 2-D array, a DataFrame, or None.
    """
    import numpy as np
    import pandas as pd

    if isinstance(X, list | tuple | Mapping):
        X = _frame_from_records(X, ValidationError)
    if isinstance(X, pd.DataFrame):
        if X.shape[1] == 0:
            raise ValidationError("cannot infer a signature from a table without columns")
        inputs = _frame_specs(X)
    elif isinstance(X, np.ndarray):
        if X.ndim != 2 or X.shape[1] == 0:
            raise ValidationError(
                f"cannot infer a signature from an array of shape {X.shape}; "
                "give a 2-D array (rows x columns) or a DataFrame"
            )
        inputs = _array_specs(X)
    else:
        raise ValidationError(
            f"cannot infer a signature from {type(X).__name__}; "
            "give a DataFrame, a 2-D numpy array or a list of dicts"
        )
    return Signature(inputs, _output_specs(y))


def _frame_specs(frame: pd.DataFrame) -> tuple[ColSpec, ...]:
    names = [str(c) for c in frame.columns]
    repeated = sorted(n for n, k in Counter(names).items() if k > 1)
    if repeated:
        raise ValidationError(f"table repeats column(s) {repeated}")
    return tuple(ColSpec(n, dtype_name(t)) for n, t in zip(names, frame.dtypes, strict=True))


def _array_specs(array: np.ndarray) -> tuple[ColSpec, ...]:
    name = dtype_name(array.dtype)
    return tuple(ColSpec(str(i), name) for i in range(array.shape[1]))


def _output_specs(y: Any) -> tuple[ColSpec, ...]:
    import numpy as np
    import pandas as pd

    if y is None:
        return ()
    if isinstance(y, pd.Series):
        name = "prediction" if y.name is None else str(y.name)
        return (ColSpec(name, dtype_name(y.dtype)),)
    if isinstance(y, pd.DataFrame):
        return _frame_specs(y)
    array = np.asarray(y)
    if array.ndim == 1:
        return (ColSpec("prediction", dtype_name(array.dtype)),)
    if array.ndim == 2:
        return _array_specs(array)
    raise ValidationError(f"cannot infer outputs from y of shape {array.shape}")


def enforce(signature: Signature, X: Any) -> Any:
    """Make `X` match `signature`, or raise `SignatureError` saying how it does not.

    A DataFrame (or a dict of lists, or a list of dicts) comes back with the
    signature's columns in its order, extra columns dropped and numbers cast
    where no value changes. A 2-D numpy array must have one column per input;
    when the signature has real column names it becomes a DataFrame with them,
    so a model fitted on a DataFrame sees the names it was fitted with.
    """
    import numpy as np
    import pandas as pd

    if isinstance(X, list | tuple) and not all(isinstance(r, Mapping) for r in X):
        try:
            X = np.asarray(X)  # rows of values, not records
        except ValueError as exc:  # ragged rows
            raise SignatureError(f"model input rows are not a table: {exc}") from exc
    if isinstance(X, list | tuple | Mapping):
        X = _frame_from_records(X, SignatureError)
    if isinstance(X, np.ndarray):
        return _enforce_array(signature, X)
    if isinstance(X, pd.DataFrame):
        return _enforce_frame(signature, X)
    raise SignatureError(
        "model input must be a DataFrame, a 2-D array, a dict of lists or a list of dicts; "
        f"got {type(X).__name__}"
    )


def _enforce_array(signature: Signature, array: np.ndarray) -> Any:
    import pandas as pd

    n = len(signature.inputs)
    if array.ndim != 2:
        raise SignatureError(
            f"model input array has shape {array.shape}; expected 2-D with {n} column(s)"
        )
    if array.shape[1] != n:
        raise SignatureError(
            f"model input array has {array.shape[1]} column(s); the model expects {n}: "
            f"{list(signature.input_names)}"
        )
    if signature.input_names == tuple(str(i) for i in range(n)):
        return array
    return _enforce_frame(signature, pd.DataFrame(array, columns=list(signature.input_names)))


def _enforce_frame(signature: Signature, frame: pd.DataFrame) -> pd.DataFrame:
    # Columns are matched by their text, so a frame with integer labels 0, 1 matches "0", "1";
    # the frame's own labels are kept because the model was fitted with them.
    by_name: dict[str, Any] = {}
    for label in frame.columns:
        if str(label) in by_name:
            raise SignatureError(f"model input repeats column {str(label)!r}")
        by_name[str(label)] = label
    expected = list(signature.input_names)
    missing = [n for n in expected if n not in by_name]
    if missing:
        raise SignatureError(
            f"model input is missing column(s) {missing}; the model expects {expected} "
            "in this order"
        )
    labels = [by_name[n] for n in expected]
    casts = {}
    for spec, label in zip(signature.inputs, labels, strict=True):
        column = frame[label]
        if dtype_name(column.dtype) != spec.dtype:
            casts[label] = _cast(column, spec)
    if not casts and list(frame.columns) == labels:
        return frame
    # Selecting columns by a list copies, and assigning whole columns to a shallow copy
    # replaces them there only: the caller's frame is never changed.
    frame = frame[labels].copy(deep=False)
    for label, values in casts.items():
        frame[label] = values
    return frame


def _cast(column: pd.Series, spec: ColSpec) -> pd.Series:
    """`column` as `spec.dtype` when every value survives the cast, else SignatureError."""
    import numpy as np
    import pandas as pd

    actual = dtype_name(column.dtype)
    numeric = INTEGER_DTYPES | FLOAT_DTYPES
    if actual not in numeric or spec.dtype not in numeric:
        raise SignatureError(
            f"column {spec.name!r} is {actual} and the model expects {spec.dtype}; "
            "convert it before predicting"
        )
    target = np.dtype(spec.dtype)
    if column.isna().any():
        if target.kind != "f":
            raise SignatureError(
                f"column {spec.name!r} has missing values and the model expects {spec.dtype}"
            )
        values = column.to_numpy(dtype="float64", na_value=np.nan)
    else:
        values = column.to_numpy(dtype=np.dtype(actual))
    if not _lossless(values, target):
        raise SignatureError(
            f"column {spec.name!r} is {actual} and the model expects {spec.dtype}; "
            "casting would change some values (fractions or out of range)"
        )
    return pd.Series(values.astype(target), index=column.index, name=column.name)


def _lossless(values: np.ndarray, target: np.dtype) -> bool:
    """Whether every value of a numeric array is exactly representable in `target`."""
    import numpy as np

    if target.kind in "iu":
        if values.dtype.kind == "f" and not np.isfinite(values).all():
            return False
        info = np.iinfo(target)
        if values.size and (values.min() < info.min or values.max() > info.max):
            return False
    with np.errstate(all="ignore"):
        back = values.astype(target).astype(values.dtype)
    same = back == values
    if values.dtype.kind == "f":
        same |= np.isnan(values)  # NaN never equals itself but survives float -> float
    return bool(same.all())


def _frame_from_records(data: Any, error: type[Exception]) -> pd.DataFrame:
    """A DataFrame from a dict of lists or a list of dicts."""
    import pandas as pd

    if isinstance(data, Sequence) and not all(isinstance(r, Mapping) for r in data):
        raise error("a list of rows must hold dicts (column name -> value)")
    try:
        return pd.DataFrame(list(data) if isinstance(data, Sequence) else dict(data))
    except (ValueError, TypeError) as exc:
        raise error(f"cannot build a table from the input: {exc}") from exc
