"""MLflow's proxied artifact endpoints, on litemlops' content-addressed artifact store.

An experiment's artifact location is `mlflow-artifacts:/<experiment id>`, so the
client uploads a run's files to `/api/2.0/mlflow-artifacts/artifacts/<experiment
id>/<run id>/artifacts/<path>`, which records them as that run's artifacts (sha256
and size, as `Run.log_artifact` does): litemlops lists and downloads them like its
own. A logged model's files (`<experiment id>/models/<model id>/artifacts/<path>`)
are artifacts of the run that logged it, under `models/<model id>/`. Downloads are
verified against their sha256 first.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from litemlops.server.http import JSON, ApiError
from litemlops.server.mlflow.errors import MlflowError, answer_error, invalid
from litemlops.server.state import require_token, state_of
from litemlops.store.tracking.artifacts import check_artifact_path
from litemlops.store.tracking.run import Run

if TYPE_CHECKING:
    from litemlops.platform import Platform

PREFIX = "/api/2.0/mlflow-artifacts/artifacts"
#: Largest file one upload may send (the body is streamed to disk, never held whole).
MAX_ARTIFACT_BYTES = 4 * 2**30


def locate(platform: Platform, path: str) -> tuple[str, str]:
    """(run id, artifact path in that run, "" for its root) of a proxied path."""
    parts = [p for p in path.strip("/").split("/") if p]
    if len(parts) >= 4 and parts[1] == "models" and parts[3] == "artifacts":
        from litemlops.store.tracking.mlflow_models import MlflowModels

        model = MlflowModels(platform.tracker).get(parts[2])
        if model.run_id is None:
            raise invalid(f"model {parts[2]} has no source run to keep its files in")
        return model.run_id, "/".join(["models", parts[2], *parts[4:]])
    if len(parts) >= 3 and parts[2] == "artifacts":
        info = platform.tracker.get_run(parts[1])
        if str(info.experiment_id) != parts[0] and parts[0] != "0":
            raise invalid(f"run {info.run_id} is not in experiment {parts[0]}")
        return info.run_id, "/".join(parts[3:])
    raise MlflowError(
        "RESOURCE_DOES_NOT_EXIST",
        f"{path!r} is not a run's or a logged model's artifact path "
        "(<experiment>/<run id>/artifacts/<path>)",
    )


async def upload(request: Request) -> Response:
    try:
        require_token(request)
        platform = state_of(request).platform
        path = request.path_params["path"]
        run_id, artifact = await run_in_threadpool(locate, platform, path)
        if not artifact:
            raise invalid("give the artifact's path after artifacts/")
        artifact = check_artifact_path(artifact)
        folder, _, name = artifact.rpartition("/")
        with tempfile.TemporaryDirectory(prefix="litemlops-upload-") as tmp:
            target = Path(tmp) / name
            total = 0
            with target.open("wb") as out:
                async for chunk in request.stream():
                    total += len(chunk)
                    if total > MAX_ARTIFACT_BYTES:
                        raise ApiError(
                            413, "body_too_large", f"an artifact over {MAX_ARTIFACT_BYTES} bytes"
                        )
                    out.write(chunk)
            await run_in_threadpool(_record, platform, run_id, target, folder)
        return JSON({})
    except Exception as exc:
        return answer_error(request, exc)


def _record(platform: Platform, run_id: str, file: Path, folder: str) -> None:
    info = platform.tracker.get_run(run_id)
    if info.lifecycle_stage != "active":
        raise MlflowError("INVALID_STATE", f"run {run_id} is deleted; restore it first")
    Run(platform.tracker, run_id, info.experiment_id, info.name).log_artifact(file, folder or None)


async def download(request: Request) -> Response:
    try:
        platform = state_of(request).platform

        def read() -> bytes:
            run_id, artifact = locate(platform, request.path_params["path"])
            return platform.tracker.read_artifact(run_id, artifact)

        return Response(await run_in_threadpool(read), media_type="application/octet-stream")
    except Exception as exc:
        return answer_error(request, exc)


def list_files(platform: Platform, path: str) -> list[dict[str, Any]]:
    """The files and folders directly inside `path`, named relative to it."""
    if not path.strip("/"):
        return []
    run_id, folder = locate(platform, path)
    prefix = f"{folder}/" if folder else ""
    files: dict[str, dict[str, Any]] = {}
    for item in platform.tracker.artifact_list(run_id):
        full = item["path"]
        if not full.startswith(prefix):
            continue
        rest = full[len(prefix) :]
        if not prefix and rest.startswith("models/"):
            continue  # logged models' files are listed under their model, not the run
        head, sep, _ = rest.partition("/")
        if sep:
            files.setdefault(head, {"path": head, "is_dir": True})
        else:
            files[head] = {"path": head, "is_dir": False, "file_size": item["size"]}
    return sorted(files.values(), key=lambda f: f["path"])


async def listing(request: Request) -> Response:
    try:
        platform = state_of(request).platform
        path = request.query_params.get("path", "")
        return JSON({"files": await run_in_threadpool(list_files, platform, path)})
    except Exception as exc:
        return answer_error(request, exc)


async def delete(request: Request) -> Response:
    try:
        require_token(request)
        raise MlflowError(
            "NOT_IMPLEMENTED", "litemlops keeps every artifact a run logged; delete the run instead"
        )
    except Exception as exc:
        return answer_error(request, exc)


def artifact_routes() -> list[Route]:
    hidden: dict[str, Any] = {"include_in_schema": False}
    return [
        Route(PREFIX, listing, methods=["GET"], **hidden),
        Route(f"{PREFIX}/{{path:path}}", download, methods=["GET"], **hidden),
        Route(f"{PREFIX}/{{path:path}}", upload, methods=["PUT"], **hidden),
        Route(f"{PREFIX}/{{path:path}}", delete, methods=["DELETE"], **hidden),
    ]
