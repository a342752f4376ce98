"""Model bundles: one registered version, self-described, to move between homes.

A bundle is a folder: `model.joblib` (the version's bytes, as registered) and
`manifest.json`, which names every other file with its sha256 and size and says
what the model is: its registered name and version where it came from, the
signature and library versions it was logged with, the lineage frozen at
registration (run, params, metrics, git commit, training-data fingerprint), and
the definition of each feature view it was trained on, as that home applied it.

`import_bundle` trusts nothing in the folder until every listed file matches its
hash and nothing unlisted lies beside them, and registers nothing until the
target home's feature views can feed the model: each view exists there with the
same join keys and, for every feature the model reads, the same dtype. The model
then arrives as a tracking run of the `promotions` experiment in the target (its
source params and metrics, the source as tags, the same bytes, so the same
sha256, checked before every load as for any version) and is registered from it;
a bundle imported twice is one version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from litemlops.clock import utc_now
from litemlops.errors import LitemlopsError, ValidationError

if TYPE_CHECKING:
    from litemlops.store.features.feature_store import FeatureStore
    from litemlops.store.tracking.registry import ModelRegistry, ModelVersion

FORMAT = "litemlops-model-bundle"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MODEL_FILE = "model.joblib"
EXPERIMENT = "promotions"
"""The experiment whose runs record bundles made and taken, on each side."""


class BundleError(LitemlopsError, ValueError):
    """A bundle that is damaged, or that the target home cannot take."""


@dataclass(frozen=True)
class Bundle:
    """A verified bundle: its folder and manifest (`manifest["model"]` etc.), and the
    sha256 of the manifest itself, which names the bundle."""

    folder: Path
    manifest: dict[str, Any]
    digest: str

    @property
    def name(self) -> str:
        return str(self.manifest["model"]["name"])

    @property
    def version(self) -> int:
        return int(self.manifest["model"]["version"])


def export_bundle(
    registry: ModelRegistry,
    features: FeatureStore | None,
    name: str,
    version: int,
    out: Path,
    *,
    source: dict[str, Any],
) -> Bundle:
    """Write version `version` of `name` as a bundle into the new (or empty) folder
    `out`; `source` says where it comes from (home, environment), kept in the manifest.

    features: the home's feature store, for the definitions of the views the version
    was trained on (None: the manifest lists the views with no definition).
    """
    found = registry.get_model_version(name, version)
    tracker = registry.tracker
    logged = tracker.logged_model(found.run_id, found.model_name)
    data = tracker.artifacts.read_verified(found.sha256)  # the registered bytes, checked
    views = {}
    for item in found.lineage.get("inputs", []):
        for view, view_version in dict(item.get("feature_views") or {}).items():
            views[view] = (
                features.definition(view, int(view_version)) if features is not None
                else {"name": view, "version": view_version}
            )  # fmt: skip
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "exported_at": utc_now().isoformat(),
        "source": source,
        "model": {
            "name": found.name,
            "version": found.version,
            "sha256": found.sha256,
            "description": found.description,
            "signature": logged.signature,
            "environment": logged.environment,
            "input_example": logged.input_example,
        },
        "lineage": found.lineage,
        "feature_views": [views[v] for v in sorted(views)],
        "files": {MODEL_FILE: {"sha256": found.sha256, "size": len(data)}},
    }
    _write_folder(out, {MODEL_FILE: data, MANIFEST: _dumps(manifest)})
    return read_bundle(out)


def read_bundle(folder: Path) -> Bundle:
    """The bundle in `folder`, once its manifest is readable and every file it lists
    matches its size and sha256, with no file it does not list."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not folder.is_dir():
        raise BundleError(f"{folder} is not a bundle: no such folder")
    try:
        raw = path.read_bytes()
        manifest = json.loads(raw)
    except FileNotFoundError:
        raise BundleError(f"{folder} is not a bundle: it has no {MANIFEST}") from None
    except (OSError, ValueError) as exc:
        raise BundleError(f"{path} cannot be read as JSON: {exc}") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{path} is not a litemlops model bundle's manifest")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BundleError(
            f"{path} has format version {manifest.get('format_version')!r}; this litemlops "
            f"reads version {FORMAT_VERSION}: import it with the version that exported it"
        )
    listed = manifest.get("files")
    if not isinstance(listed, dict) or MODEL_FILE not in listed:
        raise BundleError(f"{path} lists no {MODEL_FILE}")
    present = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    unlisted = sorted(present - set(listed) - {MANIFEST})
    if unlisted:
        raise BundleError(
            f"bundle {folder} holds files its manifest does not list: {unlisted}; "
            "a bundle is taken whole or not at all"
        )
    for file, expected in listed.items():
        target = folder / file
        if not target.is_file():
            raise BundleError(f"bundle {folder} lacks {file}, which its manifest lists")
        digest = _sha256(target)
        if digest != expected.get("sha256") or target.stat().st_size != expected.get("size"):
            raise BundleError(
                f"{file} in bundle {folder} does not match its manifest (sha256 {digest}, "
                f"listed {expected.get('sha256')}): the bundle was changed or damaged"
            )
    if listed[MODEL_FILE]["sha256"] != manifest.get("model", {}).get("sha256"):
        raise BundleError(f"{path}: the model's sha256 differs from {MODEL_FILE}'s")
    return Bundle(folder, manifest, hashlib.sha256(raw).hexdigest())


