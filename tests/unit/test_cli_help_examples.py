"""Every `--help` ends its text with a runnable example block: `Example(s):` and then one `zag …` command
per line. click rewraps a paragraph unless it starts with `\\b`, which once split `zag --help`'s and
`zag backfill --help`'s examples into paragraphs with blank lines between them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from zag.cli import COMMANDS, cli

COMMAND_LINES = [[], *([name] for name in COMMANDS), ["usage", "list"], ["usage", "cancel"]]


def _examples(help_text: str) -> list[str]:
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() in ("Example:", "Examples:"))
    block = []
    for line in lines[start + 1:]:
        if not line.strip():
            break
        block.append(line.strip())
    return block


@pytest.mark.parametrize("command", COMMAND_LINES, ids=lambda c: " ".join(c) or "zag")
def test_help_has_an_example_block_of_zag_commands(command: list[str]) -> None:
    result = CliRunner().invoke(cli, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, result.output
    examples = _examples(result.output)
    assert examples, result.output
    for line in examples:
        assert line.startswith(("zag ", 'eval "$(zag ')), (command, line)
    if command:
        assert any(" ".join(command) in line for line in examples), (command, examples)
