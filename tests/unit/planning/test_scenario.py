"""Scenario files: what people write by hand is read strictly, and every error names the field and its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from reelfoundry.errors import InvalidParameter
from reelfoundry.planning.scenario import DataClass, load_scenario, parse_scenario

EXAMPLES = Path(__file__).parents[3] / "examples" / "scenarios"

BASE = """\
volume_per_month: 1200
seconds_per_video: 10
growth_per_year: 1.0
latency_target_s: 60
data_classes: [public, confidential]
gpu_ops_experience: some
fine_tuning: light
horizon_years: 2
"""


def test_a_minimal_scenario_takes_defaults() -> None:
    s = parse_scenario(BASE)
    assert s.weights.normalised() == pytest.approx({k: 0.2 for k in s.weights.normalised()})
    assert s.sensitivity is DataClass.confidential
    assert s.months == 24
    assert s.volume_in_month(0) == 1200 and s.volume_in_month(12) == pytest.approx(2400)  # +100 % a year
    assert s.roi is None and s.prices.device is None


@pytest.mark.parametrize(
    ("text", "field", "line"),
    [
        (BASE.replace("growth_per_year: 1.0", "growth_per_year: -2"), "growth_per_year", 3),
        (BASE.replace("[public, confidential]", "[public, secret]"), "data_classes.1", 5),
        (BASE.replace("[public, confidential]", "[public, public]"), "data_classes", 5),
        (BASE.replace("gpu_ops_experience: some", "gpu_ops_experience: lots"), "gpu_ops_experience", 6),
        (BASE.replace("seconds_per_video: 10\n", ""), "seconds_per_video", None),
        (BASE + "weights: {security: -1}\n", "weights.security", 9),
        (BASE + "weights: {volume: 0, latency: 0, security: 0, cost: 0, fine_tuning: 0}\n", "weights", 9),
        (BASE + "volume_per_mnth: 3\n", "volume_per_mnth", 9),
        (BASE + "prices:\n  utilisation: 2\n", "prices.utilisation", 10),
        (BASE + "roi:\n  ai:\n    conversion_rate: 1.5\n", "roi.ai.conversion_rate", 11),
    ],
)
def test_an_invalid_scenario_names_the_field_and_line(text: str, field: str, line: int | None) -> None:
    with pytest.raises(InvalidParameter) as err:
        parse_scenario(text, "s.yaml")
    assert err.value.parameter == field
    assert f"field {field!r}" in err.value.detail
    if line is not None:
        assert f"s.yaml: line {line}:" in err.value.detail


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("- just\n- a list\n", "a mapping of fields"),
        ("a: &x [1]\nb: *x\n", "aliases"),
        ("volume_per_month: [" * 100, "deeper than"),
        ("volume_per_month: 1\n  bad indent: [\n", "not valid YAML"),
    ],
)
def test_hostile_or_broken_yaml_is_refused(text: str, expected: str) -> None:
    with pytest.raises(InvalidParameter, match=expected):
        parse_scenario(text)


def test_files_are_bounded_and_named(tmp_path: Path) -> None:
    with pytest.raises(InvalidParameter, match="no such file"):
        load_scenario(tmp_path / "missing.yaml")
    big = tmp_path / "big.yaml"
    big.write_text("#" * 300_000)
    with pytest.raises(InvalidParameter, match="larger than"):
        load_scenario(big)
    named = tmp_path / "my_team.yaml"
    named.write_text(BASE)
    assert load_scenario(named).name == "my_team"


def test_a_stream_that_reports_no_size_is_read_only_up_to_the_bound(tmp_path: Path) -> None:
    """A FIFO, /dev/zero or /dev/stdin says size 0: the bound must hold on what is read, not on what stat says
    (reading /dev/zero to its end ran out of memory)."""
    import os
    import threading

    fifo = tmp_path / "endless.yaml"
    os.mkfifo(fifo)
    sent = 0

    def feed() -> None:
        nonlocal sent
        try:
            with fifo.open("wb") as pipe:
                for _ in range(160):  # 10 MiB, far past the 256 KiB bound
                    pipe.write(b"#" * 65_536)
                    sent += 65_536
        except BrokenPipeError:
            pass  # the reader stopped at the bound

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(InvalidParameter, match="larger than"):
        load_scenario(fifo)
    writer.join(timeout=30)
    assert not writer.is_alive() and sent < 1_048_576, sent


def test_the_shipped_examples_load() -> None:
    names = {p.stem: load_scenario(p) for p in sorted(EXAMPLES.glob("*.yaml"))}
    assert {"investment_bank", "retailer", "studio"} <= set(names)
    assert names["investment_bank"].sensitivity is DataClass.restricted
