"""Process states of a supervised session, as plain constants (no imports, so anything may use them).

`running`, `waiting` and `exited` are stored in the index by the supervisor itself; `dead` is never
stored: readers derive it when a session claims to be running or waiting but its supervisor is gone
(pid missing, pid reused by another process, or heartbeats stopped).
"""

RUNNING = "running"
WAITING = "waiting"  # a usage limit was hit; a resume is scheduled
EXITED = "exited"
DEAD = "dead"

LIVE_STATES = (RUNNING, WAITING)
ALL_STATES = (RUNNING, WAITING, EXITED, DEAD)

# Missed heartbeats after which a silent supervisor counts as dead.
DEAD_AFTER_HEARTBEATS = 3

# Status of a scheduled resume (usage-limit incident) in the index.
RESUME_PENDING = "pending"
RESUME_RESUMING = "resuming"
RESUME_DONE = "done"
RESUME_CANCELLED = "cancelled"
RESUME_FAILED = "failed"
RESUME_OPEN_STATES = (RESUME_PENDING, RESUME_RESUMING)
