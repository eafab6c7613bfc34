"""The service's settings from the environment, for deployments that start it without the CLI.

``uvicorn --factory engine.service:app_from_env``, gunicorn with uvicorn
workers, a container: each reads the same variables, which ``clause serve``
also sets for its worker processes.

| variable | default | meaning |
| --- | --- | --- |
| ``CLAUSE_POLICIES`` | ``./policies`` if present, else the bundled ones | policy directory |
| ``CLAUSE_LOG`` | none | decision log: a SQLite file or a ``postgresql://`` URL |
| ``CLAUSE_MATCHER`` | ``python`` | ``python`` or ``rete`` |
| ``CLAUSE_MAX_BODY`` | 1048576 | largest request body, bytes |
| ``CLAUSE_BODY_TIMEOUT`` | 10 | seconds to receive a body |
| ``CLAUSE_ALLOW_RELOAD`` | false | enable ``POST /v1/reload`` |
| ``CLAUSE_RELOAD_TOKEN`` | none | bearer token ``POST /v1/reload`` then needs |
| ``CLAUSE_WORKBENCH`` | true | serve the web workbench at ``/`` |
| ``CLAUSE_JSON_LOGS`` | false | one JSON line per request on stderr |
| ``CLAUSE_LOG_FACTS`` | false | include the case's facts in those lines |

A value that does not parse is refused with the variable's name (the
process does not start on a guess).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from engine.errors import Diagnostic, EngineError

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


class SettingsError(EngineError):
    """An environment variable the service cannot use."""


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise SettingsError([Diagnostic("settings", f"{name}={raw[:40]!r}: expected true or false")])


def _number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    raw = env.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:  # also refuses nan
        raise SettingsError([Diagnostic("settings", f"{name}={raw[:40]!r}: expected a number from {low:g} "
                                        f"to {high:g}")])
    return value


@dataclass(frozen=True)
class Settings:
    """What ``create_app`` needs, read once at start-up."""

    policies: Path
    log: str | None = None
    matcher: str = "python"
    max_body: int = 1 << 20
    body_timeout: float = 10.0
    allow_reload: bool = False
    reload_token: str | None = None
    workbench: bool = True
    json_logs: bool = False
    log_facts: bool = False

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        from engine.cliutil import resolve_policies  # noqa: PLC0415 - the CLI's own rule for the directory

        env = os.environ if env is None else env
        matcher = env.get("CLAUSE_MATCHER", "python").strip() or "python"
        if matcher not in ("python", "rete"):
            raise SettingsError([Diagnostic("settings", f"CLAUSE_MATCHER={matcher[:40]!r}: expected python or rete")])
        given = env.get("CLAUSE_POLICIES")
        policies = Path(given) if given else resolve_policies(None).path
        if not policies.is_dir():
            raise SettingsError([Diagnostic("settings", f"CLAUSE_POLICIES={str(policies)[:200]!r} is not a directory")])
        return cls(policies=policies, log=env.get("CLAUSE_LOG") or None, matcher=matcher,
                   max_body=int(_number(env, "CLAUSE_MAX_BODY", 1 << 20, 1024, 1 << 30)),
                   body_timeout=_number(env, "CLAUSE_BODY_TIMEOUT", 10.0, 0.1, 3600),
                   allow_reload=_flag(env, "CLAUSE_ALLOW_RELOAD", False),
                   reload_token=env.get("CLAUSE_RELOAD_TOKEN") or None,
                   workbench=_flag(env, "CLAUSE_WORKBENCH", True),
                   json_logs=_flag(env, "CLAUSE_JSON_LOGS", False),
                   log_facts=_flag(env, "CLAUSE_LOG_FACTS", False))

    def to_env(self) -> dict[str, str]:
        """The variables that give these settings (for worker processes)."""
        env = {"CLAUSE_POLICIES": str(self.policies), "CLAUSE_MATCHER": self.matcher,
               "CLAUSE_MAX_BODY": str(self.max_body), "CLAUSE_BODY_TIMEOUT": repr(self.body_timeout),
               "CLAUSE_ALLOW_RELOAD": str(self.allow_reload).lower(),
               "CLAUSE_WORKBENCH": str(self.workbench).lower(), "CLAUSE_JSON_LOGS": str(self.json_logs).lower(),
               "CLAUSE_LOG_FACTS": str(self.log_facts).lower()}
        if self.log:
            env["CLAUSE_LOG"] = self.log
        if self.reload_token:
            env["CLAUSE_RELOAD_TOKEN"] = self.reload_token
        return env
