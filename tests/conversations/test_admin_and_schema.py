"""The admin pages of conversations are fast whatever the number of turns, its action
goes through the service, and the v2 API is documented."""

from __future__ import annotations

import pytest
from django.test import Client

from conversations.models import ConversationSession, MemoryFact, Summary, Turn
from conversations.services import sessions
from experiments.models import Event

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_fast(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def busy_sessions():
    made = []
    for n in range(5):
        session = sessions.start_session(
            user_id=f"mentee-{n}", topic="career", version="canary"
        ).session
        Turn.objects.bulk_create(
            Turn(session=session, index=i, role="user" if i % 2 == 0 else "assistant", text="hi")
            for i in range(40)
        )
        first = Turn.objects.get(session=session, index=0)
        MemoryFact.objects.create(user_id=session.user_id, key="name", value="M", source_turn=first)
        Summary.objects.create(session=session, up_to_index=10, text="Mentee: hi")
        made.append(session)
    return made


@pytest.mark.parametrize("model", ["conversationsession", "turn", "memoryfact", "summary"])
def test_admin_lists_take_a_fixed_number_of_queries(
    admin_client_fast, busy_sessions, model, django_assert_max_num_queries
):
    with django_assert_max_num_queries(12):
        answer = admin_client_fast.get(f"/admin/conversations/{model}/")
    assert answer.status_code == 200


def test_admin_pages_of_one_object_open(admin_client_fast, busy_sessions):
    session = busy_sessions[0]
    turn = Turn.objects.filter(session=session).first()
    for url in (
        f"/admin/conversations/conversationsession/{session.id}/change/",
        f"/admin/conversations/turn/{turn.id}/change/",
    ):
        assert admin_client_fast.get(url).status_code == 200


def test_a_sessions_turns_are_one_click_away(admin_client_fast, busy_sessions):
    session = busy_sessions[1]
    page = admin_client_fast.get(f"/admin/conversations/conversationsession/{session.id}/change/")
    link = f"/admin/conversations/turn/?session__id__exact={session.id}"
    assert link in page.content.decode()
    turns = admin_client_fast.get(link)
    assert turns.status_code == 200
    assert turns.context["cl"].result_count == 40


def test_the_admin_action_ends_sessions_through_the_service(admin_client_fast, busy_sessions):
    ids = [s.id for s in busy_sessions[:2]]
    answer = admin_client_fast.post(
        "/admin/conversations/conversationsession/",
        {"action": "end_abandoned", "_selected_action": ids},
    )
    assert answer.status_code == 302
    assert set(
        ConversationSession.objects.filter(status="ended").values_list("id", flat=True)
    ) == set(ids)
    assert Event.objects.filter(metric__key="session_duration").count() == 2


def test_the_v2_conversation_api_is_in_the_openapi_schema(pm_api):
    answer = pm_api.get("/api/schema/")
    assert answer.status_code == 200
    schema = answer.content.decode()
    for path in (
        "/api/v2/conversations/",
        "/api/v2/conversations/{session_id}/",
        "/api/v2/conversations/{session_id}/messages/",
        "/api/v2/conversations/{session_id}/end/",
        "/api/v2/conversations/{session_id}/feedback/",
        "/api/v2/users/{user_id}/memory/",
    ):
        assert f"{path}:" in schema
    assert "v2_conversations_messages_create" in schema
