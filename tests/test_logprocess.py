"""The decision log's writer process (engine/logprocess.py): grouped, acknowledged, never losing an answer."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import decide_scope
from engine import Engine
from engine.groupcommit import LogBusy, LogFailed, LogTimeout, is_busy
from engine.log import DecisionLog
from engine.logprocess import ProcessCommitter, frame, unframe

ROOT = Path(__file__).resolve().parents[1]
CASE = {"id": "C", "vendor": "itellum", "kind": "delivery", "as_of": "2025-02-14",
        "facts": {"defect_at_delivery": True}}


@pytest.fixture(scope="module")
def item() -> Any:
    engine = Engine.load(ROOT / "policies")
    decision = engine.decide(CASE)
    return CASE, decision.to_dict(), engine.policy_by_digest(decision.vendor, decision.policy["digest"])


@pytest.fixture()
def path(tmp_path: Path) -> Path:
    return tmp_path / "d.sqlite3"


@pytest.fixture()
def log(path: Path) -> Iterator[DecisionLog]:
    opened = DecisionLog(str(path))
    yield opened
    opened.close()


@pytest.fixture()
def writer(log: DecisionLog) -> Iterator[ProcessCommitter]:
    """A writer over ``log``, closed after the test (closing it again there does nothing)."""
    committer = ProcessCommitter(log)
    yield committer
    committer.close()


def rows(item: Any, case_id: str) -> list[Any]:
    case, data, policy = item
    return [({**case, "id": case_id}, {**data, "case_id": case_id}, policy)]


def logged(path: Path) -> list[str]:
    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT case_id FROM decisions ORDER BY id")]


def test_frames_come_out_whole_and_a_partial_frame_waits() -> None:
    data = frame((1, [("a", None)], [])) + frame(("acks", [(2, (True, "busy"))], [(0.5, 3)]))
    buffer = bytearray(data[:-3])
    assert unframe(buffer) == [(1, [("a", None)], [])]
    buffer += data[-3:]
    assert unframe(buffer) == [("acks", [(2, (True, "busy"))], [(0.5, 3)])] and not buffer


def test_concurrent_writes_are_committed_in_shared_transactions(path: Path, log: DecisionLog,
                                                                writer: ProcessCommitter, item: Any) -> None:
    commits: list[int] = []
    writer.on_commit = lambda _s, n: commits.append(n)

    async def main() -> None:
        await asyncio.gather(*(writer.write_many_async(rows(item, f"R{k}"), "serve") for k in range(40)))

    asyncio.run(main())
    assert sorted(logged(path)) == sorted(f"R{k}" for k in range(40))
    assert sum(commits) == 40 and len(commits) < 40  # grouped: one fsync for many requests
    record = next(r for r in log.records() if r.decision["case_id"] == "R7")
    assert record.origin == "serve" and record.case["id"] == "R7" and record.decision["case_id"] == "R7"


def test_no_write_is_acknowledged_before_its_transaction_commits(path: Path, writer: ProcessCommitter,
                                                                 item: Any) -> None:
    blocker = sqlite3.connect(path, isolation_level=None)

    async def main() -> None:
        await writer.write_many_async(rows(item, "first"), "serve")
        blocker.execute("BEGIN IMMEDIATE")  # the writer's transaction must wait for this lock
        pending = asyncio.ensure_future(writer.write_many_async(rows(item, "second"), "serve"))
        await asyncio.sleep(0.5)
        assert not pending.done()  # not acknowledged (so not answered) while it cannot commit
        blocker.execute("COMMIT")
        await pending

    try:
        asyncio.run(main())
        assert logged(path) == ["first", "second"]
    finally:
        blocker.close()


def test_a_refused_request_fails_alone_and_its_neighbours_are_committed(path: Path, writer: ProcessCommitter,
                                                                         item: Any) -> None:
    with sqlite3.connect(path) as conn:  # before the writer's first write, which starts it
        conn.execute("CREATE TRIGGER refuse BEFORE INSERT ON decisions WHEN NEW.case_id = 'bad' "
                     "BEGIN SELECT RAISE(ABORT, 'refused by a trigger'); END")

    async def main() -> list[Any]:
        return await asyncio.gather(*(writer.write_many_async(rows(item, name), "serve")
                                      for name in ("ok1", "bad", "ok2")), return_exceptions=True)

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], LogFailed) and "refused by a trigger" in str(results[1])
    assert not is_busy(results[1])  # a refusal is the server's error, not "retry later"
    assert sorted(logged(path)) == ["ok1", "ok2"]


def child_of(writer: ProcessCommitter) -> subprocess.Popen[bytes]:
    assert writer._child is not None
    return writer._child.proc


def test_a_killed_writer_fails_its_waiters_as_busy_and_the_next_write_starts_a_new_one(
        path: Path, writer: ProcessCommitter, item: Any) -> None:

    async def main() -> None:
        await writer.write_many_async(rows(item, "before"), "serve")
        first = child_of(writer)
        os.kill(first.pid, signal.SIGSTOP)  # it holds the next requests without committing them
        waiting = [asyncio.ensure_future(writer.write_many_async(rows(item, f"held{k}"), "serve"))
                   for k in range(3)]
        await asyncio.sleep(0.2)
        assert writer.pending() == 3 and not any(w.done() for w in waiting)
        os.kill(first.pid, signal.SIGKILL)
        for outcome in await asyncio.gather(*waiting, return_exceptions=True):
            assert isinstance(outcome, LogBusy) and is_busy(outcome)
        await writer.write_many_async(rows(item, "after"), "serve")
        assert child_of(writer).pid != first.pid

    asyncio.run(main())
    assert logged(path) == ["before", "after"]  # nothing held was answered, so nothing answered is missing


def test_a_stalled_writer_times_out_and_recovers(path: Path, writer: ProcessCommitter, item: Any) -> None:

    async def main() -> None:
        await writer.write_many_async(rows(item, "first"), "serve")
        pid = child_of(writer).pid
        os.kill(pid, signal.SIGSTOP)
        try:
            with pytest.raises(LogTimeout):
                await writer.write_many_async(rows(item, "late"), "serve", timeout=0.3)
        finally:
            os.kill(pid, signal.SIGCONT)
        await writer.write_many_async(rows(item, "next"), "serve")
        assert writer.pending() == 0

    asyncio.run(main())
    # The late record was committed after its request gave up (it was not answered: no harm).
    assert logged(path) == ["first", "late", "next"]


def test_the_writer_ignores_sigint_and_commits_what_it_was_sent_before_closing(
        path: Path, writer: ProcessCommitter, item: Any) -> None:
    writer.start()
    proc = child_of(writer)

    async def main() -> None:
        await writer.write_many_async(rows(item, "one"), "serve")
        os.kill(proc.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
        os.kill(proc.pid, signal.SIGTERM)
        await writer.write_many_async(rows(item, "two"), "serve")

    asyncio.run(main())
    writer.close()
    assert proc.returncode == 0 and logged(path) == ["one", "two"]
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(writer.write_many_async(rows(item, "three"), "serve"))


def test_a_log_the_writer_cannot_open_is_busy_not_a_crash(tmp_path: Path, item: Any) -> None:
    class Elsewhere:
        target = str(tmp_path / "no-such-folder" / "d.sqlite3")

    writer = ProcessCommitter(Elsewhere())  # type: ignore[arg-type]
    try:
        with pytest.raises(LogBusy, match="cannot open the decision log"):
            asyncio.run(writer.write_many_async(rows(item, "x"), "serve", timeout=30))
    finally:
        writer.close()


def test_writes_from_threads_go_through_the_loop_that_holds_the_writer(path: Path, writer: ProcessCommitter,
                                                                        item: Any) -> None:

    async def main() -> None:
        await writer.write_many_async(rows(item, "loop"), "serve")
        await asyncio.to_thread(writer.write_many, rows(item, "thread"), "serve")

    asyncio.run(main())
    writer.write_many(rows(item, "no-loop"), "serve")  # the loop has ended: the log's own transaction
    asyncio.run(writer.write_many_async(rows(item, "new-loop"), "serve"))  # a later loop takes over
    assert logged(path) == ["loop", "thread", "no-loop", "new-loop"]


def test_a_server_killed_with_sigkill_leaves_no_writer_behind(tmp_path: Path) -> None:
    script = (f"import sys, time; sys.path.insert(0, {str(ROOT)!r})\n"
              "from engine.log import DecisionLog\nfrom engine.logprocess import ProcessCommitter\n"
              f"w = ProcessCommitter(DecisionLog({str(tmp_path / 'd.sqlite3')!r}))\nw.start()\n"
              "print(w._child.proc.pid, flush=True)\ntime.sleep(60)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
    assert parent.stdout is not None
    with parent.stdout:
        child = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and _alive(child):
        time.sleep(0.05)
    assert not _alive(child)


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by init, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_a_server_and_its_writer_killed_under_load_lose_no_answered_decision(tmp_path: Path) -> None:
    """Issue 11: ``kill -9`` of ``clause serve --log`` (the whole process group) under load."""
    import http.client  # noqa: PLC0415

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    path = tmp_path / "d.sqlite3"
    server = subprocess.Popen([sys.executable, str(ROOT / "cli.py"), "serve", "--port", str(port), "--no-workbench",
                               "--policies", str(ROOT / "policies"), "--log", str(path)],
                              cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    answered: list[str] = []
    stop = threading.Event()

    def client(k: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            for n in range(100_000):
                if stop.is_set():
                    return
                case_id = f"K{k}-{n}"
                try:
                    conn.request("POST", "/v1/decide", json.dumps({**CASE, "id": case_id}),
                                 {"Content-Type": "application/json"})
                    reply = conn.getresponse()
                    reply.read()
                except (OSError, http.client.HTTPException):
                    return  # the server is gone (perhaps between an answer's head and its body: not answered)
                if reply.status == 200:
                    answered.append(case_id)
        finally:
            conn.close()

    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        clients = [threading.Thread(target=client, args=(k,)) for k in range(6)]
        for thread in clients:
            thread.start()
        while len(answered) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.killpg(server.pid, signal.SIGKILL)  # the server and its writer, mid-load
        server.wait()
    finally:
        stop.set()
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
    for thread in clients:
        thread.join(timeout=15)
    assert len(answered) >= 300
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        kept = {r[0] for r in conn.execute("SELECT case_id FROM decisions")}
    assert not set(answered) - kept


def _writers() -> set[int]:
    """This process's live writer children."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z" and b"engine.logprocess" in command:
            found.add(int(stat.parent.name))
    return found


