"""``reelfoundry assets list|search|show|download|upload|tag|edit|xmp|publish``."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

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
from reelfoundry.schema.dam import METADATA_FIELDS, Origin, SearchMode

assets_app = typer.Typer(help="List, search, tag, upload and download assets.", no_args_is_help=True)

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


#: What ``assets upload`` sends, by file suffix.
UPLOAD_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".webp": "image/webp",
    ".mp4": "video/mp4",
}
#: The most ``assets upload`` reads into memory (the server's video cap by default).
MAX_UPLOAD_BYTES = 256 * 1_048_576

TagOpt = Annotated[list[str] | None, typer.Option("--tag", help="A tag (repeat for more).")]


@assets_app.command("upload")
@common_options()
def assets_upload(
    path: Annotated[Path, typer.Argument(help="PNG, JPEG or WebP image, or MP4 video.")],
    project: ProjectOpt = None,
    campaign: CampaignOpt = None,
    title: Annotated[str | None, typer.Option("--title")] = None,
    brand: Annotated[str | None, typer.Option("--brand")] = None,
    tag: TagOpt = None,
    as_json: AsJson = False,
) -> None:
    """Upload brand material (an image or an MP4) or a job input; it waits for review like generated media.
    Near duplicates already in the tenant are named."""
    media_type = UPLOAD_TYPES.get(path.suffix.lower())
    if media_type is None:
        raise CLIError(f"{str(path)!r}: expected a .png, .jpg, .webp or .mp4 file")
    try:
        size = path.stat().st_size
        if size > MAX_UPLOAD_BYTES:
            raise CLIError(f"{str(path)!r} is {size:,} bytes; uploads may be {MAX_UPLOAD_BYTES:,} at most")
        data = path.read_bytes()
    except OSError as exc:
        raise CLIError(f"cannot read {str(path)!r}: {exc.strerror}") from None
    params = {k: v for k, v in {"project": project, "campaign": campaign}.items() if v}
    api = client()
    asset = api.json("POST", "/v1/assets", content=data, params=params, headers={"Content-Type": media_type})
    metadata: dict[str, Any] = {k: v for k, v in {"title": title, "brand": brand, "tags": tag}.items() if v}
    if metadata:
        asset = {
            **api.json("PATCH", f"/v1/assets/{asset['id']}", json=metadata),
            "near_duplicates": asset["near_duplicates"],
        }
    duplicates = asset.get("near_duplicates") or []
    note = f"; near duplicates: {', '.join(duplicates)}" if duplicates else ""
    emit(asset, as_json, f"uploaded asset {asset['id']}{note}")


@assets_app.command("search")
@common_options()
def assets_search(
    query: Annotated[
        str | None, typer.Argument(help="Words to find (prompt, title, description, tags, brand).")
    ] = None,
    semantic: Annotated[bool, typer.Option("--semantic", help="Match by meaning (MiniLM) instead of words.")] = False,
    brand: Annotated[str | None, typer.Option("--brand")] = None,
    tag: Annotated[str | None, typer.Option("--tag")] = None,
    collection: Annotated[str | None, typer.Option("--collection", help="A collection's id.")] = None,
    model: Annotated[str | None, typer.Option("--model")] = None,
    state: Annotated[ReviewState | None, typer.Option("--state", help="Only assets in this review state.")] = None,
    origin: Annotated[Origin | None, typer.Option("--origin")] = None,
    after: Annotated[datetime | None, typer.Option("--after", help="Created at or after (UTC if no zone).")] = None,
    before: Annotated[datetime | None, typer.Option("--before", help="Created before (UTC if no zone).")] = None,
    project: ProjectOpt = None,
    campaign: CampaignOpt = None,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 20,
    as_json: AsJson = False,
) -> None:
    """Find assets by words or meaning, narrowed by filters; best matches first (newest first without words)."""
    if collection is not None:
        _id("collection", collection)
    dates = {
        "created_after": _aware(after),
        "created_before": _aware(before),
    }
    params: dict[str, Any] = {
        "q": query,
        "mode": (SearchMode.semantic if semantic else SearchMode.text).value if query else None,
        "brand": brand,
        "tag": tag,
        "collection": collection,
        "model": model,
        "review_state": state.value if state else None,
        "origin": origin.value if origin else None,
        "project": project,
        "campaign": campaign,
        "limit": limit,
        **dates,
    }
    page = client().json("GET", "/v1/assets", params={k: v for k, v in params.items() if v is not None})
    if as_json:
        print_json(page["items"])
        return
    columns = ["id", "score", "review_state", "origin", "title", "tags", "brand", "media_type", "created_at"]
    rows = [{**a, "tags": ", ".join(a.get("tags") or [])} for a in page["items"]]
    table(rows, columns if query else [c for c in columns if c != "score"], "Search results" if query else "Assets")


def _aware(value: datetime | None) -> str | None:
    """A time as ISO 8601 with its zone (UTC when none was given)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


