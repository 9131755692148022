"""Expire idle conversations every minute and compute returns every 10 minutes (both
editable in the admin)."""

from django.db import migrations

from common.beat_schedules import Every, schedule


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0001_initial"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedule(
            Every(
                "expire idle conversation sessions",
                "conversations.expire_idle_sessions",
                1,
                "minutes",
                "Sessions idle for 30 minutes become expired and emit their duration.",
            ),
            Every(
                "compute conversation returns",
                "conversations.compute_returns",
                10,
                "minutes",
                "A `return` event for each session started within 7 days of the mentee's "
                "previous one.",
            ),
        )
    ]
