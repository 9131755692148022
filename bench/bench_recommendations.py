"""Benchmark of the recommendation engines at production-like scale.

Synthetic data (default 10 000 items, 100 000 users, 1 000 000 interactions) with cluster
structure and a popularity skew; reports the time to index the log, the training time of each
engine, artifact size / (de)serialisation time, and top-10 serving latency (p50 / p95 / p99)
over random users, for the ensemble (target p95 ≤ 20 ms) and each component.

Run:  .venv/bin/python bench/bench_recommendations.py [--items N --users N --interactions N]
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # allow `python bench/bench_recommendations.py` from anywhere
    sys.path.insert(0, str(ROOT))

from recommendations.engines import (  # noqa: E402
    ContentEngine,
    EnsembleEngine,
    Interaction,
    Item,
    ItemKNNEngine,
    PopularityEngine,
    TrainingData,
    load_engine,
)
from recommendations.engines.base import (  # noqa: E402
    DEFAULT_WEIGHTS,
    INTERACTION_KINDS,
    ITEM_KINDS,
)

_WORDS = (
    "api",
    "design",
    "database",
    "scaling",
    "python",
    "career",
    "growth",
    "interview",
    "system",
    "leadership",
    "feedback",
    "hiring",
    "product",
    "roadmap",
    "discovery",
    "metrics",
    "design",
    "research",
    "prototype",
    "accessibility",
    "data",
    "analysis",
    "statistics",
    "experiment",
    "model",
    "training",
    "deployment",
    "cloud",
    "kubernetes",
    "terraform",
    "monitoring",
    "incident",
    "startup",
    "funding",
    "pitch",
    "customer",
    "portfolio",
    "networking",
    "resume",
    "salary",
    "negotiation",
    "algorithms",
    "testing",
    "security",
    "performance",
    "caching",
    "queues",
    "architecture",
    "mentoring",
)
T = TypeVar("T")


def make_data(
    n_items: int, n_users: int, n_events: int, seed: int
) -> tuple[list[Item], list[Interaction]]:
    """Clustered synthetic catalogue and log (vectorised numpy, then dataclass objects)."""
    rng = np.random.default_rng(seed)
    n_clusters = max(1, n_items // 50)
    item_cluster = rng.integers(0, n_clusters, n_items)
    # per-cluster topic words make content similarity meaningful
    cluster_words = [
        " ".join(f"topic{c}x{w}" for w in range(4)) + " " + " ".join(rng.choice(_WORDS, 3))
        for c in range(n_clusters)
    ]
    items = [
        Item(
            i + 1,
            ITEM_KINDS[i % 3],
            f"{cluster_words[c].split()[0]} {' '.join(rng.choice(_WORDS, 3))} #{i}",
            f"{cluster_words[c]} {' '.join(rng.choice(_WORDS, 12))}",
            (f"cluster-{c}", str(rng.choice(_WORDS))),
        )
        for i, c in enumerate(item_cluster)
    ]
    members = [np.flatnonzero(item_cluster == c) for c in range(n_clusters)]
    # popularity skew: Zipf-like appeal over items
    appeal = 1.0 / np.arange(1, n_items + 1) ** 0.8
    rng.shuffle(appeal)
    global_p = appeal / appeal.sum()
    # user activity: log-normal, rescaled to the requested number of events
    activity = rng.lognormal(0.0, 1.0, n_users)
    counts = np.maximum(1, np.round(activity / activity.sum() * n_events)).astype(np.int64)
    event_user = np.repeat(np.arange(n_users), counts)[:n_events]
    n = len(event_user)
    user_cluster = rng.integers(0, n_clusters, n_users)
    own = rng.random(n) < 0.75
    event_item = rng.choice(n_items, size=n, p=global_p)
    own_idx = np.flatnonzero(own)
    clusters = user_cluster[event_user[own_idx]]
    for c in np.unique(clusters):
        sel = own_idx[clusters == c]
        pool = members[c]
        if pool.size:
            p = appeal[pool] / appeal[pool].sum()
            event_item[sel] = rng.choice(pool, size=sel.size, p=p)
    kind_code = rng.choice(len(INTERACTION_KINDS), size=n, p=[0.6, 0.25, 0.08, 0.04, 0.03])
    stamps = 1_700_000_000.0 + rng.random(n) * 60 * 86_400
    weights = [DEFAULT_WEIGHTS[k] for k in INTERACTION_KINDS]
    user_names = [f"user-{u:06d}" for u in range(n_users)]
    interactions = [
        Interaction(user_names[u], int(i) + 1, INTERACTION_KINDS[k], weights[k], float(t))
        for u, i, k, t in zip(
            event_user.tolist(),
            event_item.tolist(),
            kind_code.tolist(),
            stamps.tolist(),
            strict=True,
        )
    ]
    return items, interactions


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """Wall-clock seconds of ``fn()`` (after a GC, so earlier garbage is not billed) and result."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def latency(
    fn: Callable[[str], object], users: list[str], warmup: int = 50
) -> tuple[float, float, float, float]:
    """p50, p95, p99, max in milliseconds of ``fn(user)`` over ``users``."""
    for u in users[:warmup]:
        fn(u)
    samples = np.empty(len(users))
    for n, u in enumerate(users):
        t0 = time.perf_counter_ns()
        fn(u)
        samples[n] = (time.perf_counter_ns() - t0) / 1e6
    p50, p95, p99 = np.percentile(samples, [50, 95, 99])
    return float(p50), float(p95), float(p99), float(samples.max())


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--users", type=int, default=100_000)
    ap.add_argument("--interactions", type=int, default=1_000_000)
    ap.add_argument("--requests", type=int, default=2_000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args(argv)

    print(f"cpus: {os.cpu_count()}  numpy {np.__version__}")
    print(f"data: {args.items} items, {args.users} users, {args.interactions} interactions")
    t, (items, interactions) = timed(
        lambda: make_data(args.items, args.users, args.interactions, args.seed)
    )
    print(f"generate synthetic data        {t:8.2f} s")

    t, data = timed(lambda: TrainingData.build(items, interactions))
    print(f"index log (TrainingData.build) {t:8.2f} s   ({data.n_users} users)")
    t, _ = timed(lambda: (data.ratings, data.blocked))
    print(f"ratings + blocked matrices     {t:8.2f} s   (ratings nnz {data.ratings.nnz})")

    print("\ntraining (on the indexed log)")
    t, pop = timed(lambda: PopularityEngine().fit_data(data))
    print(f"  {'popularity':<12} {t:8.2f} s")
    t, cf = timed(lambda: ItemKNNEngine().fit_data(data))
    print(f"  {'cf':<12} {t:8.2f} s   (neighbour matrix nnz {cf.neighbors.nnz})")
    t, content = timed(lambda: ContentEngine().fit_data(data))
    print(f"  {'content':<12} {t:8.2f} s   (vocabulary {len(content.vocabulary)} terms)")
    t, ens = timed(lambda: EnsembleEngine().fit(items, interactions))
    print(f"  {'ensemble':<12} {t:8.2f} s   (end to end from Interaction objects, all parts)")

    t, blob = timed(ens.to_bytes)
    print(f"\nserialise ensemble            {t:8.2f} s   ({len(blob) / 1e6:.1f} MB)")
    t, restored = timed(lambda: load_engine(blob))
    print(f"deserialise ensemble          {t:8.2f} s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS so far               {peak:8.0f} MB")

    rng = np.random.default_rng(args.seed + 1)
    users = [data.user_ids[u] for u in rng.integers(0, data.n_users, args.requests)]
    k = args.k
    print(f"\ntop-{k} serve latency over {len(users)} random users (ms)")
    print(f"  {'engine':<26} {'p50':>7} {'p95':>7} {'p99':>7} {'max':>7}")

    def similar_of(u: str) -> object:
        return ens.similar(int(data.item_ids[zlib.crc32(u.encode()) % data.n_items]), k)

    rows: list[tuple[str, Callable[[str], object]]] = [
        ("ensemble", lambda u: ens.recommend(u, k)),
        ("ensemble (restored)", lambda u: restored.recommend(u, k)),
        ("ensemble cold + context", lambda u: ens.recommend("new-" + u, k, context="api design")),
        ("ensemble similar()", similar_of),
        ("popularity", lambda u: pop.recommend(u, k)),
        ("cf", lambda u: cf.recommend(u, k)),
        ("content", lambda u: content.recommend(u, k)),
    ]
    results: dict[str, tuple[float, float, float, float]] = {}
    for name, fn in rows:
        results[name] = latency(fn, users)
        p50, p95, p99, mx = results[name]
        print(f"  {name:<26} {p50:7.3f} {p95:7.3f} {p99:7.3f} {mx:7.3f}")
    p95 = results["ensemble"][1]
    verdict = "OK" if p95 <= 20.0 else "ABOVE TARGET"
    print(f"\nensemble p95 {p95:.3f} ms vs target 20 ms: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
