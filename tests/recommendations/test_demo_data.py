"""Tests of the seeded demo catalogue / interaction generator."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import pytest

from recommendations.demo_data import FIELDS_BY_SLUG, LEVELS, DemoData, generate_demo_data
from recommendations.engines.base import (
    DEFAULT_WEIGHTS,
    INTERACTION_KINDS,
    ITEM_KINDS,
    POSITIVE_KINDS,
)


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo_data(seed=3)


def test_catalogue_size_and_unique_titles(demo: DemoData) -> None:
    assert len(demo.items) >= 300
    titles = [it.title for it in demo.items]
    assert len(set(titles)) == len(titles)
    ids = [it.id for it in demo.items]
    assert len(set(ids)) == len(ids)
    assert {it.kind for it in demo.items} == set(ITEM_KINDS)


def test_items_have_readable_text_and_tags(demo: DemoData) -> None:
    for it in demo.items:
        meta = demo.item_meta[it.id]
        assert it.title.strip() and len(it.description) > 60
        assert isinstance(it.tags, tuple) and len(it.tags) >= 3
        assert meta.field in it.tags and meta.level in it.tags
        assert meta.field in FIELDS_BY_SLUG and meta.level in LEVELS
        assert it.description[0].isupper() and it.description.endswith(".")
    mentors = [it for it in demo.items if it.kind == "mentor"]
    # "First Last, Role": a plausible person name before the comma
    assert all(len(it.title.split(",")[0].split()) == 2 for it in mentors)


def test_deterministic_for_a_seed() -> None:
    a = generate_demo_data(seed=11, n_users=150)
    b = generate_demo_data(seed=11, n_users=150)
    assert a.items == b.items
    assert a.interactions == b.interactions
    assert a.users == b.users
    c = generate_demo_data(seed=12, n_users=150)
    assert [it.title for it in c.items] != [it.title for it in a.items]
    assert c.interactions != a.interactions


def test_catalogue_independent_of_user_count() -> None:
    assert generate_demo_data(seed=5, n_users=50).items == generate_demo_data(seed=5).items


def test_interactions_are_valid_and_time_ordered(demo: DemoData) -> None:
    item_ids = {it.id for it in demo.items}
    end = demo.start + timedelta(days=demo.days)
    stamps = [ev.timestamp for ev in demo.interactions if isinstance(ev.timestamp, datetime)]
    assert len(stamps) == len(demo.interactions)  # aware datetimes, ready for a DateTimeField
    assert all(ts.tzinfo is not None for ts in stamps)
    assert stamps == sorted(stamps)
    assert demo.start <= stamps[0] and stamps[-1] < end
    # activity spreads over the whole period (sequences over time, late joiners)
    assert stamps[-1] - stamps[0] > timedelta(days=demo.days * 0.8)
    kinds = Counter(ev.kind for ev in demo.interactions)
    assert set(kinds) == set(INTERACTION_KINDS)
    assert kinds["view"] > kinds["click"] > kinds["adopt"] > kinds["complete"]
    assert kinds["dismiss"] > 0
    for ev in demo.interactions:
        assert ev.item_id in item_ids
        assert ev.user_id in demo.users
        assert ev.weight == DEFAULT_WEIGHTS[ev.kind]


def test_planted_cluster_structure(demo: DemoData) -> None:
    in_field = in_cluster = total = 0
    for ev in demo.interactions:
        if ev.kind not in POSITIVE_KINDS:
            continue
        user, meta = demo.users[ev.user_id], demo.item_meta[ev.item_id]
        total += 1
        in_field += meta.field == user.field
        in_cluster += (meta.field, meta.level) == (user.field, user.level)
    assert in_field / total > 0.7
    assert in_cluster / total > 0.55
    # dismisses are mostly about other fields
    dismissed = [ev for ev in demo.interactions if ev.kind == "dismiss"]
    off = sum(demo.item_meta[ev.item_id].field != demo.users[ev.user_id].field for ev in dismissed)
    assert off / len(dismissed) > 0.9


def test_popularity_is_skewed(demo: DemoData) -> None:
    views = Counter(ev.item_id for ev in demo.interactions if ev.kind == "view")
    counts = sorted(views.values(), reverse=True)
    top_decile = sum(counts[: len(demo.items) // 10])
    assert top_decile / sum(counts) > 0.2  # a uniform catalogue would give 0.1


def test_users_have_clusters_and_funnels(demo: DemoData) -> None:
    assert len(demo.users) == 800
    assert {u.level for u in demo.users.values()} == set(LEVELS)
    assert len({u.field for u in demo.users.values()}) == len(FIELDS_BY_SLUG)
    # an adoption is always preceded by a view of the same item by the same user
    first_view: dict[tuple[str, int], object] = {}
    for ev in demo.interactions:
        key = (ev.user_id, ev.item_id)
        if ev.kind == "view":
            first_view.setdefault(key, ev.timestamp)
        elif ev.kind in ("adopt", "complete"):
            assert key in first_view
