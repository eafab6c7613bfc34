"""Service throughput: ``clause serve`` (without and with a decision log) against a trivial endpoint.

    python bench/service.py                          # concurrency 1, 8, 32; 2 s each; 5 rounds
    python bench/service.py --concurrency 8 --seconds 2 --rounds 1
    python bench/service.py --cases benchmark        # bench/compare.py's 10-rule policy instead

The yardstick is a Starlette endpoint on the same uvicorn settings as
``clause serve`` that reads the JSON body and answers a constant — the
floor of this stack. Each server runs as its own process on 127.0.0.1; the
load comes from this process: C keep-alive connections, each sending the
next generated Itellum case as soon as the previous answer arrived. Rounds
interleave the servers; each round gives each server's ratio to the
trivial endpoint measured just before it, and the median of those paired
ratios is reported (with the best requests/s), so a machine whose speed
drifts between rounds still gives a stable ratio. Every answer's status
is checked (a 5xx or a refused case is an error, not a figure); with
``--log``, the log's record count is compared with the answers given. On
Linux it also prints the server's CPU time per request (all its threads
and its log writer process, from /proc): a figure the client's share of
the machine does not move as much as requests/s. Not a test: nothing
asserts a speed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_itellum import generate  # noqa: E402


def trivial_app() -> Any:
    """The yardstick: parse the body, answer a constant."""
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.requests import Request  # noqa: PLC0415
    from starlette.responses import JSONResponse  # noqa: PLC0415
    from starlette.routing import Route  # noqa: PLC0415

    async def decide(request: Request) -> JSONResponse:
        json.loads(await request.body())
        return JSONResponse({"outcome": "refund"})
    return Starlette(routes=[Route("/v1/decide", decide, methods=["POST"])])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(name: str, folder: Path, policies: Path | None = None) -> tuple[subprocess.Popen[bytes], int, Path | None]:
    """Start one server; wait until it answers."""
    port = _free_port()
    log = folder / f"{name.replace(' ', '_')}.sqlite3" if "log" in name and "no log" not in name else None
    if name == "trivial endpoint":
        cmd = [sys.executable, __file__, "--trivial-server", str(port)]
    else:
        cmd = [sys.executable, str(ROOT / "cli.py"), "serve", "--port", str(port), "--no-workbench",
               *(["--log", str(log)] if log else ["--no-log"]),
               *(["--policies", str(policies)] if policies else [])]
    proc = subprocess.Popen(cmd, cwd=folder, env=dict(os.environ, PYTHONPATH=str(ROOT)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port, log
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{name} did not start")


async def _client(port: int, bodies: list[bytes], stop: float, counts: list[int], offset: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = offset
    try:
        while time.monotonic() < stop:
            body = bodies[i % len(bodies)]
            i += 1
            writer.write(b"POST /v1/decide HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            answer = await reader.readexactly(length)
            if status != 200 or b'"outcome"' not in answer:
                raise SystemExit(f"HTTP {status}: {answer[:300]!r}")
            counts[0] += 1
    finally:
        writer.close()


async def _load(port: int, bodies: list[bytes], concurrency: int, seconds: float,
                total: list[int] | None = None) -> float:
    """Requests/s over ``seconds`` after a 0.5 s warm-up; ``total`` gets every request answered."""
    warm, counts = [0], [0]
    await asyncio.gather(*(_client(port, bodies, time.monotonic() + 0.5, warm, k) for k in range(concurrency)))
    started = time.monotonic()
    await asyncio.gather(*(_client(port, bodies, started + seconds, counts, 997 * k)
                           for k in range(concurrency)))
    if total is not None:
        total.append(warm[0] + counts[0])
    return counts[0] / (time.monotonic() - started)


def _cpu_seconds(pid: int) -> float | None:
    """The server's CPU time so far: its process (all threads) and its children (the log's writer
    process), where /proc tells it."""
    def used(fields: list[str]) -> float:
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    try:
        total = used(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split())
    except OSError:
        return None
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            total += used(fields)
    return total


def _measured(proc: subprocess.Popen[bytes], port: int, bodies: list[bytes], level: int,
              seconds: float) -> tuple[float, float | None]:
    """(requests/s, server CPU µs per request) of one load run; the CPU figure counts the warm-up too."""
    before = _cpu_seconds(proc.pid)
    counted: list[int] = []
    rate = asyncio.run(_load(port, bodies, level, seconds, counted))
    after = _cpu_seconds(proc.pid)
    cpu = None if before is None or after is None or not counted[0] else (after - before) / counted[0] * 1e6
    return rate, cpu


def _logged(log: Path) -> int:
    with sqlite3.connect(log) as conn:
        return int(conn.execute("SELECT count(*) FROM decisions").fetchone()[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", choices=["itellum", "benchmark"], default="itellum",
                        help="itellum: the bundled Itellum policy's five kinds (the default); benchmark: "
                             "bench/compare.py's 10-rule policy and cases")
    parser.add_argument("--trivial-server", type=int, help=argparse.SUPPRESS)
    opts = parser.parse_args()
    if opts.trivial_server:
        import uvicorn  # noqa: PLC0415
        uvicorn.run(trivial_app(), host="127.0.0.1", port=opts.trivial_server, log_level="info")
        return
    levels = [int(c) for c in opts.concurrency.split(",")]
    names = ["trivial endpoint", "clause serve (no log)", "clause serve --log"]
    best: dict[tuple[str, int], float] = {}
    ratios: dict[tuple[str, int], list[float]] = {}
    cpu: dict[tuple[str, int], float] = {}
    with tempfile.TemporaryDirectory(prefix="clause-bench-service-") as tmp:
        policies = None
        if opts.cases == "benchmark":
            from compare import RULES, cases, clause_policy  # noqa: PLC0415
            policies = clause_policy(RULES, Path(tmp) / "policies")
            bodies = [json.dumps(c).encode() for c in cases(2000)]
        else:
            bodies = [json.dumps(c).encode() for c in generate(2000)]
        servers = {name: start(name, Path(tmp), policies) for name in names}
        try:
            for _ in range(opts.rounds):
                for level in levels:
                    for name in names:
                        proc, port, _ = servers[name]
                        rate, used = _measured(proc, port, bodies, level, opts.seconds)
                        best[(name, level)] = max(best.get((name, level), 0.0), rate)
                        if name == names[0]:
                            anchor = rate
                        ratios.setdefault((name, level), []).append(rate / anchor)
                        if used is not None:
                            cpu[(name, level)] = min(cpu.get((name, level), used), used)
            for name, (_, _, log) in servers.items():
                if log is not None and _logged(log) == 0:
                    raise SystemExit(f"{name}: nothing was logged")
        finally:
            for proc, _, _ in servers.values():
                proc.terminate()
                proc.wait(timeout=30)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} cores "
          f"(load {load:.2f} after the run); {opts.rounds} rounds of {opts.seconds:g} s; "
          f"{opts.cases} cases; the client runs on the same machine")
    print("best requests/s of the rounds; × trivial: the median over the rounds of the ratio to the trivial "
          "endpoint's run just before (every round's ratios in brackets)")
    print(f"{'server':<24}" + "".join(f"{f'c={c} req/s':>14}{'× trivial':>11}" for c in levels))
    for name in names:
        print(f"{name:<24}" + "".join(f"{best[(name, c)]:>14,.0f}{statistics.median(ratios[(name, c)]):>11.2f}"
                                      for c in levels)
              + "   [" + "; ".join(" ".join(f"{r:.2f}" for r in ratios[(name, c)]) for c in levels) + "]")
    if len(cpu) == len(best):  # Linux: what each request cost the server, whatever the client's share
        print("\nserver CPU per request (all its threads and child processes; least of the rounds), "
              "and the trivial endpoint's CPU per request divided by it")
        print(f"{'server':<24}" + "".join(f"{f'c={c} µs':>14}{'trivial ÷':>11}" for c in levels))
        for name in names:
            print(f"{name:<24}" + "".join(f"{cpu[(name, c)]:>14,.0f}{cpu[('trivial endpoint', c)] / cpu[(name, c)]:>11.2f}"
                                          for c in levels))


if __name__ == "__main__":
    main()
