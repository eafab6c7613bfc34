"""Batch decisions on a Dask cluster (``clause batch --dask SCHEDULER``).

The input is read here, in the client, and cut into chunks; each chunk is
decided on a Dask worker by the same :func:`engine.batch.render_line` as a
local run, and the results come back here to be written in input order. So
the output is the same, byte for byte, as a single-process run, and the
decision log (``--log``) stays the commit point of every window.

What travels to the workers is the policy *text* — each policy version's
file and source with its digest, broadcast once — never pickled code. A
worker writes them into a private folder (every name checked as a name read
from a log is, :mod:`engine.log`), compiles them once, and refuses to decide
if a digest differs from the one shipped. The compiled engine is kept per
worker process, keyed by the bundle's digest (the worker's cache; the engine
itself holds no global state).

A worker that dies mid-chunk has its chunk rescheduled by Dask on another
worker; only the client writes, and each chunk's result is taken once, so
the output has no duplicates. A chunk that has killed its workers
repeatedly (Dask's ``allowed-failures``) is reported line by line as invalid
— the run goes on. Dask is the optional extra ``clause-engine[dask]``.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from engine.batch import windows
from engine.engine import Engine
from engine.errors import Diagnostic, EngineError

CHUNK = 1000      # lines per task: large enough that Dask's per-task cost (~1 ms) is small
AHEAD = 4         # chunks in flight per worker thread
FILE = re.compile(r"policy[A-Za-z0-9._-]*\.yaml")

_ENGINES: dict[tuple[str, str], Engine] = {}
_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class PolicyText:
    """One policy version as shipped to workers: its texts and the digest they must give."""

    vendor: str
    file: str          # the policy file's name (policy.yaml, policy-2024.yaml...)
    text: str
    source_file: str
    source_text: str
    digest: str


def bundle(engine: Engine) -> tuple[PolicyText, ...]:
    """Every policy version the engine decides with, as text."""
    return tuple(PolicyText(p.vendor, Path(p.file).name, p.text, p.source_file, p.source_text, p.digest)
                 for versions in engine.vendors.values() for p in versions)


def bundle_digest(files: tuple[PolicyText, ...]) -> str:
    return hashlib.sha256("\0".join(f.digest for f in files).encode()).hexdigest()


def engine_from(files: tuple[PolicyText, ...], matcher: str, checked: bool = True) -> Engine:
    """The worker's engine for this bundle: written out, compiled and checked once per process."""
    key = (bundle_digest(files), matcher)
    with _LOCK:
        if key not in _ENGINES:
            _ENGINES[key] = _compile(files, matcher, checked)
        return _ENGINES[key]


def _compile(files: tuple[PolicyText, ...], matcher: str, checked: bool = True) -> Engine:
    from engine.log import _checked_source, _checked_vendor, _inside  # noqa: PLC0415 - shared name checks

    with tempfile.TemporaryDirectory(prefix="clause-dask-") as tmp:
        root = Path(tmp)
        for f in files:
            if not FILE.fullmatch(f.file):
                raise EngineError([Diagnostic("file", f"shipped policy file name {f.file[:80]!r} refused")])
            home = _inside(root, _checked_vendor(f.vendor))
            source = _inside(home, _checked_source(f.source_file))
            source.parent.mkdir(parents=True, exist_ok=True)
            _inside(home, f.file).write_text(f.text, encoding="utf-8")
            source.write_text(f.source_text, encoding="utf-8")
        engine = Engine.load(root, matcher=matcher)
    got = sorted(p.digest for versions in engine.vendors.values() for p in versions)
    if checked and got != sorted(f.digest for f in files):
        raise EngineError([Diagnostic("policy", "the policies compiled on a worker do not have the digests "
                                      "shipped to it")])
    return engine


def decide_chunk(files: tuple[PolicyText, ...], matcher: str, chunk: list[tuple[int, str]],
                 in_fmt: str, out_fmt: str, lang: str, keep: bool) -> list[Any]:
    """Run on a worker: decide and render one chunk of lines."""
    from engine.batch import render_line  # noqa: PLC0415

    engine = engine_from(files, matcher)
    return [render_line(engine, n, raw, in_fmt, out_fmt, lang, keep) for n, raw in chunk]


def connect(scheduler: str) -> tuple[Any, Any]:
    """A Dask client for ``tcp://host:port`` (a running scheduler) or ``local[:N]`` (a LocalCluster).

    Returns (client, cluster) — cluster is None for a remote scheduler.
    """
    try:
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415
    except ImportError as err:
        raise EngineError([Diagnostic("dask", "--dask needs Dask: pip install 'clause-engine[dask]'")]) from err
    match = re.fullmatch(r"local(?::(\d{1,3}))?", scheduler)
    if match:
        workers = int(match.group(1)) if match.group(1) else None  # None: one per core
        if workers is not None and not 1 <= workers <= 256:
            raise EngineError([Diagnostic("dask", f"local:N needs 1 to 256 workers, not {workers}")])
        # Dask's own log lines only at CRITICAL: a worker whose heartbeat races the cluster's
        # shutdown logs an ERROR with a traceback although nothing failed; real failures reach
        # us as exceptions from the futures, and are reported per chunk.
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=50)
        return Client(cluster), cluster
    if not re.fullmatch(r"(tcp|tls|ws|wss)://[^\s/]+", scheduler):
        raise EngineError([Diagnostic("dask", f"--dask takes tcp://HOST:PORT or local[:N], not {scheduler!r}")])
    try:
        return Client(scheduler, timeout="10s"), None
    except OSError as err:
        raise EngineError([Diagnostic("dask", f"cannot reach the Dask scheduler at {scheduler}: {err}")]) from err


