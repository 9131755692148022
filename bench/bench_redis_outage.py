"""What a Redis outage costs a request: `POST /api/v1/assignments/` in process,
through Django's WSGI handler and the whole middleware stack, on PostgreSQL and
a private redis-server that the script kills and freezes:

- up: Redis answers;
- killed: `kill -9` (every connection is refused at once);
- frozen: SIGSTOP, a Redis that hangs (or a network that drops its packets):
  the socket timeouts of settings.CACHES are paid, once per retry interval.

Also the cost of storing a process's request-metric tally (one push: one
transaction adding two minute windows), which replaced the Redis hashes.

    .venv/bin/python bench/bench_redis_outage.py [--n 5000]

Returning units (their exposure is recorded), token authentication. Figures
are milliseconds per request: p50 / p95 / p99 / max.
"""

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, manage
from tests.reliability.redis_server import PrivateRedis

UNITS = 1000


def summary(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 3)

    return {"p50": at(0.5), "p95": at(0.95), "p99": at(0.99), "max": round(ordered[-1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=5000)
    args = parser.parse_args()
    redis = PrivateRedis(Path(tempfile.mkdtemp(prefix="bench-redis-"))).start()
    database = "ion_bench_redis_outage"
    env = bench_env(database)
    env["REDIS_URL"] = redis.url()
    fresh_database(database)
    manage(env, "migrate", "--noinput")
    os.environ.update(env)
    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.core.handlers.wsgi import WSGIHandler
    from prometheus_client import REGISTRY
    from rest_framework.authtoken.models import Token

    from rollout import metrics_store
    from tests.factories import make_experiment, make_rollout

    integration = User.objects.create(username="bench-integration")
    integration.groups.add(Group.objects.get(name="Integrations"))
    token = Token.objects.create(user=integration).key
    make_experiment("bench-exp", weights=(1, 1), traffic_percent=100)
    rollout = make_rollout("bench-rollout", stage="canary")
    handler = WSGIHandler()
    statuses: dict[str, set[str]] = {}

    def request(unit: int, seen: set[str]) -> None:
        body = json.dumps({"experiment": "bench-exp", "unit_id": f"mentee-{unit}"}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/api/v1/assignments/",
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "HTTP_HOST": "127.0.0.1",
            "HTTP_AUTHORIZATION": f"Token {token}",
        }
        b"".join(handler(environ, lambda status, headers: seen.add(status)))

    def run(label: str) -> dict:
        seen = statuses.setdefault(label, set())
        took = []
        for i in range(args.n):
            started = time.perf_counter()
            request(i % UNITS, seen)
            took.append((time.perf_counter() - started) * 1000)
        return summary(took)

    for unit in range(UNITS):  # records every exposure once, warms the caches
        request(unit, statuses.setdefault("warm-up", set()))
    result: dict = {"assignment_ms": {}}
    result["assignment_ms"]["redis up"] = run("up")
    redis.kill()
    result["assignment_ms"]["redis killed"] = run("killed")
    redis.start()
    run("recovering")
    redis.freeze()
    result["assignment_ms"]["redis frozen"] = run("frozen")
    redis.thaw()
    result["statuses"] = {label: sorted(seen) for label, seen in statuses.items()}
    result["fallbacks"] = {
        f"{s.labels['cache']} {s.labels['operation']}": s.value
        for metric in REGISTRY.collect()
        if metric.name == "ion_cache_fallbacks"
        for s in metric.samples
        if s.name == "ion_cache_fallbacks_total"
    }

    pushes = []
    for i in range(300):
        for version in ("stable", "canary"):
            metrics_store.record(rollout.id, version, 20.0 + i % 50, 200)
        started = time.perf_counter()
        metrics_store.push()
        pushes.append((time.perf_counter() - started) * 1000)
    result["metrics_push_ms"] = {**summary(pushes), "mean": round(statistics.mean(pushes), 3)}
    redis.stop()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
