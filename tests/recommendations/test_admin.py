"""The admin: model versions list without loading artifacts; "Train now" enqueues."""

import pytest
from django.urls import reverse

from recommendations import admin as rec_admin

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.invalid", "pw")
    client.force_login(user)
    return client


def test_the_model_versions_page_lists_trained_versions(admin_client, trained):
    response = admin_client.get(reverse("admin:recommendations_modelversion_changelist"))
    assert response.status_code == 200
    assert b"Train now" in response.content
    assert trained.versions["ensemble"].engine.encode() in response.content


def test_train_now_enqueues_the_training_task(admin_client, monkeypatch, db):
    sent = []
    # the broker lies outside the project: record the call instead of queueing a job
    monkeypatch.setattr(rec_admin.train_models, "delay", lambda: sent.append(True))
    response = admin_client.post(reverse("admin:recommendations_modelversion_train_now"))
    assert response.status_code == 302
    assert sent == [True]


def test_train_now_is_refused_to_a_get(admin_client, db):
    response = admin_client.get(reverse("admin:recommendations_modelversion_train_now"))
    assert response.status_code == 405
