"""The v2 recommendation API: answers, blocking, bad input, feedback and permissions."""

import pytest

from experiments.models import Event
from recommendations import model_store
from recommendations.models import ContentItem, Interaction
from recommendations.services import serving
from recommendations.services.feedback import adoption_event_id

pytestmark = pytest.mark.django_db

RECOMMEND = "/api/v2/recommendations/"
FEEDBACK = "/api/v2/recommendations/feedback/"
ITEMS = "/api/v2/items/"


def similar_url(item_id) -> str:
    return f"/api/v2/items/{item_id}/similar/"


def recommend(api, user_id="mentee-0001", **body):
    return api.post(RECOMMEND, {"user_id": user_id, **body}, format="json")


def item_ids(response) -> list[int]:
    return [item["item_id"] for item in response.json()["items"]]


# --- recommendations -------------------------------------------------------------------


def test_a_known_user_gets_k_items_from_the_active_model(integration_api, trained):
    response = recommend(integration_api, k=7)
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "mentee-0001"
    assert body["version"] == trained.versions["popularity"].label  # no rollout: stable
    assert len(body["items"]) == 7
    first = body["items"][0]
    assert set(first) == {"item_id", "kind", "title", "score"}
    item = ContentItem.objects.get(id=first["item_id"])
    assert (first["kind"], first["title"]) == (item.kind, item.title)
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)


def test_k_defaults_to_10(integration_api, trained):
    assert len(recommend(integration_api).json()["items"]) == 10


def test_an_unknown_user_is_a_cold_start_and_gets_results(integration_api, trained):
    response = recommend(integration_api, user_id="never-seen-before")
    assert response.status_code == 200
    assert len(response.json()["items"]) == 10


def test_dismissed_and_adopted_items_are_not_recommended(integration_api, trained):
    before = item_ids(recommend(integration_api, user_id="mentee-0002"))
    dismissed, adopted = before[0], before[1]
    for item_id, action in ((dismissed, "dismiss"), (adopted, "adopt")):
        response = integration_api.post(
            FEEDBACK,
            {"user_id": "mentee-0002", "item_id": item_id, "action": action},
            format="json",
        )
        assert response.status_code == 201
    after = item_ids(recommend(integration_api, user_id="mentee-0002", k=100))
    assert dismissed not in after and adopted not in after
    assert len(after) == 100


def test_items_the_user_adopted_before_training_are_not_recommended(integration_api, trained):
    adopter, adopted = (
        Interaction.objects.filter(kind="adopt").values_list("user_id", "item_id").first()
    )
    assert adopted not in item_ids(recommend(integration_api, user_id=adopter, k=100))


def test_retired_items_are_never_recommended(integration_api, trained):
    top = item_ids(recommend(integration_api, user_id="someone-new"))[0]
    ContentItem.objects.filter(id=top).update(active=False)
    model_store.forget()  # as another process would after its refresh interval
    assert top not in item_ids(recommend(integration_api, user_id="someone-new", k=100))


@pytest.mark.parametrize("k", [0, 101, -3, "ten"])
def test_k_outside_1_to_100_answers_400_with_a_field_message(integration_api, trained, k):
    response = recommend(integration_api, k=k)
    assert response.status_code == 400
    assert response.json()["k"]


def test_a_missing_user_id_answers_400(integration_api, trained):
    response = integration_api.post(RECOMMEND, {"k": 5}, format="json")
    assert response.status_code == 400
    assert response.json()["user_id"] == ["This field is required."]


def test_a_context_that_is_not_an_object_answers_400(integration_api, trained):
    response = recommend(integration_api, context="python")
    assert response.status_code == 400
    assert "context" in response.json()


def test_a_cold_start_with_a_context_gets_content_matching_it(integration_api, trained):
    response = recommend(
        integration_api, user_id="new-mentee", k=5, context={"tags": ["leadership"]}
    )
    assert response.status_code == 200
    assert response.json()["version"].startswith("v1-")  # no rollout: stable, popularity
    # through the ensemble (canary) the context steers the cold start
    result = serving.recommend(user_id="new-mentee", k=5, version="canary", context=["leadership"])
    tagged = [
        "leadership" in ContentItem.objects.get(id=item.item_id).tags for item in result.items
    ]
    assert result.version.startswith("v2-ensemble-")
    assert sum(tagged) >= 4


def test_before_the_first_training_popularity_is_served_live(integration_api, seeded):
    response = recommend(integration_api, k=5)
    assert response.status_code == 200
    assert response.json()["version"] == "v0-popularity-live"
    assert len(response.json()["items"]) == 5


def test_an_empty_catalogue_answers_an_empty_list(integration_api, db):
    response = recommend(integration_api)
    assert response.status_code == 200
    assert response.json()["items"] == []


# --- feedback --------------------------------------------------------------------------


def adopt(api, user_id, item_id, action="adopt"):
    return api.post(
        FEEDBACK, {"user_id": user_id, "item_id": item_id, "action": action}, format="json"
    )


def test_an_adopt_stores_one_interaction_and_one_adoption_event(integration_api, trained):
    item = ContentItem.objects.order_by("id").first()
    response = adopt(integration_api, "mentee-new", item.id)
    assert response.status_code == 201
    body = response.json()
    assert body["created"] is True and body["action"] == "adopt"
    interaction = Interaction.objects.get(user_id="mentee-new")
    assert (interaction.item_id, interaction.kind, interaction.weight) == (item.id, "adopt", 4.0)
    event = Event.objects.get(unit_id="mentee-new")
    assert event.metric.key == "adoption" and event.value == 1
    assert event.event_id == adoption_event_id(interaction.id)


