"""Prometheus metrics. Under gunicorn with several workers set
PROMETHEUS_MULTIPROC_DIR so that /metrics adds up every process."""

import os

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Info, multiprocess

BUILD_INFO = Info("ion_platform", "Build information of the platform")
BUILD_INFO.info({"version": "0.1.0"})

HEALTH_CHECK_FAILURES = Counter(
    "ion_healthz_failures_total", "Health checks that failed, by component", ["component"]
)

CACHE_FALLBACKS = Counter(
    "ion_cache_fallbacks_total",
    "Cache operations answered without the shared cache because it was unavailable, "
    "by key family and operation (common.resilient_cache)",
    ["cache", "operation"],
)


def registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        return merged
    return REGISTRY
