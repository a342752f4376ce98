"""Models to bytes and back, the environment they were saved in, and a signature-checked wrapper.

Loading takes bytes, not a path: the caller reads and verifies the bytes once
(`ArtifactStore.read_verified`) and unpickles exactly those, so a file swapped
between the check and the load cannot slip through. Unpickling runs code, so
nothing unverified may reach `load_model_bytes`.
"""

from __future__ import annotations

import contextlib
import functools
import io
import platform
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any

from litemlops.store.tracking.signature import Signature, enforce

if TYPE_CHECKING:
    from litemlops.store.tracking.artifacts import ArtifactStore

# Distributions whose versions decide whether a pickled model loads and behaves the same.
TRACKED_DISTRIBUTIONS = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")


def dump_model(model: Any) -> bytes:
    """Pickle `model` with joblib, uncompressed (small models: speed beats size)."""
    import joblib

    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    return buffer.getvalue()


def load_model_bytes(data: bytes) -> Any:
    """Unpickle a model from bytes that were verified against their recorded sha256."""
    import joblib

    return joblib.load(io.BytesIO(data))


def environment() -> dict[str, str]:
    """Python's version and those of the installed libraries a model depends on."""
    return dict(_environment())


@functools.cache
def _environment() -> tuple[tuple[str, str], ...]:
    # Cached: reading package metadata scans sys.path (a few ms), and the
    # installed versions do not change under a running process.
    found = [("python", platform.python_version())]
    for name in TRACKED_DISTRIBUTIONS:
        with contextlib.suppress(importlib_metadata.PackageNotFoundError):
            found.append((name, importlib_metadata.version(name)))
    return tuple(found)


class LoadedModel:
    """A loaded model whose predictions go through its signature, when it has one.

    `model` is the raw object; `metadata` holds what the registry knows (name,
    version, run, sha256, ...).
    """

    def __init__(
        self,
        model: Any,
        signature: Signature | None = None,
        metadata: Mapping[str, Any] | None = None,
    ):
        self.model = model
        self.signature = signature
        self.metadata: dict[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        parts = [type(self.model).__name__]
        for key in ("name", "version", "alias"):
            if self.metadata.get(key) is not None:
                parts.append(f"{key}={self.metadata[key]!r}")
        return f"LoadedModel({', '.join(parts)})"

    def prepare(self, X: Any) -> Any:
        """`X` as the model expects it (see `signature.enforce`); unchanged without a signature."""
        return X if self.signature is None else enforce(self.signature, X)

    def predict(self, X: Any) -> Any:
        return self._call("predict", X)

    def predict_proba(self, X: Any) -> Any:
        return self._call("predict_proba", X)

    def decision_function(self, X: Any) -> Any:
        return self._call("decision_function", X)

    def _call(self, method: str, X: Any) -> Any:
        # Checked before enforcing, so a model without the method fails the same way for any X.
        function = getattr(self.model, method, None)
        if not callable(function):
            raise AttributeError(
                f"{self!r} cannot {method}: {type(self.model).__name__} has no {method}() method"
            )
        return function(self.prepare(X))


def load_verified_model(
    store: ArtifactStore,
    sha256: str,
    signature: Signature | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> LoadedModel:
    """Read the model stored under `sha256`, verify its bytes, and only then unpickle it.

    Raises `TamperedArtifactError` when the stored bytes changed and
    `ArtifactNotFoundError` when they are gone.
    """
    data = store.read_verified(sha256)
    meta = {"sha256": sha256, **(metadata or {})}
    return LoadedModel(load_model_bytes(data), signature, meta)
