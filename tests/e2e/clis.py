"""Per-test set-up of the real agent CLIs: HOME, config files, env and argv that keep each CLI offline
and pointed at the fake API (all settings as REAL_CLIS.md measured them), plus runners.

`CliEnv` is what tests (phase 1: the CLIs directly; phase 2: `zag run <cli> …`) build on:
  env            the environment for the CLI (or for zag, which passes it on): private HOME, config dirs,
                 base URL, dummy keys, offline flags, TZ=UTC, PATH with the installed CLIs first
  argv(*args)    the CLI's command line, wrapped into the network jail when there is one
  wrap(argv)     any command line (e.g. `zag run claude …`) wrapped the same way
  run(...)       run to completion (bounded), returning stdout/stderr/exit code
  start(...)     start without waiting (a Popen), e.g. to kill zag mid-turn
  spawn(...)     a pexpect TUI session (see `tui.py`)
  session_files  where this CLI wrote its own session files (transcript / rollout / chat)

Every process started through a CliEnv carries `ZAG_E2E_RUN=<token>` in its environment, so teardown
can find and kill anything the CLI left behind (daemons) and report it.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .fake_api import FakeAPI
from .netjail import NetJail
from .npm_install import Installation

if TYPE_CHECKING:
    from .tui import Tui

CLIS = ("claude", "codex", "gemini")
API_FAMILY = {"claude": "anthropic", "codex": "openai", "gemini": "gemini"}  # FakeAPI family per CLI
MARKER_ENV = "ZAG_E2E_RUN"
CODEX_MODEL = "gpt-6-sol"  # newest slug in 0.169.0: no "Meet <new model>" popup in the TUI
# The CLIs see nothing of the test runner's environment except these (plus what `CliEnv` sets).
_PASSTHROUGH = ("LANG", "LC_ALL", "USER", "LOGNAME", "SHELL")


@dataclass
class Result:
    """A finished CLI run."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float

    def json_lines(self) -> list[dict]:
        """stdout parsed as JSON lines (non-JSON lines skipped)."""
        out = []
        for line in self.stdout.splitlines():
            line = line.strip()
            if line.startswith("{"):
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
        return out

    def describe(self) -> str:
        return (f"$ {' '.join(self.argv)}\nexit {self.returncode} after {self.seconds:.1f}s\n"
                f"--- stdout\n{self.stdout[-4000:]}\n--- stderr\n{self.stderr[-4000:]}")