def test_a_retried_adopt_is_the_same_interaction_and_counts_once(integration_api, trained):
    item = ContentItem.objects.order_by("id").first()
    first = adopt(integration_api, "mentee-new", item.id)
    again = adopt(integration_api, "mentee-new", item.id)
    assert again.status_code == 201
    assert again.json()["created"] is False and again.json()["id"] == first.json()["id"]
    assert Interaction.objects.filter(user_id="mentee-new").count() == 1
    assert Event.objects.filter(unit_id="mentee-new", metric__key="adoption").count() == 1


def test_clicks_are_events_and_each_is_stored(integration_api, trained):
    item = ContentItem.objects.order_by("id").first()
    for _ in range(2):
        assert adopt(integration_api, "clicker", item.id, "click").status_code == 201
    assert Interaction.objects.filter(user_id="clicker", kind="click").count() == 2
    assert not Event.objects.filter(unit_id="clicker").exists()


def test_a_bad_action_answers_400_and_stores_nothing(integration_api, trained):
    item = ContentItem.objects.order_by("id").first()
    response = adopt(integration_api, "mentee-x", item.id, "complete")
    assert response.status_code == 400
    assert response.json()["action"]
    assert not Interaction.objects.filter(user_id="mentee-x").exists()


def test_feedback_on_an_unknown_item_answers_404_and_stores_nothing(integration_api, trained):
    response = adopt(integration_api, "mentee-x", 987654)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert not Interaction.objects.filter(user_id="mentee-x").exists()
    assert not Event.objects.filter(unit_id="mentee-x").exists()


def test_feedback_without_user_id_answers_400(integration_api, trained):
    response = integration_api.post(FEEDBACK, {"item_id": 1, "action": "click"}, format="json")
    assert response.status_code == 400
    assert response.json()["user_id"]


# --- catalogue and similar items --------------------------------------------------------


def test_the_catalogue_is_paginated_and_filtered_by_kind_and_text(integration_api, seeded):
    page = integration_api.get(ITEMS, {"page_size": 20}).json()
    assert page["count"] == 300 and len(page["results"]) == 20 and page["next"]
    assert set(page["results"][0]) == {"item_id", "kind", "title", "description", "tags"}
    mentors = integration_api.get(ITEMS, {"kind": "mentor", "page_size": 200}).json()
    assert mentors["count"] == ContentItem.objects.filter(kind="mentor").count()
    assert {r["kind"] for r in mentors["results"]} == {"mentor"}
    found = integration_api.get(ITEMS, {"q": "PYTORCH", "page_size": 200}).json()
    assert found["count"] > 0
    for r in found["results"]:
        text = " ".join([r["title"], r["description"], *r["tags"]]).lower()
        assert "pytorch" in text


def test_the_catalogue_leaves_out_retired_items(integration_api, seeded):
    ContentItem.objects.filter(kind="article").update(active=False)
    assert integration_api.get(ITEMS, {"kind": "article"}).json()["count"] == 0


def test_an_unknown_kind_answers_400(integration_api, seeded):
    response = integration_api.get(ITEMS, {"kind": "podcast"})
    assert response.status_code == 400
    assert response.json()["kind"]


def test_similar_items_are_related_and_never_the_item_itself(integration_api, trained):
    item = ContentItem.objects.filter(kind="course").order_by("id").first()
    response = integration_api.get(similar_url(item.id), {"k": 5})
    assert response.status_code == 200
    ids = [i["item_id"] for i in response.json()["items"]]
    assert len(ids) == 5 and item.id not in ids
    field = item.tags[0]  # the demo's first tag is the item's field
    same_field = sum(field in ContentItem.objects.get(id=i).tags for i in ids)
    assert same_field >= 3


def test_similar_items_of_an_unknown_item_answer_404(integration_api, trained):
    response = integration_api.get(similar_url(987654))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_similar_items_with_k_out_of_range_answer_400(integration_api, trained):
    item = ContentItem.objects.order_by("id").first()
    response = integration_api.get(similar_url(item.id), {"k": 500})
    assert response.status_code == 400
    assert response.json()["k"]


def test_similar_items_before_any_training_come_from_shared_tags(integration_api, seeded):
    item = ContentItem.objects.order_by("id").first()
    ids = [i["item_id"] for i in integration_api.get(similar_url(item.id)).json()["items"]]
    assert len(ids) == 10 and item.id not in ids
    for other in ContentItem.objects.filter(id__in=ids):
        assert set(other.tags) & set(item.tags)


# --- permissions -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, path",
    [("post", RECOMMEND), ("post", FEEDBACK), ("get", ITEMS), ("get", similar_url(1))],
)
def test_anonymous_callers_get_401(anon_api, db, method, path):
    assert getattr(anon_api, method)(path, {}, format="json").status_code == 401


def test_a_product_manager_may_call_it_and_an_executive_may_not(pm_api, executive_api, trained):
    assert recommend(pm_api).status_code == 200
    assert recommend(executive_api).status_code == 403
