"""``reelfoundry serve``: the API, engine and webhook dispatcher on one machine, or one role of a cluster."""

from __future__ import annotations

import logging
import os
from enum import StrEnum
from typing import Annotated, Any

import typer

from reelfoundry import __version__
from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import LogLevel, common_options, console, state


class ServeRole(StrEnum):
    """What one ``serve`` process does (``reelfoundry.platform.ROLES``)."""

    all = "all"
    api = "api"
    scheduler = "scheduler"
    worker = "worker"


@common_options("data_dir")
def serve(
    host: Annotated[str, typer.Option("--host", envvar="REELFOUNDRY_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="REELFOUNDRY_PORT")] = 8000,
    workers: Annotated[int | None, typer.Option("--worker-slots", help="Jobs run at once (0 = API only).")] = None,
    role: Annotated[
        ServeRole,
        typer.Option(
            "--role",
            envvar="REELFOUNDRY_ROLE",
            case_sensitive=False,
            help="all: everything on one machine. api: HTTP API, UI and admission, no state (any number). "
            "scheduler: the engine, webhooks and audit sealer, one elected through the database, the others "
            "standing by. worker: an engine for this node's slots without the API.",
        ),
    ] = ServeRole.all,
    processes: Annotated[
        int,
        typer.Option("--workers", min=1, max=64, help="HTTP processes (--role api only), each its own platform."),
    ] = 1,
    log_level: Annotated[LogLevel, typer.Option("--log-level", case_sensitive=False)] = LogLevel.info,
) -> None:
    """Run the API, engine and webhook dispatcher on one machine (data in ./reelfoundry-data by default), or
    one role of a cluster (--role). Every role answers /healthz, /readyz and /metrics on --port."""
    import uvicorn

    from reelfoundry.api.app import create_app
    from reelfoundry.config import Settings
    from reelfoundry.platform import Platform

    if processes > 1 and role is not ServeRole.api:
        raise CLIError("--workers N is for --role api (one engine per data dir)")
    data_dir = state().server_data_dir
    overrides: dict[str, Any] = {"host": host, "port": port, "data_dir": data_dir}
    if workers is not None:
        overrides["worker_slots"] = workers
    settings = Settings(**overrides)
    level = log_level.value
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    platform = Platform(settings, role.value)
    if processes > 1:
        platform.bootstrap()  # migrate and make the admin key once, before the processes start
        platform.db.dispose()
    else:
        platform.start()  # before uvicorn, so a locked data dir or a bad database URL is one clear line
    what = "" if role is ServeRole.all else f" as {role.value}" + (f" ({processes} processes)" if processes > 1 else "")
    console.print(
        f"ReelFoundry {__version__}{what} on http://{host}:{port} — data in {data_dir.resolve()} "
        f"(admin key: {settings.admin_key_path})"
        + (f"; review UI at http://{host}:{port}/ui/" if platform.serves_api else ""),
        highlight=False,
    )
    if settings.public_base_url is None and platform.serves_api:
        console.print(
            f"Delivery URLs point at {settings.delivery_base_url} (set REELFOUNDRY_PUBLIC_BASE_URL to the address "
            "your audience reaches).",
            highlight=False,
        )
    if processes > 1:
        # Each uvicorn process builds its own platform from the environment (api_worker_app).
        os.environ.update(
            REELFOUNDRY_HOST=host, REELFOUNDRY_PORT=str(port), REELFOUNDRY_DATA_DIR=str(data_dir.resolve())
        )
        uvicorn.run(
            "reelfoundry.api.app:api_worker_app",
            factory=True,
            host=host,
            port=port,
            workers=processes,
            log_level=level,
            access_log=False,
        )
        return
    # The app's lifespan stops the platform when uvicorn shuts down.
    uvicorn.run(create_app(settings, platform), host=host, port=port, log_level=level, access_log=False)
