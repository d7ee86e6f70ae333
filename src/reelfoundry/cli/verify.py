"""``reelfoundry verify FILE``: a file's C2PA provenance."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from reelfoundry.cli.client import CLIError
from reelfoundry.cli.common import AsJson, common_options, console, print_json, state


@common_options("data_dir")
def verify(
    file: Annotated[Path, typer.Argument(help="A media file with C2PA manifests (an MP4 from ReelFoundry).")],
    trust_anchor: Annotated[
        Path | None,
        typer.Option("--trust-anchor", help="PEM of the CA to trust (default: the data dir's development CA)."),
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Check a file's C2PA provenance: the manifest chain, its actions and its validation state.

    Without --data-dir it trusts the development CAs of ./reelfoundry-data (`serve`) and of your user data
    directory (`generate`). Exit code 0 when the manifests are valid, 1 when they are not (or there are none).
    """
    from reelfoundry.cli.generate import user_data_dir
    from reelfoundry.config import Settings
    from reelfoundry.provenance.credentials import trust_anchor_path
    from reelfoundry.provenance.manifest import verify as verify_file

    if trust_anchor is not None and not trust_anchor.is_file():
        raise CLIError(f"no such trust anchor: {str(trust_anchor)!r}")
    data_dir = state().data_dir
    if trust_anchor is not None:
        anchors = [trust_anchor]
    elif data_dir is not None:
        anchors = [trust_anchor_path(Settings(data_dir=data_dir))]
    else:
        settings = Settings()
        anchors = [trust_anchor_path(settings)]
        if settings.signing_trust_anchor is None:
            anchors.append(trust_anchor_path(Settings(data_dir=user_data_dir())))
    pem = b"".join(a.read_bytes() for a in dict.fromkeys(anchors) if a.is_file())
    report = verify_file(file, pem or None)
    if as_json:
        print_json(report.to_json())
    else:
        colour = "green" if report.valid else "red"
        who = report.claim_generator or "no manifest"
        console.print(f"[{colour}]{report.validation_state}[/{colour}]  {who}", highlight=False)
        for m in report.manifests:
            acts = ", ".join(str(a.get("action")) for a in m.actions) or "-"
            console.print(f"  {m.label}: {m.claim_generator}; actions {acts}", highlight=False)
        for f in report.failures:
            console.print(f"  [red]{f.get('code')}[/red]: {f.get('explanation', '')}", highlight=False)
    if not report.valid:
        raise typer.Exit(1)
