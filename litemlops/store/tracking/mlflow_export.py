"""A registered version written as an MLflow model folder (sklearn flavour), which
MLflow's `pyfunc.load_model(folder)` and `mlflow.sklearn.load_model` load.

The registered bytes are loaded verified (sha256) and pickled again with the
standard `pickle` (MLflow's "pickle" serialization format: joblib's files hold
numpy arrays in their own records, which `pickle.load` cannot read). MLmodel is
YAML, written here by hand from a few known fields so litemlops needs no YAML
library; the signature, when the version has one, becomes MLflow's column schema.
"""

from __future__ import annotations

import json
import pickle
import platform
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from litemlops.clock import utc_now
from litemlops.errors import ValidationError

if TYPE_CHECKING:
    from litemlops.store.tracking.registry import ModelRegistry

#: litemlops' signature dtypes as MLflow's column types.
_TYPES = {
    "float64": "double", "float32": "float", "int64": "long", "int32": "integer",
    "bool": "boolean", "object": "string", "string": "string", "str": "string",
}  # fmt: skip
_PINNED = ("scikit-learn", "numpy", "scipy", "pandas")


def export_mlflow_model(registry: ModelRegistry, name: str, version: int, out: Path) -> Path:
    """Write `name`/`version` into the new (or empty) folder `out`; return `out`."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(f"{out} exists and is not an empty folder; give a new folder")
    found = registry.get_model_version(name, version)
    logged = registry.tracker.logged_model(found.run_id, found.model_name)
    loaded = registry.load_model(f"{name}/{version}")  # sha256 checked before unpickling
    env = logged.environment
    python = env.get("python") or platform.python_version()
    sklearn = env.get("scikit-learn", "")
    out.mkdir(parents=True, exist_ok=True)
    (out / "model.pkl").write_bytes(pickle.dumps(loaded.model, protocol=4))
    lines = [
        "artifact_path: model",
        "flavors:",
        "  python_function:",
        "    env:",
        "      virtualenv: python_env.yaml",
        "    loader_module: mlflow.sklearn",
        "    model_path: model.pkl",
        "    predict_fn: predict",
        f"    python_version: {python}",
        "  sklearn:",
        "    code: null",
        "    pickled_model: model.pkl",
        "    serialization_format: pickle",
        f"    sklearn_version: {sklearn or 'null'}",
        f"model_uuid: {uuid.uuid4().hex}",
        f"utc_time_created: '{utc_now().strftime('%Y-%m-%d %H:%M:%S.%f')}'",
        f"metadata:\n  litemlops_model: {json.dumps(f'{name}/{version}')}",
        f"  sha256: {found.sha256}",
    ]
    schema = _schema(logged.signature)
    if schema is not None:
        lines += [
            "signature:",
            f"  inputs: {json.dumps(schema)}",
            "  outputs: null",
            "  params: null",
        ]
    (out / "MLmodel").write_text("\n".join(lines) + "\n")
    requirements = [f"{lib}=={env[lib]}" for lib in _PINNED if env.get(lib)]
    (out / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    (out / "python_env.yaml").write_text(
        f"python: {python}\nbuild_dependencies:\n- pip\ndependencies:\n- -r requirements.txt\n"
    )
    return out


def _schema(signature: dict[str, object] | None) -> str | None:
    """MLflow's JSON text of the input columns, None when a dtype has no MLflow type."""
    if not signature:
        return None
    columns = []
    for spec in signature.get("inputs", []):  # type: ignore[attr-defined]
        kind = _TYPES.get(str(spec["dtype"]))
        if kind is None:
            return None
        columns.append({"type": kind, "name": spec["name"], "required": True})
    return json.dumps(columns) if columns else None
