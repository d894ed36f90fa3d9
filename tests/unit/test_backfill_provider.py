"""A small provider for the backfill runner's tests: one session per `<root>/<id>.jsonl` file.

Each line is an event body as the runner receives it from a reader (`{"type": ..., "ts": ...}`),
except for a few special lines: `{"limit": {...}}` becomes a `LimitSignal`, `{"hint": "id"}` a
`SessionIdHint`, `{"explode": true}` makes the reader raise, `{"info": {...}}` updates the reader's
optional `info` mapping (what a reader learnt, e.g. the cwd), and a line that is not JSON becomes a
`parse_warning`. The root comes from `env["TESTPROV_ROOT"]`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from zag.logs import events
from zag.providers.base import HistorySource, LimitSignal, SessionIdHint
from zag.providers.tail import JsonlTail, fingerprint


class ReaderExploded(RuntimeError):
    pass


class JsonlTestReader:
    def __init__(self, path: Path, cursor: Any) -> None:
        self.tail = JsonlTail(path, cursor)
        self.info: dict[str, Any] = {}

    def read(self) -> Iterator[Any]:
        for line in self.tail.lines():
            try:
                record = json.loads(line)
            except ValueError:
                yield events.parse_warning("not JSON", line)
                continue
            if not isinstance(record, dict):
                yield events.parse_warning("not an object", line)
            elif record.get("explode"):
                raise ReaderExploded("reader failed on purpose")
            elif "limit" in record:
                spec = record["limit"]
                yield LimitSignal(provider="testprov", source="provider_file", raw=spec.get("raw", ""),
                                  structured=True, scope=spec.get("scope", "unknown"),
                                  reset_at=spec.get("reset_at"), observed_at=spec.get("at", 0.0))
            elif "info" in record:
                self.info.update(record["info"])
            elif "hint" in record:
                yield SessionIdHint(record["hint"])
            else:
                yield dict(record)

    def cursor(self) -> Any:
        return self.tail.cursor()

    def close(self) -> None:
        pass


class JsonlTestProvider:
    name = "testprov"
    executable = "testprov"
    install_hint = "none"

    def discover(self, env: Mapping[str, str]) -> Iterator[HistorySource]:
        root = Path(env["TESTPROV_ROOT"])
        for path in sorted(root.glob("*.jsonl")):
            yield HistorySource(
                source_key=path.stem, provider_session_id=path.stem, paths=(path,),
                fingerprint=fingerprint((path,)), cwd=f"/work/{path.stem}",
            )

    def open_reader(self, source: HistorySource, cursor: Any) -> JsonlTestReader:
        return JsonlTestReader(source.paths[0], cursor)


def write_lines(path: Path, records: list[Any], *, append: bool = False) -> None:
    """Write records (dicts as JSON, strings as they are) one per line."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for record in records:
            handle.write((record if isinstance(record, str) else json.dumps(record)) + "\n")


def conversation(n: int, *, start_minute: int = 0, model: str = "test-model-1") -> list[dict[str, Any]]:
    """`n` alternating user/assistant bodies, one minute apart."""
    records = []
    for i in range(n):
        minute = start_minute + i
        ts = events.format_ts(events.parse_ts("2026-01-01T10:00:00.000Z") + 60 * minute)
        if i % 2 == 0:
            records.append({"type": "user_message", "ts": ts, "text": f"question {minute}"})
        else:
            records.append({"type": "assistant_message", "ts": ts, "text": f"answer {minute}", "model": model})
    return records
