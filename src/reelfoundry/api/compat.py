"""Breaking changes between two OpenAPI documents of one API version.

Inside ``/v1`` a client written against the committed document must keep working. Breaking, and named:
a removed path or operation; a removed field, enum value or schema; a request field that becomes required
(or a query parameter that does); a request field whose type is narrowed (it accepts fewer types than
before). Additions (paths, operations, optional fields, enum values in requests, responses) are not.
``python -m reelfoundry.api.compat OLD.json NEW.json`` prints the breaking changes; exit 1 if there are any.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_REF = "#/components/schemas/"


def _refs(node: Any) -> Iterator[str]:
    """Names of the component schemas a node refers to, anywhere inside it."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            yield ref.removeprefix(_REF)
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _reachable(document: dict[str, Any], roots: list[Any]) -> set[str]:
    """Every component schema reachable from ``roots`` through $refs."""
    schemas = document.get("components", {}).get("schemas", {})
    seen: set[str] = set()
    todo = [name for root in roots for name in _refs(root)]
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def _operations(document: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in document.get("paths", {}).items():
        for method in _METHODS:
            if method in item:
                yield path, method, item[method]


def _sides(document: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Schemas a client sends (request bodies, parameters) and schemas it reads (responses)."""
    requests: list[Any] = []
    responses: list[Any] = []
    for _, _, operation in _operations(document):
        requests.append(operation.get("requestBody", {}))
        requests.append(operation.get("parameters", []))
        responses.append(operation.get("responses", {}))
    return _reachable(document, requests), _reachable(document, responses)


def _types(schema: dict[str, Any]) -> set[str]:
    """The JSON types (or referenced schema names) a schema accepts; empty for "anything"."""
    if "$ref" in schema:
        return {"ref:" + str(schema["$ref"]).removeprefix(_REF)}
    found: set[str] = set()
    kind = schema.get("type")
    if isinstance(kind, str):
        found.add(kind)
    elif isinstance(kind, list):
        found.update(str(k) for k in kind)
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            found |= _types(option)
    return found


def _enum(schema: dict[str, Any]) -> set[Any]:
    values = set(schema.get("enum", []))
    for key in ("anyOf", "oneOf"):
        for option in schema.get(key, []):
            values |= set(option.get("enum", []))
    return values


def breaking_changes(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Every change from ``old`` to ``new`` that can break a client of ``old``, one line each."""
    problems: list[str] = []
    new_ops = {(path, method): op for path, method, op in _operations(new)}
    old_paths = set(old.get("paths", {}))
    for path in sorted(old_paths - set(new.get("paths", {}))):
        problems.append(f"path removed: {path}")
    for path, method, operation in _operations(old):
        if path not in new.get("paths", {}):
            continue
        now = new_ops.get((path, method))
        if now is None:
            problems.append(f"operation removed: {method.upper()} {path}")
            continue
        before = {(p["in"], p["name"]): p for p in operation.get("parameters", []) if "name" in p}
        for p in now.get("parameters", []):
            key = (p.get("in"), p.get("name"))
            was = before.get(key)
            if p.get("required") and (was is None or not was.get("required")):
                problems.append(f"parameter became required: {method.upper()} {path} {p.get('in')} {p.get('name')}")
        if "requestBody" in now and now["requestBody"].get("required") and "requestBody" not in operation:
            problems.append(f"request body became required: {method.upper()} {path}")
    old_schemas = old.get("components", {}).get("schemas", {})
    new_schemas = new.get("components", {}).get("schemas", {})
    sent, read = _sides(old)
    for name in sorted(sent | read):
        if name not in new_schemas:
            problems.append(f"schema removed: {name}")
            continue
        problems.extend(_schema_changes(name, old_schemas[name], new_schemas[name], request=name in sent))
    return problems


def _schema_changes(name: str, old: dict[str, Any], new: dict[str, Any], *, request: bool) -> list[str]:
    problems: list[str] = []
    removed_values = _enum(old) - _enum(new)
    if _enum(old) and removed_values:
        problems.append(f"enum value removed: {name} {sorted(map(str, removed_values))}")
    old_props: dict[str, Any] = old.get("properties", {})
    new_props: dict[str, Any] = new.get("properties", {})
    for field in sorted(set(old_props) - set(new_props)):
        problems.append(f"field removed: {name}.{field}")
    if request:
        was_required = set(old.get("required", []))
        for field in sorted(set(new.get("required", [])) - was_required):
            problems.append(f"request field became required: {name}.{field}")
        for field in sorted(set(old_props) & set(new_props)):
            before, after = _types(old_props[field]), _types(new_props[field])
            if before and after and after < before:
                lost = ", ".join(sorted(before - after))
                problems.append(f"request field type narrowed: {name}.{field} no longer accepts {lost}")
            removed_values = _enum(old_props[field]) - _enum(new_props[field])
            if _enum(old_props[field]) and removed_values:
                problems.append(f"enum value removed: {name}.{field} {sorted(map(str, removed_values))}")
    return problems


def main(argv: list[str] | None = None) -> int:
    """``python -m reelfoundry.api.compat OLD.json NEW.json``: print breaking changes; 1 if any."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m reelfoundry.api.compat OLD.json NEW.json", file=sys.stderr)
        return 2
    old, new = (json.loads(Path(a).read_text()) for a in args)
    problems = breaking_changes(old, new)
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
