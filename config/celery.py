"""The Celery application: settings under the CELERY_ namespace, tasks found in
every installed app's `tasks` module, schedules in django-celery-beat."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("ion")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
