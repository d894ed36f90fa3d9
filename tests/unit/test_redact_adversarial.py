"""Redaction against secrets placed where the encoded JSON line hides them (after a `\\n` escape, in a
dump cut short, under the spelling a tool prints), against user patterns that only match decoded
text, in zag's own diagnostics and index, and against ordinary text it must leave alone."""

from __future__ import annotations

import base64
import hashlib
import json
import uuid
from pathlib import Path

import pytest

from zag.logs import codec
from zag.logs.redact import Redactor

OPENAI = "sk-" + "Ab12Cd34Ef56Gh78Ij90Kl12Mn34Op56Qr78St90"
OPENAI_PROJ = "sk-proj-" + "Zx9_Yw8-Vu7Ts6Rq5Po4Nm3Lk2" * 2
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
GOOGLE = "AIzaSyA1234567890abcdefghijklmnopqrstuv"
KEY_BODY = "MIIEowIBAAKCAQEAxyzSECRETBODY"


def redacted(text: str, redactor: Redactor | None = None) -> str:
    """`text` as it reads back from a log line written through `redactor`."""
    line = (redactor or Redactor()).redact(codec.dumps_line({"type": "tool_result", "output": text}))
    return json.loads(line)["output"]


@pytest.mark.parametrize("text", [
    f"your keys:\n{OPENAI}\n", f"keys:\n{OPENAI_PROJ}", f"NAME\tKEY\nprod\t{OPENAI}", f"\x1b[32m{OPENAI}\x1b[0m",
    f"\x1b[1;32m{OPENAI_PROJ}", f"\x1b{OPENAI}",
])
def test_openai_key_at_the_start_of_a_line_or_after_a_colour_code(text: str) -> None:
    out = redacted(text)
    assert "Ab12Cd34" not in out and "Zx9_Yw8" not in out and "[REDACTED:openai_key]" in out


@pytest.mark.parametrize("text", [
    f"-----BEGIN RSA PRIVATE KEY-----\n{KEY_BODY}\nAIBAAKCAQEA\n",                # `head id_rsa`
    f"$ head -3 ~/.ssh/id_ed25519\n-----BEGIN OPENSSH PRIVATE KEY-----\n{KEY_BODY}",
    f"-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{KEY_BODY}\n-----END PGP PRIVATE KEY BLOCK-----\n",
    json.dumps({"key": f"-----BEGIN PRIVATE KEY-----\n{KEY_BODY}"})[:60] + "…",  # JSON text cut short
])
def test_private_key_without_its_end_line_or_of_pgp(text: str) -> None:
    out = redacted(text)
    assert "MIIEow" not in out and "SECRETBODY" not in out and "[REDACTED:private_key]" in out


def test_private_key_redaction_stays_inside_its_json_string() -> None:
    event = {"type": "x", "a": "-----BEGIN RSA PRIVATE KEY-----\nMIIE\\", "b": "kept",
             "c": "-----END RSA PRIVATE KEY-----"}
    out = json.loads(Redactor().redact(codec.dumps_line(event)))
    assert out["a"] == "[REDACTED:private_key]" and out["b"] == "kept"


