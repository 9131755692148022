"""Beat schedules live in the database so staff can see and change them in the
admin. This one proves that beat and a worker run."""

from django.db import migrations

from common.beat_schedules import Every, schedule


class Migration(migrations.Migration):
    dependencies = [
        ("common", "0002_groups"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        schedule(
            Every(
                "platform heartbeat",
                "common.record_heartbeat",
                30,
                "seconds",
                "Writes a heartbeat row; /healthz shows the age of the newest one.",
            )
        )
    ]
