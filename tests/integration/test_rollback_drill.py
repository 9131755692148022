"""The proof of the rollout issue: a real worker with embedded beat, on Redis
and PostgreSQL, rolls a failing canary back by itself."""

import time

import pytest
from django.conf import settings

from common.audit import audit_of
from common.models import AuditAction
from rollout import config_cache, metrics_store, router
from rollout.models import NotificationChannel, Rollout
from tests.factories import make_rollout
from tests.integration.worker import celery_worker, wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_a_failing_canary_is_rolled_back_within_30_seconds(redis_url, postgres, receiver, tmp_path):
    NotificationChannel.objects.create(name="ops", kind="slack", target=receiver.url())
    rollout = make_rollout(stage="canary")
    prefix = settings.CACHES["default"]["KEY_PREFIX"]
    with celery_worker(
        redis_url=redis_url, data_dir=tmp_path, beat=True, extra_env={"CACHE_KEY_PREFIX": prefix}
    ):
        time.sleep(3)  # let the worker and beat start
        for i in range(4000):
            metrics_store.record(rollout.id, "stable", 25.0, 200)
            metrics_store.record(rollout.id, "canary", 30.0, 500 if i % 100 < 3 else 200)
        metrics_store.push()
        arrived = time.monotonic()
        assert wait_for(
            lambda: Rollout.objects.get(id=rollout.id).state == Rollout.State.ROLLED_BACK,
            timeout=45,
        )
        took = time.monotonic() - arrived
        assert wait_for(lambda: len(receiver.requests) >= 1, timeout=20)
        time.sleep(3)  # a second message would have arrived by now
    assert took <= 30, f"rolled back {took:.1f} s after the data arrived"
    rollout.refresh_from_db()
    assert rollout.canary_percent == 0
    config_cache.clear_local()
    assert {router.route(rollout.key, f"mentee-{i}").version for i in range(2000)} == {"stable"}
    assert audit_of(rollout).filter(action=AuditAction.ROLLED_BACK).count() == 1
    assert len(receiver.requests) == 1
    message = receiver.requests[0].body
    assert "rolled back automatically" in message["text"]
    print(f"breach to rollback: {took:.1f} s")
