"""Paths of the project for the fuzzers (tests/conftest.py is not importable from here by name)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "policies"
