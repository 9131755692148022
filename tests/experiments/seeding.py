"""Planting exposures and events straight into the tables, fast, for analysis tests."""

from datetime import timedelta

import numpy as np
from django.utils import timezone

from experiments.models import Event, Experiment, Exposure, Metric


def plant(
    experiment: Experiment,
    metric: Metric,
    values_by_variant: dict[str, np.ndarray],
    *,
    pre_values_by_variant: dict[str, np.ndarray] | None = None,
    attributes_by_variant: dict[str, list[dict]] | None = None,
    start=None,
    prefix: str = "u",
    stage: str = "",
) -> None:
    """One exposure per unit; one post-exposure event per unit with its value
    (none where the value is NaN), and optionally one pre-exposure event.
    Planting a second metric for the same units keeps their first exposure."""
    start = start or timezone.now() - timedelta(days=3)
    variants = {v.key: v for v in experiment.variants.all()}
    exposures, events = [], []
    for key, values in values_by_variant.items():
        variant = variants[key]
        for i, value in enumerate(values):
            unit = f"{prefix}-{key}-{i}"
            exposed_at = start + timedelta(seconds=i)
            attributes = attributes_by_variant[key][i] if attributes_by_variant else {}
            exposures.append(
                Exposure(
                    experiment=experiment,
                    unit_id=unit,
                    variant=variant,
                    exposed_at=exposed_at,
                    attributes=attributes,
                    stage=stage,
                )
            )
            if not np.isnan(value):
                events.append(
                    Event(
                        event_id=f"{prefix}-{metric.key}-{key}-{i}-post",
                        unit_id=unit,
                        metric=metric,
                        value=float(value),
                        timestamp=exposed_at + timedelta(hours=1),
                        received_at=exposed_at,
                    )
                )
            if pre_values_by_variant is not None:
                events.append(
                    Event(
                        event_id=f"{prefix}-{metric.key}-{key}-{i}-pre",
                        unit_id=unit,
                        metric=metric,
                        value=float(pre_values_by_variant[key][i]),
                        timestamp=exposed_at - timedelta(days=2),
                        received_at=exposed_at,
                    )
                )
    Exposure.objects.bulk_create(exposures, batch_size=2000, ignore_conflicts=True)
    Event.objects.bulk_create(events, batch_size=2000)
