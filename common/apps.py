from django.apps import AppConfig


class CommonConfig(AppConfig):
    name = "common"
    verbose_name = "Platform"

    def ready(self) -> None:
        from common import celery_metrics  # noqa: F401 - connects the task signals
        from common.metrics import register_source
        from common.metrics_figures import add_beat_figures

        register_source(add_beat_figures)
