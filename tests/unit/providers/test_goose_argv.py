"""goose argv: plan_launch / plan_resume for many shapes of user arguments."""

from __future__ import annotations

import pytest

from zag.providers.base import KeySequence, LaunchContext
from zag.providers.goose import PROVIDER, argv

ZAG_ID = "0f3c2a1e-7b4d-4c2e-9a11-5e6f7a8b9c0d"
NAME = f"zag-{ZAG_ID}"


def ctx(interactive: bool = False) -> LaunchContext:
    return LaunchContext(cwd="/work/proj", env={"HOME": "/home/u"}, interactive=interactive,
                         started_at=1_762_600_000.0, zag_session_id=ZAG_ID)


# --- launch ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("user_args, expected", [
    (["run", "-t", "fix it"], ["run", "--name", NAME, "-t", "fix it"]),
    (["run", "--text=fix it", "--output-format", "stream-json"],
     ["run", "--name", NAME, "--text=fix it", "--output-format", "stream-json"]),
    (["session"], ["session", "--name", NAME]),
    (["s", "--with-builtin", "developer"], ["s", "--name", NAME, "--with-builtin", "developer"]),
    (["run", "-i", "-", "-q"], ["run", "--name", NAME, "-i", "-", "-q"]),
])
def test_launch_names_the_session(user_args: list[str], expected: list[str]) -> None:
    plan = PROVIDER.plan_launch(user_args, ctx())
    assert plan.args == expected
    assert plan.notes["name"] == NAME and plan.notes["zag_named"] is True
    assert plan.provider_session_id is None


@pytest.mark.parametrize("user_args, name, session_id, resume", [
    (["run", "-n", "mine", "-t", "x"], "mine", None, False),
    (["run", "--name=mine", "-t", "x"], "mine", None, False),
    (["run", "-nmine", "-t", "x"], "mine", None, False),
    (["session", "--resume"], None, None, True),
    (["session", "-r", "--name", "proj"], "proj", None, True),
    (["run", "-r", "--session-id", "20251108_2", "-t", "go on"], None, "20251108_2", True),
    (["run", "-rt", "go on", "--id", "20251108_3"], None, "20251108_3", True),
    (["session", "--resume", "--path", "/x/20250325_200615.jsonl"], None, "20250325_200615", True),
    (["session", "--resume", "--fork", "--session-id", "20251108_4"], None, "20251108_4", True),
])
def test_launch_leaves_a_user_decided_session_alone(user_args, name, session_id, resume) -> None:
    plan = PROVIDER.plan_launch(user_args, ctx())
    assert plan.args == user_args
    assert plan.notes.get("name") == name
    assert plan.notes.get("session_id") == session_id
    assert plan.provider_session_id == (None if "--fork" in user_args else session_id)
    assert plan.notes["resume"] is resume
    assert "zag_named" not in plan.notes


@pytest.mark.parametrize("user_args", [
    [], ["--help"], ["-V"], ["configure"], ["info", "-v"], ["session", "list", "--format", "json"],
    ["session", "export", "--session-id", "x"], ["run", "--help"], ["mcp", "developer"],
])
def test_launch_of_other_commands_adds_nothing(user_args: list[str]) -> None:
    plan = PROVIDER.plan_launch(user_args, ctx())
    assert plan.args == user_args


def test_bare_goose_is_the_default_session_found_by_directory() -> None:
    plan = PROVIDER.plan_launch([], ctx(interactive=True))
    assert plan.args == [] and plan.notes["kind"] == argv.KIND_DEFAULT and plan.notes["records"]


def test_no_session_is_noted_and_not_named() -> None:
    plan = PROVIDER.plan_launch(["run", "--no-session", "-t", "x"], ctx())
    assert plan.args == ["run", "--no-session", "-t", "x"]
    assert plan.notes["records"] is False and "no_transcript" in plan.notes


def test_model_comes_from_the_users_args() -> None:
    assert PROVIDER.plan_launch(["run", "--model", "gpt-4o", "-t", "x"], ctx()).model == "gpt-4o"
    assert PROVIDER.plan_launch(["run", "--model=o3", "-t", "x"], ctx()).model == "o3"
    assert PROVIDER.plan_launch(["session"], ctx()).model is None


def test_parse_values_that_look_like_options() -> None:
    command = argv.parse(["run", "-t", "--not-a-flag", "--provider", "openai"])
    assert command.value("--text") == "--not-a-flag" and command.value("--provider") == "openai"
    command = argv.parse(["run", "-qrt", "hi"])
    assert command.has("--quiet") and command.resume and command.value("--text") == "hi"
    command = argv.parse(["run", "-t=hello", "--frobnicate", "7"])
    assert command.value("--text") == "hello" and command.options[1].unknown


