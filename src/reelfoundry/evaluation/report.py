"""An onboarding report as one self-contained HTML page: inline style, posters as data URIs, no scripts, nothing
fetched from anywhere (it is read offline, attached to tickets, and a report must not phone home either).

Every value from the card or the model's run is escaped: a card's name or an error message is text, never markup.
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

from reelfoundry.evaluation.onboarding import OnboardingReport, report_json

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;color:#1d1d1f;padding:0 1rem}
h1{font-size:1.4rem;margin-bottom:.2rem}.sub{color:#555;margin-top:0}
.verdict{display:inline-block;padding:.3rem .8rem;border-radius:4px;font-weight:600;color:#fff}
.pass{background:#1f7a3a}.fail{background:#b3261e}
table{border-collapse:collapse;width:100%;margin:1rem 0}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f6}
td.ok{color:#1f7a3a;font-weight:600}td.no{color:#b3261e;font-weight:600}
.posters img{width:128px;height:auto;margin-right:.5rem;image-rendering:pixelated;border:1px solid #ccc}
code{font-size:.9em}
"""
#: Nothing but inline style and data-URI images: the page loads nothing and runs nothing.
_CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"
#: NRES fields shown in the metrics table, with their labels.
_METRICS = (
    ("fidelity", "fidelity"),
    ("frechet_distance", "Fréchet distance"),
    ("feature_extractor", "features"),
    ("reference", "reference"),
    ("temporal_consistency", "temporal consistency"),
    ("flicker", "flicker"),
    ("seconds_per_clip", "s per clip (warm)"),
    ("cold_seconds_per_clip", "s per clip (cold)"),
    ("seconds_per_video_second", "s per video second"),
    ("peak_memory_mb", "peak memory (MB)"),
    ("peak_memory_method", "memory measured by"),
    ("device_seconds", "device-seconds"),
    ("energy_kwh", "energy (kWh)"),
    ("cost_per_clip_usd", "$ per clip"),
    ("nres", "NRES"),
    ("nres_formula", "NRES formula"),
)


def render_html(report: OnboardingReport) -> str:
    """The report as a complete HTML document."""
    verdict = "passed" if report.passed else f"refused ({len(report.failed)} of {len(report.checks)} checks failed)"
    rows = "".join(
        f"<tr><td>{escape(c.group)}</td><td><code>{escape(c.name)}</code></td>"
        f"<td class={'ok' if c.passed else 'no'}>{'pass' if c.passed else 'FAIL'}</td><td>{escape(c.detail)}</td></tr>"
        for c in report.checks
    )
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f'<meta http-equiv=Content-Security-Policy content="{_CSP}">',
        f"<title>Onboarding: {escape(report.model)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Onboarding report: {escape(report.model)} (version {escape(report.model_version)})</h1>",
        f"<p class=sub>{escape(report.date)} · suite {escape(report.suite)} {escape(report.suite_version)} · card "
        f"sha256 <code>{escape(report.card_sha256)}</code></p>",
        f"<p><span class='verdict {'pass' if report.passed else 'fail'}'>{escape(verdict)}</span></p>",
        "<h2>Checks</h2><table><tr><th>group</th><th>check</th><th>result</th><th>finding</th></tr>",
        rows,
        "</table>",
    ]
    if report.nres is not None:
        parts += ["<h2>NRES</h2><table>", _metric_rows(report.nres), "</table>"]
    if report.posters:
        images = "".join(
            f"<img alt='suite clip {i}' src='data:image/jpeg;base64,{escape(p)}'>" for i, p in enumerate(report.posters)
        )
        parts += ["<h2>Suite clips (middle frames)</h2><p class=posters>", images, "</p>"]
    parts.append("</body></html>\n")
    return "".join(parts)


def _metric_rows(nres: dict[str, Any]) -> str:
    return "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(str(nres.get(key)))}</td></tr>"
        for key, label in _METRICS
        if key in nres
    )


def write_reports(report: OnboardingReport, html_path: Path) -> tuple[Path, Path]:
    """Write the HTML report and the JSON beside it (same name, ``.json``); both paths."""
    json_path = html_path.with_suffix(".json")
    html_path.write_text(render_html(report), encoding="utf-8")
    json_path.write_text(report_json(report) + "\n", encoding="utf-8")
    return html_path, json_path
