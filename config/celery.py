"""The Celery application: settings under the CELERY_ namespace, tasks found in
every installed app's `tasks` module, schedules in django-celery-beat. A
worker that starts prunes the embedded broker (config.embedded_broker)."""

import os

from celery import Celery
from celery.signals import worker_ready

from config.embedded_broker import forget_delivered_messages

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect  # type: ignore[untyped-decorator]
def _forget_delivered_messages(sender: object, **kwargs: object) -> None:
    forget_delivered_messages(app.conf.broker_url)
