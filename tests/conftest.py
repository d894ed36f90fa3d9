"""Shared fixtures: every test gets its own ZAG_HOME and never touches the user's real state."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_CORPUS = REPO / "tests" / "fixtures" / "corpus"


def _children_get_the_default_sighup() -> None:
    """Under `nohup` (a CI runner may start the suite so) SIGHUP is ignored, and an ignored signal stays
    ignored across exec: every `zag` a test starts would ignore hang-ups as zag rightly does under nohup,
    and the tests that send SIGHUP would fail. A handler that does nothing keeps this process deaf to a
    hang-up, as nohup meant, while exec resets a caught signal to its default in every child."""
    if hasattr(signal, "SIGHUP") and signal.getsignal(signal.SIGHUP) == signal.SIG_IGN:
        signal.signal(signal.SIGHUP, lambda signum, frame: None)


_children_get_the_default_sighup()


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
