"""The typed clients' ``outcomes`` and ``kpi`` against the real app in-process (sync and async)."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import httpx
from inprocess import AppFactory

from reelfoundry.client import ApiError, AsyncClient, Client


def test_outcomes_and_the_scorecard_through_both_clients(make_app: AppFactory) -> None:
    app_client, key = make_app()

    def forward(request: httpx.Request) -> httpx.Response:  # the sync client through the app's TestClient
        r = app_client.request(
            request.method, request.url.raw_path.decode(), content=request.content, headers=request.headers
        )
        return httpx.Response(r.status_code, headers=r.headers, content=r.content)

    with Client(str(app_client.base_url), key, transport=httpx.MockTransport(forward), max_retries=0) as c:
        posted = c.outcomes.create(campaign="spring", views=1000, conversions=15, revenue_usd="525.5", spend_usd=15)
        c.outcomes.create(campaign="autumn", views=10, conversions=1)
        assert posted.campaign == "spring" and Decimal(posted.revenue_usd) == Decimal("525.5")
        assert {o.campaign for o in c.outcomes.list(limit=1)} == {"spring", "autumn"}  # both pages
        summary = c.outcomes.summary()
        assert summary.totals.conversions == 16 and summary.totals.views == 1010
        assert [b.campaign for b in summary.by_campaign] == ["spring", "autumn"]  # largest revenue first
        assert c.outcomes.summary("autumn").totals.conversions == 1
        card = c.kpi("2026-01-01")
        assert card.start is not None and card.start.year == 2026
        assert not card.approval_rate.available  # nothing reviewed yet, and it says so
        try:
            c.outcomes.create(views=1)  # neither an asset nor a campaign
        except ValueError:
            pass
        else:
            raise AssertionError("an outcome without a subject was accepted")
        try:
            c.kpi("not-a-date")
        except ApiError as err:
            assert err.status == 422
        else:
            raise AssertionError("a bad date was accepted")

    async def run() -> None:
        transport = httpx.ASGITransport(app=app_client.app)
        async with AsyncClient(str(app_client.base_url), key, transport=transport, max_retries=0) as ac:
            await ac.outcomes.create(campaign="spring", views=5)
            summary = await ac.outcomes.summary("spring")
            assert summary.totals.views == 1005
            assert len([o async for o in ac.outcomes.list(campaign="spring")]) == 2
            assert (await ac.kpi()).tenant_id is not None

    asyncio.run(run())
