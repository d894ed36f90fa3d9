"""Claude argv: what zag adds to a launch, and how it resumes a session with the user's other options."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from zag.providers.base import LaunchContext
from zag.providers.claude import PROVIDER, argv

SID = "5f0c2a3e-8d41-4b6a-9c2f-1e3d4a5b6c7d"


def ctx(tmp_path: Path, *, interactive: bool = False) -> LaunchContext:
    return LaunchContext(cwd=str(tmp_path / "proj"), env={"HOME": str(tmp_path / "home")}, interactive=interactive,
                         started_at=time.time(), zag_session_id="z")


def transcript(tmp_path: Path, sid: str = SID, cwd: str | None = None) -> Path:
    folder = tmp_path / "home" / ".claude" / "projects" / argv_encode(cwd or str(tmp_path / "proj"))
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sid}.jsonl"
    path.write_text('{"type":"user","message":{"role":"user","content":"hi"}}\n')
    return path


def argv_encode(cwd: str) -> str:
    from zag.providers.claude.homes import encode_cwd

    return encode_cwd(cwd)


@pytest.mark.parametrize("user_args", [
    [],
    ["-p", "fix the test", "--model", "opus"],
    ["fix it", "--allowedTools", "Bash", "Edit"],
    ["-p", "--output-format", "stream-json", "--verbose", "--", "--weird prompt"],
    ["--dangerously-skip-permissions", "-p", "héllo wörld ✓"],
])
def test_new_session_gets_a_chosen_id_in_front(tmp_path: Path, user_args: list[str]) -> None:
    plan = PROVIDER.plan_launch(user_args, ctx(tmp_path))
    assert plan.args[:2] == ["--session-id", plan.provider_session_id]
    assert plan.args[2:] == user_args
    assert uuid.UUID(plan.provider_session_id).version == 4
    assert plan.notes["session_id_chosen"] is True


def test_model_from_the_user_args(tmp_path: Path) -> None:
    assert PROVIDER.plan_launch(["-p", "x", "--model", "sonnet"], ctx(tmp_path)).model == "sonnet"
    assert PROVIDER.plan_launch(["-p", "x", "--model=opus"], ctx(tmp_path)).model == "opus"
    assert PROVIDER.plan_launch(["-p", "x"], ctx(tmp_path)).model is None


@pytest.mark.parametrize("user_args,expected_id,follow_cwd", [
    (["--resume", SID, "-p", "go on"], SID, False),
    (["-r", SID], SID, False),
    ([f"--resume={SID}"], SID, False),
    (["-r"], None, True),                                   # the picker
    (["--resume", "search words"], None, True),             # a search term, not an id
    (["--continue", "-p", "more"], None, True),
    (["-c"], None, True),
    (["-pc", "more"], None, True),
    (["--session-id", SID, "-p", "x"], SID, False),
    (["--resume", SID, "--fork-session", "-p", "x"], None, True),
    (["--resume", SID, "--fork-session", "--session-id", "7d7d7d7d-1111-4222-8333-944444444444"],
     "7d7d7d7d-1111-4222-8333-944444444444", False),
    (["--from-pr", "123"], None, True),
])
def test_user_chosen_sessions_are_left_alone(tmp_path: Path, user_args: list[str], expected_id, follow_cwd) -> None:
    plan = PROVIDER.plan_launch(user_args, ctx(tmp_path))
    assert plan.args == user_args
    assert plan.provider_session_id == expected_id
    assert bool(plan.notes.get("follow_cwd")) is follow_cwd
    assert "session_id_chosen" not in plan.notes


def test_resuming_an_existing_transcript_notes_where_it_ended(tmp_path: Path) -> None:
    path = transcript(tmp_path)
    plan = PROVIDER.plan_launch(["--resume", SID], ctx(tmp_path))
    assert plan.notes["start_offsets"] == {str(path): path.stat().st_size}


def test_continue_notes_the_sizes_of_the_cwd_transcripts(tmp_path: Path) -> None:
    path = transcript(tmp_path)
    other = transcript(tmp_path, "6a6a6a6a-1111-4222-8333-944444444444", cwd="/elsewhere")
    plan = PROVIDER.plan_launch(["-c"], ctx(tmp_path))
    assert plan.notes["start_offsets"] == {str(path): path.stat().st_size}
    assert str(other) not in plan.notes["start_offsets"]


@pytest.mark.parametrize("user_args", [["mcp", "list"], ["doctor"], ["--version"], ["-h"], ["update"]])
def test_subcommands_and_info_flags_get_nothing(tmp_path: Path, user_args: list[str]) -> None:
    plan = PROVIDER.plan_launch(user_args, ctx(tmp_path))
    assert plan.args == user_args and plan.provider_session_id is None and plan.notes.get("no_session")


def test_a_prompt_that_looks_like_a_subcommand_is_a_prompt(tmp_path: Path) -> None:
    plan = PROVIDER.plan_launch(["-p", "--", "update"], ctx(tmp_path))
    assert plan.args[:1] == ["--session-id"]


def test_no_session_persistence_is_kept_and_noted(tmp_path: Path) -> None:
    plan = PROVIDER.plan_launch(["-p", "x", "--no-session-persistence"], ctx(tmp_path))
    assert "--no-session-persistence" in plan.args and plan.notes["no_transcript"]


# --- resume ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("user_args,kept", [
    (["-p", "fix the test"], []),
    (["-p", "fix", "--output-format", "stream-json", "--verbose", "--model", "opus"],
     ["--output-format", "stream-json", "--verbose", "--model", "opus"]),
    (["--permission-mode", "acceptEdits", "-p", "x", "--max-turns", "3", "--dangerously-skip-permissions"],
     ["--permission-mode", "acceptEdits", "--max-turns", "3", "--dangerously-skip-permissions"]),
    (["--allowedTools", "Bash(git *)", "Edit", "-p", "x"], ["--allowedTools", "Bash(git *)", "Edit"]),
    (["-p", "x", "--allowedTools", "Bash", "Edit"], ["--allowedTools", "Bash", "Edit"]),
    (["--session-id", SID, "-p", "x", "--fork-session", "-c"], []),
    (["-r", SID, "x"], []),
    (["-pc", "x", "--verbose"], ["--verbose"]),
    (["--input-format", "stream-json", "-p", "--output-format=stream-json", "--verbose"],
     ["--output-format=stream-json", "--verbose"]),
    (["-p", "x", "--add-dir", "../lib", "--system-prompt", "be brief", "-n", "night batch"],
     ["--add-dir", "../lib", "--system-prompt", "be brief", "-n", "night batch"]),
])
def test_headless_resume(tmp_path: Path, user_args: list[str], kept: list[str]) -> None:
    transcript(tmp_path)
    plan = PROVIDER.plan_resume(user_args, SID, "Continue", ctx(tmp_path))
    assert plan.args == ["-p", "--resume", SID, *kept, "--", "Continue"]
    assert plan.provider_session_id == SID
    assert plan.notes["resume_of"] == SID


def test_interactive_resume_types_the_message_later(tmp_path: Path) -> None:
    transcript(tmp_path)
    plan = PROVIDER.plan_resume(["--model", "opus", "fix it"], SID, "Continue", ctx(tmp_path, interactive=True))
    assert plan.args == ["--resume", SID, "--model", "opus"]
    assert plan.model == "opus"


def test_resume_message_that_starts_with_a_dash(tmp_path: Path) -> None:
    transcript(tmp_path)
    plan = PROVIDER.plan_resume(["-p", "x"], SID, "-- keep going", ctx(tmp_path))
    assert plan.args[-2:] == ["--", "-- keep going"]


def test_resume_reads_on_from_the_end_of_the_transcript(tmp_path: Path) -> None:
    path = transcript(tmp_path)
    plan = PROVIDER.plan_resume(["-p", "x"], SID, "Continue", ctx(tmp_path))
    assert plan.notes["start_offsets"] == {str(path): path.stat().st_size}


@pytest.mark.parametrize("sid", [SID, None, "../../etc/passwd"])
def test_without_a_transcript_the_original_command_runs_again(tmp_path: Path, sid) -> None:
    plan = PROVIDER.plan_resume(["-p", "fix the test"], sid, "Continue", ctx(tmp_path))
    assert plan.args[0] == "--session-id" and plan.args[2:] == ["-p", "fix the test"]
    assert "resume_fallback" in plan.notes


def test_parse_combined_and_inline_forms() -> None:
    parsed = argv.parse(["-pc", "-rabc", "--model=opus", "--betas", "a", "b", "-d", "--", "-x"])
    assert [(option.name, option.values) for option in parsed.options] == [
        ("--print", []), ("--continue", []), ("--resume", ["abc"]), ("--model", ["opus"]),
        ("--betas", ["a", "b"]), ("--debug", [])]
    assert parsed.positionals == ["-x"]
