"""HTTP routes of the workbench: the page, its assets, ``/docs``, and the JSON
endpoints the page calls (all under ``/workbench/api``).

No route writes a file. Bodies are bounded (a case or a policy text by the
service's ``max_body``, a batch by :data:`MAX_BATCH_BYTES`); errors answer
``application/problem+json`` with the engine's diagnostics.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from engine._yaml import parse_yaml
from engine.errors import Diagnostic, EngineError
from engine.workbench import batchrun, editing, views

MAX_BATCH_BYTES = 8 << 20
MAX_WHAT_IF_CASES = 5000
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
         ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml", ".png": "image/png"}
# The page runs only its own scripts and styles and talks only to this server.
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
SECURE = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
          "Referrer-Policy": "no-referrer", "Cache-Control": "no-cache"}


class Problem(Exception):
    """An RFC 9457 problem to answer with."""

    def __init__(self, status: int, title: str, detail: str, diagnostics: list[dict[str, Any]] | None = None) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail
        self.diagnostics = diagnostics or [Diagnostic("request", detail).to_dict()]

    def response(self) -> JSONResponse:
        body = {"type": "about:blank", "title": self.title, "status": self.status, "detail": self.detail,
                "diagnostics": self.diagnostics}
        return JSONResponse(body, status_code=self.status, media_type="application/problem+json")


def _from_error(err: EngineError) -> Problem:
    diags = [d.to_dict() for d in err.diagnostics]
    return Problem(422, "Invalid input", diags[0]["message"] if diags else str(err), diags)


def assets() -> dict[str, tuple[bytes, str]]:
    """The page's files, read once from the package (so an installed wheel serves them)."""
    folder = resources.files("engine.workbench") / "static"
    out = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rsplit(".", 1)[-1]
        if item.is_file() and suffix in TYPES:
            out[item.name] = (item.read_bytes(), TYPES[suffix])
    return out


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused with 413 past ``limit`` bytes (checked while reading)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Problem(413, "Body too large", f"the body is over {limit} bytes")
    data = bytearray()
    async for part in request.stream():
        data += part
        if len(data) > limit:
            raise Problem(413, "Body too large", f"the body is over {limit} bytes")
    return bytes(data)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data, parse_float=Decimal)
    except (ValueError, RecursionError) as err:
        raise Problem(422, "Invalid JSON", f"the body is not valid JSON: {err}") from err


