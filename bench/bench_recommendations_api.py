"""Recommendation serving and training through the product's services, on PostgreSQL.

1. training time on 1 000 000 interactions through `training.train_models` (read the
   catalogue and the log from the database with values_list, evaluate the four engines on a
   time split, fit the ensemble, store and activate two ModelVersions), by phase;
2. top-10 serve latency p50 / p95 / p99 with 10 000 items and 100 000 users, through the
   service (`serving.recommend`: catalogue snapshot, the user's blocked items from the
   database, the cached model) for v2 (canary), v1 (stable) and cold starts, and through the
   API in process (Django's handler with every middleware, token auth, validation, the
   rollout router and request metrics) — target p95 ≤ 20 ms.

The data are bench_recommendations.py's synthetic generator (clustered catalogue, Zipf-like
popularity, log-normal user activity), loaded with COPY into a fresh database.

    .venv/bin/python bench/bench_recommendations_api.py [--items N --users N --interactions N]
"""

import argparse
import gc
import json
import os
import resource
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_recommendations import make_data
from bench.httpbench import bench_env, fresh_database, manage


def load(items, interactions, limit: int) -> dict:
    """COPY the catalogue and the first `limit` interactions in; repeated adopts/dismisses
    of one (user, item) — the generator draws kinds independently — are skipped, as the
    database keeps one (the generator is asked for 1 % more to make up for them)."""
    from django.db import connection

    now = datetime.now(UTC)
    seen: set[tuple[str, int, str]] = set()
    kept = dropped = 0
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        with raw.copy(
            "COPY recommendations_contentitem (id, created_at, updated_at, kind, title, "
            "description, tags, active, external_id) FROM STDIN"
        ) as copy:
            for it in items:
                copy.write_row(
                    (
                        it.id,
                        now,
                        now,
                        it.kind,
                        it.title,
                        it.description,
                        json.dumps(list(it.tags)),
                        True,
                        f"bench:{it.id}",
                    )
                )
        cursor.execute(
            "SELECT setval(pg_get_serial_sequence('recommendations_contentitem', 'id'), "
            "(SELECT MAX(id) FROM recommendations_contentitem))"
        )
        with raw.copy(
            'COPY recommendations_interaction (user_id, item_id, kind, weight, "timestamp") '
            "FROM STDIN"
        ) as copy:
            for ev in interactions:
                if kept == limit:
                    break
                if ev.kind in ("adopt", "dismiss"):
                    key = (ev.user_id, ev.item_id, ev.kind)
                    if key in seen:
                        dropped += 1
                        continue
                    seen.add(key)
                copy.write_row(
                    (
                        ev.user_id,
                        ev.item_id,
                        ev.kind,
                        ev.weight,
                        datetime.fromtimestamp(ev.timestamp, UTC),
                    )
                )
                kept += 1
        cursor.execute("ANALYZE recommendations_contentitem")
        cursor.execute("ANALYZE recommendations_interaction")
    return {
        "interactions": kept,
        "dropped_repeated_adopt_or_dismiss": dropped,
        "load_seconds": round(time.perf_counter() - started, 1),
    }


def percentiles(samples: list[float]) -> dict:
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return {
        "p50_ms": round(p50, 3),
        "p95_ms": round(p95, 3),
        "p99_ms": round(p99, 3),
        "max_ms": round(max(samples), 3),
        "n": len(samples),
    }


