"""``eval model --reference COLLECTION``: fidelity measured against a DAM collection's videos, read from the
platform's database and object store; and ``--record`` puts the result on the card."""

from __future__ import annotations

import json
from pathlib import Path

from inprocess import AppFactory
from typer.testing import CliRunner

from reelfoundry.cli.app import app
from reelfoundry.evaluation.nres import SUITE_SEED, suite_prompts
from reelfoundry.media import encode_mp4

runner = CliRunner()


def test_fidelity_against_a_collection_and_recorded_on_the_card(make_app: AppFactory, tmp_path: Path) -> None:
    client, _ = make_app()
    data_dir = client.app.state.platform.settings.data_dir  # type: ignore[attr-defined]
    ids = []
    for i, prompt in enumerate(suite_prompts("quick")[:3]):
        video = tmp_path / f"ref{i}.mp4"
        encode_mp4(iter(prompt.reference(SUITE_SEED)), 8, video)
        r = client.post("/v1/assets", content=video.read_bytes(), headers={"Content-Type": "video/mp4"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    collection = client.post("/v1/collections", json={"name": "brand-ref"}).json()
    assert client.post(f"/v1/collections/{collection['id']}/assets", json={"asset_ids": ids}).status_code == 200
    args = ["eval", "model", "template", "--reference", "brand-ref", "--record", "--json", "--data-dir", str(data_dir)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["reference"] == "collection brand-ref (3 videos)" and data["clips"] == 8
    assert data["frechet_distance"] is not None and 0 < data["fidelity"] < 1
    card = client.get("/v1/models/template").json()
    assert card["evaluation"]["fidelity"] == data["fidelity"] and card["evaluation"]["reference"] == data["reference"]
    assert card["quality"]["score"] == round(data["fidelity"], 4) and "NRES" in card["quality"]["source"]
    unknown = runner.invoke(app, ["eval", "model", "template", "--reference", "nope", "--data-dir", str(data_dir)])
    assert unknown.exit_code == 2 and "no collection 'nope'" in unknown.output
