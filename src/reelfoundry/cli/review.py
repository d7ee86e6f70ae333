"""``reelfoundry review list|approve|reject``: the human review gate."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

import typer

from reelfoundry.cli.assets import CampaignOpt, ProjectOpt, list_assets
from reelfoundry.cli.common import AsJson, client, common_options, emit
from reelfoundry.cli.common import valid_id as _id
from reelfoundry.schema import ReviewState

review_app = typer.Typer(help="The human review gate: approve or reject assets.", no_args_is_help=True)


def _review_command(decision: str, doc: str) -> Callable[..., None]:
    """``review approve`` and ``review reject``: the same command with another decision."""

    def command(
        asset_id: str,
        comment: Annotated[str, typer.Option("--comment", "-m", help="Why (kept with the asset).")] = "",
        as_json: AsJson = False,
    ) -> None:
        body = {"decision": decision, "comment": comment}
        asset = client().json("POST", f"/v1/assets/{_id('asset', asset_id)}/review", json=body)
        emit(asset, as_json, f"asset {asset_id} {asset['review_state']}")

    command.__doc__ = doc
    return common_options()(command)


review_app.command("approve")(
    _review_command("approve", "Approve an asset pending review (reviewer or admin; not the key that made it).")
)
review_app.command("reject")(_review_command("reject", "Reject an asset pending review; it can never be published."))


@review_app.command("list")
@common_options()
def review_list(
    project: ProjectOpt = None,
    campaign: CampaignOpt = None,
    state: Annotated[
        ReviewState, typer.Option("--state", help="Review state to list (default: waiting for review).")
    ] = ReviewState.pending_review,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: AsJson = False,
) -> None:
    """The assets waiting for review, newest first (the web UI at /ui/ shows them with a player)."""
    title = "Pending review" if state is ReviewState.pending_review else f"Review state {state.value}"
    list_assets(as_json, limit, project, campaign, state, title)
