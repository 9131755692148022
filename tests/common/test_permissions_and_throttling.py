"""Who may do what over HTTP, per role: a mentee's data, the audit log, the
assignment endpoint with a dashboard session; the API rate limits (429 with
Retry-After), the login lock-out, and what /healthz tells whom."""

import math
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.core.cache import cache
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from common.models import WorkerHeartbeat
from common.throttling import LeasedRateThrottle, TokenRateThrottle
from conversations.models import MemoryFact, Turn
from conversations.services import sessions
from tests.conftest import _member_of, token_client
from tests.factories import make_experiment, make_rollout

pytestmark = pytest.mark.django_db

NOW = 1_800_000_015.0  # 15 s into a minute: a window ends in 45 s


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def frozen_clock(monkeypatch):
    """Rate windows are fixed minutes: a test must not straddle two of them."""
    monkeypatch.setattr(LeasedRateThrottle, "timer", staticmethod(lambda: NOW))


def with_rates(settings, **rates):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], **rates},
    }


@pytest.fixture
def privacy_officer(django_user_model):
    return _member_of(django_user_model, "privacy", "Privacy officers", is_staff=True)


@pytest.fixture
def privacy_api(privacy_officer) -> APIClient:
    return token_client(privacy_officer)


@pytest.fixture
def superuser_api(django_user_model) -> APIClient:
    return token_client(django_user_model.objects.create_superuser("root", "r@example.com", "pw"))


# --------------------------------------------------------------------------------------
# A mentee's memory and transcripts
# --------------------------------------------------------------------------------------


@pytest.fixture
def mentee_data():
    session = sessions.start_session(user_id="mina-42", topic="career", version="canary").session
    turn = Turn.objects.create(session=session, index=0, role="user", text="My name is Mina.")
    MemoryFact.objects.create(user_id="mina-42", key="name", value="Mina", source_turn=turn)
    return session


def memory(api):
    return api.get("/api/v2/users/mina-42/memory/")


def forget(api):
    return api.delete("/api/v2/users/mina-42/memory/")


def transcript(api, session):
    return api.get(f"/api/v2/conversations/{session.id}/", {"user_id": "mina-42"})


def test_the_integration_acting_for_the_mentee_reads_and_erases_their_data(
    integration_api, mentee_data
):
    assert transcript(integration_api, mentee_data).json()["turns"][0]["text"] == (
        "My name is Mina."
    )
    assert memory(integration_api).json()["facts"][0]["value"] == "Mina"
    assert forget(integration_api).status_code == 204
    assert not MemoryFact.objects.filter(user_id="mina-42").exists()


@pytest.mark.parametrize("who", ["pm_api", "executive_api"])
def test_product_managers_and_executives_can_neither_read_nor_erase_a_mentees_data(
    request, who, mentee_data
):
    api = request.getfixturevalue(who)
    for answer in (memory(api), forget(api), transcript(api, mentee_data)):
        assert answer.status_code == 403
        assert "access_mentee_data" in answer.json()["detail"]
    assert MemoryFact.objects.filter(user_id="mina-42").count() == 1  # nothing was erased
    assert Turn.objects.filter(session=mentee_data).count() == 1


def test_a_privacy_officer_reads_and_erases_a_mentees_data(privacy_api, mentee_data):
    assert transcript(privacy_api, mentee_data).status_code == 200
    assert memory(privacy_api).json()["facts"][0]["key"] == "name"
    assert forget(privacy_api).status_code == 204
    assert not MemoryFact.objects.filter(user_id="mina-42").exists()


def test_the_migration_gives_the_permission_to_integrations_and_privacy_officers_only(db):
    holders = set(
        Group.objects.filter(
            permissions__content_type__app_label="conversations",
            permissions__codename="access_mentee_data",
        ).values_list("name", flat=True)
    )
    assert holders == {"Integrations", "Privacy officers"}


def test_the_admin_shows_transcripts_and_memory_only_under_the_same_rule(
    pm_user, privacy_officer, mentee_data
):
    # Even a model permission on turns does not open them without the rule's permission.
    pm_user.user_permissions.add(
        Permission.objects.get(content_type__app_label="conversations", codename="view_turn")
    )
    pm, officer = Client(), Client()
    pm.force_login(pm_user)
    officer.force_login(privacy_officer)
    for model in ("turn", "memoryfact", "summary"):
        assert pm.get(f"/admin/conversations/{model}/").status_code == 403
        assert officer.get(f"/admin/conversations/{model}/").status_code == 200
    turn = Turn.objects.get()
    assert (
        "My name is Mina."
        in officer.get(f"/admin/conversations/turn/{turn.id}/change/").content.decode()
    )


# --------------------------------------------------------------------------------------
# The audit log and transitions
# --------------------------------------------------------------------------------------


@pytest.fixture
def audited():
    make_rollout("roll", feature="audited")
    make_experiment("exp")


AUDIT_URLS = ["/api/v1/rollouts/roll/audit/", "/api/v1/experiments/exp/audit/"]


