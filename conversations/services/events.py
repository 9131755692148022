"""Metric events of conversations, through the experiments' ingestion service.

Event ids are derived from the session (``conv-<session id>-<metric>``), so a retried call,
a task run twice or two workers racing can never count a session twice: ingestion stores an
event id once. Binomial metrics (completion, return) are emitted only on success; the
analysis counts a unit as converted when it has at least one event.
"""

from __future__ import annotations

import logging
from datetime import datetime

from experiments.services.ingestion import ingest_events

logger = logging.getLogger(__name__)

SESSION_DURATION = "session_duration"
COMPLETION = "completion"
SATISFACTION = "satisfaction"
RETURN = "return"


def event_id(session_id: int, metric: str) -> str:
    return f"conv-{session_id}-{metric}"


def emit(
    *, session_id: int, user_id: str, metric: str, value: float, at: datetime, now: datetime
) -> None:
    """Store one event (a no-op when it was stored before). Called inside the caller's
    transaction, so the event commits with the state change that caused it."""
    result = ingest_events(
        [
            {
                "event_id": event_id(session_id, metric),
                "unit_id": user_id,
                "metric": metric,
                "value": value,
                "timestamp": at.isoformat(),
            }
        ],
        now=now,
    )
    if result.rejected:
        # Only a deployment error gets here (the metric rows come from a data migration);
        # losing a metric event must not fail the mentee's request.
        logger.error("conversation event %s rejected: %s", metric, result.rejected)
