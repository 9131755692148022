"""Flush request metrics and evaluate rollout health every 10 seconds."""

from django.db import migrations

NAME = "flush request metrics and evaluate rollouts"


def create_schedule(apps, schema_editor):
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(every=10, period="seconds")
    PeriodicTask.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "rollout.flush_and_evaluate",
            "interval": every,
            "enabled": True,
            "description": "Copies request metrics into minute windows, evaluates every active "
            "rollout and rolls back the failing ones.",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0002_audit_append_only_and_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
