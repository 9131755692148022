"""Schemathesis over the project's own OpenAPI schema (/api/schema/), against the
in-process WSGI app, as a user with the integration and product-manager
permissions: no generated request, valid or not, may answer 5xx.

Each operation gets a bounded number of examples, twice: with random path
parameters (mostly unknown keys: 404s) and with the keys of objects seeded here
(a running experiment, a rollout, a catalogue item, a conversation, a pending
transition), so that the bodies reach the services. Both schema-valid and
schema-violating inputs are generated. Every 5xx is collected with its
exception, so one run reports them all. FUZZ_EXAMPLES sets the examples per
operation and mode (default 40: ≈ 5 000 requests, 1.5–2 minutes on this kind
of machine).
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Any

import pytest

schemathesis = pytest.importorskip("schemathesis")

from django.core.signals import got_request_exception  # noqa: E402
from hypothesis import HealthCheck, Phase, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

from tests.conftest import token_client  # noqa: E402

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
MODES = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)


@pytest.fixture
def fuzz_user(django_user_model, settings):
    from django.contrib.auth.models import Group

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_user(username="fuzz", password="pw-for-tests")
    for name in ("Integrations", "Product managers"):
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    return user


def _seed(user) -> dict[str, Any]:
    """Objects whose keys the known-keys pass puts into the paths."""
    from conversations.models import ConversationSession
    from conversations.services import sessions
    from recommendations.models import ContentItem
    from rollout.services import transitions
    from tests.factories import make_experiment, make_rollout

    experiment = make_experiment("rec-v2", metrics=("adoption", "session_duration"))
    rollout = make_rollout("rec-rollout", experiment=experiment)
    item = ContentItem.objects.create(kind=ContentItem.Kind.choices[0][0], title="SQL basics")
    session = sessions.start_session(
        user_id="mina", topic="career", goal="", version=ConversationSession.Version.values[0]
    )
    try:
        transition_id = transitions.request_transition(
            rollout=rollout, to_stage=rollout.next_stage().name, by=user
        ).id
    except Exception:  # the gate may refuse it: the path then keeps a random id
        transition_id = None
    known = {
        "key": None,  # by the path's prefix, below
        "item_id": item.id,
        "session_id": session.session.id,
        "user_id": "mina",
    }
    if transition_id is not None:
        known["transition_id"] = transition_id
    return known


def _known_path_parameters(path: str, names: list[str], known: dict[str, Any]) -> dict[str, Any]:
    chosen = {}
    for name in names:
        if name == "key":
            chosen[name] = "rec-rollout" if "/rollouts/" in path else "rec-v2"
        elif known.get(name) is not None:
            chosen[name] = known[name]
    return chosen


def _fuzz(operation, mode, path_parameters, auth, raised, server_errors) -> int:
    """Send up to EXAMPLES generated requests of one operation; record each 5xx
    with the exception that caused it. Returns how many were sent."""
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)
    sent = 0

    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same requests on every run
        database=None,
        phases=[Phase.explicit, Phase.generate],  # nothing fails here, so no shrinking
        suppress_health_check=list(HealthCheck),
    )
    def call(case):
        nonlocal sent
        sent += 1
        del raised[:]
        response = case.call(headers=auth)
        if response.status_code >= 500:
            server_errors.append(
                f"{response.status_code} {operation.method.upper()} {operation.path} "
                f"({mode.value}): {'; '.join(raised) or response.content[:200]!r}\n"
                f"    {case.as_curl_command(headers=auth)[:400]}"
            )

    with contextlib.suppress(Unsatisfiable):  # no request of this mode can be made
        call()
    return sent


@pytest.mark.django_db(transaction=True)
def test_no_generated_request_answers_a_server_error(fuzz_user):
    from config.wsgi import application

    known = _seed(fuzz_user)
    auth = {"Authorization": token_client(fuzz_user)._credentials["HTTP_AUTHORIZATION"]}
    schema = schemathesis.openapi.from_wsgi("/api/schema/", application, headers=auth)

    server_errors: list[str] = []
    raised: list[str] = []

    def remember(sender, **kwargs):
        exc = sys.exc_info()[1]
        raised.append(f"{type(exc).__name__}: {str(exc)[:200]}")

    got_request_exception.connect(remember)
    sent = 0
    try:
        for result in schema.get_all_operations():
            operation = result.ok()
            names = [p.name for p in operation.path_parameters]
            overrides = _known_path_parameters(operation.path, names, known)
            # Path parameters alone cannot be made invalid (a path is text), nor
            # can the auth header we replace: the negative mode needs a query
            # parameter or a body to violate.
            violable = bool(operation.body.items) or any(
                p.location.value == "query" for p in operation.iter_parameters()
            )
            for mode in MODES if violable else MODES[:1]:
                for path_parameters in ({}, overrides) if overrides else ({},):
                    sent += _fuzz(operation, mode, path_parameters, auth, raised, server_errors)
    finally:
        got_request_exception.disconnect(remember)
    print(f"schemathesis: {sent} requests, {len(server_errors)} server errors")
    assert sent > 0
    assert not server_errors, "\n".join(server_errors)
