"""``reelfoundry plan gim`` and ``plan report`` in-process: the commands other tools run, and bad input."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from reelfoundry.cli.app import app

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"
runner = CliRunner()


def test_gim_json_ranks_the_bank_with_a_private_cloud_first() -> None:
    result = runner.invoke(app, ["plan", "gim", str(EXAMPLES / "investment_bank.yaml"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    top = data["ranking"][0]
    assert "vpc" in top["option"] or "hybrid" in top["option"]
    assert {"option", "score", "drivers"} <= set(top)
    assert set(top["drivers"]) == {"volume", "latency", "security", "cost", "fine_tuning"}
    assert data["ranking"][0]["score"] >= data["ranking"][-1]["score"]


def test_gim_table_names_the_recommendation_and_why(tmp_path: Path) -> None:
    chart = tmp_path / "gim.png"
    result = runner.invoke(app, ["plan", "gim", str(EXAMPLES / "studio.yaml"), "--chart", str(chart)])
    assert result.exit_code == 0, result.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and [p.name for p in tmp_path.iterdir()] == ["gim.png"]
    assert "Recommended: on_premise" in result.stdout
    assert "fine_tuning" in result.stdout


def test_a_bad_scenario_is_one_line_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    text = (EXAMPLES / "retailer.yaml").read_text().replace("gpu_ops_experience: none", "gpu_ops_experience: lots")
    bad.write_text(text)
    for command in ("gim", "report"):
        result = runner.invoke(app, ["plan", command, str(bad)])
        assert result.exit_code == 2, result.output
        assert "gpu_ops_experience" in result.output and "Traceback" not in result.output
    missing = runner.invoke(app, ["plan", "gim", str(tmp_path / "nope.yaml")])
    assert missing.exit_code == 2 and "no such file" in missing.output


def test_report_is_one_self_contained_html_file(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = runner.invoke(app, ["plan", "report", str(EXAMPLES / "retailer.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    for section in ('id="gim"', 'id="tco"', 'id="etco"', 'id="roi"'):
        assert section in html
    assert "<script" not in html.lower()
    # Every image is embedded; nothing is loaded from anywhere (links to catalog sources are text only).
    sources = re.findall(r'<img[^>]+src="([^"]+)"', html)
    assert len(sources) == 4 and all(s.startswith("data:image/png;base64,") for s in sources)  # GIM, TCO, E-TCO, ROI
    assert not re.search(r"<(link|iframe|object|embed)\b", html)
    assert "Public cloud video API" in html and "100,000" in html
    assert not list(tmp_path.glob(".*part"))
    nowhere = runner.invoke(
        app, ["plan", "report", str(EXAMPLES / "retailer.yaml"), "-o", str(tmp_path / "x" / "r.html")]
    )
    assert nowhere.exit_code == 2 and "does not exist" in nowhere.output
