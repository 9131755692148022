"""Redis is a cache, not a single point of failure. Real processes: gunicorn
serving the platform on PostgreSQL and a private redis-server, which the test
kills with `kill -9` under concurrent traffic and restarts on the same port.
The test talks to the platform over HTTP only, and reads the database after."""

import json
import os
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token

from common.models import WorkerHeartbeat
from experiments.models import Event
from recommendations.services import demo, training
from rollout.models import MetricWindow
from tests.factories import make_experiment, make_rollout
from tests.integration.web import Client
from tests.integration.worker import database_url_of_test_db
from tests.reliability.redis_server import PrivateRedis, need_binary
from tests.reliability.servers import gunicorn_server

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

EXPERIMENT = "outage-experiment"
ROUTED = "outage-routed"  # the recommendations feature's rollout: the middleware counts it
REPORTED = "outage-reported"  # the rollout that outside services report samples for
CLIENTS = 6
BEFORE_S, OUTAGE_S, AFTER_S = 3.0, 6.0, 4.0
EVENTS_PER_BATCH = 5
SAMPLES_PER_BATCH = 4


@dataclass
class Answer:
    kind: str
    sent: float
    took_ms: float
    status: int  # 0: no HTTP answer at all
    body: dict = field(default_factory=dict)
    event_ids: tuple[str, ...] = ()


def seed() -> str:
    """An integration token, an experiment on all traffic, the recommender
    trained and routed at its canary stage, a second rollout for reported
    samples, and a fresh beat tick (so a healthy platform says `ok`)."""
    user = get_user_model().objects.create_user(username="outage-integration")
    user.groups.add(Group.objects.get(name="Integrations"))
    make_experiment(EXPERIMENT, traffic_percent=100)
    demo.seed_demo(seed=0, n_users=150, items_per_cluster=10)
    training.train_models(evaluate_first=False)
    make_rollout(ROUTED, feature="recommendations", stage="canary")
    make_rollout(REPORTED, feature="outage-reported", stage="canary")
    WorkerHeartbeat.objects.create(source=WorkerHeartbeat.Source.BEAT)
    return Token.objects.create(user=user).key