@assets_app.command("tag")
@common_options()
def assets_tag(
    asset_id: str,
    add: Annotated[list[str] | None, typer.Option("--add", help="A tag to add (repeat for more).")] = None,
    remove: Annotated[list[str] | None, typer.Option("--remove", help="A tag to remove (repeat for more).")] = None,
    accept: Annotated[
        list[str] | None, typer.Option("--accept", help="A suggested tag to accept (repeat for more).")
    ] = None,
    accept_all: Annotated[bool, typer.Option("--accept-all", help="Accept every suggested tag.")] = False,
    as_json: AsJson = False,
) -> None:
    """Add or remove tags, or accept the platform's suggestions (each change is audited)."""
    _id("asset", asset_id)
    if not (add or remove or accept or accept_all):
        raise CLIError("nothing to do: give --add, --remove, --accept or --accept-all")
    api = client()
    body: dict[str, Any] = {}
    if add or remove:
        current = api.json("GET", f"/v1/assets/{asset_id}").get("tags") or []
        gone = {t.strip().lower() for t in remove or []}
        body["tags"] = [t for t in current if t not in gone] + [
            t for t in add or [] if t.strip().lower() not in current
        ]
    if accept_all or accept:
        body["accept_suggestions"] = True if accept_all else accept
    asset = api.json("PATCH", f"/v1/assets/{asset_id}", json=body)
    suggested = ", ".join(asset.get("suggested_tags") or []) or "none"
    emit(asset, as_json, f"tags: {', '.join(asset.get('tags') or []) or 'none'} (suggested: {suggested})")


@assets_app.command("edit")
@common_options()
def assets_edit(
    asset_id: str,
    title: Annotated[str | None, typer.Option("--title")] = None,
    description: Annotated[str | None, typer.Option("--description")] = None,
    brand: Annotated[str | None, typer.Option("--brand")] = None,
    licence: Annotated[str | None, typer.Option("--licence")] = None,
    consent_ref: Annotated[str | None, typer.Option("--consent-ref")] = None,
    rights_expire: Annotated[
        datetime | None, typer.Option("--rights-expire", help="When the rights end (UTC if no zone).")
    ] = None,
    restrict: Annotated[
        list[str] | None, typer.Option("--restrict", help="A usage restriction such as no-training (repeatable).")
    ] = None,
    clear: Annotated[
        list[str] | None, typer.Option("--clear", help="A field to clear, e.g. rights_expires_at (repeatable).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Change an asset's metadata (audited): title, description, brand, licence, consent, rights, restrictions."""
    _id("asset", asset_id)
    body: dict[str, Any] = {
        k: v
        for k, v in {
            "title": title,
            "description": description,
            "brand": brand,
            "licence": licence,
            "consent_ref": consent_ref,
            "rights_expires_at": _aware(rights_expire),
            "usage_restrictions": restrict,
        }.items()
        if v is not None
    }
    for field in clear or []:
        if field not in EDITABLE:
            raise CLIError(f"--clear {field!r}: one of {', '.join(EDITABLE)}")
        body[field] = None
    if not body:
        raise CLIError("nothing to change: give at least one option")
    asset = client().json("PATCH", f"/v1/assets/{asset_id}", json=body)
    show_record(asset, as_json, f"Asset {asset_id}")


#: Fields ``assets edit --clear`` may clear: those PATCH may change.
EDITABLE = METADATA_FIELDS


@assets_app.command("xmp")
@common_options()
def assets_xmp(
    asset_id: str,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Where to write it (default: stdout).")] = None,
) -> None:
    """The asset's XMP sidecar (IPTC digital source type and its metadata)."""
    _id("asset", asset_id)
    api = client()
    with api._errors():
        text = api.api.request("GET", f"/v1/assets/{asset_id}/xmp").text
    if output is None:
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise CLIError(f"cannot write {output}: {exc.strerror}") from None
    console.print(f"wrote {output}", highlight=False)
