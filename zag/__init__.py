"""zag: a process supervisor for AI coding-agent CLIs (Claude Code, Codex, Gemini CLI, Goose)."""

__version__ = "0.1.0"
