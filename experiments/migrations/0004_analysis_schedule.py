"""Analyse every running experiment every 5 minutes (editable in the admin)."""

from django.db import migrations

from common.beat_schedules import Every, schedule


class Migration(migrations.Migration):
    dependencies = [
        ("experiments", "0003_analysis"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedule(
            Every(
                "analyse running experiments",
                "experiments.analyse_running_experiments",
                5,
                "minutes",
                "Stores a results snapshot per running experiment when its data changed.",
            )
        )
    ]
