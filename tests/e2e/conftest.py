"""Fixtures for the end-to-end tests against the real agent CLIs (npm) and the fake model API.

  npm_clis   (session)  the pinned CLIs, installed once into tests/e2e/.npm-cli/ (xdist-safe). npm missing or
                        install failed: the test FAILS when CI is set, SKIPS with the reason otherwise.
  net_jail   (session)  a network namespace with only `lo` (root only; None elsewhere, or ZAG_E2E_NETNS=0)
  fake_api   (function) a started FakeAPI, listening inside the jail when there is one
  cli_env    (function) factory: cli_env("claude" | "codex" | "gemini", claude_auth="oauth") -> CliEnv with a
                        private HOME/config for this test; at teardown every process the test started through
                        it is killed, and any the CLI left behind (daemons) fails the test.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, Iterator

import pytest

from .clis import CliEnv, make_cli_env
from .fake_api import FakeAPI
from .netjail import NetJail
from .npm_install import InstallError, Installation, ensure_installed

E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).resolve().is_relative_to(E2E_DIR):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def npm_clis() -> Installation:
    try:
        return ensure_installed()
    except InstallError as exc:
        message = f"real agent CLIs unavailable: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message + " (set CI=1 to make this a failure)")


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
