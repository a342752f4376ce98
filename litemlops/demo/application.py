"""The ride-hailing demo as an application on the platform (`applications = ["demo"]`,
the default): its config sections, pipelines, set-up, preloads and CLI commands.

Registered in the `litemlops.applications` entry-point group (pyproject.toml);
importing this module stays light (config sections only), since every
`Config.load` of a home running the demo imports it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from litemlops.applications import Application
from litemlops.demo.settings import CHECKS, PLATFORM_DEFAULTS, SECTIONS

if TYPE_CHECKING:
    from litemlops.bootstrap import BootstrapReport
    from litemlops.config import Config
    from litemlops.platform import Platform
    from litemlops.scheduler.pipeline import Pipeline


class DemoApplication(Application):
    """The course's use case: pick the driver most likely to complete a booking."""

    name = "demo"
    sections = SECTIONS
    checks = CHECKS
    #: The service `/inference` runs, in the platform's `[server]`.
    defaults = PLATFORM_DEFAULTS
    preload = ("litemlops.demo.pipelines",)

    def pipelines(self, config: Config) -> list[Pipeline]:
        from litemlops.demo.pipelines import demo_pipelines

        return demo_pipelines(config)

    def bootstrap(self, platform: Platform, report: BootstrapReport) -> None:
        from litemlops.demo.bootstrap import set_up

        set_up(platform, report)

    def describe(self, platform: Platform, report: BootstrapReport) -> None:
        from litemlops.demo.bootstrap import describe

        describe(platform, report)

    def hints(self, config: Config, url: str) -> list[str]:
        ids = list(range(1001, 1001 + min(3, config.section("demo").drivers)))
        body = json.dumps({"request_id": "hello", "driver_ids": ids})
        return [
            f"try:    curl -s -X POST {url}/inference "
            f"-H 'content-type: application/json' -d '{body}'"
        ]

    def commands(self) -> list[Any]:
        from litemlops.demo.cli import demo, simulate

        return [simulate, demo]


application = DemoApplication()
