"""Tiny real LTX and Wan pipelines behind a real server: submit, wait, download, decode; bad input is a 422."""

from __future__ import annotations

import copy
import io
from collections.abc import Iterator
from typing import Any

import av
import pytest
from faulty_backend import CARD as FAULTY_CARD
from server import Server, models_file, server_env, wait_state
from tiny_pipelines import CARD_DEFAULTS, build_tiny_ltx, build_tiny_wan

# Registered under this import path until registry.py names the backend "diffusers".
BACKEND = "reelfoundry.portfolio.backends.diffusers:DiffusersBackend"


@pytest.fixture(scope="module")
def diffusers_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose portfolio adds the faulty card and one card per tiny pipeline."""
    root = tmp_path_factory.mktemp("diffusers")
    cards: list[dict[str, Any]] = [FAULTY_CARD]
    for kind, build in (("ltx", build_tiny_ltx), ("wan", build_tiny_wan)):
        build(root / kind)
        card = copy.deepcopy(CARD_DEFAULTS[kind])
        card["options"]["path"] = str(root / kind)
        cards.append({"id": f"tiny-{kind}", "name": f"Tiny {kind}", "backend": BACKEND, **card})
    env = server_env(job_timeout_s=60, cancel_grace_s=2)
    # server_env registers only the faulty card; the whole list replaces it.
    env["REELFOUNDRY_MODELS_FILE"] = models_file(cards)
    env["HF_HUB_OFFLINE"] = "1"
    srv = Server(root / "data", env).start()
    yield srv
    srv.stop()


@pytest.mark.parametrize("kind", ["ltx", "wan"])
def test_job_renders_a_decodable_mp4(diffusers_server: Server, kind: str) -> None:
    body = {"prompt": "a cat dance at dawn", "model": f"tiny-{kind}", "num_frames": 9, "steps": 2, "seed": 7}
    with diffusers_server.client() as c:
        r = c.post("/v1/jobs", json=body)
        assert r.status_code == 201, r.text
        # The first job also pays for starting the worker and loading torch and the pipeline.
        done = wait_state(c, r.json()["id"], {"succeeded", "failed", "cancelled"}, timeout=120)
        assert done["state"] == "succeeded", done.get("error")
        content = c.get(f"/v1/assets/{done['asset_id']}/content")
        assert content.status_code == 200 and content.headers["content-type"] == "video/mp4"
    with av.open(io.BytesIO(content.content)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == 9
    assert (frames[0].width, frames[0].height) == (32, 32)
    # Every output is signed in the worker: the stored asset verifies against the server's CA.
    from reelfoundry.provenance.credentials import CA_FILE, DEV_DIR
    from reelfoundry.provenance.manifest import TRAINED_ALGORITHMIC, verify

    stored = diffusers_server.data_dir / f"{kind}.mp4"
    stored.write_bytes(content.content)
    report = verify(stored, (diffusers_server.data_dir / DEV_DIR / CA_FILE).read_bytes())
    assert report.trusted and report.actions[0]["digitalSourceType"] == TRAINED_ALGORITHMIC
    generation = report.manifests[0].assertions["com.reelfoundry.generation"]
    assert generation["model"] == f"tiny-{kind}" and generation["job_id"] == done["id"]


@pytest.mark.parametrize(
    ("model", "fields", "parameter"),
    [
        ("tiny-ltx", {"num_frames": 10}, "num_frames"),
        # 48 passes the card's max and H.264's evenness; only the backend knows LTX needs multiples of 32.
        ("tiny-ltx", {"width": 48}, "width"),
        ("tiny-wan", {"steps": 0}, "steps"),
    ],
)
def test_bad_parameter_is_a_422_naming_it(
    diffusers_server: Server, model: str, fields: dict[str, Any], parameter: str
) -> None:
    with diffusers_server.client() as c:
        r = c.post("/v1/jobs", json={"prompt": "a cat", "model": model, **fields})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["parameter"] == parameter and parameter in r.json()["detail"]