class Traffic:
    """CLIENTS threads, each sending assignments, routing questions,
    recommendations, event batches and request-metric batches in turn, and
    one thread asking /healthz four times a second; every answer is kept."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url, self.token = base_url, token
        self.answers: list[Answer] = []
        self.health: list[tuple[float, float, int, dict]] = []  # sent, received, status, body
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(CLIENTS)
        ]
        self._threads.append(threading.Thread(target=self._prober, daemon=True))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _client(self, n: int) -> None:
        client = Client.of(self.base_url, token=self.token)
        i = 0
        while not self._stop.is_set():
            i += 1
            unit = f"mentee-{(n * 7919 + i) % 150 + 1:04d}"
            kind = ("assignment", "route", "recommendations", "events", "samples")[i % 5]
            event_ids: tuple[str, ...] = ()
            if kind == "assignment":
                path, payload = "/api/v1/assignments/", {"experiment": EXPERIMENT, "unit_id": unit}
            elif kind == "route":
                path, payload = f"/api/v1/rollouts/{ROUTED}/route/", {"unit_id": unit}
            elif kind == "recommendations":
                path, payload = "/api/v2/recommendations/", {"user_id": unit, "k": 5}
            elif kind == "events":
                event_ids = tuple(f"outage-{n}-{i}-{j}" for j in range(EVENTS_PER_BATCH))
                path = "/api/v1/events/"
                payload = {
                    "events": [
                        {"event_id": e, "unit_id": unit, "metric": "adoption"} for e in event_ids
                    ]
                }
            else:
                path = f"/api/v1/rollouts/{REPORTED}/request-metrics/"
                payload = {
                    "samples": [
                        {
                            "version": ("stable", "canary")[j % 2],
                            "latency_ms": 20.0 + j,
                            "status": 200,
                        }
                        for j in range(SAMPLES_PER_BATCH)
                    ]
                }
            sent = time.time()
            started = time.perf_counter()
            try:
                status, data = client.request(
                    "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
                )
                body = json.loads(data) if data.startswith(b"{") else {"raw": data[:200].decode()}
            except OSError as exc:
                status, body = 0, {"error": str(exc)}
            answer = Answer(
                kind, sent, (time.perf_counter() - started) * 1000, status, body, event_ids
            )
            with self._lock:
                self.answers.append(answer)

    def _prober(self) -> None:
        client = Client.of(self.base_url)
        while not self._stop.is_set():
            sent = time.time()
            try:
                status, data = client.request("GET", "/healthz")
                body = json.loads(data)
            except (OSError, ValueError) as exc:
                status, body = 0, {"error": str(exc)}
            self.health.append((sent, time.time(), status, body))
            time.sleep(0.25)


def _median_ms(answers: list[Answer]) -> str:
    return f"{statistics.median(a.took_ms for a in answers):.1f} ms" if answers else "-"


def test_the_platform_answers_through_a_redis_kill_and_keeps_every_sample(postgres, tmp_path):
    need_binary()
    redis = PrivateRedis(tmp_path).start()
    token = seed()
    env = {
        **os.environ,
        "DATABASE_URL": database_url_of_test_db(),
        "REDIS_URL": redis.url(),
        "CACHE_KEY_PREFIX": settings.CACHES["default"]["KEY_PREFIX"],
        "DATA_DIR": str(tmp_path),
        "DEBUG": "1",
    }
    try:
        with gunicorn_server(env=env, log_path=tmp_path / "gunicorn.log") as web:
            traffic = Traffic(web, token)
            traffic.start()
            time.sleep(BEFORE_S)
            killed = time.time()
            redis.kill()
            time.sleep(OUTAGE_S)
            redis.start()  # the same port, empty
            restarted = time.time()
            time.sleep(AFTER_S)
            traffic.stop()
            # Acknowledged samples are in the database before the answer: no
            # flush, no process exit is needed to find them.
            reported = sum(w.requests for w in MetricWindow.objects.filter(rollout__key=REPORTED))
        # gunicorn stopped: each worker stored its last second's tally as it exited.
        routed = sum(w.requests for w in MetricWindow.objects.filter(rollout__key=ROUTED))
    finally:
        redis.stop()

    answers = traffic.answers
    during = [a for a in answers if killed <= a.sent < restarted]
    before_kill = [a for a in answers if a.sent < killed]
    statuses = Counter((a.kind, a.status) for a in answers)
    print(f"answers: {len(answers)}, {len(during)} while Redis was dead; {dict(statuses)}")
    for kind in ("assignment", "route", "recommendations"):
        print(
            f"{kind}: median {_median_ms([a for a in before_kill if a.kind == kind])}"
            f" before, {_median_ms([a for a in during if a.kind == kind])} while Redis was dead"
        )
    failed = [a for a in answers if a.status != 200]
    assert not failed, f"{len(failed)} answers were not 200, e.g. {failed[:3]}"
    for kind in ("assignment", "route", "recommendations", "events", "samples"):
        assert any(a.kind == kind for a in during), f"no {kind} request while Redis was dead"

    acknowledged = sum(a.body["accepted"] for a in answers if a.kind == "samples")
    print(f"request-metric samples: {acknowledged} acknowledged, {reported} stored")
    assert reported == acknowledged
    recommendations = sum(a.kind == "recommendations" for a in answers)
    print(f"routed requests counted by the middleware: {recommendations} answered, {routed} stored")
    assert routed == recommendations

    sent_events = [e for a in answers if a.kind == "events" for e in a.event_ids]
    assert all(a.body["accepted"] == EVENTS_PER_BATCH for a in answers if a.kind == "events")
    stored = Event.objects.filter(event_id__startswith="outage-").count()
    print(f"events: {len(sent_events)} acknowledged, {stored} stored")
    assert stored == len(sent_events) == len(set(sent_events))

    # Asked and answered while Redis was dead (a probe sent then but answered
    # after the restart may rightly say ok).
    dead = [h for h in traffic.health if h[0] >= killed + 0.5 and h[1] < restarted]
    assert dead, "/healthz was not asked while Redis was dead"
    for _, _, status, body in dead:
        assert status == 200, body
        assert body["status"] == "degraded", body
        assert body["checks"]["cache"]["status"] == "down", body
        assert body["checks"]["database"]["status"] == "ok", body
    before = [h for h in traffic.health if h[1] < killed]
    after = [h for h in traffic.health if h[0] >= restarted + 1.0]
    assert before and after
    assert all(h[2] == 200 and h[3]["status"] == "ok" for h in before + after), before + after
    print(
        f"/healthz: {len(dead)} answers while Redis was dead, all degraded naming the cache; "
        f"{len(before)} before and {len(after)} after, all ok"
    )


def test_healthz_answers_503_when_the_database_is_unreachable(tmp_path):
    need_binary()
    redis = PrivateRedis(tmp_path).start()
    env = {
        **os.environ,
        # A port nothing listens on: the database is down, everything else is up.
        "DATABASE_URL": "postgres://postgres@127.0.0.1:1/nothing",
        "REDIS_URL": redis.url(),
        "DATA_DIR": str(tmp_path),
        "DEBUG": "1",
    }
    try:
        with gunicorn_server(
            env=env, log_path=tmp_path / "gunicorn.log", workers=1, ready=(503,)
        ) as web:
            status, data = Client.of(web).request("GET", "/healthz")
    finally:
        redis.stop()
    body = json.loads(data)
    assert status == 503, body
    assert body["status"] == "down"
    assert body["checks"]["database"] == {"status": "down"}
    assert body["checks"]["cache"] == {"status": "ok"}
