"""The OpenAPI document as a contract: readable operation ids, one schema per model, tags, examples, the
security scheme, and every error response an operation can give, as RFC 9457 problems.

FastAPI builds the document from the routes; this module finishes it in one place. Errors every route
shares follow from what the operation is (protected → 401/403/429, an id in the path → 404, parameters or
a body → 422, a body → 413); the few that only some routes give are listed in ``EXTRA_ERRORS`` next to why.
``python -m reelfoundry.api.openapi schemas/openapi.json`` writes the document committed as the contract.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from reelfoundry.schema import Problem

PROBLEM_MEDIA_TYPE = "application/problem+json"
EXAMPLE_ID = "01JDQ0Z8Y6M3V4W5X6Y7Z8A9BC"
EXAMPLE_SERVER = "http://127.0.0.1:8000"

TAGS: list[dict[str, str]] = [
    {"name": "jobs", "description": "Submit a VideoRequest, follow its job (SSE), read, list and cancel jobs."},
    {"name": "assets", "description": "Generated and uploaded media: metadata, content, review and publication."},
    {"name": "delivery", "description": "Published files behind signed, expiring URLs (no API key)."},
    {"name": "provenance", "description": "Verify the C2PA manifests of any file against the platform's trust anchor."},
    {"name": "models", "description": "The model portfolio: model cards."},
    {"name": "finetunes", "description": "LoRA fine-tunes of a model on a collection, registered as models."},
    {"name": "budgets", "description": "Spending limits per tenant, project or campaign, and where they stand."},
    {"name": "usage", "description": "Spend, energy, carbon and unit economics, grouped and filtered."},
    {"name": "outcomes", "description": "Views, clicks, conversions and revenue per asset or campaign, and sums."},
    {"name": "kpi", "description": "The KPI scorecard: measured utilisation, queue wait, unit costs and velocity."},
    {"name": "keys", "description": "API keys and their roles (admin)."},
    {"name": "tenant", "description": "The caller's tenant settings."},
    {"name": "webhooks", "description": "Standard Webhooks: the delivery log and the signing secret."},
    {"name": "schemas", "description": "The canonical JSON Schemas (VideoRequest, Job, Asset, …)."},
    {"name": "health", "description": "Liveness, readiness and Prometheus metrics."},
]

_DESCRIPTIONS = {
    400: "Malformed request (an empty upload, a bad header or cursor).",
    401: "No API key, or an unknown or revoked one.",
    402: "A hard budget cannot cover the job's estimated cost; the problem names the budget.",
    403: "The key's role may not do this (or, for delivery, the URL is not a valid one).",
    404: "No such resource in the caller's tenant.",
    408: "The upload did not arrive in time.",
    409: "The resource's state forbids this (already reviewed, not approved, Idempotency-Key reused…).",
    410: "The delivery URL has expired.",
    413: "The request body is over the size limit.",
    415: "The body's Content-Type is not one this operation takes.",
    416: "The Range selects no bytes of the content.",
    422: "A parameter or body field is invalid; `parameter` names it.",
    429: "This API key is over its rate limit; wait `Retry-After` seconds.",
    503: "The server is at a capacity limit or a name server did not answer; wait `Retry-After` seconds.",
}

#: Errors only some operations give, by operation id (the generic ones are added by rule).
EXTRA_ERRORS: dict[str, tuple[int, ...]] = {
    "submit_job": (402, 409, 503),  # budget; Idempotency-Key reused with another body; webhook host lookup
    "cancel_job": (409,),  # already final
    "create_finetune": (409,),  # the name is a model id in use
    "cancel_finetune": (409,),  # already final
    "upload_asset": (400, 408, 415, 503),
    "verify_file": (400, 408, 415, 503),
    "review_asset": (409,),
    "publish_asset": (409,),
    "get_asset_content": (416,),
    "get_delivery": (416,),  # 403/404/410 are declared on the route itself
    "list_jobs": (400,),  # a stale cursor
    "list_assets": (400,),
    "get_metrics": (401,),  # when REELFOUNDRY_METRICS_TOKEN is set
}

#: Example request bodies, by operation id.
EXAMPLES: dict[str, Any] = {
    "submit_job": {
        "prompt": "A red circle moving left on a blue background",
        "model": "template",
        "num_frames": 48,
        "fps": 24,
        "labels": {"project": "spring-launch", "campaign": "teaser"},
        "webhook_url": "https://hooks.example.com/reelfoundry",
    },
    "create_key": {"name": "ci-bot", "role": "creator"},
    "review_asset": {"decision": "approve", "comment": "On brand; approved for the spring campaign."},
    "update_tenant": {"allow_self_approval": False},
    "create_budget": {
        "name": "spring campaign",
        "scope": "campaign",
        "scope_value": "spring-launch",
        "period": "month",
        "limit_usd": "250.00",
        "enforcement": "hard",
    },
    "rotate_webhook_secret": {"grace_s": 86400},
    "post_outcome": {
        "asset_id": "01JDQ0Z8Y6M3V4W5X6Y7Z8A9BC",
        "campaign": "spring-drop",
        "channel": "tiktok",
        "views": 100000,
        "clicks": 4200,
        "conversions": 1500,
        "revenue_usd": "52500.00",
        "spend_usd": "150.00",
        "period_start": "2026-03-01T00:00:00Z",
        "period_end": "2026-03-08T00:00:00Z",
    },
    "create_finetune": {
        "name": "acme-coral",
        "base": "builtin",
        "collection": "01JE0COLLECTION00000000000",
        "rank": 8,
        "steps": 300,
        "lr": 0.001,
    },
    "add_model": {
        "id": "ltx-video-fast",
        "name": "LTX-Video, 20 steps",
        "backend": "diffusers",
        "options": {"path": "Lightricks/LTX-Video", "pipeline_class": "LTXPipeline", "size_multiple": 32},
        "default_num_frames": 121,
        "default_fps": 24,
        "default_width": 768,
        "default_height": 512,
        "max_num_frames": 257,
        "max_width": 1216,
        "max_height": 704,
        "frame_multiple": 8,
        "frame_offset": 1,
        "default_steps": 20,
        "resources": {"weights_gib": 20, "activation_gib_per_mpf": 0.25, "devices": ["H100", "H200"], "max_batch": 4},
        "speed": {"H100": {"s_per_step_mpf": 0.02, "overhead_s": 3, "source": "assumed"}},
        "quality": {"score": 0.78, "source": "assumed: fewer steps than ltx-video"},
    },
}

#: Example query strings for the curl samples, by operation id.
_QUERIES = {
    "list_jobs": "?state=succeeded&limit=20",
    "list_assets": "?review_state=pending_review",
    "get_usage": "?by=model,day&from=2026-12-01",
    "list_outcomes": "?campaign=spring-drop&limit=20",
    "outcome_summary": "?from=2026-03-01&to=2026-03-31",
    "get_kpi": "?from=2026-12-01&to=2026-12-07",
    "get_delivery": "?expires=1796608800&signature=" + "0" * 64,
}

_BINARY_BODIES = {"upload_asset": ("image/png", "brand.png"), "verify_file": ("video/mp4", "clip.mp4")}


def operation_id(route: APIRoute) -> str:
    """A route's operation id is its endpoint's name (``submit_job``, ``get_asset``): short, stable, readable."""
    return route.name


def _problem_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": (existing or {}).get("description") or _DESCRIPTIONS.get(status, "Error."),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait before trying again.", "schema": {"type": "integer"}}
        }
    if status == 429:
        response["headers"].update(
            {
                name: {"description": f"draft-ietf-httpapi-ratelimit-headers: {name}.", "schema": {"type": "string"}}
                for name in ("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy")
            }
        )
    return response


def _curl(method: str, path: str, operation: dict[str, Any], op_id: str) -> str:
    url = EXAMPLE_SERVER + path.replace("{job_id}", EXAMPLE_ID).replace("{asset_id}", EXAMPLE_ID)
    url = url.replace("{key_id}", EXAMPLE_ID).replace("{budget_id}", EXAMPLE_ID).replace("{finetune_id}", EXAMPLE_ID)
    url = url.replace("{model_id}", "template").replace("{name}", "VideoRequest") + _QUERIES.get(op_id, "")
    parts = ["curl"]
    if method != "get":
        parts += ["-X", method.upper()]
    if operation.get("security"):
        parts += ["-H", '"Authorization: Bearer $REELFOUNDRY_API_KEY"']
    if op_id in EXAMPLES:
        parts += ["-H", "'Content-Type: application/json'", "-d", "'" + json.dumps(EXAMPLES[op_id]) + "'"]
    elif op_id in _BINARY_BODIES:
        media_type, name = _BINARY_BODIES[op_id]
        parts += ["-H", f"'Content-Type: {media_type}'", "--data-binary", f"@{name}"]
    if op_id == "stream_job_events":
        parts.insert(1, "-N")
    if op_id in ("get_asset_content", "get_delivery"):
        parts += ["-o", "clip.mp4"]
    return " ".join([*parts, f"'{url}'"])


def finish(document: dict[str, Any]) -> dict[str, Any]:
    """Add the problem responses, examples and tags to a document FastAPI generated (in place; returned)."""
    components = document.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            op_id = operation["operationId"]
            responses = operation.setdefault("responses", {})
            statuses = set(EXTRA_ERRORS.get(op_id, ()))
            if operation.get("security"):
                statuses |= {401, 403, 429}
            if "{" in path:
                statuses.add(404)
            if operation.get("parameters") or "requestBody" in operation:
                statuses.add(422)
            if "requestBody" in operation:
                statuses.add(413)
            statuses |= {int(code) for code in responses if code[0] in "45"}
            for status in sorted(statuses):
                responses[str(status)] = _problem_response(status, responses.get(str(status)))
            example = EXAMPLES.get(op_id)
            if example is not None:
                content = operation["requestBody"]["content"]["application/json"]
                content["example"] = example
            operation["x-codeSamples"] = [
                {"lang": "Shell", "label": "curl", "source": _curl(method, path, operation, op_id)}
            ]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    document["tags"] = TAGS
    return document


def install(app: FastAPI) -> None:
    """Serve the finished document at /openapi.json (built once, on first request)."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
                separate_input_output_schemas=False,
            )
            app.openapi_schema = finish(document)
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]


def render(app: FastAPI) -> str:
    """The document as committed: sorted keys, two-space indents, a final newline."""
    return json.dumps(app.openapi(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def document_text() -> str:
    """The document of an app built with default settings (the routes do not depend on settings)."""
    import tempfile

    from reelfoundry.api.app import create_app
    from reelfoundry.config import Settings

    with tempfile.TemporaryDirectory() as tmp:
        return render(create_app(Settings(data_dir=Path(tmp), worker_slots=0)))


def write_document(path: Path) -> Path:
    """Write the document to ``path`` (as committed in schemas/openapi.json); returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document_text())
    return path


def main(argv: list[str] | None = None) -> None:
    """``python -m reelfoundry.api.openapi [PATH]``: write the document (stdout without a path)."""
    args = sys.argv[1:] if argv is None else argv
    if args:
        write_document(Path(args[0]))
    else:
        sys.stdout.write(document_text())


if __name__ == "__main__":
    main()
