"""The HTTP decision service (``clause serve``): Starlette under uvicorn.

Endpoints (OpenAPI at ``/openapi.json``, built from the same JSON Schemas
the CLI uses):

* ``POST /v1/decide`` — one case → its decision;
* ``POST /v1/decide/batch`` — a list of cases → a list of results, each a
  decision or the diagnostics of that case;
* ``GET /v1/policies`` — vendors, kinds, versions and digests;
* ``GET /v1/policies/{vendor}/facts`` — the JSON Schema of a vendor's facts;
* ``POST /v1/reload`` — reload the policies now (off unless the server is
  started with ``allow_reload``; with a ``reload_token``, only for a client
  sending it as ``Authorization: Bearer``);
* ``GET /healthz``.

Input errors answer 422 with the CLI's diagnostics, a body over the size
limit 413, an unknown route 404; no traceback ever reaches a client.
Policies reload when their files change: the new set is loaded and
compiled aside and swapped in with one assignment, so a request sees the
old set or the new one, never a mix; a broken edit keeps the old set and
is reported by ``/healthz`` and on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import __version__, jsonread
from engine.engine import Engine, policy_files
from engine.errors import Diagnostic, EngineError
from engine.factschema import facts_schema
from engine.log import DecisionLog
from engine.schemas import load_schema
from engine.workbench import make_routes as workbench_routes

LOG = logging.getLogger("clause.service")
MAX_BODY = 1 << 20          # 1 MiB
MAX_BATCH = 1000
BODY_TIMEOUT = 10.0         # seconds to receive a whole request body


def _error(status: int, code: str, message: str, diagnostics: list[dict[str, Any]] | None = None) -> JSONResponse:
    diags = diagnostics or [Diagnostic(code, message).to_dict()]
    return JSONResponse({"ok": False, "error": message, "diagnostics": diags}, status_code=status)


class PolicySet:
    """The engine in service, swapped atomically when the policy files change."""

    def __init__(self, root: Path, matcher: str) -> None:
        self.root = root
        self.matcher = matcher
        self.engine = Engine.load(root, matcher=matcher)
        self.loaded_at = time.time()
        self.stamp = self._stamp()
        self.last_error: list[dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[tuple[str, int, int], ...]:
        files = [p for p in self.root.rglob("*") if p.is_file() and p.suffix in (".yaml", ".txt")]
        return tuple(sorted((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in files))

    def reload(self, force: bool = False) -> bool:
        """Load the files again if they changed; keep the old set if the new one is broken."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self.stamp and not force:
                return False
            try:
                fresh = Engine.load(self.root, matcher=self.matcher)
            except Exception as err:  # noqa: BLE001 - a policy must never take the service down
                self.stamp = stamp  # do not retry the same broken files every second
                diagnostics = err.diagnostics if isinstance(err, EngineError) else [
                    Diagnostic("internal", f"the policies could not be loaded ({type(err).__name__}: {err})")]
                self.last_error = [d.to_dict() for d in diagnostics]
                LOG.error("policy reload failed; still serving the previous policies:\n%s", err,
                          exc_info=not isinstance(err, EngineError))
                return False
            # The swap: one reference assignment. The old engine is not closed
            # here: requests in flight may still use it; its back end is freed
            # when the last of them lets go of it.
            self.engine = fresh
            self.stamp, self.last_error, self.loaded_at = stamp, None, time.time()
            LOG.info("policies reloaded from %s", self.root)
            return True

    def watch(self, interval: float, stop: threading.Event) -> None:
        while not stop.wait(interval):
            try:
                self.reload()
            except Exception:  # noqa: BLE001 - the watcher must outlive any surprise
                LOG.exception("policy watcher")


def openapi() -> dict[str, Any]:
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
                    "schema": {"type": "array", "items": ref("Case"), "maxItems": MAX_BATCH}}}},
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


