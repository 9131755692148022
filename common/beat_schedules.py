"""Beat schedules written by data migrations: staff see and change them in the
admin (django-celery-beat). Migrations call these with their historical `apps`."""

from dataclasses import dataclass

from django.db import migrations


@dataclass(frozen=True)
class Every:
    name: str
    task: str
    every: int
    period: str  # "seconds" | "minutes" | "hours" | "days"
    description: str


def schedule(*entries: Every) -> migrations.RunPython:
    """A migration operation that creates (or updates) interval schedules, and
    removes them when the migration is reversed."""

    def create(apps, schema_editor):
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        for entry in entries:
            interval, _ = IntervalSchedule.objects.get_or_create(
                every=entry.every, period=entry.period
            )
            PeriodicTask.objects.update_or_create(
                name=entry.name,
                defaults={
                    "task": entry.task,
                    "interval": interval,
                    "enabled": True,
                    "description": entry.description,
                },
            )

    def remove(apps, schema_editor):
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
        PeriodicTask.objects.filter(name__in=[entry.name for entry in entries]).delete()

    return migrations.RunPython(create, remove)