def results(lines: Iterator[tuple[int, str]], engine: Engine, matcher: str, in_fmt: str, out_fmt: str,
            lang: str, keep: bool, scheduler: str) -> Iterator[list[Any]]:
    """Decided chunks in input order, decided on the cluster (see the module's docstring)."""
    client, cluster = connect(scheduler)
    try:
        yield from _pipeline(client, lines, engine, matcher, in_fmt, out_fmt, lang, keep)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _pipeline(client: Any, lines: Iterator[tuple[int, str]], engine: Engine, matcher: str, in_fmt: str,
              out_fmt: str, lang: str, keep: bool) -> Iterator[list[Any]]:
    shipped = client.scatter(bundle(engine), broadcast=True, hash=False)
    depth = max(2, AHEAD * max(1, sum(client.nthreads().values())))
    pending: deque[tuple[list[tuple[int, str]], Any]] = deque()
    for chunk in windows(lines, CHUNK):
        pending.append((chunk, client.submit(decide_chunk, shipped, matcher, chunk, in_fmt, out_fmt, lang,
                                             keep, pure=False, retries=1)))
        if len(pending) >= depth:
            yield _collect(*pending.popleft())
    while pending:
        yield _collect(*pending.popleft())


def _collect(chunk: list[tuple[int, str]], future: Any) -> list[Any]:
    """A chunk's results; a chunk the cluster could not decide is reported line by line."""
    from engine.batch import Result  # noqa: PLC0415

    try:
        return future.result()
    except EngineError:
        raise
    except Exception as err:  # noqa: BLE001 - KilledWorker and the like: the run goes on
        reason = f"not decided: the Dask task for lines {chunk[0][0]}-{chunk[-1][0]} failed " \
                 f"({type(err).__name__}: {str(err)[:200]})"
        return [Result(n, False, reason) for n, _ in chunk]
    finally:
        future.release()


# --- clause log replay --dask -------------------------------------------------------

def replay(log: Any, scheduler: str, current: Engine | None = None, limit: int | None = None) -> Iterator[Any]:
    """:func:`engine.log.replay` on a Dask cluster: the same Replay results, in log order.

    Each logged policy the records name is read from the log once and
    broadcast as text (its digest is checked again on the worker, so a
    tampered policy row is caught there, as locally); the current policies,
    when asked, travel the same way.
    """
    client, cluster = connect(scheduler)
    try:
        current_files = client.scatter(bundle(current), broadcast=True, hash=False) if current else None
        shipped: dict[str, Any] = {}
        pending: deque[Any] = deque()
        depth = max(2, AHEAD * max(1, sum(client.nthreads().values())))
        for chunk in windows(log.records(limit=limit, exact=True), CHUNK):
            texts = {d: _shipped_policy(client, log, d, shipped) for d in {_digest_of(r) for r in chunk} if d}
            pending.append(client.submit(replay_chunk, texts, chunk, current_files, pure=False, retries=1))
            if len(pending) >= depth:
                yield from _take(pending.popleft())
        while pending:
            yield from _take(pending.popleft())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _digest_of(record: Any) -> str | None:
    policy = record.decision.get("policy") if isinstance(record.decision, dict) else None
    digest = policy.get("digest") if isinstance(policy, dict) else None
    return digest if isinstance(digest, str) else None


def _shipped_policy(client: Any, log: Any, digest: str, shipped: dict[str, Any]) -> Any:
    """The logged policy ``digest`` as a broadcast PolicyText (None when the log lacks it)."""
    if digest not in shipped:
        try:
            vendor, text, source_file, source_text = log.policy_row(digest)
            value: Any = (PolicyText(vendor, "policy.yaml", text, source_file, source_text, digest),)
        except EngineError:
            value = None  # the worker reports it for each record that names it
        shipped[digest] = client.scatter(value, broadcast=True, hash=False)
    return shipped[digest]


def replay_chunk(texts: dict[str, Any], records: list[Any], current_files: Any) -> list[Any]:
    """Run on a worker: replay records with the policies shipped for their digests."""
    from engine.log import LogError, check_rebuilt, replay_record  # noqa: PLC0415

    def engine_for(digest: str) -> Engine:
        files = texts.get(digest)
        if files is None:
            raise LogError([Diagnostic("log", f"the log holds no policy with digest {digest}")])
        engine = engine_from(files, "python", checked=False)
        check_rebuilt(engine, digest)  # as a local replay words it
        return engine

    current = engine_from(current_files, "python") if current_files else None
    return [replay_record(r, engine_for, current) for r in records]


def _take(future: Any) -> list[Any]:
    try:
        return future.result()
    finally:
        future.release()
