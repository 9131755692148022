"""Routed-request cost on the embedded default, per cache backend.

The embedded default (no DATABASE_URL, no REDIS_URL: SQLite in DATA_DIR, the
filesystem broker) needs a cache that every process of `make run` shares. This
measures, in one process on a fresh SQLite database in a temporary DATA_DIR,
with DEBUG on as `make run` runs:

1. `POST /api/v1/rollouts/{key}/route/` through Django's WSGI handler (token
   auth, validation, router, request-metrics middleware), each request a new
   unit, warm: the configuration comes from the ≤ 1 s in-process copy and the
   shared cache is read about once a second;
2. the same request with the in-process copy dropped before every request, so
   every request reads the shared cache (the worst case, and the cost each
   process pays once a second per configuration key);
3. `router.route_feature` alone, warm;
4. the shared cache's own get and set of a rollout's configuration, with the
   database idle and while another process holds SQLite's write lock half of
   the time (20 ms write transactions, as a busy worker would).

for the local-memory cache (before: per process, not shared), the file-based
cache in DATA_DIR/cache and Django's database cache on the SQLite file.

    .venv/bin/python bench/bench_embedded_cache.py [--requests 20000] [--rounds 3]
"""

import argparse
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _embedded_environment(data_dir: Path) -> None:
    for name in ("DATABASE_URL", "REDIS_URL", "CACHE_KEY_PREFIX"):
        os.environ.pop(name, None)
    os.environ.update(
        DATA_DIR=str(data_dir),
        DEBUG="1",
        LOG_LEVEL="WARNING",
        DJANGO_SETTINGS_MODULE="config.settings",
    )


def _backends(data_dir: Path) -> dict[str, dict]:
    return {
        "locmem": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "bench",
            "TIMEOUT": 300,
        },
        "file": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(data_dir / "cache-bench"),
            "TIMEOUT": 300,
        },
        "database": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "bench_cache",
            "TIMEOUT": 300,
        },
    }


