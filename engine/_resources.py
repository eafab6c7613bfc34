"""Find the bundled policies and schemas, installed or in a source checkout."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _bundled(name: str) -> Path:
    installed = _PACKAGE / "_bundled" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name  # source checkout or editable install


def schemas_dir() -> Path:
    return _bundled("schemas")


def bundled_policies_dir() -> Path:
    """The policies shipped with the package (or the checkout's, in an editable install)."""
    return _bundled("policies")


def default_policies_dir() -> Path:
    """``$CLAUSE_POLICIES`` when set, else the bundled ``policies/`` (the Python API's default).

    The command line also looks for ``./policies`` first: see :mod:`engine.cliutil`.
    """
    env = os.environ.get("CLAUSE_POLICIES")
    return Path(env) if env else bundled_policies_dir()
