"""Running the service in production (issue 13): metrics, JSON logs, readiness, settings from the
environment, the container entry point, problem+json errors, lang/explain, graceful shutdown.

Servers are real processes on loopback ports (``clause serve``, or uvicorn's
``--factory`` entry point as the Dockerfile starts it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from test_service import RETURN_CASE, Reply, free_port, read_case, request, start_server, stop

from engine.log import DecisionLog
from engine.settings import Settings, SettingsError

CASE = read_case(RETURN_CASE)


def _records(path: Path) -> list[Any]:
    log = DecisionLog(str(path), read_only=True)
    try:
        return list(log.records())
    finally:
        log.close()


def _metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition text (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        sample, value = line.rsplit(" ", 1)
        found = dict(re.findall(r'(\w+)="([^"]*)"', sample))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(value)
    return 0.0


def test_metrics_count_decisions_errors_and_latency(tmp_path: Path) -> None:
    srv = start_server(tmp_path, log=True)
    try:
        before = srv.get("/metrics")
        assert before.status == 200 and before.headers["content-type"].startswith("text/plain")
        for _ in range(3):
            assert srv.post("/v1/decide", CASE).status == 200
        bad = srv.post("/v1/decide", {**CASE, "facts": {"equipment_price": "x"}})
        assert bad.status == 422
        text = srv.get("/metrics").text
        labels = {"vendor": "itellum", "kind": "return", "outcome": "refund", "version": "2024.1"}
        assert _metric(text, "clause_decisions_total", **labels) == 3
        assert _metric(text, "clause_decision_seconds_count", vendor="itellum", kind="return") == 3
        assert _metric(text, "clause_decision_seconds_sum", vendor="itellum", kind="return") > 0
        assert _metric(text, "clause_errors_total", code="case_fact_type", status="422") == 1
        assert _metric(text, "clause_http_request_seconds_count", route="decide", method="POST",
                       status="200") == 3
        assert _metric(text, "clause_log_write_seconds_count") == 3  # every answer was recorded
        assert _metric(text, "clause_log_queue_depth") == 0
        assert _metric(text, "clause_policies_ok") == 1
        # A client cannot grow the label set: unknown paths share one route label.
        for path in ("/nope-1", "/nope-2"):
            assert srv.get(path).status == 404
        assert _metric(srv.get("/metrics").text, "clause_http_request_seconds_count", route="other") == 2
    finally:
        stop(srv.proc)


def _get(url: str, headers: dict[str, str]) -> Reply:
    req = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(req, timeout=15) as resp:
        return Reply(resp.status, resp.read(), dict(resp.headers))


def test_json_logs_one_line_per_request_without_facts(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--json-logs", log=False)
    try:
        answer = srv.post("/v1/decide", CASE)
        own = _get(srv.url + "/healthz", {"X-Request-Id": "trace-42"})
        assert own.headers["x-request-id"] == "trace-42"
        time.sleep(0.3)
    finally:
        stop(srv.proc)
    lines = [json.loads(line) for line in srv.server_log().splitlines() if line.startswith("{")]
    decided = [x for x in lines if x.get("route") == "decide"]
    assert len(decided) == 1
    (line,) = decided
    assert line["request_id"] == answer.headers["x-request-id"]
    assert (line["vendor"], line["kind"], line["outcome"], line["status"]) == ("itellum", "return", "refund", 200)
    assert line["digest"] == answer.json()["policy"]["digest"] and line["latency_ms"] > 0
    assert "facts" not in line and "150000" not in json.dumps(lines)  # no personal facts by default
    assert any(x["request_id"] == "trace-42" and x["route"] == "healthz" for x in lines)


def test_readyz_is_503_while_the_policies_are_broken_and_200_after_the_fix(tmp_path: Path) -> None:
    srv = start_server(tmp_path, log=True)
    try:
        assert srv.get("/readyz").status == 200
        policy = srv.policies / "itellum" / "policy.yaml"
        good = policy.read_text(encoding="utf-8")
        policy.write_text(good.replace("kinds:", "kinds: [", 1), encoding="utf-8")
        reply = _poll(srv, "/readyz", 503)
        assert reply.headers["content-type"] == "application/problem+json"
        body = reply.json()
        assert body["status"] == 503 and body["diagnostics"][0]["file"].endswith("policy.yaml")
        assert srv.get("/healthz").status == 200  # alive all the same: do not restart it
        assert srv.post("/v1/decide", CASE).status == 200  # the previous policies still decide
        policy.write_text(good, encoding="utf-8")
        _poll(srv, "/readyz", 200)
        text = srv.get("/metrics").text
        assert _metric(text, "clause_policy_reloads_total", result="failed") >= 1
        assert _metric(text, "clause_policy_reloads_total", result="reloaded") >= 1
    finally:
        stop(srv.proc)


def _poll(srv: Any, path: str, status: int) -> Reply:
    deadline = time.monotonic() + 20
    while True:
        reply = srv.get(path)
        if reply.status == status or time.monotonic() > deadline:
            assert reply.status == status, reply.text
            return reply
        time.sleep(0.2)


def test_decide_takes_lang_and_explain_like_the_cli(tmp_path: Path) -> None:
    srv = start_server(tmp_path, log=False)
    try:
        reply = srv.post("/v1/decide?lang=es&explain=true", CASE)
        assert reply.status == 200
        body = reply.json()
        assert body["reasons"][0]["text"].startswith("La instalación")
        steps = {s["rule"]: s["status"] for s in body["explanation"]}
        assert steps["return-refund"] == "decided" and body["reasons"][0]["rule"] == "return-refund"
        assert "explanation" not in srv.post("/v1/decide", CASE).json()
        wrong = srv.post("/v1/decide?lang=fr", CASE)
        assert wrong.status == 422 and wrong.headers["content-type"] == "application/problem+json"
        problem = wrong.json()
        assert problem["title"] == "Unprocessable Content" or problem["title"] == "Unprocessable Entity"
        assert (problem["status"], problem["code"]) == (422, "lang") and "en, es" in problem["detail"]
        assert srv.post("/v1/decide?explain=maybe", CASE).status == 422
    finally:
        stop(srv.proc)


def test_settings_refuse_what_they_cannot_use(tmp_path: Path) -> None:
    base = {"CLAUSE_POLICIES": str(ROOT / "policies")}
    assert Settings.from_env(base).matcher == "python"
    for name, value in (("CLAUSE_MATCHER", "fast"), ("CLAUSE_MAX_BODY", "lots"), ("CLAUSE_MAX_BODY", "nan"),
                        ("CLAUSE_JSON_LOGS", "maybe"), ("CLAUSE_POLICIES", str(tmp_path / "none"))):
        with pytest.raises(SettingsError) as err:
            Settings.from_env({**base, name: value})
        assert name in str(err.value)
    settings = Settings.from_env({**base, "CLAUSE_LOG": "x.sqlite3", "CLAUSE_JSON_LOGS": "true"})
    assert Settings.from_env(settings.to_env()) == settings


def _dockerfile() -> tuple[list[str], dict[str, str], str]:
    """CMD (JSON form), ENV, and the whole text of the Dockerfile."""
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", text, re.MULTILINE).group(1))  # type: ignore[union-attr]
    env = dict(re.findall(r"^ENV (\w+)=(\S+)$", text, re.MULTILINE))
    return cmd, env, text


def test_dockerfile_runs_a_slim_image_as_a_user_with_a_healthcheck() -> None:
    cmd, env, text = _dockerfile()
    assert re.search(r"^FROM python:3\.1[12]-slim", text, re.MULTILINE)
    users = re.findall(r"^USER (\S+)$", text, re.MULTILINE)
    assert users and users[-1] not in ("root", "0")
    assert re.search(r"^HEALTHCHECK .*/readyz", text, re.MULTILINE)
    assert cmd[:3] == ["uvicorn", "--factory", "engine.service:app_from_env"]
    assert "CLAUSE_POLICIES" in env
    compose = (ROOT / "compose.yaml").read_text(encoding="utf-8")
    assert "postgres" in compose and "CLAUSE_LOG" in compose


def test_the_container_entry_point_serves_without_docker(tmp_path: Path) -> None:
    """The Dockerfile's CMD, run here as it is in the image (with a SQLite log instead of PostgreSQL)."""
    cmd, env, _ = _dockerfile()
    port = free_port()
    args = [sys.executable, "-m", *cmd]
    args[args.index("--port") + 1] = str(port)
    args[args.index("--host") + 1] = "127.0.0.1"
    log = tmp_path / "decisions.sqlite3"
    run_env = {**os.environ, **env, "CLAUSE_POLICIES": str(ROOT / "policies"), "CLAUSE_LOG": str(log),
               "PYTHONPATH": str(ROOT)}
    err = (tmp_path / "err.txt").open("wb")
    proc = subprocess.Popen(args, cwd=tmp_path, env=run_env, stdout=subprocess.DEVNULL, stderr=err)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if request(url + "/readyz").status == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "err.txt").read_text()
            time.sleep(0.1)
        assert request(url + "/v1/decide", "POST", CASE).status == 200
    finally:
        stop(proc)
        err.close()
    assert [r.decision["vendor"] for r in _records(log)] == ["itellum"]