@dataclass
class CliEnv:
    """One CLI, set up for one test (see the module docstring)."""

    name: str
    root: Path
    home: Path
    cwd: Path
    env: dict[str, str]
    installation: Installation
    fake: FakeAPI
    jail: NetJail | None
    marker: str
    _spawned: list = field(default_factory=list)

    # ------------------------------------------------------------------ argv

    @property
    def family(self) -> str:
        """The FakeAPI family this CLI talks to (for `fake.queue(env.family, …)`)."""
        return API_FAMILY[self.name]

    @property
    def executable(self) -> str:
        return str(self.installation.executable(self.name))

    def argv(self, *args: str) -> list[str]:
        return self.wrap([self.executable, *args])

    def wrap(self, argv: list[str]) -> list[str]:
        return self.jail.wrap(list(argv)) if self.jail else list(argv)

    def zag_argv(self, *args: str) -> list[str]:
        """`zag <args>` run by this interpreter (zag need not be on PATH); pass to `run(argv=…)` or
        `spawn(argv=…)`, which wrap it into the jail so zag and the CLI it starts stay on 127.0.0.1."""
        return [sys.executable, "-m", "zag", *args]

    def headless_args(self, prompt: str, output: str = "json") -> list[str]:
        """The CLI's own headless flags for one prompt; output: "json" (stream of JSON lines) or "text"."""
        if self.name == "claude":
            extra = ["--output-format", "stream-json", "--verbose"] if output == "json" else []
            return ["-p", prompt, *extra]
        if self.name == "codex":
            return ["exec", *(["--json"] if output == "json" else []), "--skip-git-repo-check", prompt]
        extra = ["--output-format", "stream-json"] if output == "json" else []
        return ["-p", prompt, *extra]

    def resume_args(self, session_id: str, prompt: str, output: str = "json") -> list[str]:
        """The CLI's own resume flags (same session, one more prompt)."""
        if self.name == "claude":
            return ["-p", "--resume", session_id, prompt,
                    *(["--output-format", "stream-json", "--verbose"] if output == "json" else [])]
        if self.name == "codex":
            return ["exec", "resume", *(["--json"] if output == "json" else []), "--skip-git-repo-check",
                    session_id, prompt]
        return ["-r", session_id, "-p", prompt, *(["--output-format", "stream-json"] if output == "json" else [])]

    # ------------------------------------------------------------------ running

    def start(self, *args: str, argv: list[str] | None = None, extra_env: dict[str, str] | None = None,
              stdin: bool = False) -> subprocess.Popen[str]:
        """Start the CLI with `args` (or any `argv`, wrapped) without waiting — e.g. to SIGKILL zag mid-turn.
        stdout/stderr are pipes; stdin is a pipe only if asked (else /dev/null). Own session (process group);
        teardown kills whatever is left."""
        command = self.wrap(argv) if argv is not None else self.argv(*args)
        return subprocess.Popen(command, cwd=self.cwd, env={**self.env, **(extra_env or {})}, text=True,
                                encoding="utf-8", errors="replace",
                                stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)

    def run(self, *args: str, timeout: float = 90, stdin: str | None = None,
            extra_env: dict[str, str] | None = None, argv: list[str] | None = None) -> Result:
        """Run the CLI with `args` (or any `argv`, wrapped) to completion; kill its group on timeout."""
        started = time.monotonic()
        process = self.start(*args, argv=argv, extra_env=extra_env, stdin=stdin is not None)
        try:
            stdout, stderr = process.communicate(stdin, timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            stdout, stderr = process.communicate(timeout=10)
            raise TimeoutError(f"{process.args} did not finish within {timeout}s\n--- stdout\n{stdout[-3000:]}\n"
                               f"--- stderr\n{stderr[-3000:]}") from None
        return Result(list(process.args), process.returncode, stdout, stderr, time.monotonic() - started)

    def spawn(self, *args: str, argv: list[str] | None = None, rows: int = 50, cols: int = 160,
              extra_env: dict[str, str] | None = None) -> "Tui":
        """Start the CLI (or `argv`) on a pseudo-terminal; closed by teardown if the test does not."""
        from .tui import Tui

        command = self.wrap(argv) if argv is not None else self.argv(*args)
        env = {**self.env, "TERM": "xterm-256color", "COLORTERM": "truecolor", **(extra_env or {})}
        tui = Tui(command, cwd=self.cwd, env=env, rows=rows, cols=cols)
        self._spawned.append(tui)
        return tui

    # ------------------------------------------------------------------ files the CLI writes

    def session_files(self) -> list[Path]:
        """This CLI's own session files under its private HOME, oldest session first."""
        if self.name == "claude":  # <session-id>.jsonl: no time in the name
            found = (self.home / ".claude" / "projects").glob("*/*.jsonl")
            return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))
        if self.name == "codex":
            found = (self.home / ".codex" / "sessions").glob("*/*/*/rollout-*.jsonl")
        else:
            found = (self.home / ".gemini" / "tmp").glob("*/chats/session-*.jsonl")
        # The names start with the session's start time. Gemini's resume in a later minute writes a stray,
        # header-only file: created later, but modified earlier than the real one (so not mtime).
        return sorted(found, key=lambda p: p.name)

    def session_file(self, session_id: str) -> Path:
        """Where REAL_CLIS.md says the session file of `session_id` lives (it must exist)."""
        if self.name == "claude":
            path = self.home / ".claude" / "projects" / claude_project_dir(self.cwd) / f"{session_id}.jsonl"
            if path.is_file():
                return path
        else:
            suffix = f"-{session_id}.jsonl" if self.name == "codex" else f"-{session_id[:8]}.jsonl"
            matches = [p for p in self.session_files() if p.name.endswith(suffix)]
            if matches:
                return matches[0]  # gemini: the oldest file of a session holds the conversation
        raise FileNotFoundError(f"{self.name}: no session file for {session_id}; have {self.session_files()}")

    # ------------------------------------------------------------------ teardown

    def close(self) -> list[str]:
        """Close TUIs, kill anything still carrying this env's marker; return what had to be killed."""
        for tui in self._spawned:
            tui.close()
        deadline = time.monotonic() + 3  # killed or exiting processes need a moment to be reaped
        while marked_pids(self.marker) and time.monotonic() < deadline:
            time.sleep(0.05)
        return kill_marked(self.marker)


def claude_project_dir(cwd: Path) -> str:
    """Claude's project folder name: the cwd with every non-alphanumeric character replaced by '-'."""
    return re.sub(r"[^A-Za-z0-9]", "-", str(cwd))


# ---------------------------------------------------------------------------------------- set-up


