"""YAML that people write by hand, read safely: no aliases, bounded depth and size, JSON values only.

Ten lines of anchors and ``*aliases`` expand to gigabytes once the data is used (or make a cycle), and a
megabyte of ``[`` overflows the stack; :class:`Loader` refuses both. :func:`load` also keeps the composed
node tree, so a later validation error can name the line of the field it is about (:func:`line_of`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from reelfoundry.errors import InvalidParameter

#: Deepest nesting of mappings and lists (the composer recurses once per level).
MAX_DEPTH = 32


class Loader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader without aliases and deep nesting."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise yaml.composer.ComposerError(None, None, "aliases (*name) are not allowed", event.start_mark)
        if self._depth >= MAX_DEPTH:
            raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def read_bounded(path: Path, field: str, max_bytes: int) -> str:
    """A file's UTF-8 text, reading at most one byte past ``max_bytes`` (stat is not trusted: a FIFO or
    /dev/zero reports size 0); InvalidParameter(``field``) naming the file when it is too large or unreadable."""
    try:
        with path.open("rb") as stream:
            raw = stream.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise InvalidParameter(field, f"{path}: larger than {max_bytes} bytes")
        return raw.decode("utf-8")
    except FileNotFoundError:
        raise InvalidParameter(field, f"{path}: no such file") from None
    except IsADirectoryError:
        raise InvalidParameter(field, f"{path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise InvalidParameter(field, f"{path}: not UTF-8 text") from None
    except OSError as exc:
        raise InvalidParameter(field, f"{path}: cannot read it ({exc.strerror})") from None


def load(text: str, source: str, field: str, max_bytes: int) -> tuple[Any, Any]:
    """The data and the root node of one YAML document; InvalidParameter(``field``) naming ``source`` and the
    line when the text is too large or not valid YAML."""
    if len(text.encode()) > max_bytes:
        raise InvalidParameter(field, f"{source}: larger than {max_bytes} bytes")
    loader = Loader(text)
    try:
        root = loader.get_single_node()
        data: Any = loader.construct_document(root) if root is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidParameter(field, f"{source}: {line}not valid YAML: {reason}") from None
    except ValueError as exc:  # a scalar the constructor cannot make: a 5000-digit integer, a 13th month
        raise InvalidParameter(field, f"{source}: not valid YAML: {str(exc)[:200]}") from None
    finally:
        loader.dispose()
    return data, root


def line_of(root: Any, loc: Sequence[str | int]) -> int | None:
    """The 1-based line of the node at ``loc`` (mapping keys and list indexes), or of its nearest parent."""
    node, line = root, (root.start_mark.line + 1 if root is not None else None)
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if getattr(key, "value", None) == str(part):
                    child, line = value, key.start_mark.line + 1
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            child = node.value[part]
            line = child.start_mark.line + 1
        if child is None:
            break
        node = child
    return line
