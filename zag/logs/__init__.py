"""The unified session log: event schema, writer, reader, index, follower and backfill runner."""
