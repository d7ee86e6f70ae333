"""The review UI in a real browser: Debian's chromium driven by Playwright (no browser download).

Signs in with a reviewer key, filters the queue, checks the inline player loaded the video, approves an
asset with a comment and sees the state change through the API; opens the KPI dashboard and checks its charts
loaded, and reads the same world's scorecard with ``reelfoundry kpi --json``. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from server import Server, server_env, wait_state

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("REELFOUNDRY_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir: Path = tmp_path_factory.mktemp("ui") / "data"
    srv = Server(data_dir, server_env()).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def world(server: Server) -> dict[str, Any]:
    """A creator's three finished jobs in two projects; a reviewer key."""
    with server.client() as admin:
        keys = {
            r: admin.post("/v1/keys", json={"name": r, "role": r}).json()["secret"] for r in ("creator", "reviewer")
        }
    assets = []
    with server.client(keys["creator"]) as c:
        for take, (project, campaign) in enumerate([("spring", "launch"), ("spring", "teaser"), ("autumn", "launch")]):
            body = {
                "prompt": f"A red circle moving left, take {take}",
                "model": "template",
                "num_frames": 24,
                "labels": {"project": project, "campaign": campaign},
            }
            job = c.post("/v1/jobs", json=body).json()
            done = wait_state(c, job["id"], {"succeeded", "failed"})
            assert done["state"] == "succeeded", done
            assets.append(c.get(f"/v1/assets/{done['asset_id']}").json())
    return {"keys": keys, "assets": assets}


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail("the browser test needs Debian's chromium: apt-get install -y chromium (.ci/run does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-background-networking"]
        )
        yield b
        b.close()


def login_csrf(client: httpx.Client) -> str:
    """What a browser gets with the sign-in form: the cookie (kept by the client) and the form's token."""
    page = client.get("/ui/login")
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)
    assert page.status_code == 200 and match, page.text
    return match.group(1)


def sign_in(page: Any, server: Server, key: str) -> None:
    page.goto(server.url + "/ui/")
    assert "/ui/login" in page.url
    page.fill("#api_key", key)
    page.click("form[action='/ui/login'] button[type=submit]")
    page.wait_for_selector("form.filters")


def test_a_reviewer_approves_in_the_page_and_the_api_sees_it(
    server: Server, world: dict[str, Any], browser: Any
) -> None:
    spring = [a for a in world["assets"] if a["project"] == "spring"]
    target = spring[0]
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        sign_in(page, server, world["keys"]["reviewer"])
        assert page.locator("article.card").count() == 3

        page.select_option("select[name=project]", "spring")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r"project=spring"))
        cards = page.locator("article.card")
        assert cards.count() == 2
        assert {cards.nth(i).get_attribute("id") for i in range(2)} == {f"asset-{a['id']}" for a in spring}
        card = page.locator(f"#asset-{target['id']}")
        assert "A red circle moving left, take 0" in card.inner_text()
        assert "C2PA Trusted" in card.inner_text() and "template" in card.inner_text()
        assert re.search(r"Cost\s+\$[0-9.]+ · [0-9.]+ Wh · [0-9.]+ g CO2e", card.inner_text()), card.inner_text()
        # The inline player fetched the video (through the session cookie) and decoded its first frame.
        page.wait_for_function(
            "id => { const v = document.querySelector(`#asset-${id} video`); return v && v.readyState >= 2; }",
            arg=target["id"],
            timeout=20_000,
        )
        assert card.locator("video").evaluate("v => v.videoWidth") == target["width"]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "review-ui-queue.png"), full_page=True)

        card.locator("textarea[name=comment]").fill("Colours on brand; approved for the spring launch.")
        card.get_by_role("button", name=f"Approve asset {target['id']}").click()
        page.wait_for_selector(".notice")
        assert f"Asset {target['id']} is now approved." in page.locator(".notice").inner_text()
        assert page.locator("article.card").count() == 1  # the approved one left the pending queue
        page.screenshot(path=str(ARTIFACTS / "review-ui-approved.png"), full_page=True)
    finally:
        context.close()

    with server.client(world["keys"]["creator"]) as api:
        asset = api.get(f"/v1/assets/{target['id']}").json()
    assert asset["review_state"] == "approved"
    assert asset["review"]["comment"] == "Colours on brand; approved for the spring launch."
    assert asset["review"]["reviewer_role"] == "reviewer"
    # Nothing the page needed came from anywhere but this server.
    assert requested and all(u.startswith(server.url + "/") for u in requested), requested
    assert (ARTIFACTS / "review-ui-approved.png").stat().st_size > 10_000


