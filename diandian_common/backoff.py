"""How long a repair task waits before it sends a message again (issue 20).

The repair tasks (orders' ``resend_stuck`` and ``audit_pipeline``, certificates'
``audit_revocations``) re-send a message whose answer did not come. The consumer may still be
working through the previous copy — retrying it with back-off through a storage or Redis
outage — and a copy sent on every pass would start one more retry chain each time (issue 20:
603 renders for 100 stuck orders). So each re-send of a message waits twice as long as the
last: the first after ``base`` (the step's grace), then 2 × base, 4 × base … up to an hour.
"""
from __future__ import annotations

from datetime import timedelta

# However often a message was re-sent, it is tried again at least this often: a consumer
# back from a long outage should not wait longer than that for its repair.
LONGEST_WAIT = timedelta(hours=1)


def wait_after(resends: int, base: timedelta, longest: timedelta = LONGEST_WAIT) -> timedelta:
    """How long the ``resends``-th re-send of a message waits before the next one."""
    wait = base
    for _ in range(1, resends):   # doubling stops at the cap: 2 ** resends would overflow timedelta
        if wait >= longest:
            break
        wait *= 2
    return min(wait, longest)
