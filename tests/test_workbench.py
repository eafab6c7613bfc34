"""The workbench's server side over real HTTP (the page itself is tested in
tests/browser): what it serves and refuses, that edits and batches never
touch the policy files, and that ``--no-workbench`` turns it all off.
"""

from __future__ import annotations

import hashlib
import json
import socket
import http.client
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from conftest import POLICIES
from workbench_server import serving

from engine import Engine
from engine.workbench import open_browser
from engine.workbench.views import clause_span


def call(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method or ("POST" if data is not None else "GET"))
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def policies(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy, so the tests can prove nothing in it changes."""
    import shutil  # noqa: PLC0415
    root = tmp_path_factory.mktemp("policies")
    for vendor in ("itellum", "voip-provider"):
        shutil.copytree(POLICIES / vendor, root / vendor)
    return root


@pytest.fixture(scope="module")
def url(policies: Path) -> Iterator[str]:
    with serving(policies, max_body=64 * 1024) as base:
        yield base


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p).encode() + (p.read_bytes() if p.is_file() else b""))
    return h.hexdigest()


def test_page_and_docs_are_served_with_a_strict_policy(url: str) -> None:
    for path in ("/", "/docs"):
        status, headers, body = call(url + path)
        assert status == 200 and headers["content-type"].startswith("text/html")
        assert "script-src 'self'" in headers["content-security-policy"]
        assert b"http://" not in body and b"https://" not in body  # nothing from elsewhere
    status, headers, _ = call(url + "/workbench/static/app.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")


@pytest.mark.parametrize("name", ["../service.py", "..%2Fservice.py", "nope.js", "%2e%2e%2f__init__.py"])
def test_static_serves_only_its_own_files(url: str, name: str) -> None:
    assert call(f"{url}/workbench/static/{name}")[0] == 404


def test_explain_gives_the_decision_steps_and_clause_spans(url: str, policies: Path) -> None:
    case = json.dumps({"vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14",
                       "facts": {"defect_at_delivery": True}}).encode()
    status, _, body = call(url + "/workbench/api/explain", case)
    data = json.loads(body)
    assert status == 200
    assert data["decision"] == Engine.load(policies).decide(json.loads(case)).to_dict()
    start, end = data["reasons"][0]["span"]
    quoted = data["source"]["text"][start:end]
    assert " ".join(quoted.split()) == " ".join(data["decision"]["reasons"][0]["clause"].split())
    assert [s["status"] for s in data["steps"]].count("decided") == 1


def test_a_bad_fact_is_a_problem_naming_the_fact(url: str) -> None:
    case = json.dumps({"vendor": "itellum", "kind": "warranty", "facts": {"failed_on": "soon"}}).encode()
    status, headers, body = call(url + "/workbench/api/explain", case)
    problem = json.loads(body)
    assert status == 422 and headers["content-type"] == "application/problem+json"
    assert problem["status"] == 422 and problem["title"] and "failed_on" in problem["detail"]
    assert problem["diagnostics"][0]["path"] == "/facts/failed_on"


def test_bodies_are_bounded(url: str) -> None:
    status, headers, body = call(url + "/workbench/api/explain", b" " * (64 * 1024 + 1))
    assert status == 413 and json.loads(body)["status"] == 413
    status, _, _ = call(url + "/workbench/api/policies/itellum/try", b"#" * (64 * 1024 + 1))
    assert status == 413


def test_a_pasted_yaml_case_comes_back_as_json(url: str) -> None:
    text = (POLICIES / "itellum" / "cases" / "compensation-february.yaml").read_bytes()
    status, _, body = call(url + "/workbench/api/case", text)
    case = json.loads(body)
    assert status == 200 and case["as_of"] == "2024-03-05" and case["facts"]["monthly_rate"] == "30000"
    assert case["facts"]["interruptions"][0]["start"] == "2024-02-10T10:00:00-06:00"
    assert call(url + "/workbench/api/case", b"- a list")[0] == 422
    assert call(url + "/workbench/api/case", b"a: [unclosed")[0] == 422


def test_trying_a_change_never_writes_and_reads_only_inside_the_policy(url: str, policies: Path) -> None:
    before = digest(policies)
    text = (policies / "itellum" / "policy.yaml").read_text(encoding="utf-8")
    status, _, body = call(url + "/workbench/api/policies/itellum/try?what_if=1",
                           text.replace("days_in_service < 8", "days_in_service < 80", 1).encode())
    result = json.loads(body)
    assert status == 200 and result["ok"]
    assert any(not t["passed"] for t in result["tests"])
    assert result["what_if"]["changed"] > 0 and result["what_if"]["groups"]
    escaped = text.replace("file: source.txt", "file: ../../../../etc/passwd", 1)
    result = json.loads(call(url + "/workbench/api/policies/itellum/try", escaped.encode())[2])
    assert not result["ok"]
    assert [d["code"] for d in result["diagnostics"]] == ["file"]
    assert "root:" not in json.dumps(result)
    assert digest(policies) == before


def test_a_syntax_error_is_reported_at_its_line(url: str, policies: Path) -> None:
    text = (policies / "itellum" / "policy.yaml").read_text(encoding="utf-8")
    line = next(i for i, l in enumerate(text.splitlines(), 1) if "days_in_service < 8" in l)
    broken = text.replace("days_in_service < 8", "days_in_service <", 1)
    result = json.loads(call(url + "/workbench/api/policies/itellum/try", broken.encode())[2])
    assert not result["ok"] and result["tests"] is None
    assert result["diagnostics"][0]["line"] == line and result["diagnostics"][0]["severity"] == "error"


def test_batch_streams_progress_and_sums_money_to_the_cent(url: str, policies: Path) -> None:
    engine = Engine.load(policies)
    case = {"vendor": "itellum", "kind": "return", "as_of": "2025-04-01", "facts": {
        "install_impossible_report": True, "ticket_opened": True, "equipment_undamaged": True,
        "original_packaging": True, "all_accessories": True, "equipment_price": "0.10",
        "first_monthly_fee": "0.20", "equipment_returned_on": "2025-04-01"}}
    lines = [json.dumps(dict(case, id=str(i))) for i in range(250)] + ["oops"]
    status, headers, body = call(url + "/workbench/api/batch?format=jsonl", "\n".join(lines).encode())
    messages = [json.loads(line) for line in body.decode().splitlines()]
    assert status == 200 and headers["content-type"].startswith("application/x-ndjson")
    assert messages[0] == {"total": 251}
    assert [m["done"] for m in messages if "done" in m] == [100, 200, 251]
    summary = messages[-1]["summary"]
    one = Decimal(engine.decide(case).to_dict()["amount"]["value"])
    assert Decimal(summary["amounts"]["CRC"]) == one * 250 == Decimal("75.00")
    assert summary["decided"] == 250 and summary["invalid"] == [{"line": 251, "error": summary["invalid"][0]["error"]}]
    assert summary["outcomes"] == {"itellum/return": {"refund": 250}}


def test_batch_reads_csv_and_refuses_too_much(url: str) -> None:
    csv = "id,vendor,kind,as_of,defect_at_delivery\nA,itellum,delivery,2025-02-14,true\n"
    messages = [json.loads(x) for x in call(url + "/workbench/api/batch?format=csv", csv.encode())[2].splitlines()]
    assert messages[-1]["summary"]["outcomes"] == {"itellum/delivery": {"replace": 1}}
    assert call(url + "/workbench/api/batch?format=xml", b"x")[0] == 422
    assert declared_too_big(url + "/workbench/api/batch", (8 << 20) + 1) == 413


def declared_too_big(url: str, size: int) -> int:
    """Status of a POST that announces ``size`` bytes (refused before any is sent)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.putrequest("POST", parts.path)
        conn.putheader("Content-Length", str(size))
        conn.endheaders()
        return conn.getresponse().status
    finally:
        conn.close()


def test_views_for_the_policy_tab(url: str) -> None:
    table = json.loads(call(url + "/workbench/api/policies/itellum/kinds/warranty/table")[2])
    assert [r["rank"] for r in table["rows"]] == list(range(1, len(table["rows"]) + 1))
    assert table["rows"][0]["override"] and "days_in_service" in table["columns"]
    cov = json.loads(call(url + "/workbench/api/policies/itellum/coverage")[2])
    assert cov["tests"] > 0 and cov["failed"] == 0 and any(cov["rules"].values())
    smap = json.loads(call(url + "/workbench/api/policies/itellum/source-map")[2])
    assert {s["cover"] for s in smap["sentences"]} <= {"rule", "fact", "out_of_scope", "none"}
    assert all(smap["text"][s["start"]:s["end"]].split() == s["text"].split() for s in smap["sentences"])
    assert call(url + "/workbench/api/policies/nobody")[0] == 404
    assert call(url + "/workbench/api/policies/itellum/kinds/nothing/table")[0] == 404


def test_no_workbench_leaves_only_the_json_api(policies: Path) -> None:
    with serving(policies, workbench=False) as base:
        for path in ("/", "/docs", "/workbench/static/app.js", "/workbench/api/policies/itellum"):
            assert call(base + path)[0] == 404
        assert call(base + "/workbench/api/batch", b"{}")[0] in (404, 405)
        assert call(base + "/v1/policies")[0] == 200


def test_clause_span_ignores_line_breaks() -> None:
    assert clause_span("a  b\n  c d", "b c") == [3, 8]
    assert clause_span("abc", "x") is None and clause_span("abc", "") is None


def test_open_browser_waits_for_the_server(monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        open_browser("0.0.0.0", port).join(10)
    assert opened == [f"http://127.0.0.1:{port}/"]


def test_serve_help_lists_the_workbench_flags(runner: Any) -> None:
    from cli import main  # noqa: PLC0415
    out = runner.invoke(main, ["serve", "--help"]).output
    assert "--open" in out and "--no-workbench" in out
