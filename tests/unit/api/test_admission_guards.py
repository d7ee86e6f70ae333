"""POST /v1/jobs refuses webhook URLs the server must not call: a 422 naming webhook_url, and no job."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from inprocess import AppFactory

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "http://127.0.0.1:22/",
    "http://[::1]/",
    "http://localhost/",
    "http://0x7f000001/",
    "http://2130706433/",
    "http://10.0.0.1/",
    "http://127.1:8000/v1/jobs",  # the server's own API
    "http://[::ffff:127.0.0.1]/",
    "http://100.64.0.1/",
    "http://[fe80::1]/",
    "http://192.168.0.1/",
    "http://0.0.0.0/",
    "http://[fd00::1]/",
]


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_metadata_webhook_urls_are_refused(make_app: AppFactory, url: str) -> None:
    client, _ = make_app()
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "template", "webhook_url": url})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["parameter"] == "webhook_url"
    assert client.get("/v1/jobs").json()["items"] == []


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://user:secret@hooks.example.com/x", "credentials"),
        ("https://hooks.example.com/" + "a" * 2050, "2048"),
        ("ftp://hooks.example.com/", "URL"),
    ],
)
def test_credentials_long_urls_and_other_schemes_are_refused(make_app: AppFactory, url: str, why: str) -> None:
    client, _ = make_app()
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "template", "webhook_url": url})
    assert r.status_code == 422, r.text
    assert r.json()["parameter"] == "webhook_url" and why in r.text
    assert "secret" not in r.json()["detail"]
    assert client.get("/v1/jobs").json()["items"] == []


def test_allowed_hosts_let_a_private_receiver_through(make_app: AppFactory) -> None:
    client, _ = make_app(webhook_allowed_hosts=["127.0.0.1"])
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "template", "webhook_url": "http://127.0.0.1:9/hook"})
    assert r.status_code == 201, r.text
    assert r.json()["request"]["webhook_url"] == "http://127.0.0.1:9/hook"
    # Allowing 127.0.0.1 allows nothing else.
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "template", "webhook_url": "http://10.0.0.1/hook"})
    assert r.status_code == 422 and r.json()["parameter"] == "webhook_url"


def test_a_name_server_hiccup_is_503_not_a_verdict_on_the_url(
    make_app: AppFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client, _ = make_app()

    def unwell(*args: Any, **kwargs: Any) -> list[Any]:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", unwell)
    r = client.post("/v1/jobs", json={"prompt": "p", "model": "template", "webhook_url": "https://hooks.example.com/"})
    assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1, r.text
    assert client.get("/v1/jobs").json()["items"] == []
