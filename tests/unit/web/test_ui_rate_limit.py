"""A UI session reads with its key's allowance: the review UI is no way around the API's rate limit."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from inprocess import AppFactory, app_factory


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[AppFactory]:
    with ExitStack() as stack:
        yield app_factory(stack, tmp_path)


def test_ui_pages_count_against_the_keys_read_limit(make_app: AppFactory) -> None:
    client, key = make_app(rate_limit_read="4/minute")
    client.headers.pop("Authorization")
    form = client.get("/ui/login")
    match = re.search(r'name="csrf" value="([0-9a-f]{64})"', form.text)
    assert match, form.text
    signed_in = client.post(
        "/ui/login", data={"api_key": key, "csrf": match.group(1), "next": "/ui/"}, follow_redirects=False
    )
    assert signed_in.status_code == 303
    assert [client.get("/ui/").status_code for _ in range(4)] == [200] * 4
    limited = client.get("/ui/")
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert "4 requests" in limited.text
    # The same key over the API is out of reads too: one allowance, whichever door.
    api = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 429
