"""The models a service answers with, kept loaded, following their aliases live.

`name@alias` is resolved again at most every `refresh_seconds`. When the alias
names another version, that version is loaded and warmed on a thread of its
own while the old one keeps answering; only then is it swapped in, so no
request waits for a load or sees a half-loaded model. `refresh(uri)` does the
same at once (the admin API calls it after moving an alias).
"""

from __future__ import annotations

import contextlib
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import structlog

from litemlops import events
from litemlops.errors import LitemlopsError, ValidationError
from litemlops.logger import get_logger
from litemlops.serving.lineage import feature_refs
from litemlops.serving.scoring import (
    ROW_CELLS,
    RowScorer,
    Scorer,
    fast_scorer,
    model_scorer,
    row_scorer,
    verification_rows,
    verified_row_scorer,
    verified_scorer,
)
from litemlops.store.tracking.model_uri import DEFAULT_ALIAS, ModelURI

if TYPE_CHECKING:
    import numpy as np

    from litemlops.config import Config
    from litemlops.store.tracking.model_io import LoadedModel
    from litemlops.store.tracking.registry import ModelRegistry, ModelVersion

log = get_logger("litemlops.serving")

# The server hands models a float array in their signature's column order, so the
# names scikit-learn checks are already right; its warning would only cost time.
warnings.filterwarnings("ignore", message="X does not have valid feature names")


