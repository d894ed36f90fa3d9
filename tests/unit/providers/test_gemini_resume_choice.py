"""`files.resume_choice`: which session gemini's `--resume latest|<N>` takes (gemini-cli's SessionSelector:
main sessions with a user or gemini message, ordered by the head's startTime, 1 = oldest)."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.gemini import geminilib as g
from zag.providers.gemini import files


def test_latest_and_indexes_follow_start_time_not_names_and_skip_empty_or_subagent(tmp_path: Path) -> None:
    chats = tmp_path / "chats"
    chats.mkdir()
    a, b, c, empty, sub = (f"{n}aaaaaaa-1111-4111-8111-11111111111{n}" for n in range(1, 6))
    g.write(chats / g.session_name(a, "2026-12-07T09-00"), g.meta(a, start="2026-12-07T09:00:30.000Z"),
            g.user("u", "a", ts="2026-12-07T09:00:31.000Z"))
    # same minute in the name, a later start inside it: this one is the latest
    g.write(chats / g.session_name(b, "2026-12-07T09-00"), g.meta(b, start="2026-12-07T09:00:50.000Z"),
            g.gemini("m", "b", ts="2026-12-07T09:00:51.000Z"))
    g.write(chats / g.session_name(c, "2026-12-07T08-00"), g.meta(c, start="2026-12-07T08:00:00.000Z"),
            g.user("u", "c", ts="2026-12-07T08:00:01.000Z"))
    g.write(chats / g.session_name(empty, "2026-12-07T10-00"), g.meta(empty, start="2026-12-07T10:00:00.000Z"))
    g.write(chats / g.session_name(sub, "2026-12-07T11-00"), g.meta(sub, start="2026-12-07T11:00:00.000Z",
                                                                    kind="subagent"),
            g.user("u", "sub", ts="2026-12-07T11:00:01.000Z"))
    assert files.resume_choice([chats, tmp_path / "missing"], "latest") == b
    assert [files.resume_choice([chats], str(n)) for n in (1, 2, 3, 4)] == [c, a, b, None]
    assert files.resume_choice([tmp_path / "missing"], "latest") is None
