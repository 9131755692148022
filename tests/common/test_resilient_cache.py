"""The Redis cache backend falls back to "an empty cache that keeps nothing"
while its Redis is unavailable, counts and logs it, and recovers by itself.
Against a private redis-server that the tests kill, freeze and restart."""

import logging
import uuid

import pytest
from prometheus_client import REGISTRY
from redis.exceptions import ConnectionError as RedisConnectionError

from common import resilient_cache
from common.resilient_cache import ResilientRedisCache, key_family
from tests.reliability.redis_server import PrivateRedis


@pytest.fixture
def private_redis(tmp_path):
    resilient_cache._availability.clear()  # a port used before starts afresh
    server = PrivateRedis(tmp_path).start()
    try:
        yield server
    finally:
        server.stop()


def backend(url: str) -> ResilientRedisCache:
    return ResilientRedisCache(
        url,
        {
            "KEY_PREFIX": f"t-{uuid.uuid4().hex[:8]}",
            "OPTIONS": {"socket_connect_timeout": 0.1, "socket_timeout": 0.25},
        },
    )


def fallbacks(cache: str, operation: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "ion_cache_fallbacks_total", {"cache": cache, "operation": operation}
        )
        or 0.0
    )


def test_a_key_is_counted_by_its_family_never_by_its_ids():
    assert key_family("rollout:config:recommendations") == "rollout:config"
    assert key_family("throttle:api:17:29071") == "throttle:api"
    assert key_family("rollout:stage-record:12:1700000000") == "rollout:stage-record"
    assert key_family("healthz:probe") == "healthz:probe"
    assert key_family("12:abc") == "other"


def test_a_killed_redis_answers_as_an_empty_cache_and_counts_each_fallback(
    private_redis,
    caplog,
):
    cache = backend(private_redis.url())
    cache.set("rollout:config:a", {"v": 1})
    assert cache.get("rollout:config:a") == {"v": 1}
    before = fallbacks("rollout:config", "get")

    private_redis.kill()
    with caplog.at_level(logging.WARNING, logger="common.resilient_cache"):
        for _ in range(50):
            assert cache.get("rollout:config:a", "missed") == "missed"
        cache.set("rollout:config:a", {"v": 2})  # dropped, no error
        assert cache.add("throttle:api:1:2", 0) is True
        assert cache.incr("throttle:api:1:2", 60) == 60  # the rate limits fail open
        assert cache.get_many(["rollout:config:a"]) == {}
        assert cache.get_or_set("experiments:series:1:2", lambda: "computed") == "computed"
        cache.delete("rollout:config:a")

    assert not cache.available
    assert fallbacks("rollout:config", "get") - before == 50
    assert fallbacks("throttle:api", "incr") >= 1
    lines = [r for r in caplog.records if r.name == "common.resilient_cache"]
    assert len(lines) == 1, [r.getMessage() for r in lines]  # one line, not one per call
    assert "cache unavailable" in lines[0].getMessage()


def test_after_a_restart_it_uses_redis_again_and_says_so(
    private_redis,
    caplog,
    monkeypatch,
):
    monkeypatch.setattr(resilient_cache, "RETRY_AFTER_SECONDS", 0.0)
    cache = backend(private_redis.url())
    private_redis.kill()
    assert cache.get("rollout:config:b") is None
    private_redis.start()  # same port, empty
    with caplog.at_level(logging.WARNING, logger="common.resilient_cache"):
        cache.set("rollout:config:b", "fresh")
        assert cache.get("rollout:config:b") == "fresh"
    assert cache.available
    assert any("available again" in r.getMessage() for r in caplog.records)


def test_a_write_missed_while_redis_hung_is_dropped_from_it_when_it_answers_again(
    private_redis,
    monkeypatch,
):
    # A hung Redis (or a partition) keeps its data: the configuration written
    # before would hide the change published meanwhile, for its whole lifetime.
    monkeypatch.setattr(resilient_cache, "RETRY_AFTER_SECONDS", 0.0)
    cache = backend(private_redis.url())
    cache.set("rollout:config:c", "before the change")
    private_redis.freeze()
    try:
        cache.set("rollout:config:c", "after the change")  # times out: falls back
        assert not cache.available
    finally:
        private_redis.thaw()
    assert cache.get("rollout:config:c") is None  # dropped: readers load the database
    assert cache.available
    assert cache.get("rollout:config:c") is None  # and gone from Redis


def test_every_thread_of_a_process_shares_the_fallback(private_redis):
    # Django makes one backend object per thread: one of them finding Redis
    # dead spares the others the attempt (and the log line).
    first, second = backend(private_redis.url()), backend(private_redis.url())
    private_redis.kill()
    assert first.get("rollout:config:d") is None
    assert not second.available


def test_errors_raised_tells_the_health_check_the_truth(private_redis):
    cache = backend(private_redis.url())
    private_redis.kill()
    assert cache.get("healthz:probe") is None
    with pytest.raises(RedisConnectionError), cache.errors_raised():
        cache.get("healthz:probe")
    assert cache.get("healthz:probe") is None  # outside the block it falls back again
