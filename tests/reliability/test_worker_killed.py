"""A worker killed with `kill -9` in the middle of a task: the task runs again
on the next worker, because tasks are acknowledged late and Redis hands an
unacknowledged task out again after the visibility timeout, which
config/settings.py derives from the task time limits.

Real processes: a private `redis-server` on a free port, a Celery worker
process on it and the test database, and a webhook receiver (a real local
HTTP server) that holds the first delivery open, so the task is certainly
mid-run when its worker is killed. The task is the project's own
`rollout.send_notification`; the assertion is on the Notification row it
writes."""

import os
import signal
from collections.abc import Iterator

import pytest
from celery import Celery

from rollout.models import Notification, NotificationChannel
from tests.integration.worker import celery_worker, wait_for
from tests.reliability.redis_server import PrivateRedis

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

# Hard time limits of 4 s give a visibility timeout of 5 s (config/settings.py),
# so the test waits seconds for the redelivery, not the production 11 minutes.
SHORT_LIMITS = {
    "CELERY_TASK_TIME_LIMIT": "4",
    "CELERY_TASK_SOFT_TIME_LIMIT": "3",
    "TRAINING_TASK_TIME_LIMIT": "4",
    "TRAINING_TASK_SOFT_TIME_LIMIT": "3",
}


@pytest.fixture
def private_redis(tmp_path) -> Iterator[str]:
    """A redis-server of this test's own, without persistence; killed at the end."""
    server = PrivateRedis(tmp_path).start()
    try:
        yield server.url()
    finally:
        server.stop()


def _pending_notification(target: str) -> Notification:
    channel = NotificationChannel.objects.create(name="hook", kind="slack", target=target)
    return Notification.objects.create(
        channel=channel,
        event="rollback",
        message={
            "event": "rollback",
            "severity": "critical",
            "rollout_key": "drill",
            "rollout_name": "Drill",
            "title": "Drill rolled back",
            "text": "a drill of the redelivery",
            "url": "/rollouts/drill/",
            "fields": {},
            "dedup_key": "drill:rollback:1",
        },
    )


def test_a_task_whose_worker_is_killed_runs_again_on_the_next_worker(
    private_redis, receiver, tmp_path
):
    notification = _pending_notification(receiver.url())
    receiver.delay_s = 30  # hold the first delivery open: the task is mid-run

    with celery_worker(
        redis_url=private_redis, data_dir=tmp_path / "first", extra_env=SHORT_LIMITS
    ) as first:
        Celery("test-producer", broker=private_redis).send_task(
            "rollout.send_notification", args=[notification.id]
        )
        assert wait_for(lambda: len(receiver.requests) == 1, timeout=60)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)

    notification.refresh_from_db()
    assert notification.status == Notification.Status.PENDING
    assert notification.attempts == 0

    receiver.delay_s = 0  # the next delivery is answered at once
    # Handed out again once the visibility timeout has passed: seconds here,
    # where Redis's default would have kept it for an hour.
    with celery_worker(
        redis_url=private_redis, data_dir=tmp_path / "second", extra_env=SHORT_LIMITS
    ):
        assert wait_for(
            lambda: Notification.objects.get(id=notification.id).status == Notification.Status.SENT,
            timeout=60,
        )

    notification.refresh_from_db()
    assert notification.attempts == 1
    assert len(receiver.requests) == 2  # the killed attempt and the one that completed
    assert receiver.requests[0].body == receiver.requests[1].body


def test_no_task_runs_longer_than_the_visibility_timeout():
    """A task whose hard time limit reached the visibility timeout would be
    handed to a second worker while the first still runs it."""
    from django.conf import settings

    from config.celery import app

    app.loader.import_default_modules()
    project_tasks = {name: task for name, task in app.tasks.items() if "." in name}
    assert "recommendations.train_models" in project_tasks
    for name, task in project_tasks.items():
        if name.startswith("celery."):
            continue
        limit = task.time_limit or settings.CELERY_TASK_TIME_LIMIT
        assert limit < settings.BROKER_VISIBILITY_TIMEOUT, name