def create_app(policies: Path, *, matcher: str = "python", log: DecisionLog | None = None,
               max_body: int = MAX_BODY, watch_interval: float | None = 1.0,
               body_timeout: float = BODY_TIMEOUT, allow_reload: bool = False,
               reload_token: str | None = None, workbench: bool = True) -> Starlette:
    """The ASGI application (also usable with any ASGI server or test client).

    ``workbench`` adds the web page at ``/``, ``/docs`` and their endpoints
    (:mod:`engine.workbench`).
    """
    state = PolicySet(policies, matcher)
    stop = threading.Event()
    spec = openapi()

    async def receive(request: Request) -> bytes:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_body:
            raise _Reject(413, "body_too_large", f"the body is over {max_body} bytes")
        data = b""
        async for part in request.stream():
            data += part
            if len(data) > max_body:
                raise _Reject(413, "body_too_large", f"the body is over {max_body} bytes")
        return data

    async def body_of(request: Request) -> Any:
        try:  # a slow upload must not hold a connection (and its memory) for ever
            data = await asyncio.wait_for(receive(request), body_timeout)
        except TimeoutError:
            raise _Reject(408, "body_timeout", f"the body did not arrive within {body_timeout:g} s") from None
        except ClientDisconnect:
            raise _Reject(400, "client_disconnect", "the client went away before sending the whole body") \
                from None
        try:
            return jsonread.loads(data)
        except jsonread.JSONInputError as err:
            raise _Reject(422, "json", f"the body is not valid JSON: {err}") from err

    def decide_one(engine: Engine, case: Any) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
        try:
            decision = engine.decide(case)
        except EngineError as err:
            return None, [d.to_dict() for d in err.diagnostics]
        if log is not None:
            try:
                log.write(case, decision, engine.policy_by_digest(decision.vendor, decision.policy["digest"]),
                          "serve")
            except Exception as err:
                if not _log_busy(err):
                    raise
                LOG.warning("decision not logged, answered 503: %s", err)
                return None, [Diagnostic("log_unavailable", "the decision log is busy or unavailable "
                                         f"({err}); the decision could not be recorded, so it is not given: retry").to_dict()]
        return decision.to_dict(), None

    async def decide(request: Request) -> Response:
        case = await body_of(request)
        decision, diags = await run_in_threadpool(decide_one, state.engine, case)
        if diags is not None and diags[0]["code"] == "log_unavailable":
            reply = _error(503, "log_unavailable", diags[0]["message"], diags)
            reply.headers["Retry-After"] = "1"
            return reply
        if diags is not None:
            return _error(422, diags[0]["code"], diags[0]["message"], diags)
        return JSONResponse(decision)

    async def decide_batch(request: Request) -> Response:
        cases = await body_of(request)
        if not isinstance(cases, list):
            return _error(422, "case", "the body must be a JSON array of cases")
        if len(cases) > MAX_BATCH:
            return _error(413, "body_too_large", f"at most {MAX_BATCH} cases per request")
        engine = state.engine  # one policy set for the whole batch

        def run() -> list[dict[str, Any]]:
            out = []
            for case in cases:
                decision, diags = decide_one(engine, case)
                out.append({"decision": decision} if diags is None else {"diagnostics": diags})
            return out
        return JSONResponse(await run_in_threadpool(run))

    async def list_policies(_: Request) -> Response:
        engine = state.engine
        return JSONResponse({"vendors": {v: [{"version": p.version, "effective_from": p.effective_from.isoformat(),
                                              "effective_until": p.effective_until.isoformat() if p.effective_until else None,
                                              "digest": p.digest, "kinds": list(p.kinds)} for p in versions]
                                         for v, versions in engine.vendors.items()}})

    async def facts(request: Request) -> Response:
        versions = state.engine.vendors.get(request.path_params["vendor"])
        if not versions:
            return _error(404, "case", f"unknown vendor {request.path_params['vendor']!r}")
        return JSONResponse(facts_schema(versions[-1]))

    async def reload(request: Request) -> Response:
        refused = _reload_refusal(request, allow_reload, reload_token)
        if refused is not None:
            return refused
        changed = await run_in_threadpool(state.reload, True)
        if state.last_error and not changed:
            return _error(422, state.last_error[0]["code"], "the new policies are invalid; the previous ones "
                          "are still serving", state.last_error)
        return JSONResponse({"ok": True, "reloaded": changed})

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": state.last_error is None, "version": __version__,
                             "policies": len(policy_files(state.root)), "loaded_at": state.loaded_at,
                             "reload_error": state.last_error})

    async def spec_doc(_: Request) -> Response:
        return JSONResponse(spec)

    async def on_reject(_: Request, exc: Exception) -> Response:
        assert isinstance(exc, _Reject)
        return _error(exc.status, exc.code, exc.message)

    async def on_crash(_: Request, exc: Exception) -> Response:
        if isinstance(exc, ClientDisconnect):  # nobody is left to answer; not an error of ours
            LOG.info("client disconnected before its answer")
            return _error(400, "client_disconnect", "the client went away")
        LOG.exception("internal error", exc_info=exc)
        return _error(500, "internal", "internal error; see the server log")

    def start() -> None:
        if watch_interval:
            threading.Thread(target=state.watch, args=(watch_interval, stop), daemon=True,
                             name="clause-policy-watcher").start()

    def shutdown() -> None:
        stop.set()
        state.engine.close()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        start()
        yield
        shutdown()

    app = Starlette(routes=[
        Route("/v1/decide", decide, methods=["POST"]),
        Route("/v1/decide/batch", decide_batch, methods=["POST"]),
        Route("/v1/policies", list_policies, methods=["GET"]),
        Route("/v1/policies/{vendor}/facts", facts, methods=["GET"]),
        Route("/v1/reload", reload, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/openapi.json", spec_doc, methods=["GET"]),
        *(workbench_routes(lambda: state.engine, max_body) if workbench else []),
    ], exception_handlers={_Reject: on_reject, Exception: on_crash}, lifespan=lifespan)
    app.state.policies = state
    return app


def _log_busy(err: Exception) -> bool:
    """A log write that failed because the database is locked, busy or unreachable (retryable)."""
    import sqlite3  # noqa: PLC0415

    if isinstance(err, sqlite3.OperationalError):
        return True
    return type(err).__module__.split(".")[0] in ("psycopg", "psycopg2") and type(err).__name__ in (
        "OperationalError", "LockNotAvailable", "QueryCanceled", "SerializationFailure", "DeadlockDetected")


def _reload_refusal(request: Request, allowed: bool, token: str | None) -> Response | None:
    """Why ``POST /v1/reload`` is refused (a response), or None when it may run.

    Off unless the server was started with ``--allow-reload``; with a token
    it also needs ``Authorization: Bearer TOKEN``. Only a JSON (or absent)
    content type is accepted: an HTML form cannot post one across sites.
    """
    if not allowed:
        return _error(403, "reload_disabled", "POST /v1/reload is off; start the server with "
                      "--allow-reload (policies still reload when their files change)")
    if token is not None:
        sent = request.headers.get("authorization", "")
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            reply = _error(401, "unauthorized", "POST /v1/reload needs the header "
                           "'Authorization: Bearer <CLAUSE_RELOAD_TOKEN>'")
            reply.headers["WWW-Authenticate"] = "Bearer"
            return reply
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in ("", "application/json"):
        return _error(415, "content_type", f"POST /v1/reload takes no body or a JSON one, not {kind!r}")
    return None


class _Reject(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