def test_an_app_starts_its_writer_with_its_lifespan_not_when_it_is_built(log: DecisionLog) -> None:
    from engine.service import create_app  # noqa: PLC0415

    before = _writers()
    app = create_app(ROOT / "policies", log=log, watch_interval=None, workbench=False)
    assert _writers() == before  # building an app (a test, a CLI check) leaves no process behind

    async def main() -> set[int]:
        async with app.router.lifespan_context(app):
            return _writers() - before

    started = asyncio.run(main())
    assert len(started) == 1 and not (_writers() & started)  # the shutdown ended it


def test_a_failed_writer_is_never_written_to_again_even_when_its_descriptor_is_reused(
        tmp_path: Path, writer: ProcessCommitter, item: Any) -> None:
    """Review: a release queued before the writer's end was seen wrote the held rows to whatever
    reused the closed pipe's descriptor number (a new client socket, say)."""
    victim = tmp_path / "victim"
    opened: list[int] = []

    async def main() -> None:
        loop = asyncio.get_running_loop()
        await writer.write_many_async(rows(item, "first"), "serve")
        proc = child_of(writer)
        proc.kill()
        proc.wait()  # its end of output is now pending on the loop
        a, b = socket.socketpair()

        def unrelated() -> None:  # another callback of the same turn opens a file: the lowest free number
            loop.remove_reader(a)
            opened.append(os.open(victim, os.O_WRONLY | os.O_CREAT))

        loop.add_reader(a, unrelated)
        b.send(b"x")
        # Its step runs in the turn that also sees the writer's end and the unrelated callback,
        # so its release comes one turn later, after the descriptor was freed and reused.
        request = asyncio.ensure_future(writer.write_many_async(rows(item, "SECRET"), "serve"))
        with pytest.raises(LogBusy):
            await request
        await asyncio.sleep(0.05)
        a.close()
        b.close()

    asyncio.run(main())
    for fd in opened:
        os.close(fd)
    assert victim.read_bytes() == b""