@pytest.mark.parametrize("url", AUDIT_URLS)
def test_integration_tokens_do_not_read_the_audit_log(integration_api, audited, url):
    answer = integration_api.get(url)
    assert answer.status_code == 403
    assert "view_auditentry" in answer.json()["detail"]


@pytest.mark.parametrize("url", AUDIT_URLS)
@pytest.mark.parametrize("who", ["pm_api", "executive_api", "superuser_api"])
def test_product_managers_executives_and_superusers_read_the_audit_log(request, who, audited, url):
    answer = request.getfixturevalue(who).get(url)
    assert answer.status_code == 200
    assert answer.json()[0]["action"] in {"rollout_created", "experiment_started"}


def test_executives_list_a_rollouts_transitions(executive_api, audited):
    assert executive_api.get("/api/v1/rollouts/roll/transitions/").status_code == 200


# --------------------------------------------------------------------------------------
# The assignment endpoint with a dashboard session
# --------------------------------------------------------------------------------------


def session_client(user) -> APIClient:
    """A browser: logged in, with the CSRF cookie a dashboard page sets."""
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/").status_code == 200
    return client


ASSIGN = {"experiment": "exp", "unit_id": "mentee-1"}


def test_a_staff_session_with_the_permission_gets_an_assignment(pm_user):
    make_experiment("exp")
    browser = session_client(pm_user)
    answer = browser.post(
        "/api/v1/assignments/",
        ASSIGN,
        format="json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert answer.status_code == 200, answer.content
    assert answer.json()["in_experiment"] is True


def test_a_session_without_the_csrf_token_is_refused(pm_user):
    make_experiment("exp")
    answer = session_client(pm_user).post("/api/v1/assignments/", ASSIGN, format="json")
    assert answer.status_code == 403
    assert "CSRF" in answer.json()["detail"]


def test_a_session_without_the_permission_is_refused(executive):
    make_experiment("exp")
    browser = session_client(executive)
    answer = browser.post(
        "/api/v1/assignments/",
        ASSIGN,
        format="json",
        HTTP_X_CSRFTOKEN=browser.cookies["csrftoken"].value,
    )
    assert answer.status_code == 403
    assert "send_data" in answer.json()["detail"]


def test_without_a_token_or_a_session_the_assignment_endpoint_answers_401(anon_api):
    assert anon_api.post("/api/v1/assignments/", ASSIGN, format="json").status_code == 401


# --------------------------------------------------------------------------------------
# API rate limits
# --------------------------------------------------------------------------------------


def assert_throttled(answer):
    assert answer.status_code == 429
    assert answer["Retry-After"] == "45"  # the end of the frozen clock's minute
    assert "throttled" in answer.json()["detail"]


def test_a_token_over_its_rate_gets_429_with_retry_after(
    settings, frozen_clock, integration_api, pm_api
):
    with_rates(settings, api="3/min")
    for _ in range(3):
        assert integration_api.get("/api/v1/metrics/").status_code == 200
    assert_throttled(integration_api.get("/api/v1/metrics/"))
    assert pm_api.get("/api/v1/metrics/").status_code == 200  # per token, not for everyone


def test_anonymous_requests_are_limited_per_address(settings, frozen_clock):
    with_rates(settings, anon="2/min")
    here = APIClient(REMOTE_ADDR="127.0.0.2", HTTP_ACCEPT="application/json")
    elsewhere = APIClient(REMOTE_ADDR="127.0.0.3", HTTP_ACCEPT="application/json")
    for _ in range(2):
        assert here.get("/api/schema/").status_code == 200
    assert_throttled(here.get("/api/schema/"))
    assert elsewhere.get("/api/schema/").status_code == 200


def test_behind_a_trusted_proxy_the_address_is_the_one_the_proxy_saw(settings, frozen_clock):
    with_rates(settings, anon="1/min")
    settings.TRUSTED_PROXY_COUNT = 1
    proxy = APIClient(REMOTE_ADDR="127.0.0.9", HTTP_ACCEPT="application/json")
    # A client may write anything left of what the proxy appends; only the last entry counts.
    assert proxy.get("/api/schema/", HTTP_X_FORWARDED_FOR="1.2.3.4, 127.0.0.2").status_code == 200
    assert_throttled(proxy.get("/api/schema/", HTTP_X_FORWARDED_FOR="5.6.7.8, 127.0.0.2"))
    assert proxy.get("/api/schema/", HTTP_X_FORWARDED_FOR="127.0.0.3").status_code == 200


def test_the_assignment_endpoint_has_its_own_rate_and_answers_429_the_same_way(
    settings, frozen_clock, integration_api
):
    make_experiment("exp")
    with_rates(settings, assignments="2/min", api="1/min")
    for _ in range(2):
        assert (
            integration_api.post("/api/v1/assignments/", ASSIGN, format="json").status_code == 200
        )
    answer = integration_api.post("/api/v1/assignments/", ASSIGN, format="json")
    assert_throttled(answer)


def test_a_rate_is_counted_in_slices_but_never_admits_more_than_it_says(
    settings, frozen_clock, integration_user
):
    with_rates(settings, api="1000/min")

    class Asking:
        user = integration_user
        META: dict = {}

    throttle_says = [TokenRateThrottle().allow_request(Asking(), None) for _ in range(1500)]
    assert throttle_says.count(True) == 1000
    assert throttle_says[:1000] == [True] * 1000
    counter = f"throttle:api:{integration_user.pk}:{math.floor(NOW // 60)}"
    # 100 slices of 10 leased with one incr each, and one more refused: not 1 500 round trips.
    assert cache.get(counter) == 1010


def test_the_default_rates_come_from_the_environment(settings):
    rates = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]
    assert set(rates) == {"api", "anon", "assignments"}
    assert all(int(rate.split("/")[0]) >= 600 for rate in rates.values())


