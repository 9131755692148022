"""Flush request metrics and evaluate rollout health every 10 seconds."""

from django.db import migrations

from common.beat_schedules import Every, schedule


class Migration(migrations.Migration):
    dependencies = [
        ("rollout", "0002_audit_append_only_and_permissions"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedule(
            Every(
                "flush request metrics and evaluate rollouts",
                "rollout.flush_and_evaluate",
                10,
                "seconds",
                "Copies request metrics into minute windows, evaluates every active rollout "
                "and rolls back the failing ones.",
            )
        )
    ]
