"""Retrain the recommender every night at 03:17 UTC (editable in the admin)."""

from django.db import migrations

NAME = "train recommendation models"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    # off the full hour, when other nightly jobs of a cluster tend to start
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="17", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )
    PeriodicTask.objects.update_or_create(
        name=NAME,
        defaults={
            "task": "recommendations.train_models",
            "crontab": nightly,
            "interval": None,
            "enabled": True,
            "description": "Trains v1 (popularity) and v2 (ensemble) on all interactions, "
            "evaluates them on a time split and activates the new versions.",
        },
    )


def delete_schedule(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=NAME).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("recommendations", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, delete_schedule)]