def test_a_creator_sees_the_queue_but_no_review_buttons_and_bad_keys_stay_out(
    server: Server, world: dict[str, Any], browser: Any
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, server, world["keys"]["creator"])
        assert page.locator("article.card").count() >= 1
        assert page.locator("button.approve").count() == 0
        assert "can look but not review" in page.inner_text("main")
        page.click("header form button")  # sign out
        page.wait_for_url(re.compile(r"/ui/login"))
        page.fill("#api_key", "rf_01ARZ3NDEKTSV4RRFFQ69G5FAV_not-a-key")
        page.click("form[action='/ui/login'] button[type=submit]")
        assert "not valid" in page.locator(".error").inner_text()
        page.goto(server.url + "/ui/")
        assert "/ui/login" in page.url
    finally:
        context.close()


def test_forms_need_the_session_and_its_csrf_token(server: Server, world: dict[str, Any]) -> None:
    asset = world["assets"][2]
    url = f"{server.url}/ui/assets/{asset['id']}/review"
    form = {"decision": "approve", "comment": "", "next": "/ui/"}
    anonymous = httpx.post(url, data=form)
    assert anonymous.status_code == 303 and "/ui/login" in anonymous.headers["location"]
    with httpx.Client(base_url=server.url) as browser_like:
        cross_site = browser_like.post("/ui/login", data={"api_key": world["keys"]["reviewer"], "next": "/ui/"})
        assert cross_site.status_code == 403 and "rf_session" not in cross_site.cookies  # no form, no sign-in
        r = browser_like.post(
            "/ui/login",
            data={
                "api_key": world["keys"]["reviewer"],
                "next": "https://evil.example/",
                "csrf": login_csrf(browser_like),
            },
        )
        assert r.status_code == 303 and r.headers["location"] == "/ui/"  # never off-site
        assert r.cookies.get("rf_session") and world["keys"]["reviewer"] not in r.headers["set-cookie"]
        forged = browser_like.post(f"/ui/assets/{asset['id']}/review", data={**form, "csrf": "0" * 64})
        assert forged.status_code == 403
        assert browser_like.get(f"/ui/assets/{asset['id']}/content").status_code == 200
        assert browser_like.get("/ui/assets/..%2F..%2Fsecret.key/content").status_code == 404
    assert httpx.get(f"{server.url}/ui/assets/{asset['id']}/content").status_code == 401
    with server.client() as api:
        assert api.get(f"/v1/assets/{asset['id']}").json()["review_state"] == "pending_review"


@pytest.mark.parametrize(
    "cookie",
    [
        "garbage",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV.²².aaaa",
        "01ARZ3NDEKTSV4RRFFQ69G5FAV.1" + "9" * 5000 + "." + "a" * 64,
        "01ARZ3NDEKTSV4RRFFQ69G5FAV.99999999999." + "é" * 64,
    ],
)
def test_forged_session_cookies_are_a_sign_in_page_not_an_error(server: Server, cookie: str) -> None:
    r = httpx.get(f"{server.url}/ui/", headers={"Cookie": f"rf_session={cookie}".encode("latin-1")})
    assert r.status_code == 303 and "/ui/login" in r.headers["location"]


def test_a_card_whose_file_is_gone_still_shows(server: Server, world: dict[str, Any]) -> None:
    victim = world["assets"][1]
    (server.data_dir / "media" / victim["tenant_id"] / f"{victim['id']}.mp4").unlink()
    with httpx.Client(base_url=server.url) as browser_like:
        csrf = login_csrf(browser_like)
        browser_like.post("/ui/login", data={"api_key": world["keys"]["reviewer"], "next": "/ui/", "csrf": csrf})
        page = browser_like.get("/ui/", params={"state": "all"})
    assert page.status_code == 200 and "C2PA file missing" in page.text


