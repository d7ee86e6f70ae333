"""The shipped price catalog: every row has a source and a date; prices are positive Decimals."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal

from reelfoundry.finops.catalog import Catalog, load_catalog


def test_every_row_carries_a_source_and_a_date() -> None:
    catalog = load_catalog()
    rows = catalog.rows()
    assert len(rows) > 100
    for row in rows:
        assert row["source"].strip() and row["as_of"].strip(), row
    assert {r["kind"] for r in rows} == set(Catalog.SECTIONS)


def test_the_catalog_covers_what_the_platform_prices() -> None:
    c = load_catalog()
    for provider in ("aws", "coreweave", "lambda"):
        assert {r.device for r in c.gpu if r.provider == provider} >= {"A100-80GB", "H100", "B200"}
        assert c.egress_price(provider) is not None
    assert {r.pricing_model for r in c.gpu} >= {"on-demand", "spot", "reserved"}
    assert (
        c.egress_price("aws").usd_per_gb
        > 0
        == c.egress_price("coreweave").usd_per_gb
        == c.egress_price("lambda").usd_per_gb
    )
    assert all(r.usd_per_device_hour > 0 for r in (*c.gpu, *c.cpu))
    assert all(isinstance(r.usd_per_gb_month, Decimal) for r in c.storage)
    assert {"world", "US", "DE", "FR"} <= {r.region for r in c.carbon}
    assert any(r.provider == "local" and r.device == "cpu" for r in c.cpu)
    assert c.video_api and c.onprem and c.power


def test_prices_command_lists_the_catalog() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "reelfoundry", "prices", "--json", "--kind", "egress"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stderr
    data = json.loads(run.stdout)
    assert data["version"] == load_catalog().version
    assert data["rows"] and {r["kind"] for r in data["rows"]} == {"egress"}
    bad = subprocess.run(
        [sys.executable, "-m", "reelfoundry", "prices", "--kind", "gpus"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
