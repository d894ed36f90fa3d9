"""Fixtures for the end-to-end tests against the real agent CLIs (npm) and the fake model API.

  npm_clis   (session)  the pinned CLIs, installed once into tests/e2e/.npm-cli/ (xdist-safe) right after
                        collection, so the install never counts against a test's timeout. npm missing or the
                        install failed: the test FAILS when CI is set, SKIPS with the reason otherwise.
  net_jail   (session)  a network namespace with only `lo` (root only; None elsewhere, or ZAG_E2E_NETNS=0)
  fake_api   (function) a started FakeAPI, listening inside the jail when there is one
  cli_env    (function) factory: cli_env("claude" | "codex" | "gemini", claude_auth="oauth") -> CliEnv with a
                        private HOME/config for this test; at teardown every process the test started through
                        it is killed, and any the CLI left behind (daemons) fails the test.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .clis import CliEnv, make_cli_env
from .fake_api import FakeAPI
from .netjail import NetJail
from .npm_install import CACHE_DIR, InstallError, Installation, ensure_installed, install_record

E2E_DIR = Path(__file__).resolve().parent
_installed: list[Installation | InstallError] = []


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


def pytest_collection_finish(session: pytest.Session) -> None:
    if session.config.option.collectonly:
        return
    if any("npm_clis" in getattr(item, "fixturenames", ()) for item in session.items):
        _install_once()


def pytest_report_header(config: pytest.Config) -> str:
    jail = "yes" if os.geteuid() == 0 and shutil.which("unshare") and os.environ.get("ZAG_E2E_NETNS") != "0" \
        else "no (settings-only isolation)"
    return f"e2e: CLIs cached in {CACHE_DIR}; network namespace for the CLIs: {jail}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    record = install_record()
    if record and any(report.nodeid.startswith("tests/e2e/") for reports in terminalreporter.stats.values()
                      for report in reports if hasattr(report, "nodeid")):
        versions = ", ".join(f"{cli} {version}" for cli, version in record["versions"].items())
        terminalreporter.write_line(f"e2e CLIs: {versions}; {record['bytes'] / 1e6:.0f} MB, installed in "
                                    f"{record['seconds']} s at {record['installed_at']}")


def _install_once() -> Installation | InstallError:
    if not _installed:
        try:
            _installed.append(ensure_installed())
        except InstallError as exc:
            _installed.append(exc)
    return _installed[0]


@pytest.fixture(scope="session")
def npm_clis() -> Installation:
    result = _install_once()
    if isinstance(result, InstallError):
        message = f"real agent CLIs unavailable: {result}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message + " (set CI=1 to make this a failure)")
    return result


@pytest.fixture(scope="session")
def net_jail() -> Iterator[NetJail | None]:
    jail = NetJail.create()
    yield jail
    if jail is not None:
        jail.close()


@pytest.fixture
def fake_api(net_jail: NetJail | None) -> Iterator[FakeAPI]:
    fake = FakeAPI(net_jail.listen_socket() if net_jail else None).start()
    yield fake
    fake.stop()


@pytest.fixture
def cli_env(npm_clis: Installation, net_jail: NetJail | None, fake_api: FakeAPI, tmp_path: Path,
            zag_home: Path) -> Iterator[Callable[..., CliEnv]]:
    made: list[CliEnv] = []

    def make(name: str, claude_auth: str = "oauth") -> CliEnv:
        env = make_cli_env(name, tmp_path / f"{name}-{len(made)}", npm_clis, fake_api, net_jail,
                           claude_auth=claude_auth)
        made.append(env)
        return env

    yield make
    leftovers = [line for env in made for line in env.close()]
    if leftovers:
        pytest.fail("processes left behind (killed now):\n" + "\n".join(leftovers), pytrace=False)