def _nearest_rank(values: list[float], percent: int) -> float:
    ordered = sorted(values)
    return ordered[max(1, -(-percent * len(ordered) // 100)) - 1]


def test_kpi_json_from_the_cli_agrees_with_the_world(server: Server, world: dict[str, Any], tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "reelfoundry", "kpi", "--json", "--server", server.url, "--api-key", server.admin_key]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REELFOUNDRY_")}
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    card = json.loads(done.stdout)
    assert {"gpu_utilization", "queue_wait_s", "cost_per_inference_usd", "approval_rate"} <= set(card)

    with server.client() as api:
        jobs = [api.get(f"/v1/jobs/{a['job_id']}").json() for a in world["assets"]]
        assets = [api.get(f"/v1/assets/{a['id']}").json() for a in world["assets"]]
        usage = api.get("/v1/usage").json()["rows"][0]
    # The three finished jobs, and nothing else, are what the figures rest on.
    cost = card["cost_per_inference_usd"]
    assert (cost["n"], cost["jobs"], cost["succeeded"]) == (3, 3, 3)
    assert Decimal(cost["total_usd"]) == Decimal(usage["total_usd"]) > 0
    assert Decimal(cost["value"]) == (Decimal(usage["total_usd"]) / 3).quantize(Decimal("1e-10"))
    gpu = card["gpu_utilization"]
    assert gpu["available"] and gpu["n"] == 3 and 0 < Decimal(gpu["value"]) <= 1
    assert [d["device"] for d in gpu["devices"]] == ["cpu"] and "Device classes: cpu" in gpu["definition"]
    waits = [
        (datetime.fromisoformat(j["started_at"]) - datetime.fromisoformat(j["created_at"])).total_seconds()
        for j in jobs
    ]
    wait = card["queue_wait_s"]
    assert wait["n"] == 3 and wait["finetune"]["n"] == 0
    assert wait["p50_s"] == pytest.approx(_nearest_rank(waits, 50), abs=1e-6)
    assert wait["p95_s"] == pytest.approx(max(waits), abs=1e-6)
    decided = [a["review_state"] for a in assets if a["review_state"] != "pending_review"]
    approval = card["approval_rate"]
    if decided:  # the approval in the page test above (this test alone: none decided yet)
        approved = sum(s in ("approved", "published") for s in decided)
        assert approval["n"] == len(decided) and approval["approved"] == approved
        assert Decimal(approval["value"]) == (Decimal(approved) / len(decided)).quantize(Decimal("0.0001"))
    else:
        assert not approval["available"] and approval["reason"]
    assert card["energy_kwh_per_video"]["videos"] == 3
    assert card["cost_per_business_outcome_usd"]["reason"] == "no outcomes posted"


def test_the_kpi_dashboard_renders_its_figures_and_charts(server: Server, world: dict[str, Any], browser: Any) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    try:
        sign_in(page, server, world["keys"]["reviewer"])
        page.click("header nav.pages a")  # the link every signed-in page carries
        page.wait_for_url(re.compile(r"/ui/kpi$"))
        page.wait_for_selector("section.kpis")
        page.wait_for_function(
            "() => { const imgs = [...document.querySelectorAll('.charts img')];"
            " return imgs.length === 5 && imgs.every(i => i.complete && i.naturalWidth > 0); }",
            timeout=30_000,
        )
        cost = page.locator("#kpi-cost_per_inference_usd").inner_text()
        assert re.search(r"\$[0-9.]+", cost) and "n = 3" in cost, cost
        gpu = page.locator("#kpi-gpu_utilization").inner_text()
        assert re.search(r"[0-9.]+ %", gpu) and "device class: cpu" in gpu, gpu
        assert "n = 3" in page.locator("#kpi-queue_wait_s").inner_text()
        assert "not available: no outcomes posted" in page.locator("#kpi-cost_per_business_outcome_usd").inner_text()
        assert page.locator(".kpi-empty").count() == 0
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "kpi-dashboard.png"), full_page=True)
    finally:
        context.close()
    assert any("/ui/kpi/charts/" in u for u in requested)
    assert all(u.startswith(server.url + "/") for u in requested), requested
