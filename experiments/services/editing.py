"""Editing an experiment's definition, and the one rule of what may change.

`edit_problems` is that rule; the dashboard forms, the REST API and the admin
all ask it (the forms and the API through `update_experiment`):

- a draft may change anything but its hash seed and hash attribute;
- a running experiment may change nothing that moves a unit: its traffic
  share may rise (bucket ranges only grow), its variants, weights, control,
  payloads, seed and hash attribute stay as they are. Names, the hypothesis,
  the owner, its metrics and its decision settings may change (audited);
- a stopped or archived experiment keeps its record: only the name and the
  hypothesis may change.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from django.db import transaction

from common import validation
from common.errors import DomainError
from experiments import config_cache
from experiments.hashing import normalise_weights
from experiments.models import Experiment, ExperimentMetric, Metric, Variant
from experiments.services import policy
from experiments.services.lifecycle import (
    ANALYSIS_SETTINGS,
    MetricSpec,
    VariantSpec,
    audit_experiment_edit,
    check_analysis_settings,
    check_metric_definition,
    check_metrics,
    check_variants,
)

# Every SDK definition and our own assignment hash the unit's id.
HASH_ATTRIBUTE = "id"
TEXT_FIELDS = ("name", "hypothesis")
SETTINGS_FIELDS = (
    "owner",
    "traffic_percent",
    "alpha",
    "sequential",
    "correction",
    "cuped_lookback_days",
    "exclude_carryover",
    "decision_policy",
)


@dataclass(frozen=True)
class ExperimentEdit:
    """What to change; None leaves a field as it is. `variants` and `metrics`
    replace the whole list when given."""

    name: str | None = None
    hypothesis: str | None = None
    owner: Any = None
    traffic_percent: float | None = None
    alpha: float | None = None
    sequential: bool | None = None
    correction: str | None = None
    cuped_lookback_days: int | None = None
    exclude_carryover: bool | None = None
    decision_policy: dict | None = None
    variants: Sequence[VariantSpec] | None = None
    metrics: Sequence[MetricSpec] | None = None
    seed: str | None = None
    hash_attribute: str | None = None

    def given(self) -> list[str]:
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]


@dataclass(frozen=True)
class EditProblem:
    field: str
    message: str


def stored_variants(experiment: Experiment) -> list[dict[str, Any]]:
    return [
        {
            "key": v.key,
            "name": v.name,
            "weight": v.weight,
            "is_control": v.is_control,
            "payload": v.payload,
        }
        for v in sorted(experiment.variants.all(), key=lambda v: (v.position, v.id))
    ]


def stored_metrics(experiment: Experiment) -> list[dict[str, Any]]:
    return [
        {"metric": link.metric.key, "role": link.role, "min_effect": link.min_effect}
        for link in sorted(experiment.metrics.all(), key=lambda m: m.id)
    ]


def _variant_dicts(specs: Sequence[VariantSpec]) -> list[dict[str, Any]]:
    return [
        {
            "key": s.key,
            "name": s.name or s.key,
            "weight": float(s.weight),
            "is_control": s.is_control,
            "payload": s.payload,
        }
        for s in specs
    ]


def _same_split(old: list[float], new: list[float]) -> bool:
    return all(
        math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-12)
        for a, b in zip(normalise_weights(old), normalise_weights(new), strict=True)
    )


def _variant_problems(experiment: Experiment, specs: Sequence[VariantSpec]) -> list[EditProblem]:
    old = stored_variants(experiment)
    new = _variant_dicts(specs)
    why = "stop it and start a new experiment to change them"
    if [v["key"] for v in old] != [v["key"] for v in new]:
        return [
            EditProblem(
                "variants",
                "variants cannot be added, removed or reordered while the experiment runs: "
                f"every unit's arm would be reassigned ({why})",
            )
        ]
    problems = []
    if not _same_split([v["weight"] for v in old], [v["weight"] for v in new]):
        moved = ", ".join(
            f"{o['key']} {o['weight']:g} → {n['weight']:g}"
            for o, n in zip(old, new, strict=True)
            if o["weight"] != n["weight"]
        )
        problems.append(
            EditProblem(
                "variants",
                f"weights cannot change while the experiment runs ({moved}): the new split "
                f"would move units already assigned from one arm to another ({why})",
            )
        )
    if [v["is_control"] for v in old] != [v["is_control"] for v in new]:
        problems.append(
            EditProblem(
                "variants",
                "the control cannot change while the experiment runs: every comparison "
                f"shown so far would change its meaning ({why})",
            )
        )
    changed_payloads = [
        o["key"] for o, n in zip(old, new, strict=True) if o["payload"] != n["payload"]
    ]
    if changed_payloads:
        problems.append(
            EditProblem(
                "variants",
                f"the payload of {', '.join(changed_payloads)} cannot change while the "
                "experiment runs: units already in that arm would get something else mid-test "
                f"({why})",
            )
        )
    return problems


def edit_problems(experiment: Experiment, edit: ExperimentEdit) -> list[EditProblem]:
    """Why `edit` may not be applied to `experiment` as it is now (empty: it
    may). Only the fields given in `edit` are judged."""
    problems: list[EditProblem] = []
    if edit.seed is not None and edit.seed != experiment.seed:
        problems.append(
            EditProblem(
                "seed",
                "the hash seed is fixed when the experiment is created: a new seed would "
                "reshuffle every unit into a different arm",
            )
        )
    if edit.hash_attribute is not None and edit.hash_attribute != HASH_ATTRIBUTE:
        problems.append(
            EditProblem(
                "hash_attribute",
                f"units are hashed by their '{HASH_ATTRIBUTE}': another attribute would "
                "reassign every unit",
            )
        )
    status = experiment.status
    if status == Experiment.Status.DRAFT:
        return problems
    if status in (Experiment.Status.STOPPED, Experiment.Status.ARCHIVED):
        frozen = [
            name
            for name in edit.given()
            if name not in (*TEXT_FIELDS, "seed", "hash_attribute")
            and _differs(experiment, name, getattr(edit, name))
        ]
        if frozen:
            problems.append(
                EditProblem(
                    frozen[0],
                    f"a {status} experiment keeps its record: {', '.join(frozen)} cannot "
                    "change (only the name and the hypothesis can); start a new experiment",
                )
            )
        return problems
    if edit.traffic_percent is not None and edit.traffic_percent < experiment.traffic_percent:
        problems.append(
            EditProblem(
                "traffic_percent",
                "a running experiment's traffic can only be raised (it is "
                f"{experiment.traffic_percent:g} %): lowering it would take units that were "
                "already exposed out of the experiment",
            )
        )
    if edit.variants is not None:
        problems += _variant_problems(experiment, edit.variants)
    if edit.metrics is not None and not any(
        m.role == ExperimentMetric.Role.PRIMARY for m in edit.metrics
    ):
        problems.append(
            EditProblem(
                "metrics",
                "a running experiment keeps at least one primary metric: it is what the "
                "decision is about (it was needed to start)",
            )
        )
    return problems


def _differs(experiment: Experiment, name: str, value: Any) -> bool:
    if name == "variants":
        return _variant_dicts(value) != stored_variants(experiment)
    if name == "metrics":
        return [
            {"metric": m.metric, "role": m.role, "min_effect": m.min_effect} for m in value
        ] != stored_metrics(experiment)
    if name == "owner":
        return getattr(value, "pk", value) != experiment.owner_id
    if name == "decision_policy":
        return policy.check_decision_policy(value) != (experiment.decision_policy or {})
    return getattr(experiment, name) != value


def check_edit(experiment: Experiment, edit: ExperimentEdit) -> None:
    """DomainError (409) with every reason when `edit` may not be applied."""
    problems = edit_problems(experiment, edit)
    if problems:
        raise DomainError(
            f"Experiment '{experiment.key}' is {experiment.status}: "
            + "; ".join(p.message for p in problems)
            + ".",
            code="conflict",
            field=problems[0].field,
        )


def _checked_values(edit: ExperimentEdit) -> dict[str, Any]:
    """The scalar fields given, each within what the database and the
    analysis accept (400 otherwise)."""
    values: dict[str, Any] = {}
    for name in TEXT_FIELDS:
        raw = getattr(edit, name)
        if raw is None:
            continue
        try:
            if name == "name":
                values[name] = validation.check_text(raw, max_length=200)
            elif raw == "":
                values[name] = ""
            else:
                values[name] = validation.check_text(raw, max_length=10_000)
        except validation.Invalid as exc:
            raise DomainError(f"{name}: {exc.message}", field=name) from exc
    if edit.traffic_percent is not None:
        try:
            values["traffic_percent"] = validation.check_number(
                edit.traffic_percent, low=0, high=100
            )
        except validation.Invalid as exc:
            raise DomainError(f"traffic_percent: {exc.message}", field="traffic_percent") from exc
    if edit.alpha is not None:
        if not (
            isinstance(edit.alpha, int | float)
            and math.isfinite(edit.alpha)
            and 0 < edit.alpha < 0.5
        ):
            raise DomainError("alpha must be between 0 and 0.5 (e.g. 0.05).", field="alpha")
        values["alpha"] = float(edit.alpha)
    values.update(
        check_analysis_settings(
            {
                name: getattr(edit, name)
                for name in ANALYSIS_SETTINGS
                if getattr(edit, name) is not None
            }
        )
    )
    if edit.owner is not None:
        values["owner"] = edit.owner
    return values


def update_experiment(
    *, experiment: Experiment, edit: ExperimentEdit, by: Any = None
) -> Experiment:
    """Apply `edit` in one transaction with one `experiment_edited` audit
    entry (before and after of every field that changed). 409 with the
    reasons when the rule (`edit_problems`) refuses it; 400 for a bad value.
    Nothing changes when it is refused."""
    values = _checked_values(edit)
    if edit.variants is not None:
        check_variants(edit.variants)
    known: dict[str, Metric] = {}
    if edit.metrics is not None:
        known = check_metrics(edit.metrics)
    if edit.decision_policy is not None:
        metric_keys = set(Metric.objects.values_list("key", flat=True))
        values["decision_policy"] = policy.check_decision_policy(
            edit.decision_policy, metric_keys=metric_keys
        )
    with transaction.atomic():
        locked = (
            Experiment.objects.select_for_update()
            .prefetch_related("variants", "metrics__metric")
            .get(id=experiment.id)
        )
        check_edit(locked, edit)  # judged on the row as it is now, under the lock
        before: dict[str, Any] = {
            name: getattr(locked, "owner_id" if name == "owner" else name) for name in values
        }
        after = {name: getattr(v, "pk", v) for name, v in values.items()}
        for name, value in values.items():
            setattr(locked, name, value)
        if values:
            locked.save(update_fields=[*values, "updated_at"])
        if edit.variants is not None:
            before["variants"] = stored_variants(locked)
            _replace_variants(locked, edit.variants)
            after["variants"] = _variant_dicts(edit.variants)
        if edit.metrics is not None:
            before["metrics"] = stored_metrics(locked)
            _replace_metrics(locked, edit.metrics, known)
            after["metrics"] = [
                {"metric": m.metric, "role": m.role, "min_effect": m.min_effect}
                for m in edit.metrics
            ]
        audit_experiment_edit(experiment=locked, before=before, after=after, by=by)
        key = locked.key
        transaction.on_commit(lambda: config_cache.invalidate(key))
    experiment.refresh_from_db()
    return experiment


def _replace_variants(experiment: Experiment, specs: Sequence[VariantSpec]) -> None:
    """Variants by key: kept ones updated in place (their exposures stay),
    others created or deleted. A running experiment gets here only with the
    same keys, weights, control and payloads (the rule above)."""
    current = {v.key: v for v in experiment.variants.all()}
    wanted = {s.key for s in specs}
    Variant.objects.filter(experiment=experiment).exclude(key__in=wanted).delete()
    # Clear the control first: the one-control constraint holds after every statement.
    Variant.objects.filter(experiment=experiment, is_control=True).update(is_control=False)
    for position, spec in enumerate(specs):
        row = current.get(spec.key) or Variant(experiment=experiment, key=spec.key)
        row.name = spec.name or spec.key
        row.weight = float(spec.weight)
        row.is_control = spec.is_control
        row.payload = spec.payload
        row.position = position
        row.save()


def _replace_metrics(
    experiment: Experiment, specs: Sequence[MetricSpec], known: dict[str, Metric]
) -> None:
    current = {link.metric.key: link for link in experiment.metrics.all()}
    wanted = {s.metric for s in specs}
    ExperimentMetric.objects.filter(experiment=experiment).exclude(metric__key__in=wanted).delete()
    for spec in specs:
        link = current.get(spec.metric) or ExperimentMetric(
            experiment=experiment, metric=known[spec.metric]
        )
        link.role = spec.role
        link.min_effect = spec.min_effect
        link.save()


# What a metric's analysis reads: changing it would re-read every result
# already shown for the experiments that measure it.
METRIC_MEANING = (
    "kind",
    "unit_aggregation",
    "missing_as_zero",
    "higher_is_better",
    "cap_kind",
    "cap_value",
    "numerator",
    "denominator",
)


def update_metric(*, metric: Metric, changes: dict[str, Any]) -> Metric:
    """Change a metric. Its name and description may always change; what
    its analysis reads (METRIC_MEANING) only while no running, stopped or
    archived experiment measures it (409 naming them). 400 for a bad value."""
    unknown = sorted(set(changes) - {"name", "description", *METRIC_MEANING})
    if unknown:
        raise TypeError(f"Unknown metric fields: {', '.join(unknown)}")
    if "name" in changes:
        try:
            changes["name"] = validation.check_text(changes["name"], max_length=200)
        except validation.Invalid as exc:
            raise DomainError(f"name: {exc.message}", field="name") from exc
    if "kind" in changes and changes["kind"] not in Metric.Kind.values:
        raise DomainError(f"kind must be one of {', '.join(Metric.Kind.values)}.", field="kind")
    if (
        "unit_aggregation" in changes
        and changes["unit_aggregation"] not in Metric.UnitAggregation.values
    ):
        raise DomainError(
            f"unit_aggregation must be one of {', '.join(Metric.UnitAggregation.values)}.",
            field="unit_aggregation",
        )
    with transaction.atomic():
        locked = Metric.objects.select_for_update().get(id=metric.id)
        meaning = [n for n in METRIC_MEANING if n in changes and changes[n] != getattr(locked, n)]
        if meaning:
            users = list(
                Experiment.objects.filter(metrics__metric=locked)
                .exclude(status=Experiment.Status.DRAFT)
                .values_list("key", flat=True)
                .distinct()[:5]
            )
            if users:
                raise DomainError(
                    f"Metric '{locked.key}' is measured by experiment(s) {', '.join(users)}: "
                    f"{', '.join(meaning)} cannot change, or every result already shown would "
                    "be read differently. Create a new metric instead.",
                    code="conflict",
                    field=meaning[0],
                )
        for name, value in changes.items():
            setattr(locked, name, value)
        # The changed definition obeys the same rules as a new one.
        check_metric_definition(
            kind=locked.kind,
            cap_kind=locked.cap_kind,
            cap_value=locked.cap_value,
            numerator=locked.numerator,
            denominator=locked.denominator,
        )
        locked.save(update_fields=[*changes, "updated_at"])
    metric.refresh_from_db()
    return metric
