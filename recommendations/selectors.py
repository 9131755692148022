"""Reads of the recommender's tables (writes live in `recommendations.services`)."""

from django.db.models import Q, QuerySet, TextField
from django.db.models.functions import Cast

from common.errors import DomainError
from recommendations.models import ContentItem, Interaction


def list_items(*, kind: str | None = None, q: str | None = None) -> QuerySet[ContentItem]:
    """Active catalogue items, optionally of one kind and matching `q` (case-insensitive
    substring of the title, the description or any tag), ordered by id for stable pages."""
    items = ContentItem.objects.filter(active=True)
    if kind:
        items = items.filter(kind=kind)
    if q:
        # tags is a JSON list: its text form ('["python", "apis"]') is searched, which
        # works the same on SQLite and PostgreSQL without a vendor-specific lookup.
        items = items.annotate(tags_text=Cast("tags", output_field=TextField())).filter(
            Q(title__icontains=q) | Q(description__icontains=q) | Q(tags_text__icontains=q)
        )
    return items.order_by("id")


def get_item(item_id: int) -> ContentItem:
    """The catalogue item (active or not); DomainError not_found when unknown."""
    item = ContentItem.objects.filter(id=item_id).first()
    if item is None:
        raise DomainError(f"Unknown item {item_id}.", code="not_found", field="item_id")
    return item


def item_exists(item_id: int) -> bool:
    return ContentItem.objects.filter(id=item_id).exists()


def blocked_item_ids(user_id: str) -> set[int]:
    """Items the user adopted, completed or dismissed: never recommended to them again.

    Read on every recommendation request (through the (user_id, timestamp) index), so
    feedback given since the last training takes effect at once."""
    return set(
        Interaction.objects.filter(user_id=user_id, kind__in=Interaction.BLOCKING).values_list(
            "item_id", flat=True
        )
    )
