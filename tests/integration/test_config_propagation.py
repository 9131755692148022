"""A change committed in one process is seen by every other within 1 s, on the
embedded default (`make run`: SQLite, file cache, SQLite broker) as on
Redis. Real processes: `manage.py runserver` as the web server, a Celery
worker with embedded beat; the test talks to them over HTTP only."""

import pytest
from django.conf import settings

from tests.integration import propagation
from tests.integration.propagation import (
    ADMIN,
    BOUND_SECONDS,
    FRESH_UNITS,
    EmbeddedWorld,
    RedisWorld,
    assignment_asker,
    measure_propagation,
    route_asker,
)
from tests.integration.web import Client, admin_action, admin_login, web_server
from tests.integration.worker import celery_worker

pytestmark = [
    pytest.mark.integration,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


@pytest.fixture(scope="session")
def embedded_template(tmp_path_factory):
    directory = tmp_path_factory.mktemp("embedded-template")
    return directory, propagation.build_embedded_template(directory)


@pytest.fixture(params=["embedded", "redis"])
def world(request, tmp_path):
    if request.param == "embedded":
        directory, seeded = request.getfixturevalue("embedded_template")
        return EmbeddedWorld.copy_of(directory, seeded, tmp_path)
    redis_url = request.getfixturevalue("redis_url")
    return RedisWorld(
        redis_url=redis_url,
        prefix=settings.CACHES["default"]["KEY_PREFIX"],
        data_dir=tmp_path,
        seeded=propagation.seed(),
    )


def _check(result: propagation.Propagation, world, what: str) -> None:
    print(f"{world.name}, {what}: {result.summary()}")
    assert result.old_answers_before > 0, "the old configuration was never served"
    assert result.old_fresh_units == 0, (
        f"{result.old_fresh_units} of {FRESH_UNITS} fresh units still got the old answer "
        f"{BOUND_SECONDS:g} s after the commit ({world.name}): {result.summary()}"
    )


def test_a_rollback_by_the_worker_reaches_the_web_server_within_1_s(world):
    token = world.seeded["token"]
    canary_samples = [
        {"version": "canary", "latency_ms": 30.0, "status": 500 if i % 100 < 3 else 200}
        for i in range(4000)
    ]
    stable_samples = [{"version": "stable", "latency_ms": 25.0, "status": 200}] * 4000
    with (
        web_server(env=world.env, log_path=world.data_dir / "web.log") as web,
        celery_worker(beat=True, **world.worker_args()),
    ):

        def canary_fails() -> None:
            # As a service outside the platform reports its requests; the
            # worker's beat job evaluates the window and rolls back.
            answer = Client.of(web, token=token).post_json(
                f"/api/v1/rollouts/{propagation.ROLLOUT_KEY}/request-metrics/",
                {"samples": stable_samples + canary_samples},
            )
            assert answer["accepted"] == 8000, answer

        result = measure_propagation(
            ask=route_asker(web, token), change=canary_fails, committed_at=world.rolled_back_at
        )
    _check(result, world, "rollback by the worker → routes of the web server")


def test_an_experiment_stopped_in_the_admin_stops_assignments_elsewhere_within_1_s(world):
    token = world.seeded["token"]
    with (
        web_server(env=world.env, log_path=world.data_dir / "admin-web.log") as admin_web,
        web_server(env=world.env, log_path=world.data_dir / "api-web.log") as api_web,
    ):
        browser = Client.of(admin_web)
        admin_login(browser, username=ADMIN[0], password=ADMIN[1])
        pages: list[bytes] = []

        def stop_in_the_admin() -> None:
            pages.append(
                admin_action(
                    browser,
                    changelist="/admin/experiments/experiment/",
                    action="stop_experiments",
                    ids=[world.seeded["experiment_id"]],
                )
            )

        result = measure_propagation(
            ask=assignment_asker(api_web, token),
            change=stop_in_the_admin,
            committed_at=world.stopped_at,
        )
    assert b"done (stop)" in pages[0]
    _check(result, world, "experiment stopped in the admin → assignments of another server")
