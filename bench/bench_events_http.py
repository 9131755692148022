"""Events/s through POST /api/v1/events/ in 10 000-event batches into
PostgreSQL (gunicorn, 2 workers, 2 concurrent clients), next to raw psycopg
COPY of the same rows into the same table, in one run.

    .venv/bin/python bench/bench_events_http.py [--batches 20]

Needs PostgreSQL on 127.0.0.1:5432 and Redis on 127.0.0.1:6379.
"""

import argparse
import http.client
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.httpbench import bench_env, fresh_database, gunicorn, manage

BATCH = 10_000
SETUP = """
from django.contrib.auth.models import Group, User
from rest_framework.authtoken.models import Token
from tests.factories import make_metric
user = User.objects.create_user("bench-integration")
user.groups.add(Group.objects.get(name="Integrations"))
make_metric("session_duration", kind="mean")
print(Token.objects.create(user=user).key)
"""


def make_batches(count: int, prefix: str) -> list[list[dict]]:
    rng = random.Random(7)
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [
        [
            {
                "event_id": f"{prefix}-{b}-{i}",
                "unit_id": f"mentee-{rng.randrange(200_000)}",
                "metric": "session_duration",
                "value": round(rng.expovariate(1 / 300), 3),
                "timestamp": (start + timedelta(seconds=rng.randrange(86400 * 20))).isoformat(),
            }
            for i in range(BATCH)
        ]
        for b in range(count)
    ]


def post_all(base: str, token: str, bodies: list[bytes], clients: int) -> float:
    host, port = base.removeprefix("http://").split(":")

    def worker(chunk: list[bytes]) -> None:
        conn = http.client.HTTPConnection(host, int(port), timeout=120)
        for body in chunk:
            conn.request(
                "POST",
                "/api/v1/events/",
                body,
                {"Content-Type": "application/json", "Authorization": f"Token {token}"},
            )
            response = conn.getresponse()
            answer = json.loads(response.read())
            assert response.status == 200 and answer["accepted"] == BATCH, answer
        conn.close()

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [bodies[i::clients] for i in range(clients)]))
    return time.perf_counter() - started


def copy_all(dsn: str, batches: list[list[dict]], metric_id: int, clients: int) -> float:
    def worker(chunk: list[list[dict]]) -> None:
        with psycopg.connect(dsn) as conn:
            for batch in chunk:
                now = datetime.now(UTC)
                with (
                    conn.transaction(),
                    conn.cursor() as cur,
                    cur.copy(
                        'COPY experiments_event (event_id, unit_id, metric_id, value, "timestamp", '
                        "received_at) FROM STDIN"
                    ) as copy,
                ):
                    for e in batch:
                        copy.write_row(
                            (
                                e["event_id"],
                                e["unit_id"],
                                metric_id,
                                e["value"],
                                datetime.fromisoformat(e["timestamp"]),
                                now,
                            )
                        )

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, [batches[i::clients] for i in range(clients)]))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    database = "ion_bench_events"
    fresh_database(database)
    env = bench_env(database)
    manage(env, "migrate", "--noinput")
    token = manage(env, "shell", "-c", SETUP).strip().splitlines()[-1]
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={database}"
    with psycopg.connect(dsn) as conn:
        metric_id = conn.execute(
            "SELECT id FROM experiments_metric WHERE key = 'session_duration'"
        ).fetchone()[0]
    api_batches = make_batches(args.batches, "api")
    raw_batches = make_batches(args.batches, "raw")
    bodies = [json.dumps({"events": b}).encode() for b in api_batches]
    total = args.batches * BATCH
    with gunicorn(env) as base:
        post_all(base, token, [json.dumps({"events": make_batches(1, "warm")[0]}).encode()], 1)
        api_seconds = post_all(base, token, bodies, args.clients)
    raw_seconds = copy_all(dsn, raw_batches, metric_id, args.clients)
    result = {
        "events": total,
        "api_events_per_s": round(total / api_seconds),
        "raw_copy_rows_per_s": round(total / raw_seconds),
        "ratio": round(raw_seconds and (total / api_seconds) / (total / raw_seconds), 3),
        "api_ms_per_batch": round(api_seconds / args.batches * 1000 * args.clients, 1),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