def check_feature_views(bundle: Bundle, features: FeatureStore) -> list[str]:
    """Why the home of `features` cannot feed the bundle's model (empty: it can)."""
    from litemlops.errors import FeatureViewNotFoundError

    signature = bundle.manifest["model"].get("signature") or {}
    reads = {item["name"] for item in signature.get("inputs", []) if "name" in item}
    problems = []
    for spec in bundle.manifest.get("feature_views", []):
        view = spec["name"]
        if "features" not in spec:
            continue  # exported without its definition
        try:
            here = features.definition(view)
        except FeatureViewNotFoundError:
            problems.append(f"feature view {view!r} does not exist here; apply it first")
            continue
        if sorted(map(tuple, here["keys"])) != sorted(map(tuple, spec["keys"])):
            problems.append(
                f"feature view {view!r} is keyed by {here['keys']} here, by {spec['keys']} "
                "where the model was trained"
            )
        mine = {n: d for n, d in here["features"]}
        for feature, dtype in spec["features"]:
            if reads and feature not in reads:
                continue
            if feature not in mine:
                problems.append(f"feature {view}:{feature} ({dtype}) does not exist here")
            elif mine[feature] != dtype:
                problems.append(
                    f"feature {view}:{feature} is {mine[feature]} here, {dtype} where the "
                    "model was trained"
                )
    return problems


def import_bundle(
    registry: ModelRegistry,
    features: FeatureStore,
    bundle: Bundle,
    *,
    name: str | None = None,
    target: dict[str, Any],
) -> ModelVersion:
    """Register the bundle's model in this home (as `name`, default its own), after
    checking its files and this home's feature views; `target` (home, environment)
    is recorded with the source on the run that brings it. `BundleError` when the
    feature views cannot feed it: then nothing is written."""
    bundle = read_bundle(bundle.folder)  # checked again: the folder may have changed
    problems = check_feature_views(bundle, features)
    if problems:
        raise BundleError(
            f"model {bundle.name}/{bundle.version} cannot be imported: " + "; ".join(problems)
        )
    model, lineage = bundle.manifest["model"], bundle.manifest["lineage"]
    source = bundle.manifest.get("source", {})
    tracker = registry.tracker
    here = {v["name"]: features.definition(v["name"])["version"]
            for v in bundle.manifest.get("feature_views", []) if "features" in v}  # fmt: skip
    tags = {
        "promotion.direction": "import",
        "promotion.bundle": bundle.digest,
        "promotion.source_model": f"{bundle.name}/{bundle.version}",
        "promotion.source_run": str(lineage.get("run_id", "")),
        "promotion.source_environment": str(source.get("environment") or ""),
        "promotion.source_home": str(source.get("home") or ""),
        "promotion.source_git_commit": str(lineage.get("git_commit") or ""),
        "promotion.target_environment": str(target.get("environment") or ""),
    }
    with tracker.start_run(EXPERIMENT, f"import {bundle.name}/{bundle.version}", tags=tags) as run:
        run.log_params(lineage.get("params") or {})
        run.log_metrics(
            {k: float(v) for k, v in (lineage.get("metrics") or {}).items()
             if isinstance(v, int | float)}
        )  # fmt: skip
        for item in lineage.get("inputs", []):
            details = {k: v for k, v in item.items() if k not in ("kind", "name")}
            views = dict(details.get("feature_views") or {})
            details["feature_views"] = {v: here.get(v, n) for v, n in views.items()}
            run.log_input_details(str(item.get("name", "training")), details)
        example = model.get("input_example")
        run.log_model_bytes(
            (bundle.folder / MODEL_FILE).read_bytes(),
            "model",
            model.get("signature"),
            dict(model.get("environment") or {}),
            json.dumps(example) if example is not None else None,
        )
    description = (
        f"imported from {source.get('environment') or source.get('home') or 'another home'} "
        f"({bundle.name}/{bundle.version}, bundle {bundle.digest[:12]})"
    )
    return registry.register_model(f"runs:/{run.id}/model", name or bundle.name, description)


def record_export(registry: ModelRegistry, bundle: Bundle, target: dict[str, Any]) -> str:
    """A run of the `promotions` experiment in the source home saying the bundle left
    for `target` (home, environment, and the `gate` state and version it `landed` as
    when given); its id."""
    tags = {
        "promotion.direction": "export",
        "promotion.bundle": bundle.digest,
        "promotion.source_model": f"{bundle.name}/{bundle.version}",
        "promotion.target_environment": str(target.get("environment") or ""),
        "promotion.target_home": str(target.get("home") or ""),
        **{f"promotion.{k}": str(v) for k, v in target.items() if k in ("gate", "landed")},
    }
    with registry.tracker.start_run(
        EXPERIMENT, f"export {bundle.name}/{bundle.version}", tags=tags
    ) as run:
        pass
    return run.id


def _write_folder(out: Path, files: dict[str, bytes]) -> None:
    """Write `files` into `out` (new, or an empty folder) all at once: into a hidden
    sibling first, renamed into place, so a crash leaves no half bundle."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ValidationError(
            f"{out} exists and is not an empty folder: choose a new path for the bundle"
        )
    if not out.parent.is_dir():
        raise ValidationError(f"cannot write the bundle to {out}: {out.parent} is no folder")
    staging = out.parent / f".{out.name}.{os.getpid()}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    try:
        staging.mkdir()
        for file, data in files.items():
            with (staging / file).open("wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except OSError as exc:
        raise ValidationError(f"cannot write the bundle to {out}: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _dumps(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
