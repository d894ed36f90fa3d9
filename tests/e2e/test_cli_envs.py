"""The per-test CLI set-up without running a CLI: config files, environment isolation, leftover detection."""

from __future__ import annotations

import json
import os
import sys
import time
import tomllib
from pathlib import Path
from typing import Iterator

import pytest

from .clis import MARKER_ENV, process_alive, claude_project_dir, make_cli_env, marked_pids
from .fake_api import FakeAPI
from .npm_install import Installation


@pytest.fixture
def fake() -> Iterator[FakeAPI]:
    with FakeAPI() as server:
        yield server


@pytest.fixture
def installation(tmp_path: Path) -> Installation:
    return Installation(tmp_path / "prefix", 0.0)


def test_claude_settings_keep_it_offline_and_dialog_free(tmp_path: Path, fake: FakeAPI,
                                                         installation: Installation) -> None:
    env = make_cli_env("claude", tmp_path / "c", installation, fake, None)
    assert env.env["ANTHROPIC_BASE_URL"] == fake.base_url
    for flag in ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "DISABLE_TELEMETRY", "DISABLE_AUTOUPDATER",
                 "DISABLE_ERROR_REPORTING"):
        assert env.env[flag] == "1"
    assert env.env["CLAUDE_CODE_OAUTH_TOKEN"] and "ANTHROPIC_API_KEY" not in env.env
    state = json.loads((env.home / ".claude" / ".claude.json").read_text())
    assert state["hasCompletedOnboarding"] and state["projects"][str(env.cwd)]["hasTrustDialogAccepted"]
    api_key = make_cli_env("claude", tmp_path / "k", installation, fake, None, claude_auth="api_key")
    assert api_key.env["ANTHROPIC_API_KEY"] == "dummy" and "CLAUDE_CODE_OAUTH_TOKEN" not in api_key.env
    assert claude_project_dir(Path("/srv/demo_claude/proj")) == "-srv-demo-claude-proj"
    with pytest.raises(ValueError):
        make_cli_env("claude", tmp_path / "x", installation, fake, None, claude_auth="password")


def test_codex_config_points_at_the_fake_with_phone_home_off(tmp_path: Path, fake: FakeAPI,
                                                             installation: Installation) -> None:
    env = make_cli_env("codex", tmp_path / "c", installation, fake, None)
    config = tomllib.loads((env.home / ".codex" / "config.toml").read_text())
    assert config["model_provider"] == "fake"
    assert config["model_providers"]["fake"]["base_url"] == fake.base_url + "/v1"
    assert config["model_providers"]["fake"]["wire_api"] == "responses"
    assert config["analytics"]["enabled"] is False
    assert config["features"] == {"plugins": False, "remote_plugin": False, "plugin_sharing": False,
                                  "daemon_auto_start": False, "in_app_updates": False}
    assert config["projects"][str(env.cwd)]["trust_level"] == "trusted"
    assert env.env["CODEX_HOME"] == str(env.home / ".codex") and env.env["FAKE_OPENAI_KEY"] == "dummy"


def test_gemini_settings_use_the_api_key_and_keep_sessions(tmp_path: Path, fake: FakeAPI,
                                                           installation: Installation) -> None:
    env = make_cli_env("gemini", tmp_path / "g", installation, fake, None)
    settings = json.loads((env.home / ".gemini" / "settings.json").read_text())
    assert settings["security"]["auth"]["selectedType"] == "gemini-api-key"
    assert settings["general"]["sessionRetention"] == {"enabled": False}
    assert settings["privacy"]["usageStatisticsEnabled"] is False and settings["telemetry"]["enabled"] is False
    assert env.env["GOOGLE_GEMINI_BASE_URL"] == fake.base_url and env.env["GEMINI_CLI_TRUST_WORKSPACE"] == "true"
    assert env.env["TMPDIR"] == str(env.root / "tmp")


def test_the_runner_environment_does_not_leak_in(tmp_path: Path, fake: FakeAPI, installation: Installation,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"ANTHROPIC_API_KEY": "real-key", "OPENAI_API_KEY": "real", "GEMINI_API_KEY": "real",
                        "HTTPS_PROXY": "http://proxy:3128", "XDG_CONFIG_HOME": "/root/.config"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ZAG_HOME", str(tmp_path / "zag"))
    env = make_cli_env("codex", tmp_path / "c", installation, fake, None)
    assert not {"ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY", "HTTPS_PROXY", "XDG_CONFIG_HOME"} & set(env.env)
    assert env.env["HOME"] == str(env.home) and env.env["TZ"] == "UTC"
    assert env.env["ZAG_HOME"] == str(tmp_path / "zag")  # zag (phase 2) shares the test's ZAG_HOME
    assert env.env["PATH"].split(":")[0] == str(installation.bin_dir)
    assert env.family == "openai"
    assert env.zag_argv("ps") == [sys.executable, "-m", "zag", "ps"]


def test_a_process_left_behind_is_found_and_killed(tmp_path: Path, fake: FakeAPI,
                                                   installation: Installation) -> None:
    env = make_cli_env("claude", tmp_path / "c", installation, fake, None)
    pidfile = tmp_path / "daemon.pid"
    # A "daemon": detached into its own session, outliving the command that started it.
    result = env.run(argv=["sh", "-c", f"setsid sleep 60 >/dev/null 2>&1 & echo $! > {pidfile}"], timeout=30)
    assert result.returncode == 0, result.describe()
    daemon = int(pidfile.read_text())
    # Until its exec of sleep completes, /proc/<pid>/environ of the daemon may read empty.
    deadline = time.monotonic() + 5
    while daemon not in marked_pids(env.marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert daemon in marked_pids(env.marker)
    leftovers = env.close()
    assert len(leftovers) == 1 and leftovers[0].startswith(f"{daemon}: sleep 60")
    assert daemon not in marked_pids(env.marker)
    assert not process_alive(daemon)


def test_a_command_over_its_time_is_killed_with_its_group(tmp_path: Path, fake: FakeAPI,
                                                          installation: Installation) -> None:
    env = make_cli_env("claude", tmp_path / "c", installation, fake, None)
    with pytest.raises(TimeoutError, match="did not finish within 0.5s"):
        env.run(argv=[sys.executable, "-c", "import time; print('started', flush=True); time.sleep(60)"],
                timeout=0.5)
    assert env.close() == []  # the whole group died with it
    assert MARKER_ENV not in os.environ  # the marker lives only in the CLIs' environments
