"""What every command group shares: consoles, error handling, the common options and the one client.

The root callback (``reelfoundry --server URL --data-dir DIR --api-key KEY <command>``) and every command
that talks to a server (``reelfoundry <command> --server URL ...``, as the README shows) fill one
:class:`CLIState` in Typer's context; a per-command option wins over the root one. :meth:`CLIState.client`
makes the single client every server call goes through, lazily and in this one place.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import os
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelfoundry.cli.client import Client, CLIError, find_key
from reelfoundry.errors import ReelFoundryError
from reelfoundry.ids import is_id

console = Console(stderr=True, soft_wrap=True)
out = Console()
F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

DEFAULT_DIR = Path("./reelfoundry-data")
DEFAULT_SERVER = "http://127.0.0.1:8000"

ServerOpt = Annotated[str | None, typer.Option("--server", help="Server URL (default: $REELFOUNDRY_SERVER or local).")]
DataDirOpt = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (default: $REELFOUNDRY_DATA_DIR or ./reelfoundry-data)."),
]
ApiKeyOpt = Annotated[
    str | None, typer.Option("--api-key", help="API key (default: $REELFOUNDRY_API_KEY or <data-dir>/admin.key).")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON on stdout instead of a table.")]


class LogLevel(StrEnum):
    """Log levels ``serve`` accepts."""

    debug = "debug"
    info = "info"
    warning = "warning"
    error = "error"
    critical = "critical"


class PriceKind(StrEnum):
    """The price catalog's sections (``reelfoundry.finops.catalog.Catalog.SECTIONS``)."""

    gpu = "gpu"
    cpu = "cpu"
    egress = "egress"
    storage = "storage"
    power = "power"
    pue = "pue"
    carbon = "carbon"
    onprem = "onprem"
    video_api = "video_api"


@dataclass
class CLIState:
    """The common options of one invocation and the one client made from them."""

    server: str | None = None
    data_dir: Path | None = None
    api_key: str | None = None
    _client: Client | None = field(default=None, repr=False)

    def override(self, server: str | None, data_dir: Path | None, api_key: str | None) -> None:
        """Per-command options win over the root callback's (a change drops the client made so far)."""
        for name, value in (("server", server), ("data_dir", data_dir), ("api_key", api_key)):
            if value is not None and getattr(self, name) != value:
                setattr(self, name, value)
                self._client = None

    @property
    def server_url(self) -> str:
        """The server to talk to: --server, $REELFOUNDRY_SERVER, else the local default."""
        return self.server or DEFAULT_SERVER

    @property
    def server_data_dir(self) -> Path:
        """The data dir as ``serve`` uses it (admin key lookup, direct reads): default ./reelfoundry-data."""
        return self.data_dir or DEFAULT_DIR

    def client(self) -> Client:
        """The one client every server call goes through, made on first use."""
        if self._client is None:
            self._client = Client(self.server_url, find_key(self.server_data_dir, self.api_key))
        return self._client


_STATE: ContextVar[CLIState | None] = ContextVar("reelfoundry_cli_state", default=None)


def state() -> CLIState:
    """The running command's :class:`CLIState` (made by the root callback; set by :func:`common_options`)."""
    current = _STATE.get()
    if current is None:
        current = CLIState()
        _STATE.set(current)
    return current


def client() -> Client:
    """Shorthand for ``state().client()``."""
    return state().client()


def server_or_database(path: str, params: dict[str, str], local: Callable[[Any], T]) -> T | Any:
    """``GET path`` on the server, or — when no server answers there — ``local(session)`` on the data dir's
    database (every tenant's rows: whoever can read the file is the operator), saying so on stderr."""
    st = state()
    # No retries: a server that does not answer at once is read around, not waited for (seconds of back-off).
    probe = Client(st.server_url, find_key(st.server_data_dir, st.api_key), max_retries=0)
    try:
        return probe.json("GET", path, params=params)
    except CLIError as exc:
        if "cannot reach" not in exc.detail:
            raise
    finally:
        probe.api.close()
    from reelfoundry.config import Settings
    from reelfoundry.store import Database

    data_dir = st.server_data_dir
    settings = Settings(data_dir=data_dir)
    if settings.database_url is None and not (data_dir / "reelfoundry.db").is_file():
        raise CLIError(f"no server at {st.server_url} and no database in {str(data_dir)!r}", 1)
    console.print(f"[dim]no server at {st.server_url}; reading {settings.data_dir} directly[/dim]", highlight=False)
    db = Database(settings.resolved_database_url)
    try:
        with db.read() as session:
            return local(session)
    finally:
        db.dispose()


