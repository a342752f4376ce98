"""`litemlops predict`: a model's scores for entity or feature rows, as `/predict` answers.

The command calls the library's serving layer (`litemlops.serving.Service`), so
it scores, checks and logs `prediction_served` exactly as the server does; it
works beside a serving `run` (reads only) and without one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, echo_json, entity_row, home_option, open_platform


def _feature_rows(text: str) -> list[dict[str, float]]:
    raw = sys.stdin.read() if text == "-" else text
    try:
        rows = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint="--features") from None
    if isinstance(rows, dict):
        rows = [rows]
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise click.BadParameter(
            'expected an object or a non-empty list of objects, e.g. [{"conv_rate": 0.5}]',
            param_hint="--features",
        )
    return rows


@click.command()
@home_option
@click.argument("model")
@click.option(
    "--entity",
    "entity_args",
    multiple=True,
    help="key=value: score this entity on the online features the model was trained on "
    "(repeat for several rows).",
)
@click.option(
    "--features",
    "features_json",
    help='Rows of feature values as JSON, e.g. \'[{"conv_rate": 0.5, ...}]\' (- reads stdin).',
)
@click.option("--request-id", default=None, help="Logged with the prediction, for /feedback.")
@click.pass_context
@cli_errors
def predict(
    ctx: click.Context,
    home: Path | None,
    model: str,
    entity_args: tuple[str, ...],
    features_json: str | None,
    request_id: str | None,
) -> None:
    """Score MODEL (name, name@alias, name/3, models:/..., runs:/ID/name) for --entity
    or --features rows, as POST /predict/MODEL does (JSON out)."""
    from litemlops.serving.models import ModelCache
    from litemlops.serving.service import Service, ServiceSpec

    if bool(entity_args) == (features_json is not None):
        raise click.UsageError("give either --entity (one or more) or --features")
    if request_id is not None and not 1 <= len(request_id) <= 200:
        # As /predict takes it: the id /feedback joins labels on.
        raise click.BadParameter("must be 1 to 200 characters", param_hint="--request-id")
    features = None if features_json is None else _feature_rows(features_json)
    with open_platform(ctx, home) as platform:
        models = ModelCache(platform.registry)
        try:
            service = Service(ServiceSpec.from_config(platform.config), platform.features, models)
            entities: list[dict[str, Any]] | None = None
            if entity_args:
                refs = list(service.model(model).feature_refs or ())
                keys = platform.features.join_keys(refs) if refs else {}
                entities = [entity_row(arg, keys) for arg in entity_args]
            result = service.predict(
                model, entities=entities, features=features, request_id=request_id
            )
        finally:
            models.close()
    echo_json({"model": result.model, "version": result.version,
               "predictions": result.predictions})
