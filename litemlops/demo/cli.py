"""The demo's CLI commands, which the demo application adds to `litemlops`:
`simulate` (demo traffic against a running `litemlops run`) and `demo generate`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from litemlops.cli.common import cli_errors, echo_json, home_option, load_config, running_server


def _version_rate(text: str | tuple[str, float]) -> tuple[str, float]:
    """VERSION=RATE, VERSION a number (2, v2) or an alias of the served model."""
    if isinstance(text, tuple):
        return text
    version, _, rate = text.partition("=")
    version = version.strip()
    try:
        pair = (version[1:] if version[:1] == "v" and version[1:].isdigit() else version,
                float(rate))  # fmt: skip
    except ValueError:
        raise click.BadParameter(
            f"VERSION=RATE, e.g. 2=0.45 or challenger=0.2; got {text!r}"
        ) from None
    if not pair[0] or not 0.0 <= pair[1] <= 1.0:
        raise click.BadParameter(f"VERSION=RATE with a rate within 0 and 1, got {text!r}")
    return pair


def _versions(client: Any, model: str, rates: tuple[tuple[str, float], ...]) -> dict[int, float]:
    """The rates by version number, aliases of `model` resolved by the server now."""
    if all(name.isdigit() for name, _ in rates):
        return {int(name): rate for name, rate in rates}
    answer = client.get(f"/api/models/{model}")
    aliases = answer.json().get("aliases", {}) if answer.status_code == 200 else {}
    found = {}
    for name, rate in rates:
        if not name.isdigit() and name not in aliases:
            raise click.ClickException(
                f"--success-rate {name}=...: {model} has no alias {name!r} "
                f"(aliases: {sorted(aliases)})"
            )
        found[int(name) if name.isdigit() else int(aliases[name])] = rate
    return found


@click.command()
@home_option
@click.option("--normal", "mode", flag_value="normal", default=True, help="Normal traffic.")
@click.option("--drift", "mode", flag_value="drift", help="Drifted features and outcomes.")
@click.option(
    "-n",
    "--requests",
    "n",
    type=click.IntRange(1, 1_000_000),
    default=100,
    show_default=True,
    help="Booking requests to send.",
)
@click.option("--labels", is_flag=True, help="Post each trip's outcome to /feedback afterwards.")
@click.option("--url", default=None, help="The server (default: where `run` serves the home).")
@click.option(
    "--token",
    envvar="LITEMLOPS_SERVER_TOKEN",
    default=None,
    help="Admin token (default: <home>/token).",
)
@click.option("--seed", type=int, default=None, help="Seed for reproducible traffic.")
@click.option(
    "--success-rate",
    "success_rates",
    multiple=True,
    type=_version_rate,
    metavar="VERSION=RATE",
    help="Trips a version (a number, or an alias such as champion) chose complete at this "
    "rate (0-1), whatever the features: arms of different true success rates for a "
    "deployment (repeatable; implies --labels).",
)
@click.option(
    "--label-lag",
    type=click.IntRange(min=0),
    default=None,
    help="Post each label this many requests later (default: after all requests).",
)
@click.option("--json", "as_json", is_flag=True)
@click.option("-q", "--quiet", is_flag=True, help="No progress bar.")
@click.pass_context
@cli_errors
def simulate(
    ctx: click.Context,
    home: Path | None,
    mode: str,
    n: int,
    labels: bool,
    url: str | None,
    token: str | None,
    seed: int | None,
    success_rates: tuple[tuple[str, float], ...],
    label_lag: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Push driver statistics, send /inference requests and post delayed labels,
    as the course's mock_request.py did, to watch drift fire and retraining start."""
    import httpx

    from litemlops.demo.simulate import simulate as run_simulation

    # With --url the home only lends its demo settings: the server may be elsewhere.
    config = load_config(ctx, home, existing=url is None)
    url = url or running_server(config)
    if url is None:
        raise click.ClickException(
            f"no server for home {config.home}: start `litemlops run` first, or pass --url"
        )
    if token is None:
        try:
            token = config.token_path.read_text().strip()
        except OSError:
            raise click.ClickException(
                f"no admin token at {config.token_path}: pass --token"
            ) from None
    from litemlops.demo.generator import generate_driver_stats

    sizes = config.section("demo")
    drivers = list(range(1001, 1001 + sizes.drivers))
    # The demo's own history (same seed), so normal traffic looks like the training data.
    pool = generate_driver_stats(sizes.drivers, sizes.hours, random_state=sizes.seed)
    from tqdm import tqdm

    try:
        # disable=None: a bar only on a terminal, never in logs or pipes.
        with (
            httpx.Client(base_url=url, timeout=30) as client,
            tqdm(
                total=n,
                desc=f"{mode} traffic",
                unit="request",
                file=sys.stderr,
                leave=False,
                disable=True if quiet else None,
            ) as bar,
        ):
            summary = run_simulation(
                client,
                token,
                drivers,
                n=n,
                drift=mode == "drift",
                labels=labels or bool(success_rates),
                seed=seed,
                success_rates=_versions(client, _model_name(config), success_rates),
                label_lag=label_lag,
                pool=pool,
                progress=lambda done: bar.update(done - bar.n),
            )
    except httpx.HTTPError as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from None
    if as_json:
        echo_json(summary.to_dict())
        return
    click.echo(
        f"{summary.requests} {mode} requests, {summary.pushed_rows} rows pushed, "
        f"{summary.labels} labels posted; answered by versions {summary.to_dict()['versions']}"
    )


@click.group()
def demo() -> None:
    """The demo project's data."""


@demo.command("generate")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--drivers", default=5, show_default=True)
@click.option("--hours", default=48, show_default=True)
@click.option("--labels", default=40, show_default=True)
@click.option("--seed", default=42, show_default=True)
@cli_errors
def demo_generate(out: Path, drivers: int, hours: int, labels: int, seed: int) -> None:
    """Write seeded demo CSVs (driver_stats.csv, labels.csv)."""
    from litemlops.demo.generator import write_sample

    paths = write_sample(out, n_drivers=drivers, hours=hours, n_labels=labels, random_state=seed)
    for path in paths.values():
        click.echo(str(path))


def _model_name(config: Any) -> str:
    from litemlops.store.tracking.model_uri import ModelURI

    return ModelURI.parse(config.server.model, default_alias="champion").name or ""
