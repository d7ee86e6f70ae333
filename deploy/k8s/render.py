"""Render the kustomize overlays under deploy/k8s/overlays into deploy/k8s/rendered/<overlay>.yaml.

`kubectl apply -k deploy/k8s/overlays/gpu` needs no rendered file; the rendered ones are committed so that
the manifests can be read, reviewed and validated (tests/scaleout/test_manifests.py) where no kustomize
binary exists, and applied with `kubectl apply -f` by anyone without kustomize.

This implements only the subset of kustomize these manifests use, and refuses anything else rather than
render it wrongly: `resources` (files and directories with a kustomization.yaml), `patches` (a strategic
merge patch of mappings, or a JSON 6902 operation list with a `target`), `images` (`newName`, `newTag`,
`digest`, on every `containers`/`initContainers` entry at any depth, as kustomize does), and kustomize's
default ("legacy") output order. Where `kubectl kustomize` exists, the tests check that it renders the
same objects.

    python deploy/k8s/render.py            # rewrite every overlay's rendered file
    python deploy/k8s/render.py --check    # exit 1 if a committed rendered file is out of date
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path
from typing import Any

import yaml

K8S = Path(__file__).resolve().parent
OVERLAYS = K8S / "overlays"
RENDERED = K8S / "rendered"

SUPPORTED_KEYS = {"apiVersion", "kind", "resources", "patches", "images"}

# kustomize's default output order (its "legacy" sort): these kinds first, in this order, then every other
# kind, then the webhook configurations last; ties keep their order by kind, then name.
_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition", "ServiceAccount",
    "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding", "ConfigMap", "Secret",
    "Endpoints", "Service", "LimitRange", "PriorityClass", "PersistentVolume", "PersistentVolumeClaim",
    "Deployment", "StatefulSet", "CronJob", "PodDisruptionBudget",
]  # fmt: skip
_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]

Resource = dict[str, Any]


class RenderError(Exception):
    """A kustomization this renderer cannot render faithfully (or at all)."""


def build(directory: Path) -> list[Resource]:
    """The resources of the kustomization in ``directory``, patched, with images set, in output order."""
    kustomization_file = directory / "kustomization.yaml"
    if not kustomization_file.is_file():
        raise RenderError(f"{directory}: no kustomization.yaml")
    kustomization = yaml.safe_load(kustomization_file.read_text()) or {}
    unsupported = set(kustomization) - SUPPORTED_KEYS
    if unsupported:
        raise RenderError(f"{kustomization_file}: render.py does not implement {sorted(unsupported)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        path = (directory / entry).resolve()
        if path.is_dir():
            resources.extend(build(path))
        else:
            resources.extend(doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None)
    for patch in kustomization.get("patches", []):
        _apply_patch(resources, patch, directory)
    for image in kustomization.get("images", []):
        for resource in resources:
            _set_image(resource, image)
    _check_unique(resources, kustomization_file)
    return sorted(resources, key=_order)


def render(overlay: str) -> str:
    """The YAML text of one overlay, as committed under deploy/k8s/rendered/."""
    resources = build(OVERLAYS / overlay)
    header = (
        f"# Rendered from deploy/k8s/overlays/{overlay} by deploy/k8s/render.py: do not edit.\n"
        f"# Apply with `kubectl apply -k deploy/k8s/overlays/{overlay}` (or `kubectl apply -f` this file).\n"
    )
    return header + yaml.safe_dump_all(resources, sort_keys=True, default_flow_style=False, width=120)


def overlays() -> list[str]:
    """Every overlay's name."""
    return sorted(p.parent.name for p in OVERLAYS.glob("*/kustomization.yaml"))


def _order(resource: Resource) -> tuple[int, str, str]:
    kind = resource.get("kind", "")
    if kind in _FIRST:
        rank = _FIRST.index(kind)
    elif kind in _LAST:
        rank = len(_FIRST) + 1 + _LAST.index(kind)
    else:
        rank = len(_FIRST)
    return rank, kind, resource.get("metadata", {}).get("name", "")


def _check_unique(resources: list[Resource], where: Path) -> None:
    seen: set[tuple[str, str, str]] = set()
    for resource in resources:
        key = _identity(resource)
        if key in seen:
            raise RenderError(f"{where}: {key[1]} {key[2]} ({key[0]}) appears twice")
        seen.add(key)


def _identity(resource: Resource) -> tuple[str, str, str]:
    return resource.get("apiVersion", ""), resource.get("kind", ""), resource.get("metadata", {}).get("name", "")


# ---- patches ----


def _apply_patch(resources: list[Resource], patch: dict[str, Any], directory: Path) -> None:
    unknown = set(patch) - {"path", "patch", "target"}
    if unknown:
        raise RenderError(f"{directory}: patch options {sorted(unknown)} are not implemented")
    if "path" in patch:
        text = (directory / patch["path"]).read_text()
    elif "patch" in patch:
        text = patch["patch"]
    else:
        raise RenderError(f"{directory}: a patch without path or patch")
    documents = [doc for doc in yaml.safe_load_all(text) if doc is not None]
    if len(documents) == 1 and isinstance(documents[0], list):  # JSON 6902: a list of operations
        if "target" not in patch:
            raise RenderError(f"{directory}: a JSON 6902 patch needs a target")
        for resource in _targets(resources, patch["target"], directory):
            for op in documents[0]:
                _json6902(resource, op)
        return
    # Strategic merge: one or more documents, each naming its resource by apiVersion, kind and name.
    for document in documents:
        if not isinstance(document, dict):
            raise RenderError(f"{directory}: a strategic merge patch is a mapping")
        target = patch.get("target") or {
            "kind": document.get("kind"),
            "name": document.get("metadata", {}).get("name"),
        }
        for resource in _targets(resources, target, directory):
            if resource.get("apiVersion") != document.get("apiVersion"):
                raise RenderError(f"{directory}: the patch of {target} has another apiVersion")
            _merge(resource, document, path=f"{target['kind']}/{target['name']}")


