"""Canonical layout of policy, test and case files (``clause fmt``).

The layout, applied with ruamel.yaml's round trip so comments survive:

* the keys of each construct in one order (:data:`ORDERS`, which lists every
  property the schema allows); names the author chose — facts, derived
  facts, kinds, the languages of a text — keep the author's order;
* two-space indentation, a sequence's dashes two spaces in from its key;
* comments and blank lines kept, each moving with the key it precedes;
* every scalar exactly as written (same quotes, same text: nothing is read
  as a date, number or boolean on the way, so nothing can be re-spelled and
  the engine, which reads dates as strings and decimals exactly, sees the
  same values);
* a flow collection (``{…}``, ``[…]``) stays on one line when that line fits
  in :data:`WIDTH` columns, otherwise it becomes block style;
* a final newline and no trailing spaces.

The result is checked before anything is written: the formatted text must
load, through the engine's own YAML reader, to exactly the data of the
original. Formatting is idempotent.
"""

from __future__ import annotations

import io
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.resolver import VersionedResolver
from ruamel.yaml.tokens import CommentToken

from engine._yaml import parse_yaml
from engine.errors import Diagnostic
from engine.location import SourceLocation

WIDTH = 100

# Key order of each construct; the schema's properties, in reading order.
ORDERS: dict[str, tuple[str, ...]] = {
    "policy": ("$schema", "clause", "vendor", "name", "version", "effective_from", "effective_until",
               "currency", "currencies", "country", "subdivision", "timezone", "languages", "rounding", "source",
               "notes", "interpretations", "version_by", "facts", "derived", "checks", "kinds", "out_of_scope", "lint",
               "mutation"),
    "source": ("file", "title", "url", "retrieved"),
    "fact": ("type", "values", "minimum", "maximum", "at_most", "at_least", "meaning", "question",
             "clause", "interpretation", "example", "fields"),
    "field": ("type", "values", "minimum", "maximum", "meaning"),
    "derived": ("expr", "meaning", "clause", "interpretation"),
    "check": ("expr", "message"),
    "kind": ("title", "combine", "otherwise", "deadlines", "rules"),
    "kind_deadline": ("name", "date", "when", "text", "clause", "interpretation"),
    "otherwise": ("outcome", "reason"),
    "rule": ("id", "override", "priority", "clause", "interpretation", "when", "outcome", "amount",
             "customer_pays", "fees", "deadlines", "alternatives", "actions", "reason"),
    "alternative": ("outcome", "amount", "customer_pays", "text"),
    "fee": ("name", "value"),
    "deadline": ("name", "date", "text"),
    "action": ("party", "text"),
    "out_of_scope": ("clause", "reason"),
    "lint": ("suppress",),
    "suppress": ("code", "target", "reason"),
    "mutation": ("equivalent",),
    "equivalent": ("at", "mutant", "reason"),
    "tests": ("$schema", "cases"),
    "test": ("note", "lang", "input", "want_decision", "want_error_code", "want_error_fact"),
    "case": ("$schema", "id", "vendor", "kind", "as_of", "facts"),
    "want": ("outcome", "amount", "customer_pays", "alternatives", "fees", "deadlines", "missing_facts",
             "reasons", "reason_contains"),
}

# construct -> {key: construct of its value}; "*" = every value of a mapping
# of names, "[]" = every item of a list.
_CHILDREN: dict[str, dict[str, str]] = {
    "policy": {"source": "source", "facts": "*fact", "derived": "*derived", "checks": "[]check",
               "kinds": "*kind", "out_of_scope": "[]out_of_scope", "lint": "lint",
               "mutation": "mutation"},
    "fact": {"fields": "*field"},
    "kind": {"otherwise": "otherwise", "deadlines": "[]kind_deadline", "rules": "[]rule"},
    "rule": {"fees": "[]fee", "deadlines": "[]deadline", "alternatives": "[]alternative",
             "actions": "[]action"},
    "lint": {"suppress": "[]suppress"},
    "mutation": {"equivalent": "[]equivalent"},
    "tests": {"cases": "[]test"},
    "test": {"input": "case", "want_decision": "want"},
}


@dataclass(frozen=True, slots=True)
class Formatted:
    """One file's canonical text, or why it could not be formatted."""

    path: Path
    original: str
    text: str | None
    problems: tuple[Diagnostic, ...] = ()

    @property
    def changed(self) -> bool:
        return self.text is not None and self.text != self.original


class _Verbatim(VersionedResolver):
    """Resolves no implicit types: every plain scalar stays the text it is."""

    @property
    def versioned_resolver(self) -> Any:
        return {}


