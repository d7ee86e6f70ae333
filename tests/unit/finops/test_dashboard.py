"""The Grafana dashboard only queries metrics that /metrics exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from reelfoundry.config import Settings
from reelfoundry.platform import Platform

DASHBOARD = Path(__file__).parents[3] / "deploy" / "grafana" / "reelfoundry.json"


def test_every_panel_queries_an_exposed_metric(tmp_path: Path) -> None:
    platform = Platform(Settings(data_dir=tmp_path))
    platform.db.migrate()
    try:
        exposed = {f.name for f in text_string_to_metric_families(platform.metrics.render().decode())}
    finally:
        platform.db.dispose()
    exposed |= {"reelfoundry_device_utilisation", "reelfoundry_device_busy_seconds", "reelfoundry_device_idle_seconds"}
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        for name in re.findall(r"reelfoundry_[a-z0-9_]+", expr):
            base = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert base in exposed, (name, expr)
    assert {p["id"] for p in dashboard["panels"]} == set(range(1, len(dashboard["panels"]) + 1))
