"""The supervisor of one agent child: launch, PTY/pipe relay, heartbeat, registry, limits and resume."""