def _text(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise Problem(422, "Not UTF-8", f"the body is not UTF-8 text ({err.reason} at byte {err.start})") from err


def plain(value: Any) -> Any:
    """YAML data in JSON form: Decimals and dates as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Decimal):
        return f"{value:f}" if value.is_finite() else str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def make_routes(engine_of: Callable[[], Any], max_body: int) -> list[Route]:
    """The workbench's routes; ``engine_of`` returns the engine now in service."""
    files = assets()

    def page(name: str) -> Callable[[Request], Any]:
        async def serve(_: Request) -> Response:
            body, media = files[name]
            return Response(body, media_type=media, headers=SECURE)
        return serve

    async def static(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            return Problem(404, "Not found", "no such file").response()
        return Response(found[0], media_type=found[1], headers=SECURE)

    def compiled_of(request: Request) -> Any:
        vendor = request.path_params["vendor"]
        try:
            return views.latest(engine_of(), vendor)
        except KeyError:
            raise Problem(404, "Unknown vendor", f"unknown vendor {vendor!r}") from None

    def guarded(fn: Callable[[Request], Any]) -> Callable[[Request], Any]:
        async def call(request: Request) -> Response:
            try:
                return await fn(request)
            except Problem as problem:
                return problem.response()
            except EngineError as err:
                return _from_error(err).response()
        return call

    async def outline(request: Request) -> Response:
        compiled = compiled_of(request)
        return JSONResponse(views.outline(engine_of(), compiled.policy.vendor))

    async def explain(request: Request) -> Response:
        case = _json(await read_body(request, max_body))
        lang = request.query_params.get("lang", "en")
        return JSONResponse(await run_in_threadpool(views.explanation, engine_of(), case, lang))

    async def parse_case(request: Request) -> Response:
        doc, problems = parse_yaml(_text(await read_body(request, max_body)), "case")
        if doc is None or problems:
            raise _from_error(EngineError(problems))
        if not isinstance(doc.data, dict):
            raise Problem(422, "Not a case", "a case is a mapping with vendor, kind and facts")
        return JSONResponse(plain(doc.data))

    async def table(request: Request) -> Response:
        compiled = compiled_of(request)
        kind = request.path_params["kind"]
        if kind not in compiled.kinds:
            raise Problem(404, "Unknown kind", f"unknown kind {kind!r} for {compiled.policy.vendor}")
        return JSONResponse(views.decision_table(compiled, kind))

    async def coverage(request: Request) -> Response:
        compiled = compiled_of(request)
        return JSONResponse(await run_in_threadpool(views.coverage, engine_of(), compiled))

    async def source_map(request: Request) -> Response:
        return JSONResponse(views.source_map(compiled_of(request).policy))

    async def policy_text(request: Request) -> Response:
        policy = compiled_of(request).policy
        return JSONResponse({"file": policy.file.rsplit("/", 1)[-1], "path": policy.file, "text": policy.text})

    async def try_change(request: Request) -> Response:
        """Body: the policy text, or JSON ``{"text", "cases"}`` for a what-if on given cases."""
        compiled = compiled_of(request)
        body = await read_body(request, max_body)
        what_if = request.query_params.get("what_if") == "1"
        cases = None
        if request.headers.get("content-type", "").startswith("application/json"):
            data = _json(body)
            if not isinstance(data, dict) or not isinstance(data.get("text"), str) or not isinstance(
                    data.get("cases", []), list) or len(data.get("cases", [])) > MAX_WHAT_IF_CASES:
                raise Problem(422, "Bad request", f'expected {{"text": "...", "cases": [at most '
                              f"{MAX_WHAT_IF_CASES} cases]}}")
            text, cases = data["text"], [c for c in data.get("cases", []) if isinstance(c, dict)]
            what_if = True
        else:
            text = _text(body)
        return JSONResponse(await run_in_threadpool(editing.try_change, engine_of(), compiled, text, what_if, cases))

    async def batch(request: Request) -> Response:
        fmt = request.query_params.get("format", "jsonl")
        if fmt not in ("jsonl", "csv"):
            raise Problem(422, "Unknown format", "format must be jsonl or csv")
        text = _text(await read_body(request, MAX_BATCH_BYTES))
        lines = batchrun.lines_of(text, fmt)
        if len(lines) > batchrun.MAX_LINES:
            raise Problem(413, "Too many cases", f"at most {batchrun.MAX_LINES} cases per upload")
        engine = engine_of()  # one policy set for the whole batch
        lang = request.query_params.get("lang", "en")
        return StreamingResponse(batchrun.stream(engine, lines, fmt, lang), media_type="application/x-ndjson")

    api = "/workbench/api"
    return [
        Route("/", page("index.html"), methods=["GET"]),
        Route("/docs", page("docs.html"), methods=["GET"]),
        Route("/workbench/static/{name}", static, methods=["GET"]),
        Route(f"{api}/case", guarded(parse_case), methods=["POST"]),
        Route(f"{api}/explain", guarded(explain), methods=["POST"]),
        Route(f"{api}/batch", guarded(batch), methods=["POST"]),
        Route(f"{api}/policies/{{vendor}}", guarded(outline), methods=["GET"]),
        Route(f"{api}/policies/{{vendor}}/kinds/{{kind}}/table", guarded(table), methods=["GET"]),
        Route(f"{api}/policies/{{vendor}}/coverage", guarded(coverage), methods=["GET"]),
        Route(f"{api}/policies/{{vendor}}/source-map", guarded(source_map), methods=["GET"]),
        Route(f"{api}/policies/{{vendor}}/text", guarded(policy_text), methods=["GET"]),
        Route(f"{api}/policies/{{vendor}}/try", guarded(try_change), methods=["POST"]),
    ]
