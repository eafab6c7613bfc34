"""JSON Schema checks of policy and case documents, as located diagnostics.

Schemas live in ``schemas/`` (draft 2020-12). Errors are mapped back to the
YAML node they concern; the most relevant (jsonschema's ``best_match``)
comes first for each location.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import jsonschema
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


def _message(err: jsonschema.ValidationError) -> str:
    where = json_path(tuple(err.absolute_path)) or "the document"
    if err.validator == "additionalProperties":
        return f"{where}: {err.message}"
    if err.validator == "required":
        return f"{where}: {err.message}"
    if err.validator == "enum":
        allowed = ", ".join(map(str, err.validator_value))
        return f"{where}: {err.instance!r} is not one of: {allowed}"
    return f"{where}: {err.message}"


def check(doc: Document, schema: str) -> list[Diagnostic]:
    """Validate ``doc`` against ``schema``; one diagnostic per failing location."""
    errors = list(_validator(schema).iter_errors(doc.data))
    by_path: dict[tuple[Any, ...], list[jsonschema.ValidationError]] = {}
    for err in errors:
        by_path.setdefault(tuple(err.absolute_path), []).append(err)
    out = []
    for path, errs in by_path.items():
        err = best_match(errs)
        path_t = tuple(err.absolute_path) or path
        loc = doc.loc(path_t)
        if err.validator == "additionalProperties":
            extra = [k for k in (err.instance or {}) if k not in err.schema.get("properties", {})]
            if extra:
                loc = doc.key_loc((*path_t, extra[0]))
        out.append(Diagnostic("schema", _message(err), loc, json_path(path_t)))
    return out
