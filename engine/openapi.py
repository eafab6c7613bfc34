"""The service's OpenAPI 3.1 document, built from the project's own JSON Schemas (``/openapi.json``)."""

from __future__ import annotations

import json
from typing import Any

from engine import __version__
from engine.schemas import load_schema

MAX_BATCH = 1000  # cases per /v1/decide/batch request


def openapi(max_batch: int = MAX_BATCH) -> dict[str, Any]:
    """OpenAPI 3.1 document whose bodies are the project's JSON Schemas."""
    ref = lambda name: {"$ref": f"#/components/schemas/{name}"}  # noqa: E731
    error = {"description": "Input error, with diagnostics", "content": {"application/json": {"schema": ref("Error")}}}
    schemas = {"Case": load_schema("case.schema.json"), "Decision": load_schema("decision.schema.json"),
               "Error": {"type": "object", "required": ["ok", "error", "diagnostics"], "properties": {
                   "ok": {"const": False}, "error": {"type": "string"},
                   "diagnostics": {"type": "array", "items": {"type": "object"}}}}}
    for name, schema in list(schemas.items()):
        schemas[name] = _embedded(schema, f"#/components/schemas/{name}")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Clause decision service", "version": __version__},
        "paths": {
            "/v1/decide": {"post": {
                "summary": "Decide one case", "operationId": "decide",
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref("Case")}}},
                "responses": {"200": {"description": "The decision", "content": {"application/json": {"schema": ref("Decision")}}},
                              "408": {"description": "Body not received in time"},
                              "413": {"description": "Body too large"}, "422": error,
                              "503": {"description": "The decision log is busy; retry after Retry-After seconds"}}}},
            "/v1/decide/batch": {"post": {
                "summary": "Decide a list of cases", "operationId": "decideBatch",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": {"type": "array", "items": ref("Case"), "maxItems": max_batch}}}},
                "responses": {"200": {"description": "One result per case, in order", "content": {"application/json": {
                    "schema": {"type": "array", "items": {"oneOf": [
                        {"type": "object", "required": ["decision"], "properties": {"decision": ref("Decision")}},
                        {"type": "object", "required": ["diagnostics"], "properties": {"diagnostics": {"type": "array"}}}]}}}}},
                    "413": {"description": "Body too large"}, "422": error}}},
            "/v1/policies": {"get": {"summary": "Loaded policies", "operationId": "policies",
                                     "responses": {"200": {"description": "Vendors, kinds, versions, digests"}}}},
            "/v1/policies/{vendor}/facts": {"get": {
                "summary": "JSON Schema of a vendor's facts", "operationId": "facts",
                "parameters": [{"name": "vendor", "in": "path", "required": True, "schema": {"type": "string"}}],
                "responses": {"200": {"description": "A JSON Schema"}, "404": {"description": "Unknown vendor"}}}},
            "/v1/reload": {"post": {"summary": "Reload the policies now (with --allow-reload)", "operationId": "reload",
                                    "responses": {"200": {"description": "Reloaded"}, "401": error, "403": error,
                                                  "415": error, "422": error}}},
            "/healthz": {"get": {"summary": "Health", "operationId": "health",
                                 "responses": {"200": {"description": "Serving"}}}},
        },
        "components": {"schemas": schemas},
    }


def _embedded(schema: dict[str, Any], at: str) -> dict[str, Any]:
    """A standalone schema made fit to sit at ``at`` inside the OpenAPI document.

    Its own ``$schema``/``$id`` go (the document's dialect applies) and its
    local references ``#/$defs/x`` are rewritten to point under ``at``.
    """
    text = json.dumps({k: v for k, v in schema.items() if k not in ("$schema", "$id")})
    return json.loads(text.replace('"#/$defs/', f'"{at}/$defs/'))
