"""The canonical schema: committed JSON Schema files match the code; defaults and limits hold."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reelfoundry.schema import EXPORTED, TRANSITIONS, JobState, TemplateSpec, VideoRequest, render

SCHEMAS = Path(__file__).parents[3] / "schemas"


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_committed_schema_matches_code(name: str) -> None:
    path = SCHEMAS / f"{name}.json"
    assert path.exists(), f"run `reelfoundry schema export schemas` and commit {path}"
    assert path.read_text() == render(name), f"schemas/{name}.json is stale: run `reelfoundry schema export schemas`"


def test_no_stray_schema_files() -> None:
    # openapi.json is the API's contract, beside the canonical types (tests/unit/api/test_openapi_contract.py).
    assert {p.stem for p in SCHEMAS.glob("*.json")} == set(EXPORTED) | {"openapi"}


def test_only_prompt_is_required() -> None:
    schema = VideoRequest.model_json_schema()
    assert schema["required"] == ["prompt"]
    for name, prop in schema["properties"].items():
        assert "description" in prop or "$ref" in prop or "allOf" in prop, f"{name} has no documented default"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"prompt": "x" * 20_000}, "prompt"),
        ({"prompt": "x", "num_frames": -1}, "num_frames"),
        ({"prompt": "x", "num_frames": 10**9}, "num_frames"),
        ({"prompt": "x", "width": 641}, "width"),
        ({"prompt": "x", "num_frames": 10, "duration_s": 1}, "num_frames"),
        ({"prompt": "x", "constraints": {"data_class": "secret"}}, "data_class"),
        ({"prompt": "x", "surprise": 1}, "surprise"),
        ({"prompt": 5}, "prompt"),
    ],
)
def test_bad_requests_name_the_field(body: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        VideoRequest.model_validate(body)
    assert field in str(err.value)


def test_template_variables_must_be_defined() -> None:
    spec = {"scenes": [{"layers": [{"type": "text", "text": "Hi {client_name}"}]}]}
    with pytest.raises(ValidationError, match="client_name"):
        TemplateSpec.model_validate(spec)
    ok = TemplateSpec.model_validate({**spec, "variables": {"client_name": "Ada"}})
    assert ok.duration_s == 3.0


def test_transitions_never_leave_a_final_state() -> None:
    assert all(not src.final for src, _ in TRANSITIONS)
    assert {dst for _, dst in TRANSITIONS} == set(JobState)
