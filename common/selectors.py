from datetime import datetime

from django.db.models import Model, OuterRef, Subquery

from common.models import WorkerHeartbeat


def newest_per_parent(
    child: type[Model],
    *,
    parent: type[Model],
    link: str,
    parent_ids: list[int],
    order_by: tuple[str, ...],
) -> dict[int, Model]:
    """The newest `child` row of each parent (by `order_by`), in two indexed
    queries however many children there are: {parent id: child}."""
    newest = child.objects.filter(**{link: OuterRef("pk")}).order_by(*order_by)
    ids = (
        parent.objects.filter(id__in=parent_ids)
        .annotate(newest=Subquery(newest.values("id")[:1]))
        .values_list("newest", flat=True)
    )
    rows = child.objects.filter(id__in=[i for i in ids if i])
    return {getattr(row, f"{link}_id"): row for row in rows}


def last_beat_tick() -> datetime | None:
    """When beat last ticked (its newest heartbeat), or None if it never did."""
    return (
        WorkerHeartbeat.objects.filter(source=WorkerHeartbeat.Source.BEAT)
        .values_list("created_at", flat=True)
        .first()
    )