def make_cli_env(name: str, root: Path, installation: Installation, fake: FakeAPI, jail: NetJail | None,
                 claude_auth: str = "oauth") -> CliEnv:
    """Create HOME, config and project folders for `name` under `root` and return its CliEnv.

    claude_auth: "oauth" (subscriber token: the only auth that shows the real limit wording and
    `rate_limit_event`s) or "api_key".
    """
    if name not in CLIS:
        raise ValueError(f"unknown CLI {name!r}; one of {CLIS}")
    home, cwd, tmp = root / "home", root / "proj", root / "tmp"
    for folder in (home, cwd, tmp):
        folder.mkdir(parents=True, exist_ok=True)
    marker = uuid.uuid4().hex
    env = {key: os.environ[key] for key in _PASSTHROUGH if key in os.environ}
    env.update({
        "PATH": f"{installation.bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "HOME": str(home), "TMPDIR": str(tmp), "TZ": "UTC", "LANG": env.get("LANG", "C.UTF-8"),
        MARKER_ENV: marker,
    })
    env.update({k: v for k, v in os.environ.items() if k.startswith("ZAG_")})  # zag's own (phase 2)
    env[MARKER_ENV] = marker
    setup = {"claude": _setup_claude, "codex": _setup_codex, "gemini": _setup_gemini}[name]
    env.update(setup(home, cwd, fake, claude_auth))
    return CliEnv(name, root, home, cwd, env, installation, fake, jail, marker)


def _setup_claude(home: Path, cwd: Path, fake: FakeAPI, auth: str) -> dict[str, str]:
    config_dir = home / ".claude"
    config_dir.mkdir(parents=True, exist_ok=True)
    state = {  # pre-seeded so the TUI shows no onboarding, theme, API-key or trust dialog
        "hasCompletedOnboarding": True, "theme": "dark", "numStartups": 1,
        "customApiKeyResponses": {"approved": ["dummy"], "rejected": []},
        "projects": {str(cwd): {"hasTrustDialogAccepted": True, "allowedTools": []}},
    }
    (config_dir / ".claude.json").write_text(json.dumps(state, indent=2), encoding="utf-8")
    env = {
        "CLAUDE_CONFIG_DIR": str(config_dir), "ANTHROPIC_BASE_URL": fake.base_url,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "2",  # a retryable 429 fails in seconds instead of ~3 minutes
    }
    if auth == "oauth":
        env["CLAUDE_CODE_OAUTH_TOKEN"] = "sk-ant-oat01-fake"
    elif auth == "api_key":
        env["ANTHROPIC_API_KEY"] = "dummy"
    else:
        raise ValueError(f"claude_auth must be 'oauth' or 'api_key', not {auth!r}")
    return env


def _setup_codex(home: Path, cwd: Path, fake: FakeAPI, _auth: str) -> dict[str, str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    (codex_home / "config.toml").write_text(f'''\
model = "{CODEX_MODEL}"
model_provider = "fake"
approval_policy = "never"
sandbox_mode = "read-only"
check_for_update_on_startup = false

[analytics]
enabled = false

[features]
plugins = false
remote_plugin = false
plugin_sharing = false
daemon_auto_start = false
in_app_updates = false

[model_providers.fake]
name = "Fake upstream"
base_url = "{fake.base_url}/v1"
env_key = "FAKE_OPENAI_KEY"
wire_api = "responses"
request_max_retries = 2
stream_max_retries = 1

[projects.{json.dumps(str(cwd))}]
trust_level = "trusted"
''', encoding="utf-8")
    return {"CODEX_HOME": str(codex_home), "FAKE_OPENAI_KEY": "dummy"}


def _setup_gemini(home: Path, cwd: Path, fake: FakeAPI, _auth: str) -> dict[str, str]:
    settings_dir = home / ".gemini"
    settings_dir.mkdir(parents=True, exist_ok=True)
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False,
                    "sessionRetention": {"enabled": False}},  # REAL_CLIS.md: avoids the resume data-loss bug
        "privacy": {"usageStatisticsEnabled": False},
        "telemetry": {"enabled": False},
    }
    (settings_dir / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    return {"GEMINI_API_KEY": "dummy", "GOOGLE_GEMINI_BASE_URL": fake.base_url,
            "GEMINI_CLI_TRUST_WORKSPACE": "true"}


# ---------------------------------------------------------------------------------------- processes


def marked_pids(marker: str) -> list[int]:
    """Live processes whose environment carries `ZAG_E2E_RUN=<marker>`."""
    needle = f"{MARKER_ENV}={marker}".encode()
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as handle:
                if needle in handle.read().split(b"\0"):
                    pids.append(int(entry.name))
        except OSError:
            continue
    return [pid for pid in pids if not _is_zombie(pid)]


def describe_pid(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = "?"
    return f"{pid}: {cmdline.strip()[:200]}"


def kill_marked(marker: str, grace: float = 0.0) -> list[str]:
    """SIGKILL every process carrying `marker`; return descriptions of those that were alive."""
    found = marked_pids(marker)
    described = [describe_pid(pid) for pid in found]
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 5
    while found and time.monotonic() < deadline:
        found = [pid for pid in found if process_alive(pid)]
        if found:
            time.sleep(0.05)
    return described


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