def timed_calls(fn, args: list, warmup: int = 50) -> dict:
    for a in args[:warmup]:
        fn(a)
    samples = []
    for a in args:
        t = time.perf_counter_ns()
        fn(a)
        samples.append((time.perf_counter_ns() - t) / 1e6)
    return percentiles(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=3_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    database = "ion_bench_recommendations"
    fresh_database(database)
    env = bench_env(database)
    os.environ.update(env)
    manage(env, "migrate", "--noinput")

    import django

    django.setup()
    from django.contrib.auth.models import Group, User
    from django.test import Client
    from rest_framework.authtoken.models import Token

    from recommendations import model_store
    from recommendations.models import ModelVersion
    from recommendations.services import serving, training
    from tests.factories import make_rollout

    out: dict = {"cpus": os.cpu_count()}
    t = time.perf_counter()
    items, interactions = make_data(
        args.items, args.users, int(args.interactions * 1.01), args.seed
    )
    out["generate_seconds"] = round(time.perf_counter() - t, 1)
    out["load"] = load(items, interactions, args.interactions)
    user_ids = sorted({ev.user_id for ev in interactions})
    del interactions
    gc.collect()
    print(json.dumps(out, indent=2), flush=True)

    # -- 1. training through the service ------------------------------------------------
    result = training.train_models()
    timings = {name: round(s, 2) for name, s in result.timings.items()}
    ensemble = result.versions["ensemble"]
    out["training"] = {
        "seconds": timings,
        "n_items": ensemble.n_items,
        "n_users": ensemble.n_users,
        "n_interactions": ensemble.n_interactions,
        "evaluated_users": result.evaluation.evaluated_users,
        "ndcg@10": {e: round(m["ndcg@10"], 4) for e, m in result.evaluation.results.items()},
        "artifact_mb": {n: round(v.artifact_bytes / 1e6, 1) for n, v in result.versions.items()},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    print(json.dumps(out["training"], indent=2), flush=True)

    # -- 2. serving ---------------------------------------------------------------------
    t = time.perf_counter()
    model_store.active_model(ModelVersion.Engine.ENSEMBLE)
    model_store.active_model(ModelVersion.Engine.POPULARITY)
    model_store.catalogue()
    out["first_load_seconds"] = round(time.perf_counter() - t, 2)

    rng = np.random.default_rng(args.seed + 1)
    users = [user_ids[i] for i in rng.integers(0, len(user_ids), args.requests)]
    cold = [f"new-{i}" for i in range(args.requests)]
    serve = {
        "service v2 ensemble": timed_calls(
            lambda u: serving.recommend(user_id=u, k=10, version="canary"), users
        ),
        "service v1 popularity": timed_calls(
            lambda u: serving.recommend(user_id=u, k=10, version="stable"), users
        ),
        "service v2 cold start + context": timed_calls(
            lambda u: serving.recommend(
                user_id=u, k=10, version="canary", context="topic3x1 career growth"
            ),
            cold,
        ),
    }

    integrations = User.objects.create_user("bench-integration")
    integrations.groups.add(Group.objects.get(name="Integrations"))
    token = Token.objects.create(user=integrations)
    # the rollout of the feature at 100 %: every API request is served by v2
    rollout = make_rollout("bench-rec", stage="ab")
    type(rollout).objects.filter(id=rollout.id).update(canary_percent=100)
    from rollout import config_cache

    rollout.refresh_from_db()
    config_cache.publish(rollout)
    client = Client(HTTP_AUTHORIZATION=f"Token {token.key}", HTTP_HOST="127.0.0.1")
    versions: dict[str, int] = {}

    def through_api(u: str) -> None:
        response = client.post(
            "/api/v2/recommendations/", {"user_id": u, "k": 10}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        label = response.json()["version"].rsplit("-", 1)[0]
        versions[label] = versions.get(label, 0) + 1

    serve["API in process (v2, all middleware)"] = timed_calls(through_api, users)
    out["serve_top10"] = serve
    out["api_versions"] = versions
    print(
        json.dumps(
            {
                "first_load_seconds": out["first_load_seconds"],
                "serve_top10": serve,
                "api_versions": versions,
            },
            indent=2,
        )
    )
    worst = max(v["p95_ms"] for v in serve.values())
    print(f"\nworst p95 {worst:.3f} ms vs target 20 ms: {'OK' if worst <= 20 else 'ABOVE'}")


if __name__ == "__main__":
    main()
