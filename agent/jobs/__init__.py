"""The durable queue: the ``Job`` record (model.py), the SQLite store (store.py), the lifecycle - the one table
of allowed transitions and the only writer of a job's state (lifecycle.py) -, the retry policy (retry.py), which
platforms answer (reachability.py) and the scheduler that picks due jobs and runs their next step (scheduler.py).
actions.py holds what the core and the CLI share beyond a plain move (cancel with the remote task)."""
