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
* ``GET /healthz`` (liveness: the process answers) and ``GET /readyz``
  (readiness: the policy files load and the decision log answers; 503
  otherwise);
* ``GET /metrics`` — Prometheus text format (:mod:`engine.metrics`).

Errors are RFC 9457 ``application/problem+json`` carrying the CLI's
diagnostics: input errors 422, a body over the size limit 413, an unknown
route 404; no traceback ever reaches a client. Every response carries an
``X-Request-Id``; with ``json_logs`` each request is one JSON line on the
``clause.access`` logger (:mod:`engine.accesslog`). :func:`app_from_env`
builds the application from ``CLAUSE_*`` environment variables, for
``uvicorn --factory engine.service:app_from_env`` and gunicorn.
Policies reload when their files change: the new set is loaded and
compiled aside and swapped in with one assignment, so a request sees the
old set or the new one, never a mix; a broken edit keeps the old set and
is reported by ``/healthz`` and on stderr.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import sys
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, NamedTuple

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from engine import __version__, jsonread
from engine.accesslog import AccessLog, enable_json_lines
from engine.engine import Engine, policy_files
from engine.errors import Diagnostic, EngineError
from engine.factschema import facts_schema
from engine.groupcommit import GroupCommitter, is_busy
from engine.httpio import (BodyReader, DirectService, Receive, Reject, Scope, Send, asgi_endpoint, json_bytes,
                           send_json_bytes)
from engine.log import DecisionLog
from engine.logprocess import ProcessCommitter
from engine.loopbatch import LoopBatch
from engine.metrics import Metrics
from engine.policyset import PolicySet
from engine.openapi import MAX_BATCH, openapi
from engine.settings import Settings
from engine.workbench import make_routes as workbench_routes

LOG = logging.getLogger("clause.service")
MAX_BODY = 1 << 20          # 1 MiB
BODY_TIMEOUT = 10.0         # seconds to receive a whole request body
INLINE_BODY = 16 << 10      # a case up to this size is decided on the event loop, not in a thread,
INLINE_RULES = 64           # if its vendor's largest kind has at most this many rules (a bounded cost)


class Prepared(NamedTuple):
    """What a turn's batch made of one ``POST /v1/decide``: the case and its options, and either
    its decision (its ``to_dict()`` and that dict's JSON), or the diagnostics that refuse it, or
    neither (it is decided in a worker thread)."""

    case: Any
    lang: str
    explain: bool
    data: dict[str, Any] | None
    body: bytes | None
    diagnostics: list[dict[str, Any]] | None


