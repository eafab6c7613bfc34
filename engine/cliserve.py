"""The serving verbs of the ``clause`` command line: ``serve``, ``batch`` and ``log``.

They run and read what answers at scale (the HTTP service, batch files, the
decision log); ``cli.py`` registers them beside the authoring verbs.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from engine import CaseError, EngineError
from engine.bounds import missing_line
from engine.cliutil import (FORMAT, MATCHER, POLICIES, check_lang, echo_json, fail, languages, load_engine,
                            open_log, policy_dir, readable)
from engine.errors import Diagnostic


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@POLICIES
@MATCHER
@click.option("--log", "log_target", default=None,
              help="Record decisions in this log: a SQLite file or a postgresql:// URL [default: no log].")
@click.option("--no-log", is_flag=True, hidden=True, help="Do not record decisions (the default).")
@click.option("--max-body", default=1 << 20, show_default=True, type=int, help="Largest request body, in bytes.")
@click.option("--body-timeout", default=10.0, show_default=True, type=click.FloatRange(min=0.1),
              help="Seconds a client has to send a whole request body.")
@click.option("--allow-reload", is_flag=True,
              help="Enable POST /v1/reload (with $CLAUSE_RELOAD_TOKEN set, only for clients sending it).")
@click.option("--open", "open_page", is_flag=True, help="Open the workbench page in a browser.")
@click.option("--no-workbench", is_flag=True, help="Serve the JSON API only: no page, editor or batch upload.")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (each loads the policies and opens the log itself).")
@click.option("--json-logs", is_flag=True, help="One JSON line per request on stderr (request id, vendor, kind, "
                                                 "outcome, version, latency).")
@click.option("--log-facts", is_flag=True, help="With --json-logs, also log each case's facts (personal data).")
def serve(host: str, port: int, policies: Path | None, matcher: str, log_target: str | None, no_log: bool,
          max_body: int, body_timeout: float, allow_reload: bool, open_page: bool, no_workbench: bool,
          workers: int, json_logs: bool, log_facts: bool) -> None:
    """Serve decisions over HTTP (OpenAPI at /openapi.json, metrics at /metrics); reloads changed policies."""
    import os  # noqa: PLC0415

    import uvicorn  # noqa: PLC0415 - only this verb needs the server

    from engine.accesslog import enable_json_lines  # noqa: PLC0415
    from engine.service import create_app  # noqa: PLC0415

    root = policy_dir(policies, machine=False)
    if json_logs:
        enable_json_lines()
    if workers > 1:
        from engine.settings import Settings  # noqa: PLC0415
        settings = Settings(root, None if no_log else log_target, matcher, max_body, body_timeout, allow_reload,
                            os.environ.get("CLAUSE_RELOAD_TOKEN") or None, not no_workbench, json_logs, log_facts)
        os.environ.update(settings.to_env())
        click.echo(f"{workers} workers; decision log: {settings.log or 'none'}")
        uvicorn.run("engine.service:app_from_env", factory=True, workers=workers, host=host, port=port,
                    log_level="info")
        return
    log = None if no_log or not log_target else open_log(log_target, "text")
    click.echo(f"decision log: {log_target}" if log is not None else "decision log: none (add --log FILE)")
    try:
        app = create_app(root, matcher=matcher, log=log, max_body=max_body,
                         body_timeout=body_timeout, allow_reload=allow_reload,
                         reload_token=os.environ.get("CLAUSE_RELOAD_TOKEN") or None,
                         workbench=not no_workbench, json_logs=json_logs, log_facts=log_facts)
    except EngineError as err:
        fail(err, "text")
    if open_page and not no_workbench:
        from engine.workbench import open_browser  # noqa: PLC0415
        open_browser(host, port)
    try:
        uvicorn.run(app, host=host, port=port, log_level="info")
    finally:
        if log is not None:
            log.close()


@click.command()
@click.argument("source", type=click.Path(exists=True, dir_okay=False, allow_dash=True, path_type=Path))
@click.option("-o", "--output", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), required=True,
              help="Where to write the decisions ('-' for stdout).")
@click.option("--input-format", type=click.Choice(["auto", "jsonl", "csv", "parquet"]), default="auto",
              show_default=True, help="auto: by the file's suffix (.csv, .parquet, else JSON Lines).")
@click.option("--output-format", type=click.Choice(["auto", "jsonl", "csv"]), default="auto", show_default=True)
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes.")
@click.option("--dask", "scheduler", default=None, metavar="SCHEDULER",
              help="Decide on a Dask cluster: tcp://HOST:PORT of a running scheduler, or local[:N] "
                   "for a local cluster of N worker processes (needs the 'dask' extra).")
@click.option("--lang", default="en", show_default=True)
@click.option("--log", "log_target", default=None, help="Also record decisions in this log (SQLite file or URL).")
@click.option("--progress/--no-progress", default=None, help="Progress bar [default: on a terminal].")
@FORMAT
@POLICIES
@MATCHER
def batch(source: Path, output: Path, input_format: str, output_format: str, workers: int, scheduler: str | None,
          lang: str, log_target: str | None, progress: bool | None, fmt: str, policies: Path | None,
          matcher: str) -> None:
    """Decide every case of a JSON Lines or CSV file ('-' reads stdin), with a summary at the end.

    A bad line is reported with its number and skipped; the command still
    exits 0 (the job was done) and the summary lists every invalid line.
    """
    if scheduler is not None and workers > 1:
        fail(CaseError([Diagnostic("option", "--workers and --dask exclude each other: with --dask the "
                                   "cluster's workers decide")]), fmt)
    with readable(source) as path:
        _batch(path, output, input_format, output_format, workers, lang, log_target, progress, fmt, policies,
               matcher, scheduler)


def _batch(source: Path, output: Path, input_format: str, output_format: str, workers: int, lang: str,
           log_target: str | None, progress: bool | None, fmt: str, policies: Path | None,
           matcher: str, scheduler: str | None = None) -> None:
    from engine.batch import count_lines, run_batch, summary_text  # noqa: PLC0415
    from engine.batchlog import run_logged_batch  # noqa: PLC0415

    if str(output) != "-" and output.resolve() == source.resolve():
        fail(CaseError([Diagnostic("file", f"the output {output} is the input: choose another file")]), fmt)
    in_fmt = input_format if input_format != "auto" else {".csv": "csv", ".parquet": "parquet"}.get(
        source.suffix.lower(), "jsonl")
    out_fmt = output_format if output_format != "auto" else ("csv" if output.suffix == ".csv" else "jsonl")
    root = str(policy_dir(policies, fmt == "json" or str(output) == "-"))
    engine = load_engine(Path(root), matcher, fmt)
    check_lang(lang, languages(engine))
    log = open_log(log_target, fmt) if log_target else None
    show = sys.stderr.isatty() if progress is None else progress
    bar = click.progressbar(length=count_lines(source, in_fmt) - (1 if in_fmt == "csv" else 0), label="Deciding",
                            file=sys.stderr) if show else None

    def on_window(window: list[Any]) -> None:
        if bar is not None:
            bar.update(len(window))

    try:
        out = sys.stdout if str(output) == "-" else output.open("w", encoding="utf-8", newline="")
    except OSError as err:
        fail(CaseError([Diagnostic("file", f"cannot write {output}: {err.strerror or err}")]), fmt)
    try:
        if log is None:
            summary = run_batch(source, out, in_fmt=in_fmt, out_fmt=out_fmt, policies=root, matcher=matcher,
                                lang=lang, workers=workers, on_window=on_window, scheduler=scheduler,
                                engine=engine)
        else:  # the log is the commit point; an interrupted run resumes (engine/batchlog.py)
            summary, run = run_logged_batch(source, str(output), out, log, engine, in_fmt=in_fmt,
                                            out_fmt=out_fmt, policies=root, matcher=matcher, lang=lang,
                                            workers=workers, on_window=on_window, scheduler=scheduler)
            if run.resumed:
                click.echo(f"resumed an interrupted run after input line {run.done_through}", err=True)
    except EngineError as err:
        fail(err, fmt)
    finally:
        if out is not sys.stdout:
            out.close()
        if bar is not None:
            bar.render_finish()
        if log is not None:
            log.close()
    if fmt == "json":  # on stderr when the decisions themselves go to stdout
        click.echo(json.dumps({"cases": summary.cases, "decided": summary.cases - len(summary.invalid),
                    "outcomes": dict(summary.outcomes),
                    "amounts": {c: f"{v:f}" for c, v in summary.amounts.items()},
                    "invalid": [{"line": n, "error": e} for n, e in summary.invalid]}, indent=2),
                   err=str(output) == "-")
    else:
        click.echo(summary_text(summary), err=str(output) == "-")


@click.group()
def log() -> None:
    """Read the decision log: list, show, replay."""


LOG_TARGET = click.option("--log", "log_target", required=True,
                          help="The decision log: a SQLite file or a postgresql:// URL.")


def _read_records(log_target: str, fmt: str, **which: Any) -> list[Any]:
    """Records of a log; a damaged one is an error that names it, not a traceback."""
    log = open_log(log_target, fmt, read_only=True)
    try:
        return list(log.records(**which))
    except EngineError as err:
        fail(err, fmt)
    finally:
        log.close()


@log.command("list")
@LOG_TARGET
@click.option("--limit", default=50, show_default=True, type=int)
@FORMAT
def log_list(log_target: str, limit: int, fmt: str) -> None:
    """List logged decisions, oldest first."""
    records = _read_records(log_target, fmt, limit=limit)
    if fmt == "json":
        echo_json([{"id": r.id, "logged_at": r.logged_at, "origin": r.origin, "case_id": r.decision["case_id"],
                     "vendor": r.decision["vendor"], "kind": r.decision["kind"],
                     "outcome": r.decision["outcome"], "policy": r.decision["policy"]} for r in records])
        return
    for r in records:
        d = r.decision
        amount = f" {d['amount']['value']} {d['amount']['currency']}" if d["amount"] else ""
        click.echo(f"{r.id:>6}  {r.logged_at[:19]}  {r.origin:<6} {d['vendor']}/{d['kind']}  "
                   f"{d['case_id'] or '-'}  {d['outcome']}{amount}  ({d['policy']['version']})")


@log.command("show")
@click.argument("record_id", type=int)
@LOG_TARGET
@FORMAT
def log_show(record_id: int, log_target: str, fmt: str) -> None:
    """Show one logged decision with its case."""
    records = _read_records(log_target, fmt, record_id=record_id)
    if not records:
        fail(CaseError([Diagnostic("log", f"no logged decision with id {record_id}")]), fmt)
    r = records[0]
    if fmt == "json":
        echo_json({"id": r.id, "logged_at": r.logged_at, "origin": r.origin, "engine_version": r.engine_version,
                    "case": r.case, "decision": r.decision})
        return
    click.echo(f"Record {r.id}, logged {r.logged_at} by {r.origin} (engine {r.engine_version})")
    click.echo(render_decision(r.decision))


@log.command("replay")
@LOG_TARGET
@click.option("--limit", default=None, type=int)
@click.option("--against-current/--recorded-only", default=True, show_default=True,
              help="Also decide each case with the current policies and flag changes.")
@click.option("--dask", "scheduler", default=None, metavar="SCHEDULER",
              help="Replay on a Dask cluster: tcp://HOST:PORT or local[:N] (needs the 'dask' extra).")
@FORMAT
@POLICIES
def log_replay(log_target: str, limit: int | None, against_current: bool, scheduler: str | None, fmt: str,
               policies: Path | None) -> None:
    """Re-decide logged cases with the policy version recorded (by digest); report differences.

    Exits 1 when a logged decision cannot be reproduced.
    """
    from engine.log import replay  # noqa: PLC0415

    current = load_engine(policy_dir(policies, fmt == "json"), "python", fmt) if against_current else None
    log = open_log(log_target, fmt, read_only=True)
    try:
        if scheduler is not None:
            from engine import distributed  # noqa: PLC0415 - Dask is an optional extra

            results = list(distributed.replay(log, scheduler, current, limit))
        else:
            results = list(replay(log, current, limit))
    except EngineError as err:  # a damaged record
        fail(err, fmt)
    finally:
        log.close()
    broken = [r for r in results if not r.reproduced]
    changed = [r for r in results if r.changed_now]
    if fmt == "json":
        echo_json({"replayed": len(results), "reproduced": len(results) - len(broken),
                    "not_reproduced": [{"id": r.record.id, "error": r.error} for r in broken],
                    "changed_under_current": [{"id": r.record.id, "was": r.record.decision["outcome"],
                                               "now": r.current["outcome"] if r.current else None}
                                              for r in changed]})
    else:
        for r in broken:
            click.echo(f"record {r.record.id}: NOT reproduced" + (f": {r.error}" if r.error else ""))
        for r in changed:
            was, now = r.record.decision, r.current or {}
            if r.current_error:
                click.echo(f"record {r.record.id}: the current policies cannot decide it: {r.current_error}")
                continue
            click.echo(f"record {r.record.id}: the current policy would change it: {was['outcome']}"
                       f"{_amount(was)} → {now.get('outcome')}{_amount(now)}")
        click.echo(f"{len(results)} replayed, {len(results) - len(broken)} reproduced, "
                   f"{len(changed)} would change under the current policies")
    if broken:
        sys.exit(1)


def _amount(d: dict[str, Any]) -> str:
    return f" {d['amount']['value']} {d['amount']['currency']}" if d.get("amount") else ""


def render_decision(d: dict[str, Any]) -> str:
    """The decision for people."""
    head = f"{d['case_id'] + '  ' if d['case_id'] else ''}{d['vendor']}/{d['kind']}  as of {d['as_of']}"
    lines = [head, f"Outcome: {d['outcome']}"]
    money = lambda m: f"{m['value']} {m['currency']}"  # noqa: E731
    if d["amount"]:
        lines.append(f"Amount: {money(d['amount'])}")
    if d["customer_pays"]:
        lines.append(f"Customer pays: {money(d['customer_pays'])}")
    sections = [
        ("Fees", [f"{f['name']}: {f['value']} {f['currency']}  ({f['rule']})" for f in d["fees"]]),
        ("Deadlines", [f"{x['name']}: {x['date'] or '?'} {x['status']}  {x['text']}"
                       f"{'  (' + x['rule'] + ')' if x['rule'] else ''}" for x in d["deadlines"]]),
        ("Alternatives", [f"{a['outcome']}"
                          f"{'  customer pays ' + money(a['customer_pays']) if a['customer_pays'] else ''}"
                          f"{'  amount ' + money(a['amount']) if a['amount'] else ''}: {a['text']}"
                          for a in d.get("alternatives", ())]),
        ("Actions", [f"{a['party']}: {a['text']}" for a in d["actions"]]),
        ("Missing facts", [missing_line(m) for m in d["missing_facts"]]),
    ]
    for title, items in sections:
        if items:
            lines.append(f"{title}:")
            lines.extend(f"  {i}" for i in items)
    lines.append("Reasons:")
    for r in d["reasons"]:
        lines.append(f"  [{r['rule']}] {r['text']}")
        if r["clause"]:
            lines.append(f"    clause ({r['source']}): \"{r['clause']}\"")
    p = d["policy"]
    lines.append(f"Policy: {p['vendor']} {p['version']} (effective {p['effective_from']}, "
                 f"sha256 {p['digest'][:12]})")
    return "\n".join(lines)