@pytest.mark.parametrize("text", [
    json.dumps({"AccessKey": {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": AWS_SECRET}}, indent=4),
    f"const client = new S3({{ secretAccessKey: '{AWS_SECRET}' }})",
    f"[default]\naws_secret_access_key = {AWS_SECRET}\n",
])
def test_aws_secret_under_the_spellings_tools_print(text: str) -> None:
    out = redacted(text)
    assert AWS_SECRET not in out and "[REDACTED:aws_secret_key]" in out


def test_google_key_redacted_but_not_inside_a_longer_run_of_base64() -> None:
    assert redacted(f"https://maps.googleapis.com/x?key={GOOGLE}&q=1") == \
        "https://maps.googleapis.com/x?key=[REDACTED:google_api_key]&q=1"
    image = base64.b64encode(b"\x00" * 300).decode() + GOOGLE + "QUJD" * 20  # image data that holds AIza…
    assert redacted(image) == image


def test_ordinary_text_is_left_alone() -> None:
    ordinary = [
        hashlib.sha1(b"x").hexdigest(), hashlib.sha256(b"x").hexdigest() * 4, str(uuid.uuid4()),
        "pip install sk-learn scikit-learn; risk-assessment-framework-v2-final; task-queue-management-service",
        "the bearer of bad news", base64.b64encode(bytes(range(256)) * 50).decode(), "sk-...xyz (masked)",
        "AIzawesome", "ASIAN-markets", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----",
        "/home/u/ask-the-expert-questionnaire-2024-v2.txt",
    ]
    for text in ordinary:
        assert redacted(text) == text


@pytest.mark.parametrize(("pattern", "text"), [
    (r"\bcorp-[a-z0-9]{20}\b", "token:\ncorp-abcdefghij0123456789"),
    (r"(?m)^PASS=\S+", "USER=me\nPASS=hunter2\n"),
    (r"^PASS=\S+$", "PASS=hunter2"),
])
def test_user_patterns_match_the_text_not_its_json_encoding(pattern: str, text: str) -> None:
    out = redacted(text, Redactor([pattern]))
    assert "hunter2" not in out and "abcdefghij" not in out and "[REDACTED:custom]" in out


def test_user_patterns_leave_a_line_without_a_match_byte_for_byte() -> None:
    line = b'{"seq":1,"type":"x","output":"caf\\u00e9 \\/ ok"}\n'
    assert Redactor([r"^PASS="]).redact(line) == line


def test_redact_text_for_values_kept_outside_a_log() -> None:
    redactor = Redactor([r"corp-\d+"])
    assert redactor.redact_text(f"/srv/{OPENAI}/corp-123") == "/srv/[REDACTED:openai_key]/[REDACTED:custom]"
    assert redactor.redact_text("plain") == "plain"


def test_diagnostics_log_is_redacted(zag_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from zag import diag

    monkeypatch.setattr(diag, "_logger", None)
    try:
        raise ValueError(f"invalid literal for int() with base 10: '{OPENAI}'")
    except ValueError as exc:
        diag.exception("provider_fault", error=str(exc))
    text = (zag_home / "zag.log").read_text()
    assert "provider_fault" in text and "Ab12Cd34" not in text and "[REDACTED:openai_key]" in text
    monkeypatch.setattr(diag, "_logger", None)


def test_index_columns_are_redacted_as_the_log_is(zag_home: Path) -> None:
    from zag.logs.index import Index

    with Index() as index:
        index.add_session(session_id="s1", provider="claude", state="running", cwd=f"/srv/{OPENAI}",
                          argv=["claude", "-p", f"key {OPENAI_PROJ}"], model="m")
        index.update_session("s1", cwd=f"/srv/{OPENAI}/x")
        index.add_resume(incident_id="i1", session_id="s1", provider="claude", resume_at=1.0,
                         raw=f"limit hit; Authorization: Bearer {OPENAI}")
        index.commit_backfill("codex", [{"session_id": "s2", "provider_session_id": "p", "cwd": f"/w/{OPENAI}",
                                         "model": None, "started_at": 1.0, "ended_at": 2.0, "last_seq": 1,
                                         "log_path": "x"}], [])
        rows = [index.get_session("s1"), index.get_session("s2"), index.get_resume("i1")]
        documents = [document.decode() for _, document in index.iter_session_json()]
    text = json.dumps([rows, documents])
    assert "Ab12Cd34" not in text and "Zx9_Yw8" not in text
    assert rows[0]["argv"] == ["claude", "-p", "key [REDACTED:openai_key]"]
    assert rows[0]["cwd"] == "/srv/[REDACTED:openai_key]/x"


@pytest.mark.parametrize("escaped", [
    rb"sk-\u0061nt-api03-A1b2C3d4E5f6G7h8A1b2C3d4E5f6G7h8",         # one letter escaped
    rb"\u0041\u0049za" + GOOGLE[4:].encode(),                        # a key spelled with two escapes
    rb"AKIA\u0049OSFODNN7EXAMPLE",
    b"aws_secret_access_key=" + AWS_SECRET.replace("w", "\\u0077").encode(),
])
def test_secret_spelled_with_json_escapes_in_json_passed_through_raw(tmp_path: Path, escaped: bytes) -> None:
    """A tool input or an unknown record is kept as the transcript's own JSON (msgspec.Raw), escapes and
    all; a malformed line is kept as text, its escapes one level down."""
    import msgspec

    from zag.logs.writer import SessionLogWriter

    raw = msgspec.Raw(b'{"type":"new-kind","data":"' + escaped + b'"}')
    log = tmp_path / "log.jsonl"
    with SessionLogWriter("z", "claude", path=log, redactor=Redactor()) as writer:
        writer.write({"type": "provider_status", "message": "new kind", "data": raw})
        writer.write_many([{"type": "tool_call", "input": raw},
                           {"type": "parse_warning", "raw": (b'{"content": "' + escaped).decode()}], "backfill")
    lines = log.read_bytes().splitlines()
    for line in lines:
        assert b"[REDACTED:" in line, line
        plain = line.decode().encode().decode("unicode_escape")  # every escape resolved, at every depth
        for secret in ("A1b2C3d4", GOOGLE[8:], "IOSFODNN7", AWS_SECRET[:12]):
            assert secret not in plain and secret not in plain.replace("\\", ""), line
        json.loads(line)


def test_escapes_in_text_without_a_secret_are_kept() -> None:
    line = codec.dumps_line({"type": "tool_result", "output": "print('\\u0041 \\/ \\u001b[0m sk-learn')"})
    assert Redactor().redact(line) == line


def test_backfill_leaves_no_secret_in_the_index(zag_home: Path, tmp_path: Path) -> None:
    """A backfill cursor keeps what tells apart the blocks of a message written over several lines; it
    held their first and last 48 characters, and a session's cwd, in the index as they were."""
    from zag.logs.backfill import run_backfill
    from zag.providers.claude import PROVIDER

    project = tmp_path / "claude" / "projects" / "-w"
    project.mkdir(parents=True)
    common = {"sessionId": "s-1", "cwd": f"/w/{OPENAI}", "timestamp": "2026-11-22T14:50:00.000Z"}
    message = {"id": "msg_1", "role": "assistant", "model": "claude-x"}
    records = [
        {"type": "user", "uuid": "u1", **common, "message": {"role": "user", "content": "go"}},
        {"type": "assistant", "uuid": "a1", "requestId": "r1", **common, "message": {
            **message, "content": [{"type": "thinking", "thinking": f"use {OPENAI_PROJ}", "signature": "x"}]}},
        {"type": "assistant", "uuid": "a2", "requestId": "r1", **common, "message": {
            **message, "content": [{"type": "text", "text": f"key {OPENAI}"}]}},
        {"type": "assistant", "uuid": "a3", "requestId": "r1", **common, "message": {
            **message, "content": [{"type": "tool_use", "input": {"command": f"echo {OPENAI}"}, "name": "Bash"}]}},
    ]
    (project / "s-1.jsonl").write_text("".join(json.dumps(record) + "\n" for record in records))
    [summary] = run_backfill([PROVIDER], env={"CLAUDE_CONFIG_DIR": str(tmp_path / "claude")}, jobs=1)
    assert summary.events >= 4
    for path in zag_home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert b"Ab12Cd34" not in data and b"Zx9_Yw8" not in data, path
            assert b"Ab12Cd34".hex().encode() not in data, path


def test_backfill_cursors_are_stored_redacted(zag_home: Path) -> None:
    """A codex cursor keeps the session's cwd (its state), as the transcript wrote it."""
    from zag.logs.index import Index

    cursor = {"v": 1, "state": {"cwd": f"/w/{OPENAI}", "model": "gpt"}}
    with Index() as index:
        index.save_backfill_cursor("codex", "a.jsonl", "s1", cursor, "fp")
        index.commit_backfill("codex", [], [("b.jsonl", "s2", cursor, "fp", None)])
        stored = [index.backfill_cursor("codex", key) for key in ("a.jsonl", "b.jsonl")]
    assert [entry[1]["state"]["cwd"] for entry in stored if entry] == ["/w/[REDACTED:openai_key]"] * 2


def test_base64_data_with_escape_like_text_is_not_rescanned(monkeypatch: pytest.MonkeyPatch) -> None:
    """`u0041` in base64 is no JSON escape (no backslash before it): the line is not unescaped again."""
    from zag.logs import redact

    calls: list[int] = []
    original = redact.Redactor._redact_escaped
    monkeypatch.setattr(redact.Redactor, "_redact_escaped",
                        lambda self, data, positions: calls.append(len(positions)) or original(self, data, positions))
    image = "iVBORw0KGgo" + "u0041" * 3 + "AAAA" * 50
    assert redacted(image) == image and calls == []


BEARER = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJlX19fX19fXw"


@pytest.mark.parametrize("text", [
    f"Authorization: Bearer\n{BEARER}",                                   # wrapped after the keyword
    f"Authorization: Bearer\r\n  {BEARER}",
    json.dumps({"headers": {"Authorization": f"Bearer\n{BEARER}"}}),    # JSON text: the `\n` escaped
    json.dumps(json.dumps({"Authorization": f"Bearer\t{BEARER}"})),     # and escaped again
])
def test_bearer_token_after_a_line_break_or_its_json_escape(text: str) -> None:
    out = redacted(text)
    assert BEARER[:12] not in out and BEARER[-12:] not in out and "[REDACTED:bearer_token]" in out


@pytest.mark.parametrize("text", [
    json.dumps({"SecretAccessKey": AWS_SECRET}).replace("/", "\\/"),          # PHP/Java JSON: `\/`
    json.dumps(json.dumps({"SecretAccessKey": AWS_SECRET}).replace("/", "\\/")),
    "Authorization: Bearer " + "abcDEF0123456789/ghiJKL+/mnoPQR==".replace("/", "\\/"),
])
def test_secrets_whose_slashes_are_written_as_json_escapes(text: str) -> None:
    out = redacted(text)
    assert "[REDACTED:" in out
    for part in ("wJalrXUtnFEMI", "K7MDENG", "bPxRfiCYEXAMPLEKEY", "abcDEF0123", "ghiJKL", "mnoPQR"):
        assert part not in out, out


def test_secrets_with_escaped_slashes_in_json_passed_through_raw(tmp_path: Path) -> None:
    """A transcript's own JSON kept raw (msgspec.Raw) with its writer's `\\/` escapes."""
    import msgspec

    from zag.logs.writer import SessionLogWriter

    escaped = AWS_SECRET.replace("/", "\\/")
    raw = msgspec.Raw(('{"SecretAccessKey":"' + escaped + '","h":"Bearer\\n' + BEARER.replace(".", "\\/")
                       + '"}').encode())
    log = tmp_path / "log.jsonl"
    with SessionLogWriter("z", "claude", path=log, redactor=Redactor()) as writer:
        writer.write({"type": "tool_call", "input": raw})
    [line] = log.read_bytes().splitlines()
    assert json.loads(line)["input"] == {"SecretAccessKey": "[REDACTED:aws_secret_key]",
                                         "h": "Bearer\n[REDACTED:bearer_token]"}


def test_ordinary_text_around_line_breaks_and_escaped_slashes_is_left_alone() -> None:
    ordinary = [
        "the bearer\nof bad news", "Authorization: Bearer\n<token>", "Bearer\\nToken", "bearer\tshort/path",
        json.dumps({"url": "https://example.com/a/b/c/d/e/f/g/h/i/j"}).replace("/", "\\/"),
        "secret_access_key = <set in ~/.aws/credentials>",
    ]
    for text in ordinary:
        assert redacted(text) == text


def _event(**fields: object) -> bytes:
    return codec.dumps_line({"seq": 3, "ts": "2026-12-07T18:57:10.905Z", "session_id": "fa619621-b899-4b3c-923c-"
                             "1f5bb251ce90", "provider": "claude", "provider_session_id": "d2cd7146-7fd2-4a35-9773-"
                             "ff12b9a20b3e", "source": "wrapper", "type": "session_started", **fields})


def test_user_patterns_leave_zag_field_names_and_the_envelope_alone() -> None:
    """A pattern such as `session` (or one for UUIDs) renamed `session_id` to `[REDACTED:custom]_id` and
    rewrote the event type and ids: `zag reindex` then made the session a dead row without a cwd."""
    uuid_pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    line = _event(argv=["claude", "-p", "my session 2d3e4f5a-6b7c-4d8e-9f0a-1b2c3d4e5f6a"], data={"session": "x"})
    event = json.loads(Redactor(["session", uuid_pattern]).redact(line))
    original = json.loads(line)
    assert list(event) == list(original)
    assert {key: event[key] for key in original if key not in ("argv", "data")} == {
        key: original[key] for key in original if key not in ("argv", "data")}
    assert event["argv"][2] == "my [REDACTED:custom] [REDACTED:custom]"
    assert event["data"] == {"session": "x"}  # keys are never rewritten, at any depth


@pytest.mark.parametrize(("patterns", "expected"), [
    ([""], "xx key [REDACTED:openai_key] y: {a}"),
    (["(?=y)"], "xx key [REDACTED:openai_key] y: {a}"),
    (["x*"], "[REDACTED:custom] key [REDACTED:openai_key] y: {a}"),
    (["x*", "[{}:,\\[\\]]"], "[REDACTED:custom] key [REDACTED:openai_key] y[REDACTED:custom] [REDACTED:custom]a"
                              "[REDACTED:custom]"),
    (["[a-z]"], "[REDACTED:custom] [REDACTED:custom] [REDACTED:openai_key] [REDACTED:custom]: {[REDACTED:custom]}"),
    (["openai"], "xx key [REDACTED:openai_key] y: {a}"),
    (["key"], "xx [REDACTED:custom] [REDACTED:openai_key] y: {a}"),
    (["_key\\] y"], "xx key [REDACTED:custom]: {a}"),  # over part of a marker: the marker goes into it
])
def test_user_patterns_that_match_empty_text_or_zag_markers_keep_the_text_readable(patterns: list[str],
                                                                                    expected: str) -> None:
    """`""` or `x*` matched between every two characters (each replaced by a marker: the text grew 10x),
    and a later pattern matched inside the markers an earlier one wrote (`[REDACTED[REDACTED:custom]...`).
    Empty matches replace nothing, and every pattern matches the text as it came."""
    assert redacted(f"xx key {OPENAI} y: {{a}}", Redactor(patterns)) == expected


def test_overlapping_matches_of_several_patterns_are_one_replacement() -> None:
    out = redacted("id corp-123-secret end", Redactor([r"corp-\d+", r"\d+-secret"]))
    assert out == "id [REDACTED:custom] end"
