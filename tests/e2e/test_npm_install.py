"""Reuse checks of the npm cache and the missing-npm message (no network)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from . import npm_install
from .npm_install import PACKAGES, InstallError, ensure_installed, installed_version


def _fake_install(prefix: Path, version_of: dict[str, str], binary_bytes: int = 2_000_000) -> None:
    for package in PACKAGES.values():
        folder = prefix / "node_modules" / package.name
        (folder / package.binary).parent.mkdir(parents=True, exist_ok=True)
        (folder / "package.json").write_text(json.dumps({"version": version_of.get(package.cli, package.version)}))
        (folder / package.binary).write_bytes(b"x" * binary_bytes)
        bin_dir = prefix / "node_modules" / ".bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        link = bin_dir / package.cli
        if not link.exists():
            link.symlink_to(folder / package.binary)


def test_a_complete_install_at_the_pinned_versions_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_install(tmp_path, {})
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no npm: reuse must not need it
    installation = ensure_installed(tmp_path)
    assert installation.seconds == 0.0
    assert installation.executable("claude") == tmp_path / "node_modules" / ".bin" / "claude"
    assert installation.size_bytes() > 0


def test_other_versions_and_half_done_installs_are_not_reused(tmp_path: Path) -> None:
    _fake_install(tmp_path, {"codex": "0.1.0"}, binary_bytes=10)
    assert installed_version(tmp_path, PACKAGES["codex"]) == "0.1.0"
    assert installed_version(tmp_path, PACKAGES["claude"]) is None  # postinstall never swapped in the binary
    assert installed_version(tmp_path, PACKAGES["gemini"]) == PACKAGES["gemini"].version
    (tmp_path / "node_modules" / ".bin" / "gemini").unlink()
    assert installed_version(tmp_path, PACKAGES["gemini"]) is None


def test_missing_npm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(InstallError, match="`npm` is not on PATH"):
        ensure_installed(tmp_path / "prefix")


def test_a_failing_npm_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text("#!/bin/sh\necho 'npm ERR! 404 Not Found' >&2\nexit 1\n")
    npm.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(InstallError, match="404 Not Found"):
        ensure_installed(tmp_path / "prefix")
    assert npm_install.CACHE_DIR.name == ".npm-cli"


REPO = Path(__file__).resolve().parents[2]


def _pytest_without_npm(tmp_path: Path, ci: bool) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_XDIST_WORKER", "PYTEST_CURRENT_TEST")}
    env.update(PATH=str(tmp_path / "no-bin"), ZAG_E2E_NPM_PREFIX=str(tmp_path / "no-cache"))
    if ci:
        env["CI"] = "1"
    test = "tests/e2e/test_fake_api_with_clis.py::test_claude_plain_text_and_api_key"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "-o", "addopts=", test], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def test_without_npm_the_e2e_tests_skip_with_the_reason(tmp_path: Path) -> None:
    done = _pytest_without_npm(tmp_path, ci=False)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 skipped" in done.stdout and "`npm` is not on PATH" in done.stdout


def test_without_npm_the_e2e_tests_fail_in_ci(tmp_path: Path) -> None:
    done = _pytest_without_npm(tmp_path, ci=True)
    assert done.returncode == 1, done.stdout[-3000:]
    assert "real agent CLIs unavailable: `npm` is not on PATH" in done.stdout
