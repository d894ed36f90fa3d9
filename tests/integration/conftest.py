"""Integration-test fixtures: a stand-in agent wired to zag through ZAG_HOME and ZAG_<NAME>_BIN."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.helpers import Agent


@pytest.fixture
def agent(tmp_path: Path, zag_home: Path) -> Agent:
    """The stand-in agent for this test (see `helpers.Agent`); its script is empty until set."""
    return Agent(tmp_path / "agent", zag_home)
