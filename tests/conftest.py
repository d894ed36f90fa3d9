"""Shared fixtures: every test gets its own ZAG_HOME and never touches the user's real state."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO / "tests" / "fixtures" / "corpus"


@pytest.fixture(autouse=True)
def zag_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private ZAG_HOME for each test (also exported, so child `zag` processes use it)."""
    home = tmp_path / "zag-home"
    monkeypatch.setenv("ZAG_HOME", str(home))
    monkeypatch.delenv("ZAG_SESSION_ID", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    import zag.logs.redact as redact

    monkeypatch.setattr(redact, "_default", None)
    return home


def pytest_report_header(config: pytest.Config) -> str:
    return f"zag tests: ZAG_HOME per test; CI={os.environ.get('CI', '')!r}"