# --- resume --------------------------------------------------------------------------------------------
def test_headless_resume_keeps_the_other_flags_and_drops_the_old_input() -> None:
    user = ["run", "--provider", "anthropic", "--model", "claude-sonnet-4-5", "-t", "fix the tests",
            "--with-builtin", "developer", "--max-turns", "50", "-q", "--output-format", "stream-json"]
    plan = PROVIDER.plan_resume(user, "20251108_2", "Continue", ctx())
    assert plan.args == ["run", "--resume", "--session-id", "20251108_2", "--provider", "anthropic",
                         "--model", "claude-sonnet-4-5", "--with-builtin", "developer", "--max-turns", "50",
                         "-q", "--output-format", "stream-json", "-t", "Continue"]
    assert plan.provider_session_id == "20251108_2" and plan.model == "claude-sonnet-4-5"
    assert plan.notes["resume"] is True


@pytest.mark.parametrize("user_args", [
    ["run", "-i", "task.md", "--no-profile"],
    ["run", "--recipe", "r.yaml", "--params", "a=1", "--sub-recipe", "s.yaml", "--no-profile"],
    ["run", "--instructions=task.md", "--no-profile", "-s"],
    ["run", "--name", "old", "-t", "x", "--no-profile"],
    ["run", "-r", "--session-id", "20251108_1", "-t", "x", "--no-profile"],
])
def test_headless_resume_drops_input_identifier_and_interactive(user_args: list[str]) -> None:
    plan = PROVIDER.plan_resume(user_args, "20251108_9", "Continue", ctx())
    assert plan.args == ["run", "--resume", "--session-id", "20251108_9", "--no-profile", "-t", "Continue"]


def test_resume_message_that_starts_with_a_dash() -> None:
    plan = PROVIDER.plan_resume(["run", "-t", "x"], "20251108_2", "-- go on", ctx())
    assert plan.args[-1] == "--text=-- go on"


def test_interactive_resume_uses_session_and_only_its_options() -> None:
    user = ["run", "-s", "-t", "start", "--provider", "openai", "--model", "gpt-4o", "--debug",
            "--with-extension", "npx server", "--max-tool-repetitions", "3", "-q"]
    plan = PROVIDER.plan_resume(user, "20251108_2", "Continue", ctx(interactive=True))
    assert plan.args == ["session", "--resume", "--session-id", "20251108_2", "--debug",
                         "--with-extension", "npx server", "--max-tool-repetitions", "3"]
    session = PROVIDER.plan_resume(["session", "--with-builtin", "developer", "--history"], "20251108_2",
                                   "Continue", ctx(interactive=True))
    assert session.args == ["session", "--resume", "--session-id", "20251108_2", "--with-builtin", "developer"]


def test_resume_without_a_known_id_uses_the_name() -> None:
    plan = PROVIDER.plan_resume(["run", "-t", "x"], None, "Continue", ctx())
    assert plan.args == ["run", "--resume", "--name", NAME, "-t", "Continue"]
    plan = PROVIDER.plan_resume(["session", "-n", "proj"], None, "Continue", ctx(interactive=True))
    assert plan.args == ["session", "--resume", "--name", "proj"]


def test_resume_of_an_unrecorded_run_reruns_the_original() -> None:
    plan = PROVIDER.plan_resume(["run", "--no-session", "-t", "x"], None, "Continue", ctx())
    assert plan.args == ["run", "--no-session", "-t", "x"] and plan.notes["rerun_original"] is True
    plan = PROVIDER.plan_resume([], None, "Continue", ctx(interactive=True))
    assert plan.args == [] and plan.notes["rerun_original"] is True


def test_unknown_options_survive_a_resume_with_their_values() -> None:
    plan = PROVIDER.plan_resume(["run", "--future-flag", "v", "-t", "x"], "20251108_2", "Go", ctx())
    assert plan.args == ["run", "--resume", "--session-id", "20251108_2", "--future-flag", "v", "-t", "Go"]
    interactive = PROVIDER.plan_resume(["run", "--future-flag", "v", "-t", "x"], "20251108_2", "Go",
                                       ctx(interactive=True))
    assert interactive.args == ["session", "--resume", "--session-id", "20251108_2"]


# --- keys ------------------------------------------------------------------------------------------------
def test_resume_keys_and_no_dialog() -> None:
    keys = PROVIDER.resume_keys("Continue")
    assert isinstance(keys, KeySequence) and keys.chunks == (b"Continue", b"\r") and bytes(keys) == b"Continue\r"
    multi = PROVIDER.resume_keys("line one\nline two")
    assert multi.chunks == (b"\x1b[200~line one\nline two\x1b[201~", b"\r")
    assert PROVIDER.unblock_keys("Ran into this error: Rate limit exceeded: 429\n( O)> ") is None