@dataclass(frozen=True)
class ServingModel:
    """One loaded version: what it needs as input and how to score rows fast."""

    uri: str
    name: str | None
    version: int | None
    #: The model object; None when it was loaded in a worker process and only its
    #: numpy scorer came back (so this process never imports scikit-learn for it).
    loaded: LoadedModel | None
    inputs: tuple[str, ...]
    #: The feature references it was trained on (from its lineage), when known.
    feature_refs: tuple[str, ...] | None
    #: How rows are scored: "numpy" (`litemlops.serving.scoring`, verified equal to the
    #: model's own method at load) or "model" (the model's own method).
    scorer: str = "model"
    score_rows: Scorer | None = field(default=None, repr=False, compare=False)
    #: The numpy scorer's arithmetic in plain Python, verified like it, when there is one.
    score_few: RowScorer | None = field(default=None, repr=False, compare=False)

    def scores(self, matrix: np.ndarray) -> np.ndarray:
        """One score per row of `matrix` (columns in `inputs` order): the positive
        class's probability for classifiers, else the prediction."""
        if self.score_rows is not None:
            return self.score_rows(matrix)
        assert self.loaded is not None  # a model prepared elsewhere always has a scorer
        # The server only builds finite float matrices (JSON has no NaN, the store
        # none past ttl), so scikit-learn's own finiteness scan is skipped.
        return model_scorer(self.loaded.model)(matrix)

    def score_list(self, rows: Sequence[Sequence[Any]]) -> list[float]:
        """`scores` of rows of values in `inputs` order, as floats: in plain Python for a
        request's few rows when that was verified at load, else through numpy."""
        few = self.score_few
        if few is not None and len(rows) * len(self.inputs) <= ROW_CELLS:
            return few(rows)
        return self.scores(matrix(rows)).tolist()

    def feature_dicts(self, rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
        """Rows of values in `inputs` order as {input: value} dicts (what events carry)."""
        inputs = self.inputs
        # Rows come in `inputs` order, one value each: zip's length check costs more
        # than building the dict, on every answered request.
        return [dict(zip(inputs, row)) for row in rows]  # noqa: B905


@dataclass
class _Entry:
    uri: ModelURI
    model: ServingModel
    checked: float
    loading: bool = False
    #: Guards `loading`; a refresh waits on it for a swap already under way.
    changed: threading.Condition = field(default_factory=threading.Condition)


def model_uri(uri: str | ModelURI) -> ModelURI:
    """`name` alone means `name@champion`; other URIs are the registry's."""
    if isinstance(uri, ModelURI):
        return uri
    return ModelURI.parse(uri, default_alias=DEFAULT_ALIAS)


class ModelCache:
    """Loaded models by URI, thread-safe; aliases followed as described above."""

    def __init__(
        self,
        registry: ModelRegistry,
        *,
        refresh_seconds: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        prepare: Callable[[str], ServingModel | None] | None = None,
    ):
        self.registry = registry
        #: Loads a version elsewhere (`prepare_model` in a worker process) and gives it
        #: back without its model object when it scores with numpy; None: load here.
        self.prepare = prepare
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._entries: dict[ModelURI, _Entry] = {}
        #: Each spelling asked for (`m`, `m@champion`, `models:/m@champion`...) to its
        #: entry, so a request finds its model without parsing the URI again.
        self._spelled: dict[str | ModelURI, _Entry] = {}
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def get(self, uri: str | ModelURI) -> ServingModel:
        """The version `uri` names now (loaded on first use; then followed)."""
        entry = self._spelled.get(uri)
        if entry is None:
            return self._first_load(uri)
        if entry.uri.alias is not None and self.clock() - entry.checked >= self.refresh_seconds:
            self._check(entry, background=True)
        return entry.model

    def loaded(self) -> list[ServingModel]:
        return [e.model for e in self._entries.values()]

    def refresh(self, uri: str | ModelURI | None = None) -> None:
        """Resolve aliases now and swap in what they name (loaded before the swap)."""
        targets = [model_uri(uri)] if uri is not None else list(self._entries)
        for target in targets:
            entry = self._entries.get(target)
            if entry is None or entry.uri.alias is None:
                continue
            self._check(entry, background=False)

    def close(self, timeout: float = 10.0) -> None:
        for thread in list(self._threads):
            thread.join(timeout)

    # -- internals ----------------------------------------------------------------------

    def _first_load(self, spelled: str | ModelURI) -> ServingModel:
        uri = model_uri(spelled)
        with self._lock:
            entry = self._entries.get(uri)
            if entry is None:
                entry = _Entry(uri=uri, model=self._load(uri), checked=self.clock())
                self._entries[uri] = entry
            self._spelled[spelled] = entry
            return entry.model

    def _check(self, entry: _Entry, *, background: bool) -> None:
        """Move `entry` to what its alias names now; loads happen outside the entry's lock."""
        with entry.changed:
            while entry.loading:
                if background:
                    return  # a swap is under way; requests keep the current model
                entry.changed.wait()  # a refresh ends on what the alias names now
            entry.checked = self.clock()
            uri = entry.uri
            assert uri.alias is not None  # only entries that follow an alias are checked
            try:
                version = self.registry.get_alias(uri.name, uri.alias).version
            except LitemlopsError as exc:
                # The alias was deleted: keep serving what we have, and say so.
                log.warning(
                    events.MODEL_SWAPPED,
                    uri=str(uri),
                    from_version=entry.model.version,
                    to_version=None,
                    error=str(exc),
                )
                return
            if version == entry.model.version:
                return
            entry.loading = True
        if background:
            thread = threading.Thread(
                target=self._swap, args=(entry, version), name="model-swap", daemon=True
            )
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            thread.start()
        else:
            self._swap(entry, version)

    def _swap(self, entry: _Entry, version: int) -> None:
        uri = entry.uri
        try:
            model = self._load(uri.at_version(version), served_as=uri)
            old = entry.model.version
            entry.model = model  # one reference assignment: readers see old or new
            log.info(events.MODEL_SWAPPED, uri=str(uri), from_version=old, to_version=version)
        except Exception as exc:
            log.error(
                events.MODEL_SWAPPED,
                uri=str(uri),
                from_version=entry.model.version,
                to_version=version,
                error=f"{type(exc).__name__}: {exc}",
            )
        finally:
            with entry.changed:
                entry.loading = False
                entry.changed.notify_all()

    def _load(self, uri: ModelURI, served_as: ModelURI | None = None) -> ServingModel:
        start = time.perf_counter()
        prepared = self.prepare(str(uri)) if self.prepare is not None else None
        model = (
            replace(prepared, uri=str(served_as or uri))
            if prepared is not None
            else build_model(self.registry, uri, served_as)
        )
        _warm(model)
        with structlog.contextvars.bound_contextvars(model=model.name, version=model.version):
            log.info(
                events.MODEL_LOADED,
                uri=model.uri,
                load_ms=round((time.perf_counter() - start) * 1e3, 3),
                scorer=model.scorer,
                loaded_in="worker" if prepared is not None else "server",
            )
        return model


def prepare_model(config: Config, uri: str) -> ServingModel | None:
    """In a worker process: load `uri` as the server would and give back what serves it
    without scikit-learn (its numpy scorer, verified equal to the model's own scores);
    None when the model has no such scorer, so the server loads it itself."""
    from litemlops.store.tracking.registry import ModelRegistry
    from litemlops.store.tracking.tracker import Tracker

    with Tracker(config.registry_path, artifacts=config.artifacts_dir) as tracker:
        model = build_model(ModelRegistry(tracker), uri, None)
    if model.scorer != "numpy":
        return None
    return replace(model, loaded=None)


def build_model(
    registry: ModelRegistry, uri: str | ModelURI, served_as: ModelURI | None
) -> ServingModel:
    """The version `uri` names, loaded, checked and given its scorer."""
    ref = uri if isinstance(uri, ModelURI) else ModelURI.parse(uri)
    loaded = registry.load_model(str(ref))
    meta = loaded.metadata
    signature = loaded.signature
    if signature is None:
        raise ValidationError(
            f"model {str(ref)!r} has no signature; the server needs its input names "
            "(log it with signature=infer_signature(X))"
        )
    version = _version(registry, meta)
    inputs = tuple(signature.input_names)
    score_rows, scorer, score_few = _scorer(registry, loaded.model, inputs, ref, version)
    return ServingModel(
        uri=str(served_as or ref),
        name=meta.get("name"),
        version=meta.get("version"),
        loaded=loaded,
        inputs=inputs,
        feature_refs=_feature_refs(registry, ref, version),
        scorer=scorer,
        score_rows=score_rows,
        score_few=score_few,
    )


def _version(registry: ModelRegistry, meta: dict[str, Any]) -> ModelVersion | None:
    name, version = meta.get("name"), meta.get("version")
    if name is None or version is None:
        return None
    return registry.get_model_version(name, version)


def _feature_refs(
    registry: ModelRegistry, ref: ModelURI, version: ModelVersion | None
) -> tuple[str, ...] | None:
    if version is not None:
        return feature_refs(registry.tracker, version.run_id, version.lineage.get("params", {}))
    if ref.run_id is not None:
        return feature_refs(registry.tracker, ref.run_id)
    return None


def _scorer(
    registry: ModelRegistry,
    model: Any,
    inputs: tuple[str, ...],
    ref: ModelURI,
    version: ModelVersion | None,
) -> tuple[Scorer, str, RowScorer | None]:
    """The numpy scorer when it equals the model's own scores on the model's data (its
    input example and reference profile, when logged, and rows around them), else the
    model's own method; and its plain Python twin, when that is equal too. A boosted
    model keeps its own method, with a walk of its trees for few rows when equal."""
    from litemlops.serving.trees import boosted_rows

    fast = fast_scorer(model)
    few = boosted_rows(model) if fast is None else None
    if fast is None and few is None:
        return model_scorer(model), "model", None
    logged_as: tuple[str, str] | None
    if version is not None:
        logged_as = (version.run_id, version.model_name)
    elif ref.run_id is not None:
        logged_as = (ref.run_id, ref.name)
    else:
        logged_as = None
    own = _own_rows(registry, logged_as, inputs) if logged_as is not None else []
    rows = verification_rows(len(inputs), own)
    if fast is None:
        return model_scorer(model), "model", verified_row_scorer(model, few, rows)
    scorer, kind = verified_scorer(model, rows)
    if kind != "numpy":
        return scorer, kind, None
    return scorer, kind, verified_row_scorer(model, row_scorer(scorer), rows)


def _own_rows(
    registry: ModelRegistry, logged_as: tuple[str, str], inputs: tuple[str, ...]
) -> list[np.ndarray]:
    """Rows of what the model was trained on: its input example, and rows drawn from the
    per-feature samples of its reference profile (each feature's sample shuffled)."""
    import json

    import numpy as np

    from litemlops.monitoring.pipeline import PROFILE_ARTIFACT
    from litemlops.monitoring.profile import Profile

    run_id, name = logged_as
    blocks: list[np.ndarray] = []
    with contextlib.suppress(LitemlopsError, LookupError, TypeError, ValueError):
        example = registry.tracker.logged_model(run_id, name).input_example
        rows = [[r[n] for n in inputs] if isinstance(r, dict) else r for r in example or []]
        blocks.append(np.asarray(rows, dtype="float64").reshape(-1, len(inputs)))
    with contextlib.suppress(LitemlopsError, LookupError, TypeError, ValueError):
        data = json.loads(registry.tracker.read_artifact(run_id, PROFILE_ARTIFACT))
        samples = [Profile.from_dict(data).features[n].sample for n in inputs]
        size = min(min(len(s) for s in samples), 256)
        rng = np.random.default_rng(0)
        blocks.append(np.column_stack([rng.permutation(s)[:size] for s in samples]))
    return blocks


def _warm(model: ServingModel) -> None:
    """Score one row so lazy set-up (imports, caches) happens before the first request."""
    import numpy as np

    model.scores(np.zeros((1, len(model.inputs)), dtype="float64"))
    model.score_list([[0.0] * len(model.inputs)])


def matrix(rows: Sequence[Sequence[float]]) -> np.ndarray:
    import numpy as np

    return np.asarray(rows, dtype="float64")