def test_closing_a_stalled_writer_is_bounded(writer: ProcessCommitter, item: Any) -> None:
    """Review: with the writer stalled and more queued than a pipe holds, close() blocked for ever."""

    async def main() -> None:
        await writer.write_many_async(rows(item, "first"), "serve")
        os.kill(child_of(writer).pid, signal.SIGSTOP)
        big = [({**item[0], "id": f"B{k}", "pad": "x" * 2000}, {**item[1], "case_id": f"B{k}"}, item[2])
               for k in range(100)]
        outcomes = await asyncio.gather(*(writer.write_many_async(big[k:k + 1], "serve", timeout=0.5)
                                          for k in range(100)), return_exceptions=True)
        assert all(isinstance(o, LogTimeout) for o in outcomes)

    asyncio.run(main())
    proc = child_of(writer)
    closer = threading.Thread(target=writer.close, kwargs={"wait": 1.0}, daemon=True)
    closer.start()
    closer.join(15)
    blocked = closer.is_alive()
    if blocked:
        os.kill(proc.pid, signal.SIGKILL)  # free the test from the hang it found
    assert not blocked and proc.returncode is not None


def test_a_forked_process_starts_its_own_writer(tmp_path: Path) -> None:
    """Review: a fork after the writer started shared its pipes, and each side read the other's
    acknowledgements (one side's requests then all timed out)."""
    script = f"""
import asyncio, os, sys
sys.path.insert(0, {str(ROOT)!r})
from engine import Engine
from engine.log import DecisionLog
from engine.logprocess import ProcessCommitter
engine = Engine.load()
case = {CASE!r}
decision = engine.decide(case)
policy = engine.policy_by_digest(decision.vendor, decision.policy["digest"])
writer = ProcessCommitter(DecisionLog({str(tmp_path / 'd.sqlite3')!r}))

async def write(name, count):
    await asyncio.gather(*(writer.write_many_async([({{**case, "id": f"{{name}}{{k}}"}},
                                                     {{**decision.to_dict(), "case_id": f"{{name}}{{k}}"}}, policy)],
                                                   "serve", timeout=10) for k in range(count)))

asyncio.run(write("before", 1))
first = writer._child.proc.pid
pid = os.fork()
asyncio.run(write("child" if pid == 0 else "parent", 50))
mine = writer._child.proc.pid
writer.close()
if pid == 0:
    os._exit(0 if mine != first else 3)  # the fork wrote through a writer of its own
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) or (0 if mine == first else 4))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    names = logged(tmp_path / "d.sqlite3")
    assert sorted(names) == sorted(["before0"] + [f"{side}{k}" for side in ("child", "parent") for k in range(50)])


def test_without_an_interpreter_to_start_the_app_logs_from_a_thread(
        path: Path, log: DecisionLog, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """An embedded Python may have no ``sys.executable``: the writer thread takes over, and says so."""
    from engine.service import create_app  # noqa: PLC0415

    monkeypatch.setattr(sys, "executable", "")
    app = create_app(ROOT / "policies", log=log, watch_interval=None, workbench=False)
    body = json.dumps({**CASE, "id": "THREAD"}).encode()
    sent: list[Any] = []

    async def main() -> set[int]:
        async with app.router.lifespan_context(app):
            scope = decide_scope()
            messages = [{"type": "http.request", "body": body}]

            async def receive() -> Any:
                return messages.pop(0)

            async def send(message: Any) -> None:
                sent.append(message)

            await app(scope, receive, send)
            return _writers()

    before = _writers()
    assert asyncio.run(main()) == before  # no writer process was started
    assert sent[0]["status"] == 200 and logged(path) == ["THREAD"]
    assert "writing from a thread" in caplog.text
