"""Fine-tuned models' adapters: stored in the object store, cached on each node that runs them.

A fine-tuned card names its adapter by storage key (``options.lora``: ``key`` of the weights, ``files`` by name,
``sha256`` of the weights). :func:`localise` gives the card a worker loads — ``options.lora.path`` naming the copy
in the node's cache, ``<data dir>/adapters/<sha256>/`` — and the files to copy there; :func:`fetch` copies them
(once per adapter and node) and checks the weights against the pinned sha256.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from reelfoundry.assets.objectstore import ObjectStore, StorageUnavailable
from reelfoundry.errors import ModelIntegrityError, ReelFoundryError
from reelfoundry.ids import new_id
from reelfoundry.media.probe import file_digest
from reelfoundry.schema import ModelCard

_HEX = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class CachedAdapter:
    """An adapter's files: (storage key, path in the cache), the weights first; and the weights' pinned sha256."""

    files: tuple[tuple[str, Path], ...] = ()
    sha256: str = ""


def localise(card: ModelCard, cache_root: Path) -> tuple[ModelCard, CachedAdapter]:
    """The card a worker gets (its adapter read from the cache) and what the cache needs; a card without a stored
    adapter (or one this platform did not make) comes back as it is."""
    lora = card.options.get("lora")
    if not isinstance(lora, dict) or not lora.get("key"):
        return card, CachedAdapter()
    sha256 = str(lora.get("sha256") or "")
    files: dict[str, str] = {str(k): str(v) for k, v in dict(lora.get("files") or {}).items()}
    main = next((name for name, key in files.items() if key == lora["key"]), None)
    odd_names = any("/" in name or name.startswith(".") for name in files)
    if len(sha256) != 64 or not set(sha256) <= _HEX or main is None or odd_names:
        return card, CachedAdapter()  # not one this platform made: the backend says what is wrong with it
    cache = cache_root / sha256
    ordered = [main, *sorted(name for name in files if name != main)]
    options = {**card.options, "lora": {**lora, "path": str(cache / main)}}
    adapter = CachedAdapter(tuple((files[name], cache / name) for name in ordered), sha256)
    return card.model_copy(update={"options": options}), adapter


def fetch(store: ObjectStore, adapter: CachedAdapter, model: str) -> ReelFoundryError | None:
    """Fill the cache for ``adapter`` unless it holds the right weights already. None when ready; otherwise the
    error: StorageUnavailable (retryable), or ModelIntegrityError (gone from the store, or not the pinned bytes)."""
    if not adapter.files:
        return None
    weights = adapter.files[0][1]
    if weights.is_file() and file_digest(weights)[1] == adapter.sha256:
        return None
    weights.parent.mkdir(parents=True, exist_ok=True)
    try:
        for key, path in adapter.files:
            part = path.with_name(f".{path.name}.{new_id()}.part")
            try:
                with part.open("wb") as fh:
                    for chunk in store.read_range(key):
                        fh.write(chunk)
                part.replace(path)
            finally:
                part.unlink(missing_ok=True)
    except StorageUnavailable as exc:
        return exc
    except FileNotFoundError:
        return ModelIntegrityError(weights.name, f"the adapter of model {model!r} is missing from storage")
    if file_digest(weights)[1] != adapter.sha256:
        weights.unlink(missing_ok=True)
        return ModelIntegrityError(weights.name, f"the adapter of model {model!r} does not match its pinned sha256")
    return None
