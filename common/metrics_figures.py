"""The platform's own figure that /metrics reads from the database when
scraped: the age of beat's last tick."""

from django.utils import timezone

from common.metrics import ScrapeFigures
from common.selectors import last_beat_tick


def add_beat_figures(figures: ScrapeFigures) -> None:
    latest = last_beat_tick()
    figures.beat_age_seconds = (timezone.now() - latest).total_seconds() if latest else None