def _error(status: int, code: str, message: str, diagnostics: list[dict[str, Any]] | None = None) -> JSONResponse:
    """An RFC 9457 problem; ``ok``/``error`` kept for clients of the first API version."""
    diags = diagnostics or [Diagnostic(code, message).to_dict()]
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": message,
            "code": code, "diagnostics": diags, "ok": False, "error": message}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def create_app(policies: Path, *, matcher: str = "python", log: DecisionLog | None = None,
               max_body: int = MAX_BODY, watch_interval: float | None = 1.0,
               body_timeout: float = BODY_TIMEOUT, allow_reload: bool = False,
               reload_token: str | None = None, workbench: bool = True, json_logs: bool = False,
               log_facts: bool = False, owns_log: bool = False, log_writer: str = "process") -> Starlette:
    """The ASGI application (also usable with any ASGI server or test client).

    ``workbench`` adds the web page at ``/``, ``/docs`` and their endpoints
    (:mod:`engine.workbench`). ``json_logs`` writes one JSON line per
    request (with the case's facts only if ``log_facts``). With
    ``owns_log`` the application closes ``log`` when it shuts down, after
    the requests in flight have been answered. ``log_writer``: ``process``
    commits the log's groups in a child process (:mod:`engine.logprocess`;
    a log in memory, or an object that is not a :class:`DecisionLog`,
    falls back to the thread), ``thread`` in a thread of this process
    (:mod:`engine.groupcommit`).
    """
    metrics = Metrics()
    tracer = _tracer()
    state = PolicySet(policies, matcher, metrics)
    writer = _log_writer(log, log_writer, lambda seconds, _n: metrics.log_write_seconds.observe(seconds))
    if writer is not None:
        metrics.log_queue.set_function(writer.pending)
    stop = threading.Event()
    spec = openapi(MAX_BATCH)

    bodies = BodyReader(max_body, body_timeout)  # a slow upload must not hold a connection for ever

    async def body_of(request: Request) -> Any:
        """The parsed body of a Starlette request (the batch endpoint)."""
        return parsed(await bodies.read(request.scope, request.receive))

    def parsed(data: bytes) -> Any:
        try:
            return jsonread.loads(data)
        except jsonread.JSONInputError as err:
            raise Reject(422, "json", f"the body is not valid JSON: {err}") from err

    def counted(engine: Engine, case: Any, lang: str,
                explain: bool) -> tuple[Any, list[Any] | None, list[dict[str, Any]] | None]:
        """(decision, explanation steps, None) or (None, None, diagnostics); counted in the metrics."""
        started = time.perf_counter()
        try:
            if explain:
                decision, steps = engine.explain(case, lang=lang)
            else:
                decision, steps = engine.decide(case, lang=lang), None
        except EngineError as err:
            return None, None, [d.to_dict() for d in err.diagnostics]
        metrics.decided(decision.vendor, decision.kind, decision.outcome, decision.policy["version"],
                        time.perf_counter() - started)
        return decision, steps, None

    def decided(engine: Engine, case: Any, lang: str,
                explain: bool) -> tuple[Any, list[Any] | None, list[dict[str, Any]] | None]:
        """:func:`counted`, in an OpenTelemetry span when the ``otel`` extra is installed."""
        if tracer is None:
            return counted(engine, case, lang, explain)
        with tracer.start_as_current_span("clause.decide") as span:
            decision, steps, diags = counted(engine, case, lang, explain)
            if decision is None:
                span.set_attribute("clause.error", diags[0]["code"] if diags else "error")
            else:
                span.set_attributes({"clause.vendor": decision.vendor, "clause.kind": decision.kind,
                                     "clause.outcome": decision.outcome,
                                     "clause.policy_digest": decision.policy["digest"]})
            return decision, steps, diags

    def entries(engine: Engine, pairs: list[tuple[Any, Any]]) -> list[Any]:
        return [(case, d, engine.policy_by_digest(d.vendor, d.policy["digest"])) for case, d in pairs]

    def unavailable(count: int, err: Exception) -> list[dict[str, Any]]:
        """The answer for decisions the log could not take: not given (so none is lost), retry."""
        if not is_busy(err):
            raise err
        LOG.warning("%d decision(s) not logged, not answered: %s", count, err)
        return [Diagnostic("log_unavailable", "the decision log is busy or unavailable "
                           f"({err}); the decision could not be recorded, so it is not given: retry").to_dict()]

    async def recorded_async(engine: Engine, case: Any, data: dict[str, Any],
                             lang: str) -> list[dict[str, Any]] | None:
        """:func:`recorded` for one decision given as its ``to_dict()`` (written as is), awaited on
        the event loop: no thread waits for the commit."""
        if writer is None:
            return None
        try:
            policy = engine.policy_by_digest(data["vendor"], data["policy"]["digest"])
            await writer.write_many_async([(case, data, policy)], "serve", lang)
        except Exception as err:
            return unavailable(1, err)
        return None

    def recorded(engine: Engine, pairs: list[tuple[Any, Any]], lang: str) -> list[dict[str, Any]] | None:
        """Log decisions before any is answered (grouped with concurrent requests' into one
        transaction, :mod:`engine.groupcommit`); diagnostics if the log is busy."""
        if writer is None or not pairs:
            return None
        try:
            writer.write_many(entries(engine, pairs), "serve", lang)  # returns once their transaction committed
        except Exception as err:
            return unavailable(len(pairs), err)
        return None

    def decide_one(engine: Engine, case: Any, lang: str = "en",
                   explain: bool = False) -> tuple[dict[str, Any] | None, list[dict[str, Any]] | None]:
        decision, steps, diags = decided(engine, case, lang, explain)
        if decision is None:
            return None, diags
        failed = recorded(engine, [(case, decision)], lang)
        if failed is not None:
            return None, failed
        data = decision.to_dict()
        if steps is not None:
            data["explanation"] = [s.to_dict() for s in steps]
        return data, None

    def decide_many(engine: Engine, cases: list[Any]) -> list[dict[str, Any]]:
        """A batch: every case decided, the decisions logged in one transaction, then answered."""
        results = [decided(engine, case, "en", False) for case in cases]
        failed = recorded(engine, [(c, r[0]) for c, r in zip(cases, results) if r[0] is not None], "en")
        return [{"diagnostics": diags} if decision is None else
                {"diagnostics": failed} if failed is not None else {"decision": decision.to_dict()}
                for decision, _, diags in results]

    def problem(request: Request | Scope, status: int, code: str, message: str,
                diagnostics: list[dict[str, Any]] | None = None) -> JSONResponse:
        """An error answer, counted in the metrics and named in the access log."""
        metrics.failed(code, status)
        scope = request.scope if isinstance(request, Request) else request
        scope.setdefault("state", {})["error_code"] = code
        return _error(status, code, message, diagnostics)

    def options(scope: Scope, engine: Engine, vendor: Any) -> tuple[str, bool]:
        """``?lang=`` (a language of the case's policy) and ``?explain=true`` — the CLI's options."""
        query = scope.get("query_string")
        params = QueryParams(query) if query else None  # Starlette's reading, only when there is a query
        lang = params.get("lang", "en") if params is not None else "en"
        explain = params.get("explain", "false").lower() if params is not None else "false"
        if explain not in ("true", "false", "1", "0"):
            raise Reject(422, "query", f"explain must be true or false, not {explain[:40]!r}")
        known = state.languages(engine, vendor)  # None: no such vendor (the engine will say so)
        if lang not in (known if known is not None else ("en",)):
            raise Reject(422, "lang", f"language {lang[:40]!r} is not one of the policy's: "
                         f"{', '.join(sorted(known if known is not None else ('en',)))}")
        return lang, explain in ("true", "1")

    def prepared(scope: Scope, data: bytes, engine: Engine) -> Prepared:
        """A request's body parsed, its options checked and — when it is cheap — its decision made
        and encoded: the part of ``POST /v1/decide`` that runs in the turn's batch (:mod:`engine.loopbatch`)."""
        case = parsed(data)
        vendor = case.get("vendor") if isinstance(case, dict) else None
        lang, explain = options(scope, engine, vendor)
        small = len(data) <= INLINE_BODY and isinstance(vendor, str) and engine.largest_kind(vendor) <= INLINE_RULES
        if explain or not small:  # explanations, big cases, big policies: off the event loop
            return Prepared(case, lang, explain, None, None, None)
        decision, _, diags = decided(engine, case, lang, False)
        if decision is None:
            return Prepared(case, lang, False, None, None, diags)
        data_out = decision.to_dict()
        return Prepared(case, lang, False, data_out, json_bytes(data_out), None)

    batch = LoopBatch(prepared)

    async def decide(scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/decide``, at the ASGI level (:mod:`engine.httpio`: no Request object, no
        per-request encoder or timer); what it answers is what the Starlette endpoint answered.
        A cheap decision is made on the event loop, with the other requests of the loop's turn
        (:mod:`engine.loopbatch`); its log record is awaited, not waited for in a thread."""
        data = await bodies.read(scope, receive)
        engine = state.engine  # one policy set for the request
        ready = await batch.run(scope, data, engine)
        case, lang, answer, body, diags = ready.case, ready.lang, ready.data, ready.body, ready.diagnostics
        if answer is not None:
            diags = await recorded_async(engine, case, answer, lang)
        elif diags is None:  # not decided in the batch: in a worker thread
            answer, diags = await run_in_threadpool(decide_one, engine, case, lang, ready.explain)
        if diags is not None:
            busy = diags[0]["code"] == "log_unavailable"
            reply = problem(scope, 503 if busy else 422, diags[0]["code"], diags[0]["message"], diags)
            if busy:
                reply.headers["Retry-After"] = "1"
            await reply(scope, receive, send)
            return
        assert answer is not None
        if json_logs:  # what the access log names (engine/accesslog.py); nobody reads it otherwise
            scope.setdefault("state", {})["decision"] = {
                "vendor": answer["vendor"], "kind": answer["kind"], "outcome": answer["outcome"],
                "version": answer["policy"]["version"], "digest": answer["policy"]["digest"],
                "facts": case.get("facts")}
        await send_json_bytes(send, json_bytes(answer) if body is None else body)

    async def decide_direct(scope: Scope, receive: Receive, send: Send) -> None:
        """:func:`decide` without Starlette's layers (:class:`engine.httpio.DirectService`), doing
        what they did: a refusal answered as its problem, a crash as a 500 (unless the answer had
        begun: then nothing more is sent) and raised to the server."""
        started = False

        def tracked(message: Any) -> Awaitable[None]:
            """``send``, noting that the answer began (a plain function: no coroutine per message)."""
            nonlocal started
            started = started or message["type"] == "http.response.start"
            return send(message)
        try:
            await decide(scope, receive, tracked)
        except Reject as exc:
            await (await on_reject(scope, exc))(scope, receive, send)
        except Exception as exc:
            if started:  # the answer had begun: nothing more can be sent
                LOG.exception("internal error", exc_info=exc)
            else:
                reply = await on_crash(scope, exc)  # logs it
                with contextlib.suppress(Exception):  # the client is gone: the crash is what to report
                    await reply(scope, receive, send)
            raise

    async def decide_batch(request: Request) -> Response:
        cases = await body_of(request)
        if not isinstance(cases, list):
            return problem(request, 422, "case", "the body must be a JSON array of cases")
        if len(cases) > MAX_BATCH:
            return problem(request, 413, "body_too_large", f"at most {MAX_BATCH} cases per request")
        engine = state.engine  # one policy set for the whole batch
        return JSONResponse(await run_in_threadpool(decide_many, engine, cases))

    async def list_policies(_: Request) -> Response:
        engine = state.engine
        return JSONResponse({"vendors": {v: [{"version": p.version, "effective_from": p.effective_from.isoformat(),
                                              "effective_until": p.effective_until.isoformat() if p.effective_until else None,
                                              "digest": p.digest, "kinds": list(p.kinds)} for p in versions]
                                         for v, versions in engine.vendors.items()}})

    async def facts(request: Request) -> Response:
        versions = state.engine.vendors.get(request.path_params["vendor"])
        if not versions:
            return problem(request, 404, "case", f"unknown vendor {request.path_params['vendor']!r}")
        return JSONResponse(facts_schema(versions[-1]))

    async def reload(request: Request) -> Response:
        refused = _reload_refusal(request, allow_reload, reload_token)
        if refused is not None:
            metrics.failed("reload_refused", refused.status_code)
            return refused
        changed = await run_in_threadpool(state.reload, True)
        if state.last_error and not changed:
            return problem(request, 422, state.last_error[0]["code"], "the new policies are invalid; the "
                           "previous ones are still serving", state.last_error)
        return JSONResponse({"ok": True, "reloaded": changed})

    async def health(_: Request) -> Response:
        """Liveness: the process answers. ``ok`` says whether the files on disk load (see /readyz)."""
        return JSONResponse({"ok": state.last_error is None, "live": True, "version": __version__,
                             "policies": len(policy_files(state.root)), "loaded_at": state.loaded_at,
                             "reload_error": state.last_error})

    async def ready(request: Request) -> Response:
        """Readiness: 200 when the policy files load and the decision log answers, else 503."""
        problems = list(state.last_error or [])
        if log is not None:
            try:
                await run_in_threadpool(log.ping)
            except Exception as err:  # noqa: BLE001 - any failure means "do not send traffic here"
                problems.append(Diagnostic("log_unavailable", f"the decision log does not answer: "
                                           f"{type(err).__name__}").to_dict())
        if problems:
            reply = problem(request, 503, problems[0]["code"], "not ready: " + problems[0]["message"], problems)
            reply.headers["Retry-After"] = "1"
            return reply
        return JSONResponse({"ok": True, "ready": True, "version": __version__, "loaded_at": state.loaded_at})

    async def metrics_doc(_: Request) -> Response:
        body, kind = metrics.render()
        return Response(body, media_type=kind)

    async def spec_doc(_: Request) -> Response:
        return JSONResponse(spec)

    async def on_reject(request: Request | Scope, exc: Exception) -> Response:
        assert isinstance(exc, Reject)
        return problem(request, exc.status, exc.code, exc.message)

    async def on_crash(request: Request | Scope, exc: Exception) -> Response:
        if isinstance(exc, ClientDisconnect):  # nobody is left to answer; not an error of ours
            LOG.info("client disconnected before its answer")
            return problem(request, 400, "client_disconnect", "the client went away")
        LOG.exception("internal error", exc_info=exc)
        return problem(request, 500, "internal", "internal error; see the server log")

    def start() -> None:
        if isinstance(writer, ProcessCommitter):
            writer.start()  # before the first request (its imports take ~0.4 s); not when an app is only built
        if watch_interval:
            threading.Thread(target=state.watch, args=(watch_interval, stop), daemon=True,
                             name="clause-policy-watcher").start()

    def shutdown() -> None:
        """After the server has answered the requests in flight: stop watching, free, close the log."""
        stop.set()
        state.engine.close()
        if writer is not None:
            writer.close()
        if owns_log and log is not None:
            log.close()

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        start()
        yield
        shutdown()

    app = DirectService(routes=[
        Route("/v1/decide", asgi_endpoint(decide), methods=["POST"]),
        Route("/v1/decide/batch", decide_batch, methods=["POST"]),
        Route("/v1/policies", list_policies, methods=["GET"]),
        Route("/v1/policies/{vendor}/facts", facts, methods=["GET"]),
        Route("/v1/reload", reload, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
        Route("/readyz", ready, methods=["GET"]),
        Route("/metrics", metrics_doc, methods=["GET"]),
        Route("/openapi.json", spec_doc, methods=["GET"]),
        *(workbench_routes(lambda: state.engine, max_body) if workbench else []),
    ], exception_handlers={Reject: on_reject, Exception: on_crash}, lifespan=lifespan)
    app.state.policies = state
    app.state.metrics = metrics
    app.add_middleware(AccessLog, metrics=metrics, json_logs=json_logs, log_facts=log_facts)
    app.go_direct(AccessLog(decide_direct, metrics, json_logs=json_logs, log_facts=log_facts, route="decide"))
    return app


def app_from_env() -> Starlette:
    """The application configured by ``CLAUSE_*`` environment variables (:mod:`engine.settings`).

    For ``uvicorn --factory engine.service:app_from_env``, gunicorn with
    uvicorn workers, and ``clause serve --workers N``: each worker process
    builds its own application (and opens its own connection to the log).
    """
    settings = Settings.from_env()
    if settings.json_logs:
        enable_json_lines()
    log = DecisionLog(settings.log) if settings.log else None
    try:
        return create_app(settings.policies, matcher=settings.matcher, log=log, max_body=settings.max_body,
                          body_timeout=settings.body_timeout, allow_reload=settings.allow_reload,
                          reload_token=settings.reload_token, workbench=settings.workbench,
                          json_logs=settings.json_logs, log_facts=settings.log_facts, owns_log=True)
    except BaseException:
        if log is not None:
            log.close()
        raise


def _log_writer(log: Any, kind: str, on_commit: Any) -> GroupCommitter | ProcessCommitter | None:
    """The group committer in front of ``log`` (see :func:`create_app`'s ``log_writer``)."""
    if kind not in ("process", "thread"):
        raise ValueError(f"log_writer must be 'process' or 'thread', not {kind!r}")
    if log is None:
        return None
    if kind == "process" and isinstance(log, DecisionLog) and log.shareable and os.name == "posix":
        if sys.executable and os.access(sys.executable, os.X_OK):
            return ProcessCommitter(log, on_commit=on_commit)  # its writer starts with the app's lifespan
        # An embedded Python may have no interpreter to start: the thread still works.
        LOG.warning("no Python interpreter (%r) for the decision log's writer process; writing from a thread",
                    sys.executable)
    return GroupCommitter(log, on_commit=on_commit)


def _tracer() -> Any:
    """An OpenTelemetry tracer when the optional ``otel`` extra is installed, else None (no cost)."""
    try:
        from opentelemetry import trace  # noqa: PLC0415 - optional
    except ImportError:
        return None
    return trace.get_tracer("clause", __version__)


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