def _yaml() -> YAML:
    y = YAML()
    y.Resolver = _Verbatim
    y.preserve_quotes = True
    y.width = 1 << 16  # never fold a scalar; flow collections are handled by _fit
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def construct_of(path: Path, data: Any) -> str | None:
    """Which document this is: a policy, a test file, a case, or unknown (None)."""
    if not isinstance(data, dict):
        return None
    if "clause" in data or path.name.startswith("policy"):
        return "policy"
    if "cases" in data:
        return "tests"
    if "vendor" in data and "kind" in data:
        return "case"
    return None


# --- comments move with the key they precede ----------------------------------

def _merges(node: Any) -> bool:
    """A mapping with a merge key (``<<: *base``): its order and length are the author's."""
    return isinstance(node, CommentedMap) and "<<" in node


def _is_block(value: Any) -> bool:
    return isinstance(value, (CommentedMap, CommentedSeq)) and len(value) > 0 and not value.fa.flow_style()


def _tail_slot(container: Any, key: Any) -> tuple[list[Any], int, Any]:
    """Where the comment lines after the entry ``container[key]`` are kept, and the last value."""
    value = container[key]
    if _is_block(value):
        last = list(value.keys())[-1] if isinstance(value, CommentedMap) else len(value) - 1
        return _tail_slot(value, last)
    items = container.ca.items.setdefault(key, [None, None, None, None])
    return items, (2 if isinstance(container, CommentedMap) else 0), value


def _take_tail(container: Any, key: Any, column: int) -> list[str]:
    """Remove and return the comment lines after ``container[key]`` at ``column`` or less.

    ruamel keeps the lines before a key with the end of the previous entry;
    lines indented deeper than ``column`` belong to that entry and stay.
    """
    items, i, value = _tail_slot(container, key)
    token = items[i]
    if token is None:
        return []
    lines = token.value.split("\n")
    if lines[-1] == "":
        lines.pop()
    block = type(value).__name__ in ("LiteralScalarString", "FoldedScalarString")
    # After a plain or quoted value the text starts on the value's own line:
    # an end-of-line comment, or "" when there is none. A block scalar has
    # already ended its line.
    head = None if block else (lines.pop(0) if lines else "")
    if block and lines and lines[0]:
        lines[0] = " " * token.column + lines[0]
    deeper = [j for j, line in enumerate(lines) if line.strip() and _indent(line) > column]
    cut = deeper[-1] + 1 if deeper else 0
    kept, moved = lines[:cut], lines[cut:]
    if not head and not kept:
        items[i] = None
    else:
        text = "".join(line + "\n" for line in kept)
        value = text if block else (head or "") + "\n" + text
        items[i] = CommentToken(value, token.start_mark if head else CommentMark(0), None)
    return moved


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _put_before(container: CommentedMap, key: Any, lines: list[str]) -> None:
    if not lines:
        return
    items = container.ca.items.setdefault(key, [None, None, None, None])
    token = CommentToken("".join(line + "\n" for line in lines), CommentMark(0), None)
    items[1] = [token, *(items[1] or [])]


def _put_tail(container: Any, key: Any, lines: list[str]) -> None:
    if not lines:
        return
    items, i, _ = _tail_slot(container, key)
    old = items[i]
    text = old.value if old is not None else "\n"
    items[i] = CommentToken(text + "".join(line + "\n" for line in lines),
                            old.start_mark if old is not None else CommentMark(0), None)


def _reorder(node: CommentedMap, order: tuple[str, ...], parent: Any, at: Any) -> None:
    """Put the keys of ``node`` in ``order`` (unknown keys last), comments following their keys.

    ``parent[at]`` is ``node`` (None for the document): a nested mapping's
    comment before its first key is kept by both, and moves with that key.
    """
    keys = list(node.keys())
    wanted = sorted(keys, key=lambda k: (order.index(k) if k in order else len(order), keys.index(k)))
    if wanted == keys or _merges(node):
        return
    column = min(node.lc.data[k][1] for k in keys) if node.lc.data else 0
    before = {k: _take_tail(node, keys[i - 1], column) for i, k in enumerate(keys) if i > 0}
    after_last = _take_tail(node, keys[-1], column)
    first = node.ca.comment[1] if node.ca.comment and parent is not None else None
    if first and isinstance(parent, CommentedMap):
        before[keys[0]] = [line for tok in first for line in tok.value.rstrip("\n").split("\n")]
        node.ca.comment[1] = None
        parent.ca.items.get(at, [None] * 4)[3] = None
    for k in wanted:
        node.move_to_end(k)
    for k in wanted:
        _put_before(node, k, before.get(k, []))
    _put_tail(node, wanted[-1], after_last)


def _walk(node: Any, construct: str, parent: Any = None, at: Any = None) -> None:
    """Reorder ``node`` (a ``construct``) and everything under it, outermost first."""
    if not isinstance(node, CommentedMap):
        return
    _reorder(node, ORDERS.get(construct, ()), parent, at)
    for key, child in _CHILDREN.get(construct, {}).items():
        value = node.get(key)
        if child.startswith("*") and isinstance(value, CommentedMap):
            for name, item in value.items():
                _walk(item, child[1:], value, name)
        elif child.startswith("[]") and isinstance(value, CommentedSeq):
            for i, item in enumerate(value):
                _walk(item, child[2:], value, i)
        else:
            _walk(value, child, node, key)
