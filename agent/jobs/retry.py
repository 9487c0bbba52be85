"""The retry policy, written down in one place.

Which errors: the platform clients classify (``TransientError`` vs ``PermanentError``, see platforms/http.py).
How long: "full jitter" exponential backoff, ``uniform(0, min(cap, base * 2**n))``, never shorter than the
server's ``Retry-After``. How many times: transient errors are retried until they stop (a booth may be offline for
hours; the photo must go out when it is back), bounded in time only by ``task_deadline_s`` once a task exists.
The delay is stored in the job's ``next_attempt_at``, so a restart keeps it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# Why a job waits: "network" waits end early when the platform is seen again; "rate_limit" waits are honoured.
WAIT_NETWORK = "network"
WAIT_RATE_LIMIT = "rate_limit"
WAIT_POLL = "poll"


@dataclass
class RetryPolicy:
    base_s: float = 2.0
    cap_s: float = 300.0
    rng: random.Random | None = None

    def delay(self, failures: int, retry_after: float | None = None) -> float:
        """Seconds to wait after the `failures`-th transient failure in a row (1-based)."""
        rng = self.rng or random
        ceiling = min(self.cap_s, self.base_s * (2 ** min(max(0, failures - 1), 40)))  # no float overflow
        # full jitter, but never hammer: at least a quarter of the base
        d = max(self.base_s / 4, rng.uniform(0, ceiling))
        if retry_after is not None and retry_after > 0:
            d = max(d, min(retry_after, self.cap_s * 4))
        return d

    @staticmethod
    def wait_kind(kind: str, retry_after: float | None) -> str:
        if kind == "rejected" or retry_after is not None:
            return WAIT_RATE_LIMIT
        return WAIT_NETWORK