def _targets(resources: list[Resource], target: dict[str, Any], directory: Path) -> list[Resource]:
    unknown = set(target) - {"group", "version", "kind", "name"}
    if unknown:
        raise RenderError(f"{directory}: target selectors {sorted(unknown)} are not implemented")
    found = []
    for resource in resources:
        api_version = resource.get("apiVersion", "")
        group, _, version = api_version.rpartition("/")
        if "group" in target and target["group"] != group:
            continue
        if "version" in target and target["version"] != version:
            continue
        if "kind" in target and target["kind"] != resource.get("kind"):
            continue
        if "name" in target and target["name"] != resource.get("metadata", {}).get("name"):
            continue
        found.append(resource)
    if not found:
        raise RenderError(f"{directory}: no resource matches the patch target {target}")
    return found


def _merge(base: dict[str, Any], patch: dict[str, Any], path: str) -> None:
    """Strategic merge of mappings: keys merge recursively, null deletes; lists are refused (see below)."""
    for key, value in patch.items():
        where = f"{path}.{key}"
        if value is None:
            base.pop(key, None)
        elif isinstance(value, dict):
            if not isinstance(base.get(key), dict):
                base[key] = {}
            _merge(base[key], value, where)
        elif isinstance(value, list):
            # kustomize merges some lists by key (containers by name…) and replaces others, per the
            # schema of each kind; rather than guess, lists are patched with JSON 6902 operations.
            raise RenderError(f"{where}: lists in strategic merge patches are not implemented; use JSON 6902")
        else:
            base[key] = copy.deepcopy(value)


def _json6902(resource: Resource, op: dict[str, Any]) -> None:
    kind = op.get("op")
    tokens = _pointer(op.get("path", ""))
    if not tokens:
        raise RenderError(f"{op}: the whole document cannot be patched")
    parent = resource
    for token in tokens[:-1]:
        parent = _step(parent, token, op)
    last = tokens[-1]
    if kind in ("add", "replace"):
        value = copy.deepcopy(op["value"])
        if isinstance(parent, list):
            if last == "-" and kind == "add":
                parent.append(value)
                return
            index = _index(parent, last, op, allow_end=kind == "add")
            if kind == "add":
                parent.insert(index, value)
            else:
                parent[index] = value
        else:
            if kind == "replace" and last not in parent:
                raise RenderError(f"{op}: nothing to replace at {op['path']}")
            parent[last] = value
    elif kind == "remove":
        if isinstance(parent, list):
            del parent[_index(parent, last, op)]
        elif last in parent:
            del parent[last]
        else:
            raise RenderError(f"{op}: nothing to remove at {op['path']}")
    else:
        raise RenderError(f"{op}: JSON 6902 op {kind!r} is not implemented (add, replace, remove are)")


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise RenderError(f"{path!r} is not a JSON pointer")
    return [token.replace("~1", "/").replace("~0", "~") for token in path[1:].split("/")]


def _step(node: Any, token: str, op: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return node[_index(node, token, op)]
    if isinstance(node, dict) and token in node:
        return node[token]
    raise RenderError(f"{op}: {op['path']} does not exist")


def _index(items: list[Any], token: str, op: dict[str, Any], allow_end: bool = False) -> int:
    if not token.isdigit() or int(token) > len(items) or (int(token) == len(items) and not allow_end):
        raise RenderError(f"{op}: {token!r} is not an index of a list of {len(items)}")
    return int(token)


# ---- images ----


def _set_image(node: Any, image: dict[str, Any]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and isinstance(container.get("image"), str):
                        container["image"] = _new_image(container["image"], image)
            _set_image(value, image)
    elif isinstance(node, list):
        for item in node:
            _set_image(item, image)


def _new_image(reference: str, image: dict[str, Any]) -> str:
    name, tag, digest = _split_image(reference)
    if name != image["name"]:
        return reference
    name = image.get("newName", name)
    if "digest" in image:
        return f"{name}@{image['digest']}"
    if "newTag" in image:
        return f"{name}:{image['newTag']}"
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def _split_image(reference: str) -> tuple[str, str, str]:
    rest, _, digest = reference.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest
    return rest, "", digest


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with --check, compare) the rendered file of each overlay named, or of every overlay."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("overlay", nargs="*", help="overlays to render (default: all)")
    parser.add_argument("--check", action="store_true", help="exit 1 if a rendered file differs")
    args = parser.parse_args(argv)
    stale = []
    for overlay in args.overlay or overlays():
        text = render(overlay)
        out = RENDERED / f"{overlay}.yaml"
        if args.check:
            if not out.is_file() or out.read_text() != text:
                stale.append(str(out))
        else:
            RENDERED.mkdir(exist_ok=True)
            out.write_text(text)
            print(f"wrote {out.relative_to(K8S.parents[1])}")
    if stale:
        print("out of date (run python deploy/k8s/render.py):", *stale, sep="\n  ", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
