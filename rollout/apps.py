import atexit

from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"

    def ready(self) -> None:
        from experiments import guardrails
        from rollout import metrics_store
        from rollout.guardrails import canary_service_figures

        # The experiments app may not import rollout; rollout hands the figures down.
        guardrails.register_provider(canary_service_figures)

        from common.metrics import register_source
        from rollout.metrics_figures import add_rollout_figures

        register_source(add_rollout_figures)
        # A process that stops (a web worker recycled, a deploy) stores what it
        # counted in its last second instead of taking it along.
        atexit.register(metrics_store.push_at_exit)
