"""Reading what comes from outside, within limits.

Every file a person or a device hands the twin (scenarios, overlays, sensors files, status
rules, posts GeoJSON) is read here: its size is checked before it is read, its text must be
UTF-8, and its nesting and size once parsed are bounded, so that no input can end in a
traceback, a hang or a runaway use of memory. Past a limit the file is refused with an
:class:`~twin._errors.InputError` that names the file, the place (line and column where
there is one) and the limit.

YAML anchors and aliases are accepted, but an alias counts as the whole part it repeats, so
a file of aliases of aliases ("a billion laughs") is refused by its size as read, not
expanded.

>>> from pathlib import Path; import tempfile
>>> p = Path(tempfile.mkdtemp()) / "deep.yaml"; _ = p.write_text("a: " + "[" * 100 + "]" * 100)
>>> load_yaml(p, what="scenario file")
Traceback (most recent call last):
...
twin._errors.InputError: ...deep.yaml: line 1, column 67: nested deeper than 64 levels
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from twin._errors import InputError

#: Files a person writes (scenario, overlay, sensors, rules): far larger than any real one.
MAX_CONFIG_BYTES = 1024 * 1024
#: Data files (posts GeoJSON, facilities CSV).
MAX_DATA_BYTES = 64 * 1024 * 1024
#: How deep mappings and lists may nest, and how many values a YAML file may hold once its
#: aliases are counted out.
MAX_DEPTH = 64
MAX_NODES = 200_000


def read_text(path: Path, *, what: str, limit: int = MAX_CONFIG_BYTES) -> str:
    """The UTF-8 text of a file, refused if it is missing, larger than ``limit`` bytes or not
    UTF-8 (the message names the line of the first bad byte)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found")
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(
                f"{path}: the {what} is {_bytes(size)}, more than the {_bytes(limit)} accepted"
            )
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{path}: the {what} cannot be read ({exc.strerror})") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{path}: line {line}: byte {data[exc.start]:#04x} is not UTF-8 text"
            f" (save the {what} as UTF-8)"
        ) from exc


def load_yaml(path: Path, *, what: str, limit: int = MAX_CONFIG_BYTES) -> Any:
    """A YAML file's content (``None`` for an empty file), within the module's limits; an
    :class:`InputError` naming the line and column of a syntax error or a limit passed."""
    text = read_text(path, what=what, limit=limit)
    loader = None
    try:
        loader = _Loader(text)  # its reader refuses control characters at once
        return loader.get_single_data()
    except _Refused as exc:
        raise InputError(f"{path}: {_at(exc.mark)}{exc.problem}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"{path}: {_at(mark)}not valid YAML ({problem})") from None
    finally:
        if loader is not None:
            loader.dispose()


def load_json(path: Path, *, what: str, limit: int = MAX_DATA_BYTES) -> Any:
    """A JSON file's content, within the module's limits; an :class:`InputError` naming the
    line and column of a syntax error."""
    return parse_json_text(read_text(path, what=what, limit=limit), where=str(path))


def parse_json_text(text: str, *, where: str) -> Any:
    """JSON text's content; bad JSON and nesting deeper than Python's parser goes (about a
    thousand levels, which it refuses cleanly with a ``RecursionError``) are an
    :class:`InputError` that says where."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{where}: line {exc.lineno}, column {exc.colno}: not valid JSON ({exc.msg})"
        ) from None
    except RecursionError:
        raise InputError(f"{where}: nested too deeply to be read") from None


class _Refused(Exception):
    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem)
        self.problem, self.mark = problem, mark


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, bounded: it counts depth and values as it composes, and an
    alias as every value of the part it repeats."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._level = 0
        self._values = 0
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            self._count(self._size(node), event.start_mark)
            return node
        self._level += 1
        if self._level > MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels", event.start_mark)
        self._count(1, event.start_mark)
        try:
            return super().compose_node(parent, index)
        finally:
            self._level -= 1

    def _count(self, n: int, mark: Any) -> None:
        self._values += n
        if self._values > MAX_NODES:
            raise _Refused(
                f"holds more than {MAX_NODES:,} values (aliases counted as what they repeat)",
                mark,
            )

    def _size(self, node: Any) -> int:
        """Values in a composed node, aliases counted out (memoised: shared parts once)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        if isinstance(node, yaml.MappingNode):
            n = 1 + sum(self._size(k) + self._size(v) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            n = 1 + sum(self._size(v) for v in node.value)
        else:
            n = 1
        self._sizes[id(node)] = n
        return n


def _at(mark: Any) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""


def _bytes(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:,.0f} {unit}" if unit == "bytes" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n} GiB"  # pragma: no cover
