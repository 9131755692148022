"""Shared fixtures.

Tests run on SQLite and the local-memory cache by default, and on the real
PostgreSQL and Redis when DATABASE_URL / REDIS_URL are set. With
REQUIRE_SERVICES=1 (as CI runs) a test that needs a missing service fails
instead of being skipped.
"""

import os
import uuid

import pytest
from django.contrib.auth.models import Group
from django.db.backends.signals import connection_created
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from tests.http_receiver import receiver  # noqa: F401 - the webhook receiver fixture

REQUIRE_SERVICES = os.environ.get("REQUIRE_SERVICES") == "1"


def need(service: str, available: bool) -> None:
    """Skip (or, under REQUIRE_SERVICES=1, fail) a test whose service is missing."""
    if available:
        return
    message = f"{service} is not configured for this run"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}, and REQUIRE_SERVICES=1 forbids skipping")
    pytest.skip(message)


def pytest_collection_modifyitems(items):
    """Every transactional test restores the data the migrations wrote (groups,
    permissions, schedules, seed metrics) when it starts. One that did not
    would let its teardown recreate content types with new ids, and the next
    test that restores the serialized data would collide with them."""
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and not marker.kwargs.get(
            "serialized_rollback"
        ):
            item.add_marker(
                pytest.mark.django_db(**{**marker.kwargs, "serialized_rollback": True}),
                append=False,
            )


def pytest_sessionstart(session):
    """An interrupted run can leave the SQLite test database's WAL files
    behind; a new database next to them fails with "disk I/O error"."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"].endswith("sqlite3"):
        name = str(database.get("TEST", {}).get("NAME") or "")
        for suffix in ("-wal", "-shm"):
            if name and os.path.exists(name + suffix):
                os.remove(name + suffix)


def pytest_configure(config):
    if REQUIRE_SERVICES:
        missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
        if missing:
            raise pytest.UsageError(f"REQUIRE_SERVICES=1 but {', '.join(missing)} unset")


def _let_the_test_flush_truncate_the_audit_log(sender, connection, **kwargs):
    """On PostgreSQL a trigger refuses TRUNCATE of the audit log unless the
    session opts in (common migration 0004); Django empties the tables with
    TRUNCATE after every transactional test, so test sessions opt in."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET ion.audit_allow_truncate = 'on'")


connection_created.connect(_let_the_test_flush_truncate_the_audit_log)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("REDIS_URL", "")
    need("Redis (REDIS_URL)", bool(url))
    return url


@pytest.fixture
def postgres(db) -> None:
    from django.db import connection

    need("PostgreSQL (DATABASE_URL)", connection.vendor == "postgresql")


@pytest.fixture(autouse=True)
def _isolated_cache(settings):
    """Each test gets its own cache namespace, so tests never see each other's
    cached configuration, on Redis as in memory, and nothing is flushed."""
    caches = {name: dict(conf) for name, conf in settings.CACHES.items()}
    for conf in caches.values():
        conf["KEY_PREFIX"] = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = caches
    # Tests push request metrics themselves; a background push would write
    # outside the test's transaction.
    settings.REQUEST_METRICS_IDLE_PUSH = False


def _member_of(django_user_model, username: str, group: str | None, **extra):
    user = django_user_model.objects.create_user(
        username=username, password="pw-for-tests", **extra
    )
    if group:
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def pm_user(db, django_user_model):
    return _member_of(django_user_model, "pm", "Product managers", is_staff=True)


@pytest.fixture
def executive(db, django_user_model):
    return _member_of(django_user_model, "exec", "Executives", is_staff=True)


@pytest.fixture
def integration_user(db, django_user_model):
    return _member_of(django_user_model, "integration", "Integrations")


def token_client(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def pm_api(pm_user) -> APIClient:
    return token_client(pm_user)


@pytest.fixture
def integration_api(integration_user) -> APIClient:
    return token_client(integration_user)


@pytest.fixture
def executive_api(executive) -> APIClient:
    return token_client(executive)


@pytest.fixture
def anon_api() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _fresh_process_caches():
    """In-process caches outlive a test's database transaction; start each
    test without them, as a new process would."""
    from common.auth import forget_tokens
    from common.throttling import forget_leases
    from experiments import config_cache
    from experiments.services.assignment import forget_recorded_exposures
    from experiments.services.ingestion import forget_metric_cache
    from rollout import config_cache as rollout_config_cache
    from rollout import metrics_store

    config_cache.clear_local()
    rollout_config_cache.clear_local()
    metrics_store.forget_pending()
    forget_recorded_exposures()
    forget_metric_cache()
    forget_tokens()
    forget_leases()
    yield
    # Nothing counted by a test is left for the push at exit (rollout.apps),
    # which would write it into whatever database the settings name by then.
    metrics_store.forget_pending()
