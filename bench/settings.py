"""Settings for the HTTP benchmarks: the project's own, plus a bare JSON view
to compare with (never part of the product's URLs)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.urls"
