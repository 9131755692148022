"""/healthz reads the embedded broker's SQLite file itself: a file that cannot
be opened is a broker that is down, and staff see how many tasks wait."""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from celery import Celery

from common.models import WorkerHeartbeat


@contextmanager
def broker(url: str) -> Iterator[None]:
    from config.celery import app

    def forget_connections() -> None:
        # The app keeps a pool of connections to the broker it first met.
        if app._pool is not None:
            app._pool.force_close_all()
            app._pool = None

    saved = (app.conf.broker_url, app.conf.broker_transport_options)
    forget_connections()
    app.conf.broker_url = url
    app.conf.broker_transport_options = {"connect_args": {"timeout": 2}}
    try:
        yield
    finally:
        forget_connections()
        app.conf.broker_url, app.conf.broker_transport_options = saved


@pytest.fixture
def staff_client(client, django_user_model):
    client.force_login(django_user_model.objects.create_user("ops", is_staff=True))
    return client


def test_staff_see_the_tasks_waiting_in_the_embedded_broker(staff_client, db, tmp_path):
    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    producer = Celery("test-producer", broker=url, set_as_current=False)
    for _ in range(3):  # no worker runs: they wait
        producer.send_task("common.record_heartbeat", args=["manual"])
    WorkerHeartbeat.objects.create(source=WorkerHeartbeat.Source.BEAT)
    with broker(url):
        response = staff_client.get("/healthz")
    body = response.json()
    assert response.status_code == 200, body
    part = body["checks"]["broker"]
    assert part["status"] == "ok"
    assert part["transport"] == "sqla"
    assert part["waiting_tasks"] == 3


def test_an_embedded_broker_file_that_cannot_be_opened_is_down(staff_client, db, tmp_path):
    with broker(f"sqla+sqlite:///{tmp_path / 'no-such-folder' / 'broker.sqlite3'}"):
        response = staff_client.get("/healthz")
    body = response.json()
    # The platform still serves (only the database is required): degraded, not down.
    assert response.status_code == 200
    assert body["status"] == "degraded"
    assert body["checks"]["broker"]["status"] == "down"
    assert "unable to open database file" in body["checks"]["broker"]["error"]
    assert body["checks"]["database"]["status"] == "ok"


def test_a_starting_worker_forgets_the_delivered_messages_and_keeps_the_waiting_ones(tmp_path):
    from kombu import Connection

    from config.embedded_broker import forget_delivered_messages

    url = f"sqla+sqlite:///{tmp_path / 'broker.sqlite3'}"
    with Connection(url) as conn:
        box = conn.SimpleQueue("upkeep")
        for n in range(3):
            box.put({"n": n})
        for _ in range(2):
            box.get(timeout=5).ack()
        assert forget_delivered_messages(url) == 2
        assert forget_delivered_messages(url) == 0
        assert box.qsize() == 1
        assert box.get(timeout=5).payload == {"n": 2}
        box.close()


def test_forgetting_leaves_other_brokers_and_missing_files_alone(tmp_path):
    from config.embedded_broker import forget_delivered_messages

    assert forget_delivered_messages("redis://127.0.0.1:6379/0") == 0
    assert forget_delivered_messages(f"sqla+sqlite:///{tmp_path / 'none.sqlite3'}") == 0
    assert not (tmp_path / "none.sqlite3").exists()
