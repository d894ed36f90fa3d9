"""Codex argv: launch leaves the user's args alone; resume re-plans them for `exec resume` / `resume`."""

from __future__ import annotations

import time

import pytest

from zag.providers.base import LaunchContext
from zag.providers.codex import PROVIDER

TID = "01a203ab-e6f7-79b3-9b9f-4aae4af798c1"


def ctx(interactive: bool = False) -> LaunchContext:
    return LaunchContext(cwd="/srv/p", env={}, interactive=interactive, started_at=time.time(), zag_session_id="z")


@pytest.mark.parametrize("args, model, known_id", [
    ([], None, None),
    (["exec", "--json", "say hi"], None, None),
    (["-m", "gpt-6-sol", "exec", "--skip-git-repo-check", "fix it"], "gpt-6-sol", None),
    (["exec", "--model=o4", "-c", 'model="gpt-5.5"', "x"], "gpt-5.5", None),
    (["exec", "-c", "model_reasoning_effort=high", "-m", "o3", "--", "-starts with dash"], "o3", None),
    (["exec", "resume", TID, "go on"], None, TID),
    (["exec", "resume", "--last", "go on"], None, None),
    (["resume", TID], None, TID),
    (["login"], None, None),
    (["é ünïcode prompt with 'quotes'"], None, None),
])
def test_plan_launch_keeps_args_untouched(args: list[str], model: str | None, known_id: str | None) -> None:
    plan = PROVIDER.plan_launch(args, ctx())
    assert plan.args == args and plan.args is not args
    assert plan.model == model and plan.provider_session_id == known_id
    assert "--ephemeral" not in plan.args


def test_plan_launch_notes_ephemeral() -> None:
    plan = PROVIDER.plan_launch(["exec", "--ephemeral", "hi"], ctx())
    assert plan.args == ["exec", "--ephemeral", "hi"] and plan.notes["ephemeral"] is True


@pytest.mark.parametrize("args, expected", [
    (["exec", "--json", "--skip-git-repo-check", "say hi"],
     ["exec", "--json", "--skip-git-repo-check", "resume", TID, "Continue"]),
    (["exec", "-C", "/w", "--sandbox", "read-only", "--color", "never", "-m", "o3", "-c", "k=v",
      "--dangerously-bypass-approvals-and-sandbox", "-i", "shot.png", "do it"],
     ["exec", "-C", "/w", "--sandbox", "read-only", "--color", "never", "-m", "o3", "-c", "k=v",
      "--dangerously-bypass-approvals-and-sandbox", "resume", TID, "Continue"]),
    (["-c", "model_provider=fake", "exec", "--json", "--output-schema=s.json", "-o", "last.txt", "p"],
     ["-c", "model_provider=fake", "exec", "--json", "--output-schema=s.json", "-o", "last.txt", "resume", TID,
      "Continue"]),
    (["exec", "resume", "--json", "--last", "--all", "earlier prompt"],
     ["exec", "--json", "resume", TID, "Continue"]),
    (["exec", "--json", "resume", TID, "earlier prompt"], ["exec", "--json", "resume", TID, "Continue"]),
    (["-a", "never", "--search", "tui prompt"], ["-a", "never", "--search", "exec", "resume", TID, "Continue"]),
    (["resume", "--last", "-a", "never", "-m", "o3", "--no-alt-screen"],
     ["-a", "never", "--no-alt-screen", "exec", "-m", "o3", "resume", TID, "Continue"]),
])
def test_plan_resume_headless(args: list[str], expected: list[str]) -> None:
    plan = PROVIDER.plan_resume(args, TID, "Continue", ctx())
    assert plan.args == expected and plan.provider_session_id == TID and plan.notes["resumed"]


def test_plan_resume_message_starting_with_dash() -> None:
    plan = PROVIDER.plan_resume(["exec", "x"], TID, "-continue please", ctx())
    assert plan.args == ["exec", "resume", "--", TID, "-continue please"]


@pytest.mark.parametrize("args, expected", [
    ([], ["resume", TID]),
    (["-m", "o3", "--search", "first prompt"], ["-m", "o3", "--search", "resume", TID]),
    (["--no-alt-screen", "-i", "a.png", "look at this"], ["--no-alt-screen", "resume", TID]),
    (["resume", "--last", "-s", "read-only"], ["resume", "-s", "read-only", TID]),
    (["exec", "--json", "-m", "o3", "--skip-git-repo-check", "p"], ["resume", "-m", "o3", TID]),
])
def test_plan_resume_interactive(args: list[str], expected: list[str]) -> None:
    plan = PROVIDER.plan_resume(args, TID, "Continue", ctx(interactive=True))
    assert plan.args == expected and plan.provider_session_id == TID


@pytest.mark.parametrize("session_id, args", [(None, ["exec", "--json", "hi"]), (TID, ["exec", "--ephemeral", "hi"])])
def test_plan_resume_without_a_resumable_rollout_reruns_the_original(session_id, args) -> None:
    plan = PROVIDER.plan_resume(args, session_id, "Continue", ctx())
    assert plan.args == args and plan.notes["rerun_original"] is True and plan.provider_session_id is None
