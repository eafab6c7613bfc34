"""JSON Schema checks of policy and case documents, as located diagnostics.

Schemas live in ``schemas/`` (draft 2020-12). Errors are mapped back to the
YAML node they concern; the most relevant (jsonschema's ``best_match``)
comes first for each location.
"""

from __future__ import annotations

import difflib
import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jsonschema
import yaml
from jsonschema.exceptions import best_match
from referencing import Registry, Resource

from engine._resources import schemas_dir
from engine._yaml import json_path
from engine.errors import Diagnostic

if TYPE_CHECKING:
    from engine._yaml import Document


@lru_cache(maxsize=8)
def load_schema(name: str) -> dict[str, Any]:
    """Read ``schemas/<name>`` (cached: schemas are read-only package data)."""
    with (schemas_dir() / name).open(encoding="utf-8") as fh:
        schema: dict[str, Any] = json.load(fh)
    return schema


@lru_cache(maxsize=1)
def _registry() -> Registry:
    """Every bundled schema under its $id, so schemas can $ref each other."""
    resources = [(schema["$id"], Resource.from_contents(schema))
                 for path in sorted(schemas_dir().glob("*.json"))
                 if "$id" in (schema := load_schema(path.name))]
    return Registry().with_resources(resources)


@lru_cache(maxsize=8)
def _validator(name: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(load_schema(name), registry=_registry())


def describe(value: Any) -> str:
    """A short description of a found value: never the whole document."""
    if isinstance(value, dict):
        keys = ", ".join(map(str, list(value)[:4])) + (", ..." if len(value) > 4 else "")
        return f"a mapping (keys: {keys})" if value else "an empty mapping"
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, bool) or value is None:
        return {True: "true", False: "false", None: "null"}[value]
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"the string {shown!r}"
    return f"the number {value}"


_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string", "integer": "an integer",
               "number": "a number", "boolean": "true or false", "null": "null"}


def expected_shape(schema: dict[str, Any]) -> str:
    """The shape a schema wants, in one line: ``a mapping with outcome and reason, e.g. {...}``."""
    types = schema.get("type")
    words = [_TYPE_WORDS.get(t, t) for t in ([types] if isinstance(types, str) else types or [])]
    shape = " or ".join(words) or "a value of another shape"
    required = schema.get("required") or []
    if required:
        shape += " with " + (" and ".join(required) if len(required) <= 2
                             else ", ".join(required[:-1]) + " and " + required[-1])
    examples = schema.get("examples")
    if examples:
        shape += ", e.g. " + yaml.safe_dump(examples[0], default_flow_style=True, width=1 << 16,
                                             allow_unicode=True, sort_keys=False).strip()
    return shape


def _message(err: jsonschema.ValidationError) -> str:
    """What was expected and what was found, for one error that is not about keys."""
    where = json_path(tuple(err.absolute_path)) or "the document"
    found = describe(err.instance)
    value = err.validator_value
    if err.validator == "type":
        return f"{where}: expected {expected_shape(err.schema)}; found {found}"
    if err.validator == "enum":
        return f"{where}: {err.instance!r} is not one of: {', '.join(map(str, value))}" \
            if not isinstance(err.instance, (dict, list)) else \
            f"{where}: expected one of: {', '.join(map(str, value))}; found {found}"
    if err.validator == "const":
        return f"{where}: expected {value!r}; found {found}"
    if err.validator == "pattern":
        return f"{where}: {found} does not have the expected form ({value})"
    if err.validator in ("minLength", "minItems", "minProperties"):
        return f"{where}: must not be empty" if value == 1 else f"{where}: too short ({found})"
    if err.validator == "oneOf":
        options = [" and ".join(o.get("required", [])) for o in value if "required" in o]
        if options:
            return f"{where}: give exactly one of: {', '.join(options)}"
    if err.validator == "not" and err.schema.get("not", {}).get("required"):
        keys = ", ".join(err.schema["not"]["required"])
        return f"{where}: {keys} is not allowed here (only with the type that uses it)"
    if err.validator == "contains":
        return f"{where}: must contain {value.get('const', value)!r}"
    message = err.message.replace(repr(err.instance), found) if len(repr(err.instance)) > 40 else err.message
    return f"{where}: {message[:200]}"


def _key_problems(doc: Document, path: tuple[Any, ...], err: jsonschema.ValidationError) -> list[Diagnostic]:
    """Every unknown key (with did-you-mean) or the missing keys of one mapping, by name."""
    where = json_path(path) or "the document"
    allowed = [k for k in err.schema.get("properties", {}) if k != "$schema"]
    if err.validator == "required":
        props = err.schema.get("properties", {})
        missing = [f"{k} (always {props[k]['const']!r})" if "const" in props.get(k, {}) else k
                   for k in err.validator_value if k not in err.instance]
        return [Diagnostic("schema", f"{where}: missing required key(s): {', '.join(missing)}",
                           doc.loc(path), json_path(path))]
    out = []
    for key in [k for k in err.instance if k not in err.schema.get("properties", {})]:
        close = difflib.get_close_matches(str(key), allowed, n=1) or sorted(
            (k for k in allowed if k.startswith(str(key)) or str(key).startswith(k)),
            key=lambda k: -difflib.SequenceMatcher(None, str(key), k).ratio())[:1]
        hint = f"did you mean {close[0]!r}? " if close else ""
        inner = err.instance[key]
        if isinstance(inner, dict) and inner and all(k in allowed for k in inner):
            hint += f"its keys ({', '.join(inner)}) belong directly here, without '{key}:'. "
        hint += "allowed keys: " + ", ".join(allowed) if allowed else ""
        out.append(Diagnostic("schema", f"{where}: unknown key {key!r}", doc.key_loc((*path, key)),
                              json_path(path), hint.strip() or None))
    return out


def check(doc: Document, schema: str) -> list[Diagnostic]:
    """Validate ``doc`` against ``schema``: every unknown or missing key, and one error per other location."""
    errors = list(_validator(schema).iter_errors(doc.data))
    by_path: dict[tuple[Any, ...], list[jsonschema.ValidationError]] = {}
    for err in errors:
        by_path.setdefault(tuple(err.absolute_path), []).append(err)
    out = []
    for path, errs in by_path.items():
        keyed = [e for e in errs if e.validator in ("additionalProperties", "required")]
        seen: set[tuple[str, int]] = set()
        for err in keyed:  # jsonschema reports each missing key apart: one diagnostic per schema
            if (err.validator, id(err.schema)) not in seen:
                seen.add((err.validator, id(err.schema)))
                out.extend(_key_problems(doc, path, err))
        rest = [e for e in errs if e not in keyed]
        if rest and not keyed:
            err = best_match(rest)
            path_t = tuple(err.absolute_path) or path
            out.append(Diagnostic("schema", _message(err), doc.loc(path_t), json_path(path_t)))
    return out
