"""Codex history discovery and the incremental rollout reader (cursor, growth, partial lines, replacement)."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from zag.providers.base import LimitSignal
from zag.providers.codex import PROVIDER
from zag.providers.codex.homes import codex_home, parse_rollout_name
from zag.providers.codex.reader import RolloutReader

CORPUS = Path(__file__).resolve().parents[2] / "fixtures" / "corpus"
REAL_ROLLOUT = CORPUS / "real-cli" / "codex" / "rollout_hi_resumed_ok_then_usage_limit.jsonl"
TID = "01a203ab-e6f7-79b3-9b9f-4aae4af798c1"


def bodies(items) -> list:
    """Comparable items (a signal's observation time is when it was read, not part of the record)."""
    return [json.dumps(replace(item, observed_at=0.0) if isinstance(item, LimitSignal) else item,
                       sort_keys=True, default=repr) for item in items]


def rollout(home: Path, thread_id: str = TID, *, day: str = "2026/11/22", ts: str = "2026-11-22T14-32-07",
            archived: bool = False, part: str | None = None, zst: bool = False) -> Path:
    folder = home / ("archived_sessions" if archived else f"sessions/{day}")
    folder.mkdir(parents=True, exist_ok=True)
    name = f"rollout-{ts}-{thread_id}{'_' + part if part else ''}.jsonl{'.zst' if zst else ''}"
    return folder / name


def test_homes_honour_env() -> None:
    assert codex_home({"CODEX_HOME": "/x/c", "HOME": "/h"}) == Path("/x/c")
    assert codex_home({"HOME": "/h"}) == Path("/h/.codex")
    assert codex_home({"CODEX_HOME": "~/cx", "HOME": "/h"}) == Path("/h/cx")


def test_rollout_names() -> None:
    name = parse_rollout_name(f"rollout-2026-11-22T14-32-07-{TID}_01a2ffff.jsonl.zst")
    assert (name.thread_id, name.created, name.part, name.compressed) == (TID, "2026-11-22T14-32-07", "01a2ffff", True)
    assert name.plain_name == f"rollout-2026-11-22T14-32-07-{TID}_01a2ffff.jsonl"
    assert parse_rollout_name("notes.txt") is None


def test_discover_groups_parts_prefers_active_and_plain(tmp_path: Path) -> None:
    home = tmp_path / ".codex"
    first = rollout(home)
    first.write_bytes(REAL_ROLLOUT.read_bytes())
    rollout(home, archived=True).write_bytes(b"stale archived copy\n")
    part = rollout(home, part="01a2ffff-0000", ts="2026-11-22T15-00-00")
    part.write_text("")
    rollout(home, part="01a2ffff-0000", ts="2026-11-22T15-00-00", zst=True).write_bytes(b"zst twin")
    other = rollout(home, "01a20000-0000-7000-8000-000000000002", archived=True)
    other.write_text("")
    (home / "sessions" / "2026" / "notes.txt").write_text("not a rollout")
    found = {s.source_key: s for s in PROVIDER.discover({"CODEX_HOME": str(home), "HOME": str(tmp_path / "h")})}
    assert set(found) == {TID, "01a20000-0000-7000-8000-000000000002"}
    main = found[TID]
    assert main.paths == (first, part) and main.provider_session_id == TID
    assert main.extra["archived"] is False and found["01a20000-0000-7000-8000-000000000002"].extra["archived"]
    assert main.started_at is not None and main.fingerprint
    before = main.fingerprint
    with open(first, "ab") as handle:
        handle.write(b"\n")
    again = {s.source_key: s for s in PROVIDER.discover({"CODEX_HOME": str(home)})}
    assert again[TID].fingerprint != before


def test_discover_looks_in_codex_home_and_default_home(tmp_path: Path) -> None:
    rollout(tmp_path / "custom").write_text("")
    rollout(tmp_path / "h" / ".codex", "01a20000-0000-7000-8000-000000000003").write_text("")
    keys = {s.source_key for s in PROVIDER.discover({"CODEX_HOME": str(tmp_path / "custom"),
                                                     "HOME": str(tmp_path / "h")})}
    assert keys == {TID, "01a20000-0000-7000-8000-000000000003"}


def test_whole_read_equals_line_by_line_growth_with_partial_lines(tmp_path: Path) -> None:
    data = REAL_ROLLOUT.read_bytes()
    whole = list(RolloutReader([REAL_ROLLOUT]).read())
    target = tmp_path / REAL_ROLLOUT.name
    target.write_bytes(b"")
    grown: list = []
    cursor = None
    position = 0
    step = 0
    while position < len(data):
        step = (step * 7 + 13) % 977 + 1  # uneven pieces: lines end mid-piece, pieces end mid-line
        with open(target, "ab") as handle:
            handle.write(data[position:position + step])
        position += step
        reader = PROVIDER.open_reader(_source(target), json.loads(json.dumps(cursor)))
        grown.extend(reader.read())
        cursor = reader.cursor()
    assert bodies(grown) == bodies(whole)
    reader = PROVIDER.open_reader(_source(target), cursor)
    assert list(reader.read()) == []  # nothing new: nothing again


def test_same_reader_polled_while_growing(tmp_path: Path) -> None:
    lines = REAL_ROLLOUT.read_bytes().split(b"\n")
    target = tmp_path / REAL_ROLLOUT.name
    target.write_bytes(b"")
    reader = RolloutReader([target])
    got: list = []
    for line in lines[:-1]:
        with open(target, "ab") as handle:
            handle.write(line[:10])
        got.extend(reader.read())
        with open(target, "ab") as handle:
            handle.write(line[10:] + b"\n")
        assert reader.changed()
        got.extend(reader.read())
        assert not reader.changed()
    assert bodies(got) == bodies(RolloutReader([REAL_ROLLOUT]).read())


def test_shrunk_or_replaced_file_is_noticed(tmp_path: Path) -> None:
    target = tmp_path / REAL_ROLLOUT.name
    target.write_bytes(REAL_ROLLOUT.read_bytes())
    reader = RolloutReader([target])
    list(reader.read())
    replacement = tmp_path / "new"
    replacement.write_bytes(REAL_ROLLOUT.read_bytes().split(b"\n", 1)[0] + b"\n")
    os.replace(replacement, target)
    items = list(reader.read())
    assert any(isinstance(i, dict) and "replaced" in i.get("message", "") for i in items)


def test_archived_between_reads_continues_from_cursor(tmp_path: Path) -> None:
    home = tmp_path / ".codex"
    live = rollout(home)
    live.write_bytes(REAL_ROLLOUT.read_bytes())
    (source,) = PROVIDER.discover({"CODEX_HOME": str(home)})
    reader = PROVIDER.open_reader(source, None)
    list(reader.read())
    cursor = json.loads(json.dumps(reader.cursor()))
    archived = rollout(home, archived=True)
    os.replace(live, archived)
    with open(archived, "ab") as handle:
        handle.write(json.dumps({"timestamp": "2026-11-22T15:00:00.000Z", "type": "event_msg", "payload": {
            "type": "user_message", "message": "after archiving"}}).encode() + b"\n")
    (source,) = PROVIDER.discover({"CODEX_HOME": str(home)})
    items = list(PROVIDER.open_reader(source, cursor).read())
    assert [i["content"] for i in items if isinstance(i, dict) and i["type"] == "user_message"] == ["after archiving"]


def test_compressed_rollout_without_decoder_is_one_warning(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import zag.providers.codex.reader as reader_module

    monkeypatch.setattr(reader_module, "_zstd_opener", lambda: None)
    path = rollout(tmp_path / ".codex", zst=True)
    path.write_bytes(b"(\xb5/\xfd compressed")
    reader = RolloutReader([path])
    items = list(reader.read())
    assert [i["type"] for i in items] == ["parse_warning"] and "skipped" in items[0]["message"]
    assert list(reader.read()) == []
    assert list(RolloutReader([path], json.loads(json.dumps(reader.cursor()))).read()) == []


def test_compressed_rollout_read_through_decoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The decoding path, with a stand-in decoder (zag does not depend on a zstd library)."""
    import gzip

    import zag.providers.codex.reader as reader_module

    monkeypatch.setattr(reader_module, "_zstd_opener", lambda: lambda handle: gzip.GzipFile(fileobj=handle))
    path = rollout(tmp_path / ".codex", zst=True)
    path.write_bytes(gzip.compress(REAL_ROLLOUT.read_bytes()))
    reader = RolloutReader([path])
    assert bodies(reader.read()) == bodies(RolloutReader([REAL_ROLLOUT]).read())
    cursor = json.loads(json.dumps(reader.cursor()))
    assert list(RolloutReader([path], cursor).read()) == []
    # Codex decompresses back to plain before appending: the plain file continues at the same offset
    plain = path.with_name(path.name.removesuffix(".zst"))
    plain.write_bytes(REAL_ROLLOUT.read_bytes() + json.dumps({"timestamp": "2026-11-22T15:00:00.000Z",
        "type": "event_msg", "payload": {"type": "agent_message", "message": "appended"}}).encode() + b"\n")
    items = list(RolloutReader([plain], cursor).read())
    assert [i["content"] for i in items] == ["appended"]


def _source(path: Path):
    from zag.providers.base import HistorySource

    return HistorySource(source_key=TID, provider_session_id=TID, paths=(path,), fingerprint="")


def test_a_rollout_skipped_for_want_of_a_decoder_is_imported_once_one_is_installed(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The warning says `pip install zstandard` to import it. Before: backfill stored the file's
    fingerprint with the skip, so after the install it found the rollout unchanged and never read it."""
    import gzip

    import zag.providers.codex.reader as reader_module
    from zag.logs.backfill import run_backfill

    path = rollout(tmp_path / ".codex", zst=True)
    path.write_bytes(gzip.compress(REAL_ROLLOUT.read_bytes()))
    env = {"HOME": str(tmp_path), "CODEX_HOME": str(tmp_path / ".codex")}
    monkeypatch.setattr(reader_module, "_zstd_opener", lambda: None)
    [skipped] = run_backfill([PROVIDER], env=env, jobs=1)
    [again] = run_backfill([PROVIDER], env=env, jobs=1)
    assert (skipped.imported, skipped.warnings, again.warnings, again.events) == (1, 1, 0, 0)

    monkeypatch.setattr(reader_module, "_zstd_opener", lambda: lambda handle: gzip.GzipFile(fileobj=handle))
    [installed] = run_backfill([PROVIDER], env=env, jobs=1)
    from zag.providers.base import SessionIdHint

    expected = [item for item in RolloutReader([REAL_ROLLOUT]).read() if not isinstance(item, SessionIdHint)]
    assert (installed.updated, installed.events) == (1, len(expected)), installed
    [last] = run_backfill([PROVIDER], env=env, jobs=1)
    assert (last.unchanged, last.events) == (1, 0)