def check_output(path: Path, option: str) -> None:
    """Refuse, before any work, an output path whose folder is missing or that names a folder."""
    if not path.parent.resolve().is_dir():
        raise CLIError(f"directory {str(path.parent)!r} does not exist")
    if path.is_dir():
        raise CLIError(f"{option} {str(path)!r} is a directory: name the file to write")


def write_output(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through a temporary name (a reader never sees half a file, a failure leaves none);
    one line and exit code 2 when it cannot be written."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        tmp.write_bytes(data)
        tmp.replace(path)
    except OSError as exc:
        raise CLIError(f"cannot write {str(path)!r}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    console.print(f"wrote {path} ({len(data) // 1024} KiB)", highlight=False)


def friendly(fn: F) -> F:
    """Turn expected errors into one line on stderr and exit code 2 (1 for server-side failures)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except CLIError as exc:
            console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(exc.exit_code) from None
        except ReelFoundryError as exc:
            console.print(f"[red]error:[/red] {exc.detail}", highlight=False)
            raise typer.Exit(2 if exc.status < 500 else 1) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "input"
            console.print(f"[red]error:[/red] {where}: {first['msg']}", highlight=False)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


_COMMON: dict[str, tuple[str, Any]] = {
    "server": ("_opt_server", ServerOpt),
    "data_dir": ("_opt_data_dir", DataDirOpt),
    "api_key": ("_opt_api_key", ApiKeyOpt),
}


def common_options(*names: str) -> Callable[[F], F]:
    """Add the per-command forms of the common options (``server``, ``data_dir``, ``api_key``) to a command.

    The values land in :func:`state`; the command itself never sees them.
    """
    chosen = names or tuple(_COMMON)

    def decorate(fn: F) -> F:
        sig = inspect.signature(fn, eval_str=True)
        extra = [
            inspect.Parameter("_ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context),
            *(
                inspect.Parameter(_COMMON[n][0], inspect.Parameter.KEYWORD_ONLY, default=None, annotation=_COMMON[n][1])
                for n in chosen
            ),
        ]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            ctx: typer.Context = kwargs.pop("_ctx")
            values = {n: kwargs.pop(_COMMON[n][0], None) for n in chosen}
            current = ctx.ensure_object(CLIState)
            current.override(values.get("server"), values.get("data_dir"), values.get("api_key"))
            token = _STATE.set(current)
            try:
                return fn(*args, **kwargs)
            finally:
                _STATE.reset(token)

        wrapper.__signature__ = sig.replace(parameters=[*sig.parameters.values(), *extra])  # type: ignore[attr-defined]
        return friendly(wrapper)  # type: ignore[return-value]

    return decorate


def valid_id(kind: str, value: str) -> str:
    """``value`` if it is a ReelFoundry id (so it is safe inside a URL path), else a CLIError."""
    if not is_id(value):
        raise CLIError(f"{value!r} is not a valid {kind} id (26 characters, like 01JD3K6Z0C8W4Q2M9V5T7RXYZA)")
    return value


def print_json(data: Any) -> None:
    """``data`` as JSON on stdout, nothing else."""
    typer.echo(json.dumps(data, default=str, indent=2))


def table(rows: list[dict[str, Any]], columns: list[str], title: str) -> None:
    """Rows as a table on stdout."""
    tbl = Table(title=title)
    for col in columns:
        tbl.add_column(col)
    for row in rows:
        tbl.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
    out.print(tbl)


def record(data: dict[str, Any], title: str) -> None:
    """One object as a two-column table of its top-level fields (nested ones as compact JSON)."""
    tbl = Table(title=title, show_header=False)
    tbl.add_column("field", style="bold")
    tbl.add_column("value", overflow="fold")
    for key, value in data.items():
        shown = json.dumps(value, default=str) if isinstance(value, dict | list) else value
        tbl.add_row(key, "" if shown is None else str(shown))
    out.print(tbl)


def show_record(data: dict[str, Any], as_json: bool, title: str) -> None:
    """One object: as JSON on stdout with --json, else as a two-column table."""
    if as_json:
        print_json(data)
    else:
        record(data, title)


def emit(data: Any, as_json: bool, message: str) -> None:
    """``data`` as JSON on stdout with --json, else ``message`` on stderr."""
    if as_json:
        print_json(data)
    else:
        console.print(message, highlight=False)


def parse_size(size: str | None) -> tuple[int | None, int | None]:
    """``640x360`` as (640, 360); (None, None) for no size."""
    if size is None:
        return None, None
    w, sep, h = size.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise CLIError(f"--size must look like 640x360, got {size!r}")
    return int(w), int(h)


def progress() -> Progress:
    """A progress bar on stderr."""
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
    )
