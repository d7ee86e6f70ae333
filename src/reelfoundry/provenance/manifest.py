"""Sign an MP4 with a C2PA manifest and read a file's manifests back, validated against a trust anchor."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from reelfoundry import __version__
from reelfoundry.errors import BadRequest
from reelfoundry.provenance.credentials import SigningCredentials
from reelfoundry.schema import ModelCard

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
#: IPTC digital source types: model output, and media made by an algorithm without training data
#: (template renders).
TRAINED_ALGORITHMIC = IPTC + "trainedAlgorithmicMedia"
ALGORITHMIC = IPTC + "algorithmicMedia"
#: The label of ReelFoundry's own assertion: model, weights, job and request hash.
GENERATION_LABEL = "com.reelfoundry.generation"
#: The label of the review assertion in a published file's second manifest.
REVIEW_LABEL = "com.reelfoundry.review"
#: How the review manifest's actions name its one ingredient (replaced by the real label when signed).
_PARENT = "generated"
#: Validation states a file may have and still be called valid (c2pa-rs: Invalid < Valid < Trusted).
VALID_STATES = ("Valid", "Trusted")


@dataclass(frozen=True)
class ManifestSummary:
    """One manifest of a file's chain, newest first."""

    label: str
    claim_generator: str
    title: str | None
    actions: list[dict[str, Any]]
    assertions: dict[str, Any]
    ingredients: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Verification:
    """What ``reelfoundry verify`` reports."""

    valid: bool
    validation_state: str
    trusted: bool
    claim_generator: str | None
    actions: list[dict[str, Any]]
    manifests: list[ManifestSummary]
    failures: list[dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """As a JSON-ready dict."""
        return asdict(self)


@dataclass(frozen=True)
class Signing:
    """What a worker needs to sign one output: the credentials and the facts of the generation."""

    credentials: SigningCredentials
    source_type: str
    generation: dict[str, Any]


def signing_for(credentials: SigningCredentials, card: ModelCard, job_id: str | None, request_sha256: str) -> Signing:
    """The signing facts of one generation: model id and version, weights digest, job and request hash."""
    weights = card.options.get("sha256")
    lora = card.options.get("lora")
    adapter = lora.get("sha256") if isinstance(lora, dict) else None
    pinned: dict[str, Any] | None = dict(weights) if isinstance(weights, dict) else None
    if pinned is not None and isinstance(adapter, str):
        pinned["lora"] = adapter  # a fine-tuned model's weights are the base's and its adapter's
    digest = hashlib.sha256(json.dumps(pinned, sort_keys=True).encode()).hexdigest() if pinned is not None else None
    return Signing(
        credentials=credentials,
        source_type=ALGORITHMIC if card.backend == "template" else TRAINED_ALGORITHMIC,
        generation={
            "model": card.id,
            "model_version": card.version,
            # sha256 of the card's {file: sha256} map (with its adapter's, for a fine-tune), when it pins its files
            "weights_sha256": digest,
            "job_id": job_id,
            "request_sha256": request_sha256,
        },
    )


def sign_mp4(
    src: Path,
    dst: Path,
    credentials: SigningCredentials,
    *,
    title: str,
    source_type: str,
    generation: dict[str, Any],
) -> None:
    """Write ``src`` to ``dst`` with a manifest: ``c2pa.created`` by ``source_type`` and the generation facts."""
    import c2pa

    manifest = _manifest(
        title,
        [{"action": "c2pa.created", "digitalSourceType": source_type}],
        {GENERATION_LABEL: generation},
    )
    _sign(c2pa.Builder(manifest), src, dst, credentials, "video/mp4")


def sign_review(
    src: Path, dst: Path, credentials: SigningCredentials, *, media_type: str, title: str, review: dict[str, Any]
) -> None:
    """Write ``src`` to ``dst`` with a second manifest recording the human review that released it.

    Its ingredient is ``src`` with the manifest it carries (the generation's), so the chain reads
    published ← reviewed ← created. Actions: ``c2pa.opened`` that ingredient, ``c2pa.published``.
    """
    import c2pa

    manifest = _manifest(
        title,
        [
            {"action": "c2pa.opened", "parameters": {"ingredientIds": [_PARENT]}},
            {
                "action": "c2pa.published",
                "parameters": {"description": f"released after human review ({_who(review)})"},
            },
        ],
        {REVIEW_LABEL: review},
    )
    builder = c2pa.Builder(manifest)
    with open(src, "rb") as parent:
        builder.add_ingredient({"title": title, "relationship": "parentOf", "label": _PARENT}, media_type, parent)
    _sign(builder, src, dst, credentials, media_type)


def _who(review: dict[str, Any]) -> str:
    return f"{review.get('decision', '?')} by {review.get('reviewer_role', '?')}"


def _manifest(title: str, actions: list[dict[str, Any]], assertions: dict[str, Any]) -> dict[str, Any]:
    return {
        "claim_generator_info": [{"name": "reelfoundry", "version": __version__}],
        "title": title,
        "assertions": [
            {"label": "c2pa.actions", "data": {"actions": actions}},
            *({"label": label, "data": data} for label, data in assertions.items()),
        ],
    }


def _sign(builder: Any, src: Path, dst: Path, credentials: SigningCredentials, media_type: str) -> None:
    """Sign ``src`` into ``dst`` (written beside it first, then renamed: never a half-written file)."""
    import c2pa

    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", credentials.chain_pem, credentials.key_pem, None))
    tmp = dst.with_name(dst.name + ".signing")
    try:
        with open(src, "rb") as source, open(tmp, "w+b") as out:
            builder.sign(signer, media_type, source, out)
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)
        signer.close()
        builder.close()


