"""Service figures of an experiment's treatment, handed down by a higher app.

The experiments app may not import rollout (see DESIGN.md: arrows point
down). Rollout registers a provider in its AppConfig.ready(); the analysis
asks every provider and takes the first answer.
"""

from collections.abc import Callable

from experiments.decision import ServiceFigures

Provider = Callable[[object], ServiceFigures | None]
_providers: list[Provider] = []


def register_provider(provider: Provider) -> None:
    if provider not in _providers:
        _providers.append(provider)


def service_figures(experiment: object) -> ServiceFigures | None:
    for provider in _providers:
        figures = provider(experiment)
        if figures is not None:
            return figures
    return None
