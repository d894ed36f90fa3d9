"""gemini argv: launch plans (session id chosen up front when the CLI supports it), resume plans for many
user-arg shapes, the re-run of the original command when nothing is resumable, version detection."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from tests.fixtures.gemini import geminilib as g
from zag.providers import get
from zag.providers.base import LaunchContext
from zag.providers.gemini import argv, version


SID = "0508d65f-584a-48a8-9f75-1d448b514ef9"
P = get("gemini")


@pytest.fixture
def home(tmp_path: Path) -> tuple[LaunchContext, Path]:
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    ctx = LaunchContext(cwd=str(cwd), env=env, interactive=False, started_at=0.0, zag_session_id="z")
    return ctx, chats


def ctx_with(ctx: LaunchContext, **changes: object) -> LaunchContext:
    fields = {**ctx.__dict__, **changes}
    return LaunchContext(**fields)


# --- parsing ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, model, fmt, resume, positionals", [
    (["-p", "hi"], None, "text", None, []),
    (["-m", "gemini-2.5-pro", "-o", "stream-json", "-p", "hi"], "gemini-2.5-pro", "stream-json", None, []),
    (["--model=gemini-2.5-flash", "--output-format=json", "fix", "it"], "gemini-2.5-flash", "json", None, ["fix", "it"]),
    (["-ym", "pro", "write", "tests"], "pro", "text", None, ["write", "tests"]),
    (["-r", "latest", "-p", "x"], None, "text", "latest", []),
    (["--resume"], None, "text", "", []),
    (["-r", "--yolo"], None, "text", "", []),
    (["-r", "3", "go"], None, "text", "3", ["go"]),
    (["--", "-p", "literal"], None, "text", None, ["-p", "literal"]),
    (["--include-directories", "a", "--include-directories", "b", "do"], None, "text", None, ["do"]),
    (["--outputFormat", "json", "-p", "x"], None, "json", None, []),
])
def test_parse(args: list[str], model: str | None, fmt: str, resume: str | None, positionals: list[str]) -> None:
    parsed = argv.parse(args)
    assert parsed.model == model and parsed.output_format == fmt and parsed.resume == resume
    assert parsed.positionals == positionals


# --- launch -----------------------------------------------------------------------------------------
def test_new_run_gets_a_session_id_prepended(home: tuple[LaunchContext, Path]) -> None:
    ctx, _ = home
    plan = P.plan_launch(["-m", "gemini-2.5-pro", "--", "-p", "is the prompt"], ctx)
    assert plan.args[:2] == ["--session-id", plan.provider_session_id]
    assert plan.args[2:] == ["-m", "gemini-2.5-pro", "--", "-p", "is the prompt"]
    assert uuid.UUID(plan.provider_session_id).version == 4
    assert plan.model == "gemini-2.5-pro"


@pytest.mark.parametrize("args, expected_id", [
    (["--session-id", "my-own_1", "-p", "x"], "my-own_1"),
    (["--resume", SID, "-p", "x"], SID),
    (["-r", "latest", "-p", "x"], None),
    (["-r", "2"], None),
    (["--resume"], None),
    (["--session-file", "chat.json"], None),
])
def test_user_session_flags_decide(home: tuple[LaunchContext, Path], args: list[str], expected_id: str | None) -> None:
    ctx, _ = home
    plan = P.plan_launch(args, ctx)
    assert plan.args == args and plan.provider_session_id == expected_id


@pytest.mark.parametrize("args, skips", [
    (["--resume", SID, "-p", "x"], True),
    (["-r", "latest", "-p", "x"], True),
    (["-r", "2"], True),
    (["--resume"], True),
    (["-p", "x"], False),
    (["--session-id", "my-own_1", "-p", "x"], False),
])
def test_a_users_resume_logs_only_what_the_child_adds(home: tuple[LaunchContext, Path], args: list[str],
                                                      skips: bool) -> None:
    ctx, _ = home
    assert bool(P.plan_launch(args, ctx).notes.get("skip_existing")) is skips


@pytest.mark.parametrize("args", [["mcp", "list"], ["extensions", "install", "x"], ["--help"], ["-v"],
                                  ["--list-sessions"], ["--delete-session", "1"], ["--acp"], ["-l"]])
def test_runs_that_are_no_chat(home: tuple[LaunchContext, Path], args: list[str]) -> None:
    ctx, _ = home
    plan = P.plan_launch(args, ctx)
    assert plan.args == args and plan.provider_session_id is None and plan.notes["no_session"]


def test_user_resume_warns_when_retention_is_on(tmp_path: Path) -> None:
    cwd = tmp_path / "proj"
    env, _ = g.make_home(tmp_path, cwd, retention=None)   # no setting: gemini's default is on
    ctx = LaunchContext(cwd=str(cwd), env=env, interactive=True, started_at=0.0, zag_session_id="z")
    plan = P.plan_launch(["--resume", SID], ctx)
    [warning] = plan.notes["warnings"]
    assert "sessionRetention" in warning
    (cwd / ".gemini").mkdir()
    (cwd / ".gemini" / "settings.json").write_text('{ // workspace settings\n "general": {"sessionRetention": '
                                                    '{"enabled": false,},},\n}')
    assert "warnings" not in P.plan_launch(["--resume", SID], ctx).notes


def test_old_cli_gets_no_session_id_flag(tmp_path: Path, home: tuple[LaunchContext, Path]) -> None:
    ctx, _ = home
    package = tmp_path / "npm" / "node_modules" / "@google" / "gemini-cli"
    (package / "bundle").mkdir(parents=True)
    (package / "package.json").write_text(json.dumps({"name": "@google/gemini-cli", "version": "0.38.2"}))
    (package / "bundle" / "gemini.js").write_text("#!/usr/bin/env node\n")
    (package / "bundle" / "gemini.js").chmod(0o755)
    bin_dir = tmp_path / "npm" / "node_modules" / ".bin"
    bin_dir.mkdir()
    os.symlink("../@google/gemini-cli/bundle/gemini.js", bin_dir / "gemini")
    old = ctx_with(ctx, env={**ctx.env, "PATH": str(bin_dir)})
    assert version.installed_version(old.env) == (0, 38, 2)
    plan = P.plan_launch(["-p", "hi"], old)
    assert plan.args == ["-p", "hi"] and plan.provider_session_id is None
    (package / "package.json").write_text(json.dumps({"name": "@google/gemini-cli", "version": "0.61.0-preview.1"}))
    os.utime(package / "bundle" / "gemini.js", (1, 2))   # the cache is keyed by the script's mtime
    assert version.installed_version(old.env) == (0, 61, 0)
    assert P.plan_launch(["-p", "hi"], old).args[0] == "--session-id"


# --- resume -----------------------------------------------------------------------------------------
@pytest.fixture
def resumable(home: tuple[LaunchContext, Path]) -> LaunchContext:
    ctx, chats = home
    g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", chats)
    return ctx


@pytest.mark.parametrize("user_args, kept", [
    (["-p", "write the tests"], []),
    (["-m", "gemini-2.5-pro", "-o", "stream-json", "-p", "x", "--yolo"], ["-m", "gemini-2.5-pro", "-o", "stream-json",
                                                                           "--yolo"]),
    (["--session-id", SID, "--approval-mode", "auto_edit", "-p", "x"], ["--approval-mode", "auto_edit"]),
    (["-r", SID, "-p", "first resume", "--include-directories", "../lib"], ["--include-directories", "../lib"]),
    (["-ym", "pro", "fix", "the", "bug"], ["-y", "-m", "pro"]),
    (["--output-format=json", "-i", "interactive start"], ["--output-format=json"]),
    (["--", "-p", "literal"], []),
])
def test_headless_resume_keeps_the_other_flags(resumable: LaunchContext, user_args: list[str], kept: list[str]) -> None:
    plan = P.plan_resume(user_args, SID, "Continue", resumable)
    assert plan.args == ["--resume", SID, "-p", "Continue", *kept]
    assert plan.provider_session_id == SID and plan.notes["skip_existing"]
    assert "warnings" not in plan.notes   # retention is off in this home


def test_interactive_resume_types_the_message_later(resumable: LaunchContext) -> None:
    plan = P.plan_resume(["-m", "pro", "start here"], SID, "Continue", ctx_with(resumable, interactive=True))
    assert plan.args == ["--resume", SID, "-m", "pro"] and plan.model == "pro"


def test_resume_message_that_looks_like_an_option(resumable: LaunchContext) -> None:
    plan = P.plan_resume(["-p", "x"], SID, "--continue please", resumable)
    assert plan.args == ["--resume", SID, "--prompt=--continue please"]


def test_resume_warns_when_retention_is_on(tmp_path: Path) -> None:
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd, retention=True)
    g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", chats)
    ctx = LaunchContext(cwd=str(cwd), env=env, interactive=False, started_at=0.0, zag_session_id="z")
    plan = P.plan_resume(["-p", "x"], SID, "Continue", ctx)
    assert plan.args[:2] == ["--resume", SID] and "header-only" in plan.notes["warnings"][0]


@pytest.mark.parametrize("capture", ["chat_session-2026-11-22T14-44-1f2a73d3.jsonl",
                                     "chat_session-2026-11-22T14-44-f0a58041.jsonl"])
def test_session_whose_only_turn_failed_reruns_the_original(home: tuple[LaunchContext, Path], capture: str) -> None:
    ctx, chats = home
    path = g.copy_real(capture, chats)
    failed = g.REAL_CLI.joinpath(capture).read_text().split('"sessionId": "')[1].split('"')[0]
    assert path.name.endswith(failed[:8] + ".jsonl")
    plan = P.plan_resume(["-o", "stream-json", "-p", "say hi"], failed, "Continue", ctx)
    assert plan.args[0] == "--session-id" and plan.args[2:] == ["-o", "stream-json", "-p", "say hi"]
    assert plan.provider_session_id != failed
    assert plan.notes["rerun_original"] and plan.notes["previous_session_id"] == failed


def test_rerun_replaces_a_user_chosen_session_id(home: tuple[LaunchContext, Path]) -> None:
    ctx, chats = home
    g.copy_real("chat_session-2026-11-22T14-44-1f2a73d3.jsonl", chats)
    failed = "1f2a73d3-ffa2-46e9-9ba1-cf61b58d7884"
    plan = P.plan_resume(["--session-id", failed, "-p", "say hi"], failed, "Continue", ctx)
    assert failed not in plan.args and plan.args[2:] == ["-p", "say hi"]
    assert plan.notes["replaced_session_id"] == failed


def test_unknown_or_missing_session_reruns_the_original(home: tuple[LaunchContext, Path]) -> None:
    ctx, _ = home
    assert P.plan_resume(["-p", "x"], None, "Continue", ctx).notes["reason"] == "no session id"
    plan = P.plan_resume(["-r", SID, "-p", "x"], SID, "Continue", ctx)   # deleted (retention) meanwhile
    assert plan.args[2:] == ["-p", "x"] and plan.notes["rerun_original"]


def test_session_in_another_project_is_not_resumable_here(tmp_path: Path) -> None:
    cwd = tmp_path / "proj"
    env, chats = g.make_home(tmp_path, cwd)
    g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", chats)
    elsewhere = LaunchContext(cwd=str(tmp_path / "other"), env=env, interactive=False, started_at=0.0,
                              zag_session_id="z")
    assert P.plan_resume(["-p", "x"], SID, "Continue", elsewhere).notes.get("rerun_original")


def test_resume_found_in_an_old_hash_folder(tmp_path: Path) -> None:
    cwd = tmp_path / "legacy"
    env, chats = g.make_home(tmp_path, cwd, slug="hash")
    g.copy_real("chat_session-2026-11-22T14-44-0508d65f.jsonl", chats)
    ctx = LaunchContext(cwd=str(cwd), env=env, interactive=False, started_at=0.0, zag_session_id="z")
    assert P.plan_resume(["-p", "x"], SID, "Continue", ctx).args[:2] == ["--resume", SID]
