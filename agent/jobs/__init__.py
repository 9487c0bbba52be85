"""The durable queue: the ``Job`` record (model.py), its SQLite rows (rows.py) and store (store.py), the lifecycle
- the one table of allowed transitions and the only writer of a job's state (lifecycle.py) -, the retry policy
(retry.py), and actions.py: what the core and the CLI share beyond a plain move (cancel with the remote task).
Nothing here imports the steps or the scheduler (agent/scheduler/), which use it."""
