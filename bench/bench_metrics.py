"""Cost of the Prometheus request metrics per request.

The middleware records into the request-metrics store exactly as before; the
Prometheus counters are fed from the store's push (at most once a second per
process), so the per-request cost is the push's export divided by the
requests in the batch. Measured here: the export of one batch of a canary
and a stable version (the latencies of `--requests` requests spread over the
store's log buckets), in one process, and with PROMETHEUS_MULTIPROC_DIR (the
values in shared files, as under gunicorn with several workers), plus the
middleware's one added comparison.

    .venv/bin/python bench/bench_metrics.py [--requests 1000]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def measure(requests: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    import numpy as np

    from rollout import metrics_store, prometheus_export

    prometheus_export._keys[1] = "bench-rollout"  # no database: the key is known
    rng = np.random.default_rng(0)
    latencies = [float(x) for x in rng.lognormal(np.log(40.0), 0.8, size=requests)]

    def batch():
        for i, latency in enumerate(latencies):
            metrics_store.record(1, "canary" if i % 20 == 0 else "stable", latency, 200, at=0.0)
        taken, metrics_store._pending = metrics_store._pending, {}
        metrics_store._pending_count = 0
        return taken

    sample = batch()
    buckets = sum(len(entry.buckets) for entry in sample.values())
    for _ in range(50):
        prometheus_export.export_batch(sample)
    timings = []
    for _ in range(200):
        started = time.perf_counter()
        prometheus_export.export_batch(sample)
        timings.append(time.perf_counter() - started)
    export_ms = min(timings) * 1000

    status = [200] * 1_000_000
    started = time.perf_counter()
    for code in status:
        if code >= 500:
            pass
    compare_ns = (time.perf_counter() - started) / len(status) * 1e9
    return {
        "multiprocess": bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
        "requests_in_batch": requests,
        "store_buckets_in_batch": buckets,
        "export_ms_per_batch": round(export_ms, 4),
        "export_ms_per_request": round(export_ms / requests, 6),
        "status_comparison_ns": round(compare_ns, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.requests)))
        return
    results = []
    for multiprocess in (False, True):
        with tempfile.TemporaryDirectory() as folder:
            env = {**os.environ, "DATA_DIR": folder}
            if multiprocess:
                env["PROMETHEUS_MULTIPROC_DIR"] = folder
            else:
                env.pop("PROMETHEUS_MULTIPROC_DIR", None)
            for requests in (1, args.requests):
                out = subprocess.run(
                    [sys.executable, __file__, "--child", "--requests", str(requests)],
                    cwd=ROOT, env=env, check=True, capture_output=True, text=True,
                ).stdout  # fmt: skip
                results.append(json.loads(out.strip().splitlines()[-1]))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
