"""The session manager and the metrics it feeds into experiments: resume, one active
session per topic, idle expiry (by the beat task and by the rule), feedback, returns; every
event lands exactly once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from conversations import tasks
from conversations.models import ConversationSession
from conversations.services import sessions, turns
from experiments.models import Event

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0) - timedelta(days=30)


def events(metric: str | None = None) -> list[tuple[str, str, float]]:
    rows = Event.objects.order_by("event_id")
    if metric:
        rows = rows.filter(metric__key=metric)
    return list(rows.values_list("event_id", "unit_id", "value"))


def start(user="mina-42", topic="career", at=T0, version="canary"):
    return sessions.start_session(user_id=user, topic=topic, version=version, now=at).session


def test_starting_again_resumes_the_active_session_of_the_same_topic(mina):
    first = mina.start("Data  Science")
    again = mina.start("data science")
    other = mina.start("interviews")
    assert (first.status_code, again.status_code, other.status_code) == (201, 200, 201)
    assert again.json()["session_id"] == first.json()["session_id"]
    assert again.json()["resumed"] is True and first.json()["resumed"] is False
    assert again.json()["topic"] == "data science"
    assert other.json()["session_id"] != first.json()["session_id"]
    assert ConversationSession.objects.count() == 2


def test_the_database_allows_one_active_session_per_user_and_topic():
    start()
    with pytest.raises(IntegrityError), transaction.atomic():
        ConversationSession.objects.create(user_id="mina-42", topic="career", version="stable")
    # Ended sessions do not count.
    ConversationSession.objects.filter(user_id="mina-42").update(
        status="ended", outcome="reached", ended_at=T0
    )
    ConversationSession.objects.create(user_id="mina-42", topic="career", version="stable")


def test_an_idle_session_is_expired_by_the_task_with_its_duration(mina):
    session = start()
    turns.send_message(
        session_id=session.id, user_id="mina-42", text="Hello", now=T0 + timedelta(minutes=5)
    )
    assert sessions.expire_idle_sessions(now=T0 + timedelta(minutes=34)) == 0  # idle 29 min
    assert sessions.expire_idle_sessions(now=T0 + timedelta(minutes=35)) == 1
    assert sessions.expire_idle_sessions(now=T0 + timedelta(minutes=36)) == 0  # not twice
    session.refresh_from_db()
    assert session.status == "expired"
    assert session.ended_at == T0 + timedelta(minutes=35)  # last activity + 30 min
    assert session.outcome == ""
    # The mentee was there 5 minutes; the idle half hour is not part of it.
    assert events() == [(f"conv-{session.id}-session_duration", "mina-42", 300.0)]


def test_the_beat_task_expires_sessions_idle_for_30_minutes():
    idle, fresh = start(), start(topic="salary")
    now = timezone.now()
    ConversationSession.objects.filter(id=idle.id).update(
        started_at=now - timedelta(minutes=45), last_activity_at=now - timedelta(minutes=31)
    )
    ConversationSession.objects.filter(id=fresh.id).update(
        started_at=now - timedelta(minutes=45), last_activity_at=now - timedelta(minutes=29)
    )
    assert tasks.expire_idle_sessions() == 1
    assert ConversationSession.objects.get(id=idle.id).status == "expired"
    assert ConversationSession.objects.get(id=fresh.id).status == "active"
    assert [e[0] for e in events("session_duration")] == [f"conv-{idle.id}-session_duration"]
    assert events()[0][2] == pytest.approx(14 * 60)


def test_an_idle_session_expires_by_the_rule_even_before_the_task_runs(mina):
    session_id = mina.start().json()["session_id"]
    ConversationSession.objects.filter(id=session_id).update(
        last_activity_at=timezone.now() - timedelta(minutes=40)
    )
    answer = mina.say(session_id, "Are you still there?")
    assert answer.status_code == 409
    assert "expired after 30 minutes" in answer.json()["detail"]
    assert ConversationSession.objects.get(id=session_id).status == "expired"
    assert len(events("session_duration")) == 1
    assert mina.end(session_id).status_code == 409
    # Starting the same topic again gives a new session, not the stale one.
    again = mina.start()
    assert again.status_code == 201 and again.json()["session_id"] != session_id


def test_starting_a_topic_whose_session_idled_out_expires_it_and_starts_anew():
    old = start(at=T0)
    new = sessions.start_session(
        user_id="mina-42", topic="career", version="canary", now=T0 + timedelta(hours=2)
    )
    assert not new.resumed and new.session.id != old.id
    old.refresh_from_db()
    assert old.status == "expired"
    assert events("session_duration") == [(f"conv-{old.id}-session_duration", "mina-42", 0.0)]


def test_ending_with_the_outcome_reached_emits_duration_and_completion():
    reached, abandoned = start(), start(topic="salary")
    sessions.end_session(
        session_id=reached.id, user_id="mina-42", outcome="reached", now=T0 + timedelta(minutes=12)
    )
    sessions.end_session(
        session_id=abandoned.id,
        user_id="mina-42",
        outcome="abandoned",
        now=T0 + timedelta(minutes=3),
    )
    assert events() == [
        (f"conv-{reached.id}-completion", "mina-42", 1.0),
        (f"conv-{reached.id}-session_duration", "mina-42", 720.0),
        (f"conv-{abandoned.id}-session_duration", "mina-42", 180.0),
    ]
    stored = Event.objects.get(event_id=f"conv-{reached.id}-completion")
    assert stored.timestamp == T0 + timedelta(minutes=12)


def test_feedback_is_one_rating_per_session_and_a_retry_is_harmless(mina):
    session_id = mina.start().json()["session_id"]
    first = mina.rate(session_id, 4)
    assert first.status_code == 200 and first.json()["rating"] == 4
    assert mina.rate(session_id, 4).status_code == 200  # the front end retried
    changed = mina.rate(session_id, 2)
    assert changed.status_code == 409
    assert "already rated 4" in changed.json()["detail"]
    assert events("satisfaction") == [(f"conv-{session_id}-satisfaction", "mina-42", 4.0)]
    # An ended session can still be rated.
    other = mina.start("salary").json()["session_id"]
    mina.end(other, "abandoned")
    assert mina.rate(other, 5).status_code == 200


def test_a_return_is_a_new_session_within_7_days_of_the_previous_end_counted_once():
    first = start(at=T0)
    first_end = T0 + timedelta(minutes=20)
    sessions.end_session(session_id=first.id, user_id="mina-42", outcome="reached", now=first_end)
    back = start(at=first_end + timedelta(days=7))  # exactly 7 days after: still a return
    back_end = first_end + timedelta(days=7, minutes=10)
    sessions.end_session(session_id=back.id, user_id="mina-42", outcome="abandoned", now=back_end)
    late = start(at=back_end + timedelta(days=7, minutes=1))  # a minute too late
    only_once = start(user="joon-7", at=T0)  # never came back
    now = back_end + timedelta(days=8)
    assert sessions.compute_returns(now=now) == 1
    assert sessions.compute_returns(now=now) == 0
    assert tasks.compute_returns() == 0  # the task as beat runs it: nothing left to do
    assert events("return") == [(f"conv-{back.id}-return", "mina-42", 1.0)]
    assert Event.objects.get(metric__key="return").timestamp == back.started_at
    checked = ConversationSession.objects.filter(return_checked_at__isnull=False)
    assert set(checked.values_list("id", flat=True)) == {first.id, back.id, late.id, only_once.id}


def test_a_session_running_alongside_is_not_a_previous_one():
    running = start(topic="career", at=T0)
    parallel = start(topic="salary", at=T0 + timedelta(minutes=5))
    sessions.end_session(
        session_id=running.id, user_id="mina-42", outcome="reached", now=T0 + timedelta(minutes=9)
    )
    assert sessions.compute_returns(now=T0 + timedelta(minutes=10)) == 0
    assert parallel.id and events("return") == []


def test_the_beat_schedules_exist():
    schedules = {
        task.task: task.interval.every
        for task in PeriodicTask.objects.filter(task__startswith="conversations.")
    }
    assert schedules == {
        "conversations.expire_idle_sessions": 1,
        "conversations.compute_returns": 10,
    }
