"""``reelfoundry assets list|show|download|upload|publish``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import (
    AsJson,
    client,
    common_options,
    console,
    emit,
    out,
    print_json,
    show_record,
    table,
)
from reelfoundry.cli.common import valid_id as _id
from reelfoundry.schema import ReviewState

assets_app = typer.Typer(help="List and download assets.", no_args_is_help=True)

ProjectOpt = Annotated[str | None, typer.Option("--project")]
CampaignOpt = Annotated[str | None, typer.Option("--campaign")]


def list_assets(
    as_json: bool,
    limit: int,
    project: str | None,
    campaign: str | None,
    review_state: ReviewState | None,
    title: str,
) -> None:
    """The newest assets matching the filters, as JSON or a table."""
    filters = {"project": project, "campaign": campaign, "review_state": review_state.value if review_state else None}
    params = {"limit": limit, **{k: v for k, v in filters.items() if v}}
    page = client().json("GET", "/v1/assets", params=params)
    if as_json:
        print_json(page["items"])
        return
    columns = ["id", "review_state", "job_id", "width", "height", "num_frames", "bytes", "project", "campaign"]
    table(page["items"], columns, title)


@assets_app.command("list")
@common_options()
def assets_list(
    project: ProjectOpt = None,
    campaign: CampaignOpt = None,
    state: Annotated[ReviewState | None, typer.Option("--state", help="Only assets in this review state.")] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    as_json: AsJson = False,
) -> None:
    """The newest assets."""
    list_assets(as_json, limit, project, campaign, state, "Assets")


@assets_app.command("show")
@common_options()
def assets_show(asset_id: str, as_json: AsJson = False) -> None:
    """One asset's metadata."""
    asset = client().json("GET", f"/v1/assets/{_id('asset', asset_id)}")
    show_record(asset, as_json, f"Asset {asset_id}")


@assets_app.command("publish")
@common_options()
def assets_publish(asset_id: str, as_json: AsJson = False) -> None:
    """Publish an approved asset; prints a signed delivery URL (a fresh one each time)."""
    pub = client().json("POST", f"/v1/assets/{_id('asset', asset_id)}/publish")
    if as_json:
        print_json(pub)
        return
    console.print(f"published asset {asset_id}; URL valid until {pub['expires_at']}:", highlight=False)
    out.print(pub["url"], highlight=False, soft_wrap=True)


@assets_app.command("download")
@common_options()
def assets_download(
    asset_id: str,
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the file.")],
    as_json: AsJson = False,
) -> None:
    """Download an asset's media."""
    if not output.parent.resolve().is_dir():
        raise CLIError(f"directory {str(output.parent)!r} does not exist")
    n = client().download(_id("asset", asset_id), output)
    emit({"output": str(output), "bytes": n}, as_json, f"wrote {output} ({n:,} bytes)")


@assets_app.command("upload")
@common_options()
def assets_upload(
    path: Annotated[Path, typer.Argument(help="PNG, JPEG or WebP image.")],
    project: ProjectOpt = None,
    campaign: CampaignOpt = None,
    as_json: AsJson = False,
) -> None:
    """Upload an image to use as a job input (template image layers)."""
    types = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".webp": "image/webp"}
    media_type = types.get(path.suffix.lower())
    if media_type is None:
        raise CLIError(f"{str(path)!r}: expected a .png, .jpg or .webp file")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    params = {k: v for k, v in {"project": project, "campaign": campaign}.items() if v}
    asset = client().json("POST", "/v1/assets", content=data, params=params, headers={"Content-Type": media_type})
    emit(asset, as_json, f"uploaded asset {asset['id']}")
