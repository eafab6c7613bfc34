"""The HTTP decision service (``clause serve``), exercised over real HTTP.

Each server is the real CLI (``cli.py serve``) in a subprocess on a free
loopback port, with its own copy of the bundled policies and its own SQLite
decision log; the tests talk to it with ``urllib.request`` only. Covered:
decisions for every bundled vendor (checked against the in-process Engine),
batches with a bad case, the policy listing and facts schemas, health, the
OpenAPI document (validated, and built from the project's own schemas), the
error statuses (422 with diagnostics and no traceback, 413, 404), reload on
file change, a broken edit keeping the old policies (watcher and
``POST /v1/reload``), and the decision log of the service.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES, ROOT

from engine import Engine
from engine._yaml import parse_yaml
from engine.factschema import facts_schema
from engine.log import DecisionLog
from engine.schemas import load_schema
from engine.testing import load_tests

VENDORS = ["itellum", "intpho", "voip-provider", "ippbx-store", "did-provider"]
RETURN_CASE = POLICIES / "itellum" / "cases" / "return-refund.yaml"
REFUND_AMOUNT = "equipment_price + first_monthly_fee"


# --- helpers --------------------------------------------------------------------------------

def read_case(path: Path) -> dict[str, Any]:
    """A case file (YAML or JSON) as the JSON mapping a client would send."""
    doc, problems = parse_yaml(path.read_text(encoding="utf-8"), str(path))
    assert doc is not None and not problems, problems
    return as_json(doc.data)


def as_json(data: Any) -> Any:
    """``data`` as a server reads it: through JSON, with numbers with a fraction as Decimal."""
    return json.loads(dumps(data), parse_float=Decimal)


def dumps(data: Any) -> str:
    """JSON text; a Decimal is written as the number it is (float's repr is the shortest round trip)."""
    return json.dumps(data, default=lambda d: float(d) if isinstance(d, Decimal) else str(d))


def vendor_cases(vendor: str) -> list[dict[str, Any]]:
    return [read_case(p) for p in sorted((POLICIES / vendor / "cases").glob("*.*"))]


def vendor_test_inputs(vendor: str) -> list[dict[str, Any]]:
    """Inputs of the vendor's policy tests that decide (not the ones expecting an error)."""
    return [as_json(t.input) for f in sorted((POLICIES / vendor / "tests").glob("*.yaml"))
            for t in load_tests(f) if t.want_error_code is None and t.lang == "en" and "as_of" in t.input]


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def request(url: str, method: str = "GET", data: Any = None, raw: bytes | None = None,
            timeout: float = 15) -> Reply:
    body = raw if raw is not None else (None if data is None else dumps(data).encode("utf-8"))
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Content-Type": "application/json"} if body is not None else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Reply(resp.status, resp.read(), dict(resp.headers))
    except urllib.error.HTTPError as err:
        with err:
            return Reply(err.code, err.read(), dict(err.headers))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server, with a bounded wait (kill if it does not go)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Server:
    url: str
    policies: Path
    log: Path | None
    proc: subprocess.Popen[bytes]
    stderr: Path

    def get(self, path: str) -> Reply:
        return request(self.url + path)

    def post(self, path: str, data: Any = None, raw: bytes | None = None) -> Reply:
        return request(self.url + path, "POST", data, raw)

    def server_log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def start_server(home: Path, *extra: str, log: bool = True) -> Server:
    """A real ``clause serve`` on a copy of the bundled policies, ready (``/healthz`` answers)."""
    policies = home / "policies"
    if not policies.exists():
        shutil.copytree(POLICIES, policies)
    log_path = home / "decisions.sqlite3" if log else None
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    env.pop("CLAUSE_POLICIES", None)
    for attempt in range(3):
        port = free_port()
        stderr = home / f"server-{port}.err"
        args = [sys.executable, str(ROOT / "cli.py"), "serve", "--host", "127.0.0.1", "--port", str(port),
                "--policies", str(policies), *(["--log", str(log_path)] if log_path else ["--no-log"]), *extra]
        with stderr.open("wb") as err_file:
            proc = subprocess.Popen(args, cwd=home, env=env, stdout=subprocess.DEVNULL, stderr=err_file)
        server = Server(f"http://127.0.0.1:{port}", policies, log_path, proc, stderr)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if server.get("/healthz").status == 200:
                    return server
            except OSError:
                pass
            time.sleep(0.1)
        stop(proc)
        if "address already in use" not in server.server_log().lower() or attempt == 2:
            pytest.fail(f"clause serve did not start (exit {proc.returncode}):\n{server.server_log()}")
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server (default body limit, with a decision log) shared by the read-mostly tests."""
    srv = start_server(tmp_path_factory.mktemp("service"))
    yield srv
    stop(srv.proc)


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server started with ``--max-body 2000``."""
    srv = start_server(tmp_path_factory.mktemp("small"), "--max-body", "2000", log=False)
    yield srv
    stop(srv.proc)


@pytest.fixture()
def own_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test alone (its policy files may be edited)."""
    srv = start_server(tmp_path)
    yield srv
    stop(srv.proc)


@pytest.fixture(scope="module")
def local_engine() -> Iterator[Engine]:
    """The in-process Engine on the bundled policies (real 'today', like the server)."""
    eng = Engine.load(POLICIES)
    yield eng
    eng.close()


def assert_no_traceback(reply: Reply) -> None:
    for marker in ("Traceback", 'File "', "engine/", "site-packages"):
        assert marker not in reply.text, reply.text


def assert_diagnostics(reply: Reply, status: int) -> dict[str, Any]:
    assert reply.status == status, reply.text
    body = reply.json()
    assert body["ok"] is False
    assert isinstance(body["error"], str) and body["error"]
    assert body["diagnostics"] and all({"code", "message"} <= set(d) for d in body["diagnostics"])
    assert_no_traceback(reply)
    return body


def poll(check: Callable[[], Any], timeout: float = 10, interval: float = 0.2) -> Any:
    """The first truthy result of ``check`` within ``timeout`` seconds (or its last result)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def refund_amount(srv: Server) -> str:
    reply = srv.post("/v1/decide", read_case(RETURN_CASE))
    assert reply.status == 200, reply.text
    return reply.json()["amount"]["value"]


# --- POST /v1/decide ------------------------------------------------------------------------

@pytest.mark.parametrize("vendor", VENDORS, ids=VENDORS)
def test_decide_each_vendor(server: Server, local_engine: Engine, vendor: str) -> None:
    cases = vendor_cases(vendor)
    assert cases, f"no example case for {vendor}"
    for case in cases:
        reply = server.post("/v1/decide", case)
        assert reply.status == 200, reply.text
        assert reply.headers.get("content-type", "").startswith("application/json")
        got = reply.json()
        want = local_engine.decide(case).to_dict()
        assert got["vendor"] == vendor
        assert got["case_id"] == case["id"]
        assert (got["outcome"], got["amount"], got["customer_pays"]) == \
            (want["outcome"], want["amount"], want["customer_pays"])
        assert got == want


KNOWN = [
    pytest.param(RETURN_CASE, "refund", {"value": "175000.50", "currency": "CRC"}, None, id="itellum-return"),
    pytest.param(POLICIES / "voip-provider" / "cases" / "prepaid-cancellation.yaml", "partial_refund",
                 {"value": "20.00", "currency": "USD"}, None, id="voip-prepaid-cancellation"),
    pytest.param(POLICIES / "voip-provider" / "cases" / "disruption-refund.yaml", None,
                 {"value": "3.00", "currency": "USD"}, None, id="voip-disruption"),
    pytest.param(POLICIES / "did-provider" / "cases" / "restore-day-34.yaml", None, None,
                 {"value": "5.61", "currency": "EUR"}, id="did-restore"),
]


@pytest.mark.parametrize(("path", "outcome", "amount", "customer_pays"), KNOWN)
def test_decide_known_amounts(server: Server, path: Path, outcome: str | None,
                              amount: dict[str, str] | None, customer_pays: dict[str, str] | None) -> None:
    """Concrete values from the cases' own comments (not only agreement with the Engine)."""
    got = server.post("/v1/decide", read_case(path)).json()
    if outcome is not None:
        assert got["outcome"] == outcome
    if amount is not None:
        assert got["amount"] == amount
    if customer_pays is not None:
        assert got["customer_pays"] == customer_pays


@pytest.mark.parametrize("vendor", VENDORS, ids=VENDORS)
def test_decide_matches_engine_on_policy_tests(server: Server, local_engine: Engine, vendor: str) -> None:
    """Every dated input of the vendor's policy tests, one request each, equals the Engine's decision."""
    inputs = vendor_test_inputs(vendor)
    assert len(inputs) >= 3
    for case in inputs:
        reply = server.post("/v1/decide", case)
        assert reply.status == 200, (case, reply.text)
        assert reply.json() == local_engine.decide(case).to_dict(), case


# --- POST /v1/decide/batch ------------------------------------------------------------------

def test_batch_one_result_per_case_in_order(server: Server, local_engine: Engine) -> None:
    good = [c for v in VENDORS for c in vendor_cases(v)]
    bad_vendor = {"vendor": "no-such-vendor", "kind": "return", "facts": {}}
    bad_type = dict(read_case(RETURN_CASE), id="BAD-TYPE")
    bad_type["facts"] = dict(bad_type["facts"], equipment_returned_on="last tuesday")
    cases = [good[0], bad_vendor, *good[1:4], bad_type, *good[4:], "not a case"]
    reply = server.post("/v1/decide/batch", cases)
    assert reply.status == 200, reply.text
    results = reply.json()
    assert isinstance(results, list) and len(results) == len(cases)
    for case, result in zip(cases, results):
        if case is bad_vendor:
            assert set(result) == {"diagnostics"}
            assert "no-such-vendor" in result["diagnostics"][0]["message"]
        elif case is bad_type:
            assert set(result) == {"diagnostics"}
            assert any(d["path"] == "/facts/equipment_returned_on" for d in result["diagnostics"])
        elif case == "not a case":
            assert set(result) == {"diagnostics"}
            assert result["diagnostics"][0]["code"] == "case"
        else:
            assert set(result) == {"decision"}
            assert result["decision"]["case_id"] == case["id"]
            assert result["decision"] == local_engine.decide(case).to_dict()


def test_batch_of_policy_tests_in_order(server: Server, local_engine: Engine) -> None:
    cases = [c for v in VENDORS for c in vendor_test_inputs(v)]
    cases = [dict(c, id=f"ORDER-{i}") for i, c in enumerate(cases)]
    results = server.post("/v1/decide/batch", cases).json()
    assert [r["decision"]["case_id"] for r in results] == [f"ORDER-{i}" for i in range(len(cases))]
    assert [r["decision"] for r in results] == [local_engine.decide(c).to_dict() for c in cases]


@pytest.mark.parametrize("body", [{"vendor": "itellum"}, "cases", 42], ids=["object", "string", "number"])
def test_batch_body_must_be_a_list(server: Server, body: Any) -> None:
    body_json = assert_diagnostics(server.post("/v1/decide/batch", body), 422)
    assert "array" in body_json["error"]


def test_batch_empty_list(server: Server) -> None:
    reply = server.post("/v1/decide/batch", [])
    assert reply.status == 200
    assert reply.json() == []


# --- GET /v1/policies, facts, healthz, openapi ----------------------------------------------

def test_policies_listing(server: Server, local_engine: Engine) -> None:
    reply = server.get("/v1/policies")
    assert reply.status == 200
    vendors = reply.json()["vendors"]
    assert sorted(vendors) == sorted(VENDORS)
    for vendor, versions in local_engine.vendors.items():
        assert [(v["version"], v["digest"], v["kinds"], v["effective_from"]) for v in vendors[vendor]] == \
            [(p.version, p.digest, list(p.kinds), p.effective_from.isoformat()) for p in versions]
    itellum = vendors["itellum"][-1]
    assert itellum["version"] == "2024.1"
    assert set(itellum["kinds"]) == {"return", "service_failure", "delivery", "warranty", "compensation"}
    assert len(itellum["digest"]) == 64 and int(itellum["digest"], 16) >= 0


def test_facts_schema(server: Server, local_engine: Engine) -> None:
    reply = server.get("/v1/policies/itellum/facts")
    assert reply.status == 200
    schema = reply.json()
    assert schema == facts_schema(local_engine.vendors["itellum"][-1])
    assert schema == json.loads((ROOT / "schemas" / "facts" / "itellum.json").read_text(encoding="utf-8"))
    assert {"installed_on", "failed_on", "damage_cause", "equipment_price"} <= set(schema["properties"])


def test_facts_unknown_vendor_is_404(server: Server) -> None:
    body = assert_diagnostics(server.get("/v1/policies/nobody/facts"), 404)
    assert "nobody" in body["error"]


def test_healthz(server: Server) -> None:
    reply = server.get("/healthz")
    assert reply.status == 200
    health = reply.json()
    assert health["ok"] is True
    assert health["reload_error"] is None
    assert health["policies"] == len(VENDORS)
    assert health["version"] == __import__("engine").__version__
    assert 0 < health["loaded_at"] <= time.time()


def test_openapi_document_validates(server: Server) -> None:
    from openapi_spec_validator import validate

    reply = server.get("/openapi.json")
    assert reply.status == 200
    spec = reply.json()
    assert spec["openapi"].startswith("3.1")
    assert {"/v1/decide", "/v1/decide/batch", "/v1/policies", "/v1/policies/{vendor}/facts",
            "/v1/reload", "/healthz"} <= set(spec["paths"])
    decide = spec["paths"]["/v1/decide"]["post"]
    assert decide["requestBody"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Case"}
    assert decide["responses"]["200"]["content"]["application/json"]["schema"] == \
        {"$ref": "#/components/schemas/Decision"}
    validate(spec)


def spec_validator(spec: dict[str, Any], component: str) -> Any:
    """A JSON Schema validator for ``#/components/schemas/<component>`` inside the served document."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT202012

    uri = "urn:clause:openapi"
    registry = Registry().with_resource(uri, Resource(contents=spec, specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{uri}#/components/schemas/{component}"}, registry=registry)


@pytest.mark.parametrize(("component", "file"), [("Case", "case.schema.json"), ("Decision", "decision.schema.json")],
                         ids=["Case", "Decision"])
def test_openapi_components_are_project_schemas(server: Server, local_engine: Engine, component: str,
                                                file: str) -> None:
    spec = server.get("/openapi.json").json()
    served = spec["components"]["schemas"][component]
    project = load_schema(file)
    for key in ("title", "type", "required", "additionalProperties"):
        assert served.get(key) == project.get(key), key
    assert set(served["properties"]) == set(project["properties"])
    # ... and they accept and refuse the same documents, $refs resolved inside the OpenAPI document
    validator = spec_validator(spec, component)
    case = read_case(RETURN_CASE)
    good = case if component == "Case" else json.loads(dumps(local_engine.decide(case).to_dict()))
    assert list(validator.iter_errors(good)) == []
    broken = [dict(good, as_of="01/04/2025"), dict(good, surplus=1), {k: v for k, v in good.items() if k != "vendor"}]
    if component == "Decision":
        broken += [dict(good, outcome="maybe"), dict(good, amount={"value": "1.5"}),
                   dict(good, amount={"value": "1,5", "currency": "CRC"})]
    for doc in broken:
        assert list(validator.iter_errors(doc)), doc


# --- errors ---------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"{bad json", b'{"vendor": "itellum",', b"\xff\xfe\x00", b""],
                         ids=["garbage", "truncated", "not-utf8", "empty"])
def test_malformed_json_is_422(server: Server, raw: bytes) -> None:
    body = assert_diagnostics(server.post("/v1/decide", raw=raw), 422)
    assert body["diagnostics"][0]["code"] == "json"
    assert "JSON" in body["error"]


def test_malformed_json_batch_is_422(server: Server) -> None:
    body = assert_diagnostics(server.post("/v1/decide/batch", raw=b"[{]"), 422)
    assert body["diagnostics"][0]["code"] == "json"


def test_unknown_vendor_is_422(server: Server) -> None:
    body = assert_diagnostics(server.post("/v1/decide", {"vendor": "acme-widgets", "kind": "return",
                                                         "facts": {}}), 422)
    assert "acme-widgets" in body["error"]
    assert body["diagnostics"][0]["path"] == "/vendor"


def test_wrong_fact_type_is_422(server: Server) -> None:
    case = read_case(POLICIES / "itellum" / "cases" / "warranty-day-8.yaml")
    case["facts"]["installed_on"] = "the first of March"
    body = assert_diagnostics(server.post("/v1/decide", case), 422)
    assert "installed_on" in body["error"]
    assert body["diagnostics"][0]["code"] == "case_fact_type"
    assert body["diagnostics"][0]["path"] == "/facts/installed_on"


@pytest.mark.parametrize("body", [[1, 2], "a case", None], ids=["list", "string", "null"])
def test_case_not_a_mapping_is_422(server: Server, body: Any) -> None:
    reply = server.post("/v1/decide", raw=json.dumps(body).encode())
    assert assert_diagnostics(reply, 422)["diagnostics"][0]["code"] == "case"


@pytest.mark.parametrize("as_of", [5, 0, True, ["2025-03-10"], "10/03/2025"],
                         ids=["int", "zero", "bool", "list", "us-date"])
def test_bad_as_of_is_422(server: Server, as_of: Any) -> None:
    """A non-date ``as_of`` is an input error (422 naming as_of), never an internal error."""
    case = dict(read_case(RETURN_CASE), as_of=as_of)
    body = assert_diagnostics(server.post("/v1/decide", case), 422)
    assert body["diagnostics"][0]["path"] == "/as_of" or "as_of" in body["error"]


def test_body_over_limit_is_413(small_server: Server) -> None:
    case = read_case(RETURN_CASE)
    assert small_server.post("/v1/decide", case).status == 200  # under the limit: served
    big = dict(case, id="X" * 3000)
    body = assert_diagnostics(small_server.post("/v1/decide", big), 413)
    assert "2000" in body["error"]
    assert_diagnostics(small_server.post("/v1/decide/batch", [case] * 10), 413)


def test_body_over_limit_chunked_is_413(small_server: Server) -> None:
    """Without a Content-Length (chunked upload) the limit holds while streaming."""
    def chunks() -> Iterator[bytes]:
        for _ in range(10):
            yield b" " * 500
        yield b"{}"
    port = int(small_server.url.rsplit(":", 1)[1])
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        conn.request("POST", "/v1/decide", body=chunks(), headers={"Content-Type": "application/json"},
                     encode_chunked=True)
        resp = conn.getresponse()
        reply = Reply(resp.status, resp.read(), dict(resp.getheaders()))
    finally:
        conn.close()
    assert_diagnostics(reply, 413)


@pytest.mark.parametrize(("method", "path"), [("GET", "/v2/decide"), ("GET", "/index.php"), ("POST", "/v1/decide/bulk"),
                                              ("GET", "/v1/policies/itellum/facts/extra")],
                         ids=["v2", "unknown-page", "bulk", "facts-extra"])
def test_unknown_route_is_404(server: Server, method: str, path: str) -> None:
    reply = request(server.url + path, method, {} if method == "POST" else None)
    assert reply.status == 404
    assert_no_traceback(reply)


def test_wrong_method_is_405(server: Server) -> None:
    assert server.get("/v1/decide").status == 405


def test_server_stays_up_after_errors(server: Server) -> None:
    server.post("/v1/decide", raw=b"{oops")
    server.post("/v1/decide", {"vendor": 1})
    assert server.get("/healthz").json()["ok"] is True
    assert server.post("/v1/decide", read_case(RETURN_CASE)).status == 200


# --- the decision log -----------------------------------------------------------------------

def test_service_decisions_are_logged(server: Server) -> None:
    case = dict(read_case(RETURN_CASE), id="LOGGED-BY-SERVICE")
    decision = server.post("/v1/decide", case).json()
    batch_cases = [dict(case, id="LOGGED-IN-BATCH-1"), {"vendor": "itellum", "kind": "return", "facts": [],
                                                        "id": "NOT-LOGGED"},
                   dict(read_case(POLICIES / "did-provider" / "cases" / "restore-day-34.yaml"),
                        id="LOGGED-IN-BATCH-2")]
    batch = server.post("/v1/decide/batch", batch_cases).json()
    server.post("/v1/decide", dict(case, id="REJECTED", facts={"equipment_price": "lots"}))
    assert server.log is not None
    log = DecisionLog(str(server.log))
    try:
        records = {r.decision["case_id"]: r for r in log.records()}
    finally:
        log.close()
    mine = records["LOGGED-BY-SERVICE"]
    assert mine.origin == "serve"
    assert mine.case == case
    assert mine.decision == decision
    assert mine.engine_version == __import__("engine").__version__
    assert mine.lang == "en"
    assert records["LOGGED-IN-BATCH-1"].decision == batch[0]["decision"]
    assert records["LOGGED-IN-BATCH-2"].decision == batch[2]["decision"]
    assert "NOT-LOGGED" not in records and "REJECTED" not in records


# --- reload ---------------------------------------------------------------------------------

def edit_refund(policies: Path, new: str) -> None:
    path = policies / "itellum" / "policy.yaml"
    text = path.read_text(encoding="utf-8")
    assert text.count(REFUND_AMOUNT) == 1
    path.write_text(text.replace(REFUND_AMOUNT, new), encoding="utf-8")


def break_itellum(policies: Path) -> str:
    path = policies / "itellum" / "policy.yaml"
    good = path.read_text(encoding="utf-8")
    path.write_text(good + "\nkinds: [unclosed\n  - : {\n", encoding="utf-8")
    return good


def test_reload_on_file_change(own_server: Server) -> None:
    assert refund_amount(own_server) == "175000.50"
    before = own_server.get("/healthz").json()["loaded_at"]
    edit_refund(own_server.policies, "equipment_price")
    assert poll(lambda: refund_amount(own_server) == "150000.00"), refund_amount(own_server)
    health = own_server.get("/healthz").json()
    assert health["ok"] is True and health["loaded_at"] > before
    listed = own_server.get("/v1/policies").json()["vendors"]["itellum"][0]["digest"]
    bundled = Engine.load(POLICIES)
    assert listed != bundled.vendors["itellum"][0].digest
    bundled.close()


def test_broken_edit_keeps_previous_policies(own_server: Server) -> None:
    assert refund_amount(own_server) == "175000.50"
    good = break_itellum(own_server.policies)
    health = poll(lambda: (h := own_server.get("/healthz").json())["ok"] is False and h)
    assert health, own_server.get("/healthz").json()
    assert health["reload_error"] and all({"code", "message"} <= set(d) for d in health["reload_error"])
    assert refund_amount(own_server) == "175000.50"  # the old set still serves
    for vendor in VENDORS:
        assert own_server.post("/v1/decide", vendor_cases(vendor)[0]).status == 200
    # fixing the file (with an edit) recovers
    (own_server.policies / "itellum" / "policy.yaml").write_text(
        good.replace(REFUND_AMOUNT, "equipment_price"), encoding="utf-8")
    assert poll(lambda: own_server.get("/healthz").json()["ok"] is True)
    assert poll(lambda: refund_amount(own_server) == "150000.00")
    assert own_server.get("/healthz").json()["reload_error"] is None
    assert "reload failed" in own_server.server_log()


@pytest.fixture()
def reload_server(tmp_path: Path) -> Iterator[Server]:
    """A server of this test alone, with ``POST /v1/reload`` enabled."""
    srv = start_server(tmp_path, "--allow-reload")
    yield srv
    stop(srv.proc)


def test_post_reload(reload_server: Server) -> None:
    own_server = reload_server
    ok = own_server.post("/v1/reload")
    assert ok.status == 200 and ok.json()["ok"] is True
    edit_refund(own_server.policies, "first_monthly_fee")
    reloaded = own_server.post("/v1/reload")
    assert reloaded.status == 200 and reloaded.json() == {"ok": True, "reloaded": True}
    assert refund_amount(own_server) == "25000.50"  # immediately, without waiting for the watcher
    break_itellum(own_server.policies)
    body = assert_diagnostics(own_server.post("/v1/reload"), 422)
    assert "previous" in body["error"]
    assert refund_amount(own_server) == "25000.50"
    assert own_server.get("/healthz").json()["ok"] is False


def test_decide_bounded_fact(server: Server, local_engine: Engine) -> None:
    """A fact given as a bound (README "Bounded facts"): described by the OpenAPI Case, answered with a range."""
    case = {"id": "B-1", "vendor": "intpho", "kind": "return", "as_of": "2025-03-25", "facts": {
        "sent_to_miami": True, "has_ra": True, "ra_issued_on": "2025-03-01", "approved_for_return": True,
        "freight": "prepaid", "original_carton": True, "original_packing_materials": True,
        "ra_on_label": True, "carton_written_on": False, "shipped_back_on": {"at_least": "2025-03-02"}}}
    reply = server.post("/v1/decide", case)
    assert reply.status == 200, reply.text
    got = reply.json()
    assert got == local_engine.decide(case).to_dict()
    assert got["missing_facts"][0]["range"] == {"at_most": "2025-03-15"}
    spec = server.get("/openapi.json").json()
    spec_validator(spec, "Case").validate(case)
    spec_validator(spec, "Decision").validate(got)
    bad = {**case, "facts": {**case["facts"], "arrived_on": "2025-03-01"}}
    body = assert_diagnostics(server.post("/v1/decide", bad), 422)
    assert "shipped_back_on and arrived_on" in json.dumps(body)
