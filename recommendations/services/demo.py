"""Loading the seeded demo catalogue and interaction log (`recommendations.demo_data`).

Idempotent: items are keyed by ``external_id = "demo:<seed>:<demo id>"`` and updated in
place; the interactions of the demo catalogue are loaded once — a second run leaves them
alone (and whatever feedback was given since), unless `reset` replaces them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from recommendations.demo_data import generate_demo_data
from recommendations.models import ContentItem, Interaction

_BATCH = 5000


@dataclass(frozen=True)
class SeedResult:
    items_created: int
    items_updated: int
    interactions_created: int
    interactions_skipped: bool


def demo_external_id(seed: int, demo_id: int) -> str:
    return f"demo:{seed}:{demo_id}"


def seed_demo(
    *,
    seed: int = 0,
    n_users: int = 800,
    items_per_cluster: int = 12,
    days: int = 60,
    reset: bool = False,
    progress: Callable[[int], object] | None = None,
) -> SeedResult:
    """Load the demo data of `seed`; `progress(n)` is called after each batch of n rows
    (items, then interactions: ``len(items) + len(interactions)`` in all)."""
    demo = generate_demo_data(
        seed=seed, n_users=n_users, items_per_cluster=items_per_cluster, days=days
    )
    tick = progress or (lambda n: None)
    with transaction.atomic():
        keys = {demo_external_id(seed, it.id): it for it in demo.items}
        existing = dict(
            ContentItem.objects.filter(external_id__in=list(keys)).values_list("external_id", "id")
        )
        new = [
            ContentItem(
                external_id=key,
                kind=it.kind,
                title=it.title,
                description=it.description,
                tags=list(it.tags),
            )
            for key, it in keys.items()
            if key not in existing
        ]
        ContentItem.objects.bulk_create(new, batch_size=_BATCH)
        changed = []
        for item in ContentItem.objects.filter(external_id__in=list(existing)):
            src = keys[item.external_id]
            item.kind, item.title, item.description = src.kind, src.title, src.description
            item.tags = list(src.tags)  # `active` stays: an item retired by hand stays retired
            changed.append(item)
        ContentItem.objects.bulk_update(
            changed, ["kind", "title", "description", "tags"], batch_size=_BATCH
        )
        tick(len(keys))
        db_id = dict(
            ContentItem.objects.filter(external_id__in=list(keys)).values_list("external_id", "id")
        )
        by_demo_id = {it.id: db_id[key] for key, it in keys.items()}

        demo_items = Interaction.objects.filter(item_id__in=list(by_demo_id.values()))
        if reset:
            demo_items.delete()
        elif demo_items.exists():
            tick(len(demo.interactions))
            return SeedResult(len(new), len(changed), 0, True)
        created = 0
        for start in range(0, len(demo.interactions), _BATCH):
            batch = demo.interactions[start : start + _BATCH]
            Interaction.objects.bulk_create(
                Interaction(
                    user_id=ev.user_id,
                    item_id=by_demo_id[ev.item_id],
                    kind=ev.kind,
                    weight=ev.weight,
                    timestamp=ev.timestamp,
                )
                for ev in batch
            )
            created += len(batch)
            tick(len(batch))
    return SeedResult(len(new), len(changed), created, False)
