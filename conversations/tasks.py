"""Thin periodic tasks: call a service, which is safe to run twice (it claims each session
with a conditional UPDATE)."""

from celery import shared_task

from conversations.services import sessions


@shared_task(name="conversations.expire_idle_sessions")
def expire_idle_sessions() -> int:
    """Every minute: sessions idle for 30 minutes become expired (with their duration)."""
    return sessions.expire_idle_sessions()


@shared_task(name="conversations.compute_returns")
def compute_returns() -> int:
    """Every few minutes: a `return` event for each session started within 7 days of the
    end of the mentee's previous one."""
    return sessions.compute_returns()
