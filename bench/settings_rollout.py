"""Settings for bench_rollout.py: the product's, plus a routed test view."""

from bench.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls_rollout"