def _world() -> tuple[str, str]:
    """An integration token and a rollout at its canary stage (5 %)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.utils import timezone
    from rest_framework.authtoken.models import Token

    from rollout.models import Rollout

    call_command("migrate", verbosity=0)
    call_command("createcachetable", "bench_cache", verbosity=0)
    user = get_user_model().objects.create_user(username="bench-integration")
    user.groups.add(Group.objects.get(name="Integrations"))
    token = Token.objects.create(user=user).key
    # The row directly, with the model's default plan: only routing is measured.
    rollout = Rollout.objects.create(
        key="bench-embedded",
        name="bench",
        feature="bench",
        stage="canary",
        canary_percent=5.0,
        stage_entered_at=timezone.now(),
    )
    return token, rollout.key


def _quantiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 1)

    return {
        "p50_us": at(0.50),
        "p95_us": at(0.95),
        "p99_us": at(0.99),
        "mean_us": round(statistics.fmean(ordered) / 1000, 1),
    }


class _RouteRequests:
    def __init__(self, token: str, rollout_key: str) -> None:
        from django.core.handlers.wsgi import WSGIHandler

        self.handler = WSGIHandler()
        self.token = token
        self.path = f"/api/v1/rollouts/{rollout_key}/route/"
        self.counter = 0

    def one(self) -> None:
        self.counter += 1
        body = json.dumps({"unit_id": f"unit-{self.counter}"}).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": self.path,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "80",
            "HTTP_HOST": "127.0.0.1",
            "CONTENT_TYPE": "application/json",
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_AUTHORIZATION": f"Token {self.token}",
            "wsgi.input": io.BytesIO(body),
            "wsgi.url_scheme": "http",
            "QUERY_STRING": "",
        }
        status = []
        chunks = self.handler(environ, lambda s, h: status.append(s))
        b"".join(chunks)
        if not status[0].startswith("200"):
            raise RuntimeError(f"route answered {status[0]}")


def _time_each(fn, n: int, before=None, gap_s: float = 0.0) -> list[int]:
    """`before` runs untimed before each call; `gap_s`: sleep up to that long
    (at random) before each call, so calls sample a concurrent writer's cycle
    evenly instead of falling into its idle gaps."""
    samples = []
    for _ in range(n):
        if before is not None:
            before()
        if gap_s:
            time.sleep(random.random() * gap_s)
        t = time.perf_counter_ns()
        fn()
        samples.append(time.perf_counter_ns() - t)
    return samples


def _feature_router(router):
    units = iter(range(10**9))
    return lambda: router.route_feature("bench", f"unit-{next(units)}")


def _request_path(backends: dict, token: str, key: str, n: int, rounds: int) -> dict:
    """Rounds interleave the backends, so drift of the machine hits all alike."""
    from django.test import override_settings

    from rollout import config_cache, router

    samples: dict[str, dict[str, list[int]]] = {
        name: {"route_view_warm": [], "route_view_shared_read": [], "route_feature_warm": []}
        for name in backends
    }
    for _ in range(rounds):
        for name, conf in backends.items():
            with override_settings(CACHES={"default": conf}):
                config_cache.clear_local()
                requests = _RouteRequests(token, key)
                _time_each(requests.one, 500)  # warm up
                samples[name]["route_view_warm"] += _time_each(requests.one, n)
                samples[name]["route_view_shared_read"] += _time_each(
                    requests.one, n // 4, before=config_cache.clear_local
                )
                samples[name]["route_feature_warm"] += _time_each(_feature_router(router), n)
    return {
        name: {what: _quantiles(values) for what, values in by_what.items()}
        for name, by_what in samples.items()
    }


_WRITER = textwrap.dedent(
    """
    import sqlite3, sys, time
    con = sqlite3.connect(sys.argv[1], timeout=20, isolation_level=None)
    con.execute("CREATE TABLE IF NOT EXISTS bench_writer (id INTEGER PRIMARY KEY, v TEXT)")
    print("ready", flush=True)
    while True:
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO bench_writer (v) VALUES ('x')")
        time.sleep(0.020)
        con.execute("COMMIT")
        time.sleep(0.020)
    """
)


def _cache_ops(backends: dict, database: str, n: int) -> dict:
    from django.core.cache import cache
    from django.test import override_settings

    value = {
        "id": 1,
        "key": "bench-embedded",
        "feature": "bench",
        "state": "active",
        "stage": "canary",
        "canary_percent": 5.0,
        "salt": "0123456789abcdef",
        "allow_list": [],
        "experiment_key": None,
    }
    results: dict[str, dict] = {}
    for condition in ("idle", "writer"):
        writer = None
        if condition == "writer":
            writer = subprocess.Popen(
                [sys.executable, "-c", _WRITER, database], stdout=subprocess.PIPE, text=True
            )
            writer.stdout.readline()
        try:
            for name, conf in backends.items():
                with override_settings(CACHES={"default": conf}):
                    cache.set("bench:config", value, 300)
                    got = _time_each(lambda: cache.get("bench:config"), n, gap_s=0.004)
                    put = _time_each(
                        lambda: cache.set("bench:config", value, 300), n // 4, gap_s=0.004
                    )
                results.setdefault(name, {})[condition] = {
                    "get": _quantiles(got),
                    "set": _quantiles(put),
                }
        finally:
            if writer is not None:
                writer.terminate()
                writer.wait(timeout=10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-embedded-cache-") as tmp:
        data_dir = Path(tmp)
        _embedded_environment(data_dir)
        import django

        django.setup()
        from django.conf import settings

        token, key = _world()
        backends = _backends(data_dir)
        chosen = settings.CACHES["default"]["BACKEND"].rsplit(".", 1)[-1]
        print(f"embedded default now uses: {chosen}", flush=True)
        report = {
            "requests_per_round": args.requests,
            "rounds": args.rounds,
            "request_path": _request_path(backends, token, key, args.requests, args.rounds),
            "shared_cache_ops": _cache_ops(
                backends, str(settings.DATABASES["default"]["NAME"]), 1000
            ),
        }
        print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
