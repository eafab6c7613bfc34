"""YAML reading that keeps a source location for every node.

PyYAML's safe loader with three changes, each to keep input exact:

* timestamps stay strings (the engine parses dates against declared types,
  so JSON and YAML cases behave the same);
* floats become ``Decimal`` built from the scalar's own text (money never
  passes through binary floating point);
* only ``true``/``false`` are booleans (YAML 1.1 would turn the country code
  ``NO`` or the answer ``yes`` into booleans).

Duplicate keys are reported instead of silently keeping the last one.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import yaml

from engine.errors import Diagnostic
from engine.location import SourceLocation

Path = tuple[str | int, ...]


class _Loader(yaml.SafeLoader):
    """SafeLoader with exact numbers and no implicit timestamps."""


_Loader.yaml_implicit_resolvers = {
    key: [(tag, rx) for tag, rx in resolvers if tag not in (
        "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:bool")]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def _refuse(node: yaml.ScalarNode, text: str, why: str) -> yaml.constructor.ConstructorError:
    return yaml.constructor.ConstructorError(
        None, None, f"{text!r} {why}; write a plain decimal number, or quote it to mean text",
        node.start_mark)


def _construct_decimal(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    raw = str(loader.construct_scalar(node))
    text = raw.replace("_", "")
    low = text.lower()
    if low in (".inf", "+.inf", "-.inf", ".nan"):
        return float(low.replace(".", ""))  # refused later by the schema or coercion
    if ":" in text:
        raise _refuse(node, raw, "is a YAML 1.1 base-60 number (1:30 would read as 90)")
    if not text.isascii() or len(text) > 100:
        raise _refuse(node, raw, "is not a number")
    try:
        return Decimal(text)
    except ArithmeticError:
        raise _refuse(node, raw, "is not a number") from None


# YAML 1.1 reads 010 as 8, 0x10 as 16 and 1:30 as 90: an amount would change
# with no error. Only plain decimal integers (digit groups with _ allowed) are
# read as integers; the other forms are refused where they are written.
_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9_]*)")


def _construct_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    raw = str(loader.construct_scalar(node))
    if _PLAIN_INT.fullmatch(raw) and len(raw) <= 100:
        return int(raw.replace("_", ""))
    if ":" in raw:
        raise _refuse(node, raw, "is a YAML 1.1 base-60 number (1:30 would read as 90)")
    if re.fullmatch(r"[-+]?0[0-7_]+", raw):
        raise _refuse(node, raw, "has a leading zero, which YAML 1.1 reads as octal (010 would be 8)")
    raise _refuse(node, raw, "is not a plain decimal integer (YAML 1.1 reads 0x and 0b forms as "
                  "hexadecimal and binary)")


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_decimal)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


class _FastLoader(getattr(yaml, "CSafeLoader", _Loader)):  # type: ignore[misc]
    """The same loader on libyaml's parser (C), when PyYAML was built with it: same tags, same values."""


_FastLoader.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_FastLoader.yaml_constructors = dict(_Loader.yaml_constructors)