# --------------------------------------------------------------------------------------
# Login lock-out
# --------------------------------------------------------------------------------------


def log_in(client, username, password, address="127.0.0.1"):
    return client.post(
        "/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address
    )


def assert_locked_out(answer):
    assert answer.status_code == 429
    page = answer.content.decode()
    assert "Too many failed login attempts" in page
    assert "even with the right password" in page
    assert 'name="username"' in page  # the login page itself, not a bare error


def test_after_the_limit_the_right_password_is_refused_too_until_the_cool_off(settings, pm_user):
    client = Client()
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert log_in(client, "pm", "wrong").status_code == 200  # the usual form error
    assert_locked_out(log_in(client, "pm", "wrong"))
    assert_locked_out(log_in(client, "pm", "pw-for-tests"))
    assert client.get("/").status_code == 302  # not logged in

    from axes.models import AccessAttempt

    AccessAttempt.objects.update(
        attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1)
    )
    assert log_in(client, "pm", "pw-for-tests").status_code == 302
    assert client.get("/").status_code == 200


def test_the_lock_out_holds_per_account_and_per_address(settings, pm_user, executive):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "pm", "wrong", address="127.0.0.2")
    # The account, from anywhere:
    assert_locked_out(log_in(Client(), "pm", "pw-for-tests", address="127.0.0.3"))
    # The address, for any account:
    assert_locked_out(log_in(Client(), "exec", "pw-for-tests", address="127.0.0.2"))
    # Another account from another address is not affected.
    assert log_in(Client(), "exec", "pw-for-tests", address="127.0.0.3").status_code == 302


def test_the_admin_login_is_locked_out_too(settings, pm_user):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        Client().post("/admin/login/", {"username": "pm", "password": "wrong"})
    answer = Client().post("/admin/login/", {"username": "pm", "password": "pw-for-tests"})
    assert_locked_out(answer)


# --------------------------------------------------------------------------------------
# /healthz
# --------------------------------------------------------------------------------------


@pytest.fixture
def dead_cache(settings):
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
            "OPTIONS": {"socket_connect_timeout": 0.5},
        }
    }


def test_anonymous_callers_get_each_parts_status_and_nothing_else(client, dead_cache):
    answer = client.get("/healthz")
    assert answer.status_code == 200  # the cache down degrades; only the database downs
    body = answer.json()
    assert body["status"] == "degraded"
    assert body["checks"]["cache"] == {"status": "down"}
    assert body["checks"]["database"] == {"status": "ok"}
    assert body["checks"]["beat"] == {"status": "degraded"}  # no beat has ticked
    assert all(set(part) == {"status"} for part in body["checks"].values())
    assert "127.0.0.1" not in answer.content.decode()


def test_a_logged_in_non_staff_user_gets_the_status_only(client, integration_user, dead_cache):
    client.force_login(integration_user)
    assert "127.0.0.1" not in client.get("/healthz").content.decode()


def test_staff_get_the_details(client, pm_user, dead_cache):
    client.force_login(pm_user)
    body = client.get("/healthz").json()
    assert "127.0.0.1:1" in body["checks"]["cache"]["error"]
    assert body["checks"]["database"]["vendor"] in {"sqlite", "postgresql"}
    assert "ms" in body["checks"]["database"]


def test_a_stale_beat_degrades_the_whole_without_taking_it_down(client, settings):
    beat = WorkerHeartbeat.objects.create(source=WorkerHeartbeat.Source.BEAT, hostname="w")
    assert client.get("/healthz").json()["status"] == "ok"
    WorkerHeartbeat.objects.filter(id=beat.id).update(
        created_at=timezone.now() - 4 * settings.HEARTBEAT_INTERVAL
    )
    answer = client.get("/healthz")
    assert answer.status_code == 200
    assert answer.json() == {
        "status": "degraded",
        "checks": {
            "database": {"status": "ok"},
            "cache": {"status": "ok"},
            "broker": {"status": "ok"},
            "beat": {"status": "degraded"},
        },
    }