def test_sigterm_under_load_loses_no_answered_decision(tmp_path: Path) -> None:
    srv = start_server(tmp_path, log=True)
    answered: list[str] = []
    stop_flag = threading.Event()

    def client(n: int) -> None:
        i = 0
        while not stop_flag.is_set():
            case_id = f"t{n}-{i}"
            try:
                reply = request(srv.url + "/v1/decide", "POST", {**CASE, "id": case_id}, timeout=5)
            except OSError:
                return
            if reply.status == 200:
                answered.append(case_id)
            i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(1.5)
    srv.proc.send_signal(signal.SIGTERM)
    srv.proc.wait(timeout=30)
    stop_flag.set()
    for t in threads:
        t.join(timeout=30)
    assert answered, "no decision was answered before the signal"
    assert srv.log is not None
    logged = {r.decision["case_id"] for r in _records(srv.log)}
    missing = [c for c in answered if c not in logged]
    assert not missing, f"{len(missing)} answered decisions missing from the log: {missing[:5]}"


def test_serve_with_two_workers(tmp_path: Path) -> None:
    srv = start_server(tmp_path, "--workers", "2", log=True)
    try:
        ids = {request(srv.url + "/v1/decide", "POST", {**CASE, "id": f"w{i}"}).json()["case_id"]
               for i in range(6)}
        assert ids == {f"w{i}" for i in range(6)}
        assert srv.get("/readyz").status == 200
    finally:
        stop(srv.proc)
    assert srv.log is not None
    assert {r.decision["case_id"] for r in _records(srv.log)} >= ids


def test_cli_serve_help_names_the_operations_options() -> None:
    out = subprocess.run([sys.executable, str(ROOT / "cli.py"), "serve", "--help"], capture_output=True,
                         text=True, check=True, cwd=ROOT).stdout
    for option in ("--workers", "--json-logs", "--log-facts"):
        assert option in out
