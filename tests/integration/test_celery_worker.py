"""A real worker process executes our tasks, on Redis and on the embedded
broker, and embedded beat schedules from the database."""

import pytest
from celery import Celery
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from common.models import WorkerHeartbeat
from tests.integration.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def _producer(*, broker_url: str) -> Celery:
    return Celery("test-producer", broker=broker_url)


def _manual_heartbeats() -> int:
    return WorkerHeartbeat.objects.filter(source=WorkerHeartbeat.Source.MANUAL).count()


def test_a_worker_on_redis_runs_a_task_the_database_sees(redis_url, tmp_path):
    producer = _producer(broker_url=redis_url)
    with celery_worker(redis_url=redis_url, data_dir=tmp_path):
        producer.send_task("common.record_heartbeat", args=["manual"])
        assert wait_for(lambda: _manual_heartbeats() == 1, timeout=60)


def test_a_worker_on_the_embedded_broker_runs_a_task_the_database_sees(db, tmp_path):
    producer = _producer(broker_url=f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}")
    with celery_worker(redis_url="", data_dir=tmp_path):
        producer.send_task("common.record_heartbeat", args=["manual"])
        assert wait_for(lambda: _manual_heartbeats() == 1, timeout=60)


def test_embedded_beat_schedules_from_the_database(redis_url, tmp_path):
    every_second, _ = IntervalSchedule.objects.get_or_create(every=1, period="seconds")
    PeriodicTask.objects.filter(name="platform heartbeat").update(interval=every_second)
    with celery_worker(redis_url=redis_url, data_dir=tmp_path, beat=True):
        assert wait_for(
            lambda: WorkerHeartbeat.objects.filter(source="beat").count() >= 2, timeout=60
        )
