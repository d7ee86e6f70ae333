"""``reelfoundry serve``: the API, engine and webhook dispatcher on one machine."""

from __future__ import annotations

import logging
from typing import Annotated, Any

import typer

from reelfoundry import __version__
from reelfoundry.cli.common import LogLevel, common_options, console, state


@common_options("data_dir")
def serve(
    host: Annotated[str, typer.Option("--host", envvar="REELFOUNDRY_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="REELFOUNDRY_PORT")] = 8000,
    workers: Annotated[int | None, typer.Option("--worker-slots", help="Jobs run at once (0 = API only).")] = None,
    log_level: Annotated[LogLevel, typer.Option("--log-level", case_sensitive=False)] = LogLevel.info,
) -> None:
    """Run the API, engine and webhook dispatcher on one machine (data in ./reelfoundry-data by default)."""
    import uvicorn

    from reelfoundry.api.app import create_app
    from reelfoundry.config import Settings
    from reelfoundry.platform import Platform

    data_dir = state().server_data_dir
    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    if workers is not None:
        overrides["worker_slots"] = workers
    settings = Settings(**overrides)
    level = log_level.value
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform = Platform(settings)
    platform.start()  # before uvicorn, so a locked data dir or a bad database URL is one clear line
    console.print(
        f"ReelFoundry {__version__} on http://{host}:{port} — data in {data_dir.resolve()} "
        f"(admin key: {settings.admin_key_path}); review UI at http://{host}:{port}/ui/",
        highlight=False,
    )
    if settings.public_base_url is None:
        console.print(
            f"Delivery URLs point at {settings.delivery_base_url} (set REELFOUNDRY_PUBLIC_BASE_URL to the address "
            "your audience reaches).",
            highlight=False,
        )
    # The app's lifespan stops the platform when uvicorn shuts down.
    uvicorn.run(create_app(settings, platform), host=host, port=port, log_level=level, access_log=False)