def verify(path: Path, trust_anchor_pem: bytes | None = None) -> Verification:
    """The manifest chain of ``path`` and its validation state; ``trust_anchor_pem`` is the CA to trust."""
    import c2pa

    if not path.is_file():
        raise BadRequest(f"no such file: {str(path)!r}")
    settings: dict[str, Any] = {"verify": {"verify_trust": trust_anchor_pem is not None}}
    if trust_anchor_pem is not None:
        settings["trust"] = {"trust_anchors": trust_anchor_pem.decode()}
    context = c2pa.Context(c2pa.Settings.from_dict(settings))
    try:
        reader = c2pa.Reader(str(path), context=context)
    except c2pa.C2paError as exc:
        # No manifest, or one too damaged to parse: a file with no provenance, not an error of the caller's.
        return Verification(
            False, "NoManifest", False, None, [], [], [{"code": "manifest.missing", "explanation": str(exc)}]
        )
    try:
        store = json.loads(reader.json())
        state = str(reader.get_validation_state())
    finally:
        reader.close()
    manifests = _chain(store)
    results = store.get("validation_results", {}).get("activeManifest", {})
    failures = [f for f in results.get("failure", []) if isinstance(f, dict)]
    active = manifests[0] if manifests else None
    return Verification(
        valid=state in VALID_STATES,
        validation_state=state,
        trusted=state == "Trusted",
        claim_generator=active.claim_generator if active else None,
        actions=active.actions if active else [],
        manifests=manifests,
        failures=failures,
    )


def _chain(store: dict[str, Any]) -> list[ManifestSummary]:
    """The active manifest, then the manifests its ingredients point to, depth first."""
    by_label: dict[str, Any] = store.get("manifests", {})
    out: list[ManifestSummary] = []
    label = store.get("active_manifest")
    seen: set[str] = set()
    todo = [label] if label else []
    while todo:
        label = todo.pop(0)
        if label in seen or label not in by_label:
            continue
        seen.add(label)
        m = by_label[label]
        assertions = {a["label"]: a.get("data") for a in m.get("assertions", []) if "label" in a}
        actions: list[dict[str, Any]] = next(
            (v.get("actions", []) for k, v in assertions.items() if k.startswith("c2pa.actions")), []
        )
        parents = [i["active_manifest"] for i in m.get("ingredients", []) if i.get("active_manifest")]
        out.append(
            ManifestSummary(
                label=label,
                claim_generator=_generator(m),
                title=m.get("title"),
                actions=list(actions),
                assertions={k: v for k, v in assertions.items() if not k.startswith("c2pa.")},
                ingredients=parents,
            )
        )
        todo.extend(parents)
    return out


def _generator(manifest: dict[str, Any]) -> str:
    info = manifest.get("claim_generator_info") or []
    if info and isinstance(info[0], dict):
        return f"{info[0].get('name', '?')}/{info[0].get('version', '?')}"
    return str(manifest.get("claim_generator", ""))
