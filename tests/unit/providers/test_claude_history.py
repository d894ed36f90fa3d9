"""Claude history discovery: homes, layouts, subagents, duplicates; readers opened from what was found."""

from __future__ import annotations

import shutil
from pathlib import Path

from zag.providers.claude import PROVIDER, homes
from zag.providers.tail import fingerprint

REPO = Path(__file__).resolve().parents[3]
CORPUS = REPO / "tests" / "fixtures" / "corpus" / "claude"
S1 = "0a1b2c3d-4e5f-4061-8071-2a3b4c5d6e7f"
S2 = "9b9b9b9b-1111-4222-8333-944444444444"
S3 = "7c7c7c7c-1111-4222-8333-944444444444"


def line(text: str, sid: str = S1) -> str:
    return ('{"type":"user","sessionId":"%s","timestamp":"2026-01-01T00:00:00.000Z","message":{"role":"user",'
            '"content":"%s"}}\n' % (sid, text))


def build(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    layout = CORPUS / "agent-sessions_subagent_layout"
    project = home / ".claude" / "projects" / "-work-app"
    shutil.copytree(layout, project)
    (project / S1 / "tool-results").mkdir()
    (project / S1 / "tool-results" / "big.txt").write_text("output")
    (project / f"{S3}").mkdir()
    (project / S3 / "subagents").mkdir()
    (project / S3 / "subagents" / "agent-orphan.jsonl").write_text(line("left behind", S3))
    xdg = home / ".config" / "claude" / "projects"
    (xdg / "-srv").mkdir(parents=True)
    (xdg / "-srv" / f"{S2}.jsonl").write_text(line("from the xdg detour", S2))
    (xdg / "-work-app").mkdir()
    (xdg / "-work-app" / f"{S1}.jsonl").write_text(line("an older, smaller copy"))
    nested = home / ".claude" / "projects" / "project-alpha" / "session-alpha"
    nested.mkdir(parents=True)
    shutil.copy(CORPUS / "ccusage_usage_only_chat.jsonl", nested / "chat.jsonl")
    return {"HOME": str(home)}


def test_discovers_every_layout_once(tmp_path: Path) -> None:
    env = build(tmp_path)
    found = {source.source_key: source for source in PROVIDER.discover(env)}
    assert set(found) == {S1, S2, S3, "file:project-alpha/session-alpha/chat.jsonl"}
    main = found[S1]
    assert [path.name for path in main.paths] == [f"{S1}.jsonl", "agent-a0ad4f44468bdf20d.jsonl"]
    assert main.provider_session_id == S1 and main.paths[0].parent.name == "-work-app"
    assert ".claude" in main.paths[0].parts  # the bigger transcript wins
    assert main.extra["duplicates"] == [str(tmp_path / "home/.config/claude/projects/-work-app" / f"{S1}.jsonl")]
    assert main.ended_at is not None and main.fingerprint.count("|") == 1
    assert found[S2].paths[0].parts[-4:-2] == ("claude", "projects")
    assert found["file:project-alpha/session-alpha/chat.jsonl"].provider_session_id == "chat"
    assert all(source.fingerprint == fingerprint(source.paths) for source in found.values())


def test_readers_from_discovered_sources(tmp_path: Path) -> None:
    env = build(tmp_path)
    found = {source.source_key: source for source in PROVIDER.discover(env)}
    items = list(PROVIDER.open_reader(found[S1], None).read())
    assert sum(1 for item in items if item.get("agent_id") == "a0ad4f44468bdf20d") == 5
    orphan = list(PROVIDER.open_reader(found[S3], None).read())
    assert [(item["type"], item["content"], item["agent_id"]) for item in orphan] == [
        ("user_message", "left behind", "orphan")]
    usage = list(PROVIDER.open_reader(found["file:project-alpha/session-alpha/chat.jsonl"], None).read())
    assert [item["type"] for item in usage] == ["usage"] * 3


def test_fingerprint_changes_when_a_subagent_grows(tmp_path: Path) -> None:
    env = build(tmp_path)
    before = {source.source_key: source.fingerprint for source in PROVIDER.discover(env)}
    sub = next(source for source in PROVIDER.discover(env) if source.source_key == S1).paths[1]
    with open(sub, "a") as handle:
        handle.write(line("more"))
    after = {source.source_key: source.fingerprint for source in PROVIDER.discover(env)}
    assert before[S1] != after[S1] and before[S2] == after[S2]


def test_claude_config_dir_list_replaces_the_default_homes(tmp_path: Path) -> None:
    env = build(tmp_path)
    first, second = tmp_path / "a", tmp_path / "b"
    for root, sid in ((first, S2), (second, S3)):
        (root / "projects" / "-x").mkdir(parents=True)
        (root / "projects" / "-x" / f"{sid}.jsonl").write_text(line("x", sid))
    env["CLAUDE_CONFIG_DIR"] = f"{first}, {second}"
    assert {source.source_key for source in PROVIDER.discover(env)} == {S2, S3}
    assert homes.live_root(env) == first
    env["CLAUDE_CONFIG_DIR"] = str(second)
    assert homes.discovery_roots(env) == [second] and homes.live_root(env) == second


def test_missing_homes_find_nothing(tmp_path: Path) -> None:
    assert list(PROVIDER.discover({"HOME": str(tmp_path / "nobody")})) == []


def test_encode_cwd_follows_claude_rule() -> None:
    assert homes.encode_cwd("/a/b.c_d e+f") == "-a-b-c-d-e-f"
    assert homes.encode_cwd("/srv/demo_claude/proj") == "-srv-demo-claude-proj"
    assert homes.encode_cwd("/home/zoë/日本") == "-home-zo----"
    assert homes.encode_cwd("/x/😀") == "-x---"


def test_find_transcript_for_a_long_cwd(tmp_path: Path) -> None:
    cwd = "/" + "deep/" * 60
    encoded = homes.encode_cwd(cwd)
    folder = tmp_path / "projects" / (encoded[:200] + "-1abc2")
    folder.mkdir(parents=True)
    (folder / f"{S1}.jsonl").write_text(line("x"))
    assert homes.find_transcript([tmp_path], S1, cwd, glob=False) == folder / f"{S1}.jsonl"