# --- flow collections that do not fit become block style ----------------------

def _one_line(y: YAML, node: Any) -> int:
    out = io.StringIO()
    y.dump(node, out)
    return len(out.getvalue().rstrip("\n"))


def _fit(y: YAML, node: Any, column: int) -> None:
    """Make flow collections longer than the line width block style, outermost first."""
    items: Iterator[tuple[Any, Any]]
    if isinstance(node, CommentedMap):
        items = iter(node.items())
        inner = column + 2
    elif isinstance(node, CommentedSeq):
        items = ((None, v) for v in node)
        inner = column + 4
    else:
        return
    for key, value in items:
        if not isinstance(value, (CommentedMap, CommentedSeq)) or not len(value):
            continue
        if value.fa.flow_style() and not _merges(value):
            prefix = len(str(key)) + 2 if key is not None else 0
            if inner + prefix + _one_line(y, value) > WIDTH:
                value.fa.set_block_style()
        if not value.fa.flow_style():
            _fit(y, value, inner if isinstance(node, CommentedMap) else column + 2)


# --- files -------------------------------------------------------------------

_TRAILING = re.compile(r"[ \t]+$", re.MULTILINE)


def format_text(text: str, path: Path) -> tuple[str | None, list[Diagnostic]]:
    """The canonical form of ``text``, or None with the reasons it cannot be formatted."""
    original, problems = parse_yaml(text, str(path))
    if original is None or problems:
        return None, problems
    y = _yaml()
    try:
        data = y.load(text)
    except YAMLError as err:
        return None, [Diagnostic("yaml_syntax", f"cannot format: {err}", SourceLocation(str(path)))]
    construct = construct_of(path, original.data)
    if construct:
        _walk(data, construct)
    _fit(y, data, 0)
    out = io.StringIO()
    y.dump(data, out)
    result = _TRAILING.sub("", out.getvalue()).rstrip("\n") + "\n"
    formatted, again = parse_yaml(result, str(path))
    if formatted is None or again or formatted.data != original.data:
        return None, [Diagnostic("fmt_unsafe", "formatting would change what this file means; "
                                 "left as it is (please report it)", SourceLocation(str(path)))]
    return result, []


def format_file(path: Path, known_only: bool = False) -> Formatted:
    """Format one file in memory (nothing is written).

    With ``known_only`` a file that is not a policy, test or case file is
    left as it is (what a directory walk wants).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        return Formatted(path, "", None, (Diagnostic("file", f"cannot read {path}: {err}",
                                                     SourceLocation(str(path))),))
    if known_only:
        doc, _ = parse_yaml(text, str(path))
        if doc is None or construct_of(path, doc.data) is None:
            return Formatted(path, text, text)
    result, problems = format_text(text, path)
    return Formatted(path, text, result, tuple(problems))


def yaml_files(paths: list[Path]) -> list[tuple[Path, bool]]:
    """(file, named explicitly) for the files named and every ``*.yaml``/``*.yml`` under
    the directories named, leaving out hidden files and directories (``.venv``, ``.git``…)."""
    out: dict[Path, bool] = {}
    for p in paths:
        if not p.is_dir():
            out[p] = True
            continue
        for f in sorted(p.rglob("*")):
            hidden = any(part.startswith(".") for part in f.relative_to(p).parts)
            if f.suffix in (".yaml", ".yml") and f.is_file() and not hidden:
                out.setdefault(f, False)
    return list(out.items())


def write(result: Formatted) -> None:
    """Replace the file with its formatted text (through a temporary file, so never half-written)."""
    if result.text is None:
        return
    tmp = result.path.with_name(f".{result.path.name}.fmt-tmp")
    tmp.write_text(result.text, encoding="utf-8")
    shutil.copymode(result.path, tmp)
    tmp.replace(result.path)


def run(roots: list[Path], check: bool) -> tuple[list[str], list[Diagnostic], bool]:
    """Format (or with ``check`` only inspect) everything under ``roots``.

    Returns the lines to print (one per changed file, then a summary), the
    problems, and whether the command failed.
    """
    results = [format_file(f, known_only=not named) for f, named in yaml_files(roots)]
    problems = [d for r in results for d in r.problems]
    changed = [r for r in results if r.changed]
    lines = [f"would reformat {r.path}" if check else f"reformatted {r.path}" for r in changed]
    if not check:
        for r in changed:
            write(r)
    unchanged = sum(not r.changed and not r.problems for r in results)
    lines.append(f"{len(changed)} file(s) {'would be reformatted' if check else 'reformatted'}, "
                 f"{unchanged} unchanged")
    return lines, problems, bool(problems) or (check and bool(changed))
