"""Asset search, the parts that touch no database: what text an asset is found by, the tags a prompt suggests,
a safe full-text query, and the in-process semantic index (MiniLM sentence vectors, cosine).

Embeddings are unit-length float32 vectors stored as bytes beside the text (``asset_search.embedding``). They are
computed lazily, when a semantic search first needs them (``store.assets.ensure_embeddings``), not when an asset
is stored: loading MiniLM costs the process ~90 MB and a few seconds, which the scheduler that completes jobs
should not pay, and search is where the model is needed anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

import numpy as np

#: What ``asset_search.embedding_model`` names; a row made with another model is embedded again.
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
EMBEDDING_DIM = 384
#: Longest search text kept (MiniLM reads 32 tokens anyway; full text gets the rest).
MAX_BODY_CHARS = 8000
#: Words of a query used for full-text search.
MAX_QUERY_TERMS = 16
#: Suggested tags per asset.
MAX_SUGGESTIONS = 8

#: An encoder: texts → (n, EMBEDDING_DIM) unit vectors.
Encoder = Callable[[list[str]], np.ndarray]

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = frozenset(
    _WORD.findall(
        "a an the and or but of on in at to for from with without by over under into onto off up down out as is are be "
        "been being was were this that these those it its their there here very some any each every no not only than "
        "then so such too can will just about against between through during before after above below again further "
        "once all both few more most other own same quite while moving video clip shot scene"
    )
)
#: Motions the built-in model knows, kept whole as suggestions ("moving left", not "left").
_PHRASES = ("moving left", "moving right", "moving up", "moving down", "growing", "shrinking")


def search_body(
    *,
    prompt: str | None,
    title: str | None,
    description: str | None,
    tags: Sequence[str] | None,
    brand: str | None,
) -> str:
    """The text an asset is found by: prompt, title, description, tags and brand, one per line."""
    parts = [prompt, title, description, " ".join(tags or ()), brand]
    return "\n".join(p.strip() for p in parts if p and p.strip())[:MAX_BODY_CHARS]


def suggest_tags(prompt: str | None) -> list[str]:
    """Tags a prompt suggests: its motion phrases and content words (no stop words, numbers or one-letter words),
    in prompt order, at most MAX_SUGGESTIONS. A person accepts them or not; they are never applied here."""
    if not prompt:
        return []
    text = prompt.lower()
    found: list[str] = [p for p in _PHRASES if re.search(rf"\b{p}\b", text)]
    for word in _WORD.findall(text):
        if len(word) < 3 or word.isdigit() or word in _STOPWORDS or "_" in word:
            continue
        if any(word in phrase.split() for phrase in found):
            continue
        if word not in found:
            found.append(word[:64])
    return found[:MAX_SUGGESTIONS]


def query_terms(q: str) -> list[str]:
    """The words of a query, lower-cased, at most MAX_QUERY_TERMS: only these reach a full-text engine."""
    return [t.lower() for t in _WORD.findall(q)][:MAX_QUERY_TERMS]


def fts5_query(q: str) -> str | None:
    """An SQLite FTS5 query matching every word of ``q`` (each quoted, so no FTS5 syntax gets through); None when
    ``q`` has no words."""
    terms = query_terms(q)
    return " ".join(f'"{t}"' for t in terms) if terms else None


def minilm_encoder() -> Encoder:
    """The packaged MiniLM as an Encoder (one per process, loaded on first use)."""
    from reelfoundry.models.text_encoder import shared_encoder

    def encode(texts: list[str]) -> np.ndarray:
        vectors: np.ndarray = shared_encoder("cpu")(texts).pooled.float().numpy().astype(np.float32)
        return vectors

    return encode


def to_blob(vector: np.ndarray) -> bytes:
    """A unit vector as stored: float32, little-endian."""
    return np.asarray(vector, dtype="<f4").tobytes()


def from_blob(blob: bytes) -> np.ndarray:
    """A stored vector; ValueError if it is not EMBEDDING_DIM float32 values."""
    vector = np.frombuffer(blob, dtype="<f4")
    if vector.shape != (EMBEDDING_DIM,):
        raise ValueError(f"stored embedding has {vector.size} values, expected {EMBEDDING_DIM}")
    return vector


def rank(query: np.ndarray, ids: Sequence[str], matrix: np.ndarray, limit: int) -> list[tuple[str, float]]:
    """The ``limit`` ids whose rows of ``matrix`` (unit vectors) are nearest ``query`` by cosine, best first."""
    if not ids:
        return []
    q = np.asarray(query, dtype=np.float32).reshape(-1)
    q = q / max(float(np.linalg.norm(q)), 1e-12)
    scores = matrix @ q
    top = np.argsort(-scores, kind="stable")[:limit]
    return [(ids[i], float(scores[i])) for i in top]
