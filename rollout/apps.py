from django.apps import AppConfig


class RolloutConfig(AppConfig):
    name = "rollout"

    def ready(self) -> None:
        from experiments import guardrails
        from rollout.guardrails import canary_service_figures

        # The experiments app may not import rollout; rollout hands the figures down.
        guardrails.register_provider(canary_service_figures)

        from common.metrics import register_source
        from rollout.metrics_figures import add_rollout_figures

        register_source(add_rollout_figures)
