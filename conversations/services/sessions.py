"""The session manager: start (or resume), end, rate, expire after idling, and the return
metric.

Metric events are stored inside the same transaction as the state change that causes them,
with ids derived from the session (see ``events``): an end that is retried, an expiry that
two workers race for, or a task that runs twice never counts a session twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.utils import timezone

from common.errors import DomainError
from conversations.models import ConversationSession
from conversations.services import events

logger = logging.getLogger(__name__)

IDLE_TIMEOUT = timedelta(minutes=30)
RETURN_WINDOW = timedelta(days=7)
# Work per task run is bounded; a backlog is picked up by the next run (every minute).
EXPIRE_BATCH = 5_000
RETURNS_BATCH = 5_000

Status = ConversationSession.Status


@dataclass(frozen=True, slots=True)
class StartResult:
    session: ConversationSession
    resumed: bool


def normalise_topic(topic: str) -> str:
    """Topics compare case- and spacing-insensitively: "Career  Change" is "career change"."""
    return " ".join(topic.split()).lower()


def is_idle(session: ConversationSession, now: datetime) -> bool:
    return session.status == Status.ACTIVE and now - session.last_activity_at >= IDLE_TIMEOUT


def lock_session(*, session_id: int, user_id: str) -> ConversationSession:
    """The mentee's session, row-locked for the current transaction. Another user's session
    answers exactly like a missing one, so ids cannot be probed."""
    session = (
        ConversationSession.objects.select_for_update()
        .filter(id=session_id, user_id=user_id)
        .first()
    )
    if session is None:
        raise DomainError(f"Unknown conversation session {session_id}.", code="not_found")
    return session


def expired_error(session: ConversationSession) -> DomainError:
    return DomainError(
        f"Conversation session {session.id} expired after {int(IDLE_TIMEOUT.total_seconds() // 60)}"
        " minutes without activity; start a new one.",
        code="conflict",
    )


def _expire(
    *, session_id: int, user_id: str, started_at: datetime, last_activity_at: datetime,
    now: datetime,
) -> bool:  # fmt: skip
    """Expire one idle session if it is still the same idle session (a conditional UPDATE
    on its last activity: a message that arrived meanwhile wins), and emit its duration.
    Must run inside a transaction. The duration is the time the mentee was there, from the
    start to the last activity; the 30 idle minutes are not part of it."""
    ended_at = last_activity_at + IDLE_TIMEOUT
    claimed = ConversationSession.objects.filter(
        id=session_id, status=Status.ACTIVE, last_activity_at=last_activity_at
    ).update(status=Status.EXPIRED, ended_at=ended_at)
    if claimed:
        events.emit(
            session_id=session_id,
            user_id=user_id,
            metric=events.SESSION_DURATION,
            value=(last_activity_at - started_at).total_seconds(),
            at=ended_at,
            now=now,
        )
    return bool(claimed)


def expire_locked_session(session: ConversationSession, *, now: datetime) -> None:
    """Expire ``session`` (locked by the caller, known to be idle) and update the object."""
    _expire(
        session_id=session.id,
        user_id=session.user_id,
        started_at=session.started_at,
        last_activity_at=session.last_activity_at,
        now=now,
    )
    session.status = Status.EXPIRED
    session.ended_at = session.last_activity_at + IDLE_TIMEOUT


def start_session(
    *, user_id: str, topic: str, version: str, goal: str = "", now: datetime | None = None
) -> StartResult:
    """Start a session, or resume the mentee's active session on the same topic.

    Resuming counts as activity. An active session that has been idle for the timeout is
    expired first (whether or not the beat task got to it yet) and a new one starts: the
    rule, not the task's timing, decides. Two starts racing for the same user and topic end
    with one session: the partial unique constraint lets one insert win, the other resumes it.
    """
    now = now or timezone.now()
    topic = normalise_topic(topic)
    if not topic:
        raise DomainError("The topic must not be empty.", field="topic")
    if version not in ConversationSession.Version.values:
        raise DomainError(f"Unknown version '{version}'.", field="version")
    with transaction.atomic():
        current = (
            ConversationSession.objects.select_for_update()
            .filter(user_id=user_id, topic=topic, status=Status.ACTIVE)
            .first()
        )
        if current is not None and not is_idle(current, now):
            current.last_activity_at = max(current.last_activity_at, now)
            current.save(update_fields=["last_activity_at"])
            return StartResult(current, resumed=True)
        if current is not None:
            expire_locked_session(current, now=now)
        try:
            with transaction.atomic():  # a savepoint: the transaction survives a lost race
                session = ConversationSession.objects.create(
                    user_id=user_id,
                    topic=topic,
                    version=version,
                    goal=goal.strip(),
                    started_at=now,
                    last_activity_at=now,
                )
        except IntegrityError:
            winner = ConversationSession.objects.get(
                user_id=user_id, topic=topic, status=Status.ACTIVE
            )
            return StartResult(winner, resumed=True)
    return StartResult(session, resumed=False)


def end_session(
    *, session_id: int, user_id: str, outcome: str, now: datetime | None = None
) -> ConversationSession:
    """End an active session with its outcome; emits session_duration, and completion when
    the outcome is ``reached``.

    Errors: unknown session or another user's → not_found; already ended or expired (also
    when it has idled past the timeout and is expired now) → conflict. Because a second end
    is refused and event ids are per session, a retried end never counts twice."""
    now = now or timezone.now()
    if outcome not in ConversationSession.Outcome.values:
        raise DomainError("outcome must be 'reached' or 'abandoned'.", field="outcome")
    with transaction.atomic():
        session = lock_session(session_id=session_id, user_id=user_id)
        just_expired = is_idle(session, now)
        if just_expired:
            expire_locked_session(session, now=now)
        elif session.status != Status.ACTIVE:
            raise DomainError(
                f"Conversation session {session_id} is already {session.status}.", code="conflict"
            )
        else:
            session.status = Status.ENDED
            session.outcome = outcome
            session.ended_at = now
            session.save(update_fields=["status", "outcome", "ended_at"])
            events.emit(
                session_id=session.id,
                user_id=user_id,
                metric=events.SESSION_DURATION,
                value=(now - session.started_at).total_seconds(),
                at=now,
                now=now,
            )
            if outcome == ConversationSession.Outcome.REACHED:
                events.emit(
                    session_id=session.id,
                    user_id=user_id,
                    metric=events.COMPLETION,
                    value=1,
                    at=now,
                    now=now,
                )
    if just_expired:  # raised after the commit, so the expiry itself is kept
        raise expired_error(session)
    return session


def rate_session(
    *, session_id: int, user_id: str, rating: int, now: datetime | None = None
) -> ConversationSession:
    """Record the mentee's 1–5 rating of a session (active, ended or expired); emits
    satisfaction.

    One rating per session: the satisfaction metric is a mean, so a session must weigh once,
    and an event, once stored, is never rewritten. Sending the same rating again is a
    harmless retry (200, nothing changes); a different one → conflict."""
    now = now or timezone.now()
    if isinstance(rating, bool) or not isinstance(rating, int) or not 1 <= rating <= 5:
        raise DomainError("rating must be an integer from 1 to 5.", field="rating")
    with transaction.atomic():
        session = lock_session(session_id=session_id, user_id=user_id)
        if session.rating is not None:
            if session.rating == rating:
                return session
            raise DomainError(
                f"Conversation session {session_id} was already rated {session.rating}; "
                "a rating cannot be changed.",
                code="conflict",
            )
        session.rating = rating
        session.save(update_fields=["rating"])
        events.emit(
            session_id=session.id,
            user_id=user_id,
            metric=events.SATISFACTION,
            value=rating,
            at=now,
            now=now,
        )
    return session


def expire_idle_sessions(*, now: datetime | None = None) -> int:
    """Expire every active session idle for the timeout; returns how many this call expired.
    Safe to run twice or in two workers at once: each session is claimed by a conditional
    UPDATE, in its own short transaction with its duration event."""
    now = now or timezone.now()
    idle = ConversationSession.objects.filter(
        status=Status.ACTIVE, last_activity_at__lte=now - IDLE_TIMEOUT
    ).values_list("id", "user_id", "started_at", "last_activity_at")[:EXPIRE_BATCH]
    expired = 0
    for session_id, user_id, started_at, last_activity_at in idle:
        with transaction.atomic():
            expired += _expire(
                session_id=session_id,
                user_id=user_id,
                started_at=started_at,
                last_activity_at=last_activity_at,
                now=now,
            )
    return expired


def compute_returns(*, now: datetime | None = None) -> int:
    """Emit ``return`` for every session that is a return: its mentee had ended (or idled
    out of) another session at most 7 days before this one started. Each session is looked
    at once (claimed with a conditional UPDATE), so the event is emitted once; it carries
    the time the mentee came back. Returns how many return events this call emitted.

    Idle sessions are expired first, so every session that ended before a check has its end
    time; a session still running when another starts can only end after it, so looking at
    each new session once is enough."""
    now = now or timezone.now()
    expire_idle_sessions(now=now)
    unchecked = ConversationSession.objects.filter(
        return_checked_at__isnull=True, started_at__lte=now
    ).values_list("id", "user_id", "started_at")[:RETURNS_BATCH]
    returned = 0
    for session_id, user_id, started_at in unchecked:
        with transaction.atomic():
            claimed = ConversationSession.objects.filter(
                id=session_id, return_checked_at__isnull=True
            ).update(return_checked_at=now)
            if not claimed:
                continue
            came_back = (
                ConversationSession.objects.filter(
                    user_id=user_id,
                    ended_at__isnull=False,
                    ended_at__lte=started_at,
                    ended_at__gte=started_at - RETURN_WINDOW,
                )
                .exclude(id=session_id)
                .exists()
            )
            if came_back:
                events.emit(
                    session_id=session_id,
                    user_id=user_id,
                    metric=events.RETURN,
                    value=1,
                    at=started_at,
                    now=now,
                )
                returned += 1
    return returned
