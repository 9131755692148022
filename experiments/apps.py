from django.apps import AppConfig


class ExperimentsConfig(AppConfig):
    name = "experiments"

    def ready(self) -> None:
        from common.metrics import register_source
        from experiments import signals  # noqa: F401 - connects the receivers
        from experiments.metrics_figures import add_experiment_figures

        register_source(add_experiment_figures)
