"""Measure in-process experiment assignments per second (experiments.hashing).

Run from the project root:  .venv/bin/python bench/bench_assignment.py [--n N] [--repeat R]

Every assignment uses a distinct unit id, so nothing is served from a per-unit cache. Unit ids
are generated before timing starts; the timed loop is a plain ``for`` loop calling the
assignment function, i.e. the loop overhead a caller would also pay is included. The figure
reported is the best of ``--repeat`` runs, which is the least disturbed by other load.
"""

from __future__ import annotations

import argparse
import platform
import random
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

# Running as a script puts bench/ rather than the project root on sys.path.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WEIGHTS = (0.2, 0.3, 0.5)
COVERAGE = 0.8
SEED = "onboarding-checklist-v2"


def make_ids(kind: str, n: int) -> list[str]:
    rng = random.Random(20240601)
    if kind == "numeric":
        return [str(100_000 + i) for i in range(n)]
    if kind == "prefixed":
        return [f"user-{i}" for i in range(n)]
    if kind == "uuid4":
        return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]
    raise ValueError(kind)


def best_rate(run: Callable[[list[str]], None], ids: list[str], repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run(ids)
        best = min(best, time.perf_counter() - started)
    return len(ids) / best


def main() -> None:
    from experiments.hashing import Assigner, assign

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000, help="assignments per run")
    parser.add_argument("--repeat", type=int, default=3, help="runs per case (best is kept)")
    args = parser.parse_args()

    assigner = Assigner(SEED, WEIGHTS, COVERAGE)
    namespaced = Assigner(SEED, WEIGHTS, COVERAGE, namespace=("checkout", 0.0, 0.5))

    def run_assigner(ids: list[str]) -> None:
        fast = assigner.assign
        for unit_id in ids:
            fast(unit_id)

    def run_namespaced(ids: list[str]) -> None:
        fast = namespaced.assign
        for unit_id in ids:
            fast(unit_id)

    def run_function(ids: list[str]) -> None:
        for unit_id in ids:
            assign(seed=SEED, unit_id=unit_id, weights=WEIGHTS, coverage=COVERAGE)

    cases: list[tuple[str, Callable[[list[str]], None]]] = [
        ("Assigner.assign", run_assigner),
        ("assign() (cached)", run_function),
        ("Assigner.assign + namespace", run_namespaced),
    ]
    print(
        f"Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{args.n:,} distinct unit ids per run, best of {args.repeat}"
    )
    print(f"{'unit ids':<10} {'example':<38} {'path':<29} {'assignments/s':>14} {'µs each':>8}")
    for kind in ("numeric", "prefixed", "uuid4"):
        ids = make_ids(kind, args.n)
        for label, run in cases:
            rate = best_rate(run, ids, args.repeat)
            print(f"{kind:<10} {ids[0]:<38} {label:<29} {rate:>14,.0f} {1e6 / rate:>8.2f}")


if __name__ == "__main__":
    main()
