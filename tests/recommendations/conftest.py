"""Fixtures of the recommender's database and API tests."""

import pytest

from recommendations import model_store
from recommendations.services import demo, serving, training


@pytest.fixture(autouse=True)
def _fresh_recommender_caches():
    """Loaded models, the catalogue snapshot and live popularity outlive a test's
    transaction (and SQLite may hand out the same ids again): start without them."""
    model_store.forget()
    serving.forget()
    yield
    model_store.forget()
    serving.forget()


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """The API fixtures create users with a password; the default hasher spends ≈ 0.25 s
    on each, which would be most of the time of these tests."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def seeded(db):
    """A small demo catalogue (300 items) and ~3 000 interactions of 150 mentees."""
    demo.seed_demo(seed=0, n_users=150, items_per_cluster=10)


@pytest.fixture
def trained(seeded):
    """`seeded`, with v1 and v2 trained and active (evaluation skipped for speed)."""
    return training.train_models(evaluate_first=False)
