"""Expire idle conversations every minute and compute returns every 10 minutes (both
editable in the admin)."""

from django.db import migrations

SCHEDULES = [
    (
        "expire idle conversation sessions",
        "conversations.expire_idle_sessions",
        1,
        "Sessions idle for 30 minutes become expired and emit their duration.",
    ),
    (
        "compute conversation returns",
        "conversations.compute_returns",
        10,
        "A `return` event for each session started within 7 days of the mentee's previous one.",
    ),
]


def create_schedules(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    for name, task, minutes, description in SCHEDULES:
        every, _ = IntervalSchedule.objects.get_or_create(every=minutes, period="minutes")
        PeriodicTask.objects.update_or_create(
            name=name,
            defaults={"task": task, "interval": every, "enabled": True, "description": description},
        )


def delete_schedules(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[name for name, *_ in SCHEDULES]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedules, delete_schedules)]
