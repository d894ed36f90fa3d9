"""Install the real agent CLIs from npm, at pinned versions, into a git-ignored cache in the tree.

One install serves every pytest worker: a file lock (fcntl) makes xdist workers wait for the first one,
and an install whose `node_modules/<pkg>/package.json` already carries the pinned version (and whose
executable is in place) is reused without touching the network.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

# ZAG_E2E_NPM_PREFIX: another folder for the installed CLIs (e.g. one shared by several checkouts).
CACHE_DIR = Path(os.environ.get("ZAG_E2E_NPM_PREFIX") or Path(__file__).resolve().parent / ".npm-cli")
INSTALL_TIMEOUT_SECS = 600
LOCK_TIMEOUT_SECS = INSTALL_TIMEOUT_SECS + 60


@dataclass(frozen=True)
class Package:
    """One npm package pinned to the version REAL_CLIS.md measured."""

    cli: str
    name: str
    version: str
    binary: str  # relative to the package folder: the file `.bin/<cli>` points at
    min_binary_bytes: int = 1  # claude's postinstall swaps a small stub for the 245 MB native binary


PACKAGES: dict[str, Package] = {
    "claude": Package("claude", "@anthropic-ai/claude-code", "2.1.197", "bin/claude.exe", 1_000_000),
    "codex": Package("codex", "@openai/codex", "0.169.0", "bin/codex.js"),
    "gemini": Package("gemini", "@google/gemini-cli", "0.61.0", "bundle/gemini.js"),
}


class InstallError(RuntimeError):
    """npm is missing or the install failed; the message says what to do."""


@dataclass(frozen=True)
class Installation:
    """Where the installed CLIs live."""

    prefix: Path
    seconds: float  # time spent installing in this process (0 when reused)

    @property
    def bin_dir(self) -> Path:
        return self.prefix / "node_modules" / ".bin"

    def executable(self, cli: str) -> Path:
        return self.bin_dir / cli

    def size_bytes(self) -> int:
        seen: dict[tuple[int, int], int] = {}  # claude's binary is hard-linked twice: count inodes once
        for root, _dirs, files in os.walk(self.prefix / "node_modules"):
            for name in files:
                stat = os.lstat(os.path.join(root, name))
                seen[(stat.st_dev, stat.st_ino)] = stat.st_blocks * 512
        return sum(seen.values())


def installed_version(prefix: Path, package: Package) -> str | None:
    """The version of `package` under `prefix`, or None when it is absent or incomplete."""
    folder = prefix / "node_modules" / package.name
    try:
        meta = json.loads((folder / "package.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    binary = folder / package.binary
    if not binary.is_file() or binary.stat().st_size < package.min_binary_bytes:
        return None
    if not (prefix / "node_modules" / ".bin" / package.cli).exists():
        return None
    return meta.get("version")


def _up_to_date(prefix: Path) -> bool:
    return all(installed_version(prefix, pkg) == pkg.version for pkg in PACKAGES.values())


def ensure_installed(prefix: Path = CACHE_DIR) -> Installation:
    """Install the pinned CLIs under `prefix` unless they are already there; safe across processes."""
    if _up_to_date(prefix):
        return Installation(prefix, 0.0)
    npm = shutil.which("npm")
    if npm is None:
        raise InstallError("`npm` is not on PATH: install Node.js >= 20 with npm to run the e2e tests")
    prefix.mkdir(parents=True, exist_ok=True)
    with _locked(prefix / ".install.lock"):
        if _up_to_date(prefix):  # another worker finished while we waited
            return Installation(prefix, 0.0)
        started = time.monotonic()
        _npm_install(npm, prefix)
        seconds = time.monotonic() - started
        missing = [f"{p.name}@{p.version} (found {installed_version(prefix, p)})"
                   for p in PACKAGES.values() if installed_version(prefix, p) != p.version]
        if missing:
            raise InstallError(f"npm install finished but these are not in place under {prefix}: {missing}")
        installation = Installation(prefix, seconds)
        _check_versions(installation)
        _write_record(installation)
        return installation


def _write_record(installation: Installation) -> None:
    """`install.json`: what was installed, how long it took and how big it is (shown in the test summary)."""
    record = {"versions": {p.cli: p.version for p in PACKAGES.values()}, "seconds": round(installation.seconds, 1),
              "bytes": installation.size_bytes(), "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    (installation.prefix / "install.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


def install_record(prefix: Path = CACHE_DIR) -> dict | None:
    """The record of the last install under `prefix`, if any."""
    try:
        return json.loads((prefix / "install.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _check_versions(installation: Installation) -> None:
    """Run each fresh executable once: `--version` must name the pinned version."""
    for package in PACKAGES.values():
        argv = [str(installation.executable(package.cli)), "--version"]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InstallError(f"`{' '.join(argv)}` could not run: {exc}") from exc
        if package.version not in done.stdout:
            raise InstallError(f"`{' '.join(argv)}` printed {done.stdout!r} (exit {done.returncode}), "
                               f"expected version {package.version}; stderr: {done.stderr[-1000:]}")


def _npm_install(npm: str, prefix: Path) -> None:
    specs = [f"{p.name}@{p.version}" for p in PACKAGES.values()]
    argv = [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "--no-save",
            "--loglevel=error", *specs]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECS,
                              stdin=subprocess.DEVNULL, check=False)
    except subprocess.TimeoutExpired as exc:
        raise InstallError(f"`{' '.join(argv)}` did not finish within {INSTALL_TIMEOUT_SECS}s") from exc
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-3000:]
        raise InstallError(f"`{' '.join(argv)}` failed with exit {done.returncode}:\n{tail}")


class _locked:
    """An exclusive flock on `path`, waited for with a deadline."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd = -1

    def __enter__(self) -> None:
        self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + LOCK_TIMEOUT_SECS
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(self._fd)
                    raise InstallError(f"timed out waiting for the install lock {self._path}") from None
                time.sleep(0.5)

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_UN)
        os.close(self._fd)