@dataclass(slots=True)
class Document:
    """Parsed data plus the location of every node, keyed by its path."""

    data: Any
    file: str
    text: str
    locations: dict[Path, SourceLocation] = field(default_factory=dict)
    styles: dict[Path, str | None] = field(default_factory=dict)
    spans: dict[Path, tuple[int, int]] = field(default_factory=dict)
    line_starts: list[int] = field(default_factory=list)  # offsets of each line's first character, on demand

    def loc(self, path: Path) -> SourceLocation:
        """Location of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.locations and path:
            path = path[:-1]
        return self.locations.get(path, SourceLocation(self.file, 1, 1))

    def key_loc(self, path: Path) -> SourceLocation:
        """Location of the key of the mapping entry at ``path``."""
        return self.locations.get(("#key", *path)) or self.loc(path)


def _mark(file: str, node: yaml.Node) -> SourceLocation:
    return SourceLocation(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _index(doc: Document, node: yaml.Node, path: Path, problems: list[Diagnostic],
           seen_nodes: set[int] | None = None) -> None:
    seen_nodes = set() if seen_nodes is None else seen_nodes
    doc.locations[path] = _mark(doc.file, node)
    if id(node) in seen_nodes:
        return  # an alias: its inside was indexed where the anchor is
    seen_nodes.add(id(node))
    if isinstance(node, yaml.ScalarNode):
        doc.styles[path] = node.style
        doc.spans[path] = (node.start_mark.index, node.end_mark.index)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _index(doc, child, (*path, i), problems, seen_nodes)
    elif isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # merged keys may be overridden; that is what merging is for
            if key in seen:
                problems.append(Diagnostic(
                    "yaml_duplicate", f"duplicate key {key!r}: each key may appear once",
                    _mark(doc.file, key_node), _json_path((*path, key))))
            seen.add(key)
            doc.locations[("#key", *path, key)] = _mark(doc.file, key_node)
            _index(doc, value_node, (*path, key), problems, seen_nodes)


def _json_path(path: Path) -> str:
    text = "/" + "/".join(str(p) for p in path) if path else ""
    # a key with a lone surrogate must not make the diagnostic itself unencodable
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def json_path(path: Path) -> str:
    """A JSON-pointer-like rendering of ``path`` for diagnostics."""
    return _json_path(path)


MAX_NODES = 200_000


def _expanded_size(node: yaml.Node, sizes: dict[int, int], active: set[int]) -> int:
    """Nodes in ``node`` once aliases are expanded (aliases share node objects)."""
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in active:
        raise ValueError("a recursive alias (an anchor used inside itself)")
    active.add(key)
    children: list[yaml.Node] = []
    if isinstance(node, yaml.SequenceNode):
        children = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        children = [n for pair in node.value for n in pair]
    size = 1 + sum(_expanded_size(c, sizes, active) for c in children)
    active.discard(key)
    sizes[key] = min(size, MAX_NODES + 1)
    return sizes[key]


def parse_yaml(text: str, file: str) -> tuple[Document | None, list[Diagnostic]]:
    """Parse one YAML document; return it with its diagnostics (never raise).

    Aliases are checked before anything walks the data: a recursive alias,
    or a document that expands to more than :data:`MAX_NODES` nodes
    ("billion laughs"), is refused.
    """
    doc = Document(None, file, text)
    problems: list[Diagnostic] = []
    loader: Any = None
    try:
        loader = _FastLoader(text)
        node = loader.get_single_node()
        if node is not None and _expanded_size(node, {}, set()) > MAX_NODES:
            raise ValueError(f"the document expands to more than {MAX_NODES} nodes (too many aliases)")
        if node is not None:
            # Index before constructing: construction flattens merge keys (<<) in place.
            _index(doc, node, (), problems)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        loc = SourceLocation(file, mark.line + 1, mark.column + 1) if mark else SourceLocation(file)
        problem = err.problem or err.context or "invalid YAML"
        return None, [Diagnostic("yaml_syntax", f"invalid YAML: {problem}", loc)]
    except (yaml.YAMLError, ValueError, ArithmeticError) as err:
        return None, [Diagnostic("yaml_syntax", f"invalid YAML: {err}", SourceLocation(file))]
    except RecursionError:
        return None, [Diagnostic("yaml_syntax", "invalid YAML: nested too deeply", SourceLocation(file))]
    finally:
        if loader is not None:
            loader.dispose()
    doc.data = data
    return doc, problems


def position(text: str, index: int, file: str) -> SourceLocation:
    """1-based line and column of character ``index`` of ``text``."""
    line = text.count("\n", 0, index) + 1
    column = index - (text.rfind("\n", 0, index) + 1) + 1
    return SourceLocation(file, line, column)


def scalar_position(doc: Document, path: Path, value: str, offset: int) -> SourceLocation:
    """Where character ``offset`` of the scalar ``value`` at ``path`` is in the file.

    The parsed value differs from its source text by quoting, escapes,
    folding and indentation, so the two are aligned character by character:
    source characters the value does not contain (escape marks, line breaks
    folded into spaces, indentation) are skipped.
    """
    span = doc.spans.get(path)
    if span is None:
        return doc.loc(path)
    start, end = span
    style = doc.styles.get(path)
    if style in ("|", ">"):
        start = doc.text.index("\n", start) + 1  # content starts after the header line
    elif style in ("'", '"'):
        start += 1
    i, j = 0, start
    while j < end and i < offset:
        if doc.text[j] == value[i]:
            i += 1
        j += 1
    while j < end and doc.text[j] in " \t\n" and (offset >= len(value) or doc.text[j] != value[offset]):
        j += 1  # land on the character itself, not on skipped indentation
    if not doc.line_starts:  # built once: counting newlines per expression was quadratic in the file
        doc.line_starts = [0, *(k + 1 for k, ch in enumerate(doc.text) if ch == "\n")]
    index = min(j, end)
    line = bisect_right(doc.line_starts, index)
    return SourceLocation(doc.file, line, index - doc.line_starts[line - 1] + 1)
