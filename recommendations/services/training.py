"""Training and offline evaluation of the recommendation engines from the database.

`train_models` reads the active catalogue and the interaction log (with `values_list`,
never model instances: a million rows as tuples cost a fraction of a million objects),
evaluates popularity, CF, content and the ensemble on a time-based split, fits the
ensemble on all interactions, stores two ModelVersion rows — `popularity` (v1, served to
the stable route) and `ensemble` (v2, the canary) — and activates both in one
transaction. It is safe to run twice at once: each run stores its own versions and the
last activation wins (see `activate_versions`).
"""

from __future__ import annotations

import logging
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import FloatField, Func
from django.utils import timezone

from common.errors import DomainError
from recommendations.engines import BlendWeights, EnsembleEngine, IndexedEngine, TrainingData
from recommendations.engines import Interaction as EngineInteraction
from recommendations.engines import Item as EngineItem
from recommendations.engines.evaluation import evaluate, time_split
from recommendations.models import ContentItem, Interaction, ModelVersion

logger = logging.getLogger(__name__)

DEFAULT_K = 10
DEFAULT_TEST_FRACTION = 0.2
#: evaluation cost grows with the number of test users (one top-k per user and engine);
#: a fixed, deterministic sample keeps nightly training bounded at any scale
DEFAULT_MAX_EVAL_USERS = 2000
#: inactive versions kept per engine after a training (older ones are deleted: each
#: holds a full artifact)
KEEP_INACTIVE = 5
_READ_CHUNK = 20_000
SERVED_ENGINES = (ModelVersion.Engine.POPULARITY, ModelVersion.Engine.ENSEMBLE)


@dataclass(frozen=True)
class Evaluation:
    """Offline evaluation on a time split: `results[engine] = {precision@k, recall@k,
    ndcg@k, coverage, users}`; `skipped` says why there is none."""

    k: int
    test_fraction: float
    split_cutoff: str | None
    train_interactions: int
    test_users: int
    evaluated_users: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    skipped: str | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "k": self.k,
            "test_fraction": self.test_fraction,
            "split_cutoff": self.split_cutoff,
            "train_interactions": self.train_interactions,
            "test_users": self.test_users,
            "evaluated_users": self.evaluated_users,
            "results": self.results,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class TrainingResult:
    versions: dict[str, ModelVersion]
    evaluation: Evaluation
    timings: dict[str, float]


# --- reading -------------------------------------------------------------------------


def read_catalogue() -> list[EngineItem]:
    """Active items as engine Items (inactive ones are never trained on nor served)."""
    rows = (
        ContentItem.objects.filter(active=True)
        .order_by("id")
        .values_list("id", "kind", "title", "description", "tags")
    )
    return [
        EngineItem(item_id, kind, title, description, tuple(str(t) for t in tags or ()))
        for item_id, kind, title, description, tags in rows.iterator(chunk_size=_READ_CHUNK)
    ]


class EpochSeconds(Func):
    """POSIX seconds (float) of a datetime column, computed by the database.

    Reading a million timestamps as datetimes costs ≈ 5 s in psycopg's timestamptz parser
    alone; as float8 the whole read takes a third of that. SQLite stores UTC text, which
    julianday() reads (resolution ≈ 20 µs, plenty for a time split)."""

    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::float8", **extra
        )

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(
            compiler,
            connection,
            template="((julianday(%(expressions)s) - 2440587.5) * 86400.0)",
            **extra,
        )


def read_interactions(
    *, before: datetime, item_ids: set[int] | None = None
) -> list[EngineInteraction]:
    """Interactions strictly before `before`, in id (arrival) order, as engine Interactions
    with POSIX-second timestamps (the engines' fast path); only on `item_ids` when given."""
    rows = (
        Interaction.objects.filter(timestamp__lt=before)
        .order_by("id")  # deterministic user numbering; the id index is the cheapest order
        .annotate(epoch=EpochSeconds("timestamp"))
        .values_list("user_id", "item_id", "kind", "weight", "epoch")
    )
    out: list[EngineInteraction] = []
    append = out.append
    for user_id, item_id, kind, weight, epoch in rows.iterator(chunk_size=_READ_CHUNK):
        if item_ids is None or item_id in item_ids:
            append(EngineInteraction(user_id, item_id, kind, weight, epoch))
    return out


# --- evaluation ----------------------------------------------------------------------


def _sample_users(users: Sequence[str], limit: int) -> list[str]:
    # crc32, not hash(): the same users are picked in every process and every run
    if len(users) <= limit:
        return list(users)
    return sorted(users, key=lambda u: (zlib.crc32(u.encode()), u))[:limit]


def evaluate_engines(
    *,
    items: Sequence[EngineItem],
    interactions: Sequence[EngineInteraction],
    k: int = DEFAULT_K,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    max_users: int = DEFAULT_MAX_EVAL_USERS,
    weights: BlendWeights | None = None,
) -> Evaluation:
    """Fit an ensemble on the interactions before the `1 - test_fraction` time quantile
    and score it and its three components (popularity, CF, content — fitted on the same
    split) on what each user engaged with afterwards (see `engines.evaluation`)."""
    if not items or len(interactions) < 2:
        return Evaluation(k, test_fraction, None, 0, 0, 0, skipped="too few interactions")
    split = time_split(interactions, test_fraction=test_fraction)
    if not split.train or not split.test:
        return Evaluation(
            k, test_fraction, None, len(split.train), 0, 0, skipped="empty train or test set"
        )
    ensemble = EnsembleEngine(weights=weights).fit(items, split.train)
    engines: dict[str, IndexedEngine] = {
        "popularity": ensemble.popularity,
        "cf": ensemble.cf,
        "content": ensemble.content,
        "ensemble": ensemble,
    }
    users = _sample_users(sorted(split.test), max_users)
    test = {u: split.test[u] for u in users}
    results = evaluate(engines, split.train, test, k, items=items)  # type: ignore[arg-type]
    return Evaluation(
        k=k,
        test_fraction=test_fraction,
        split_cutoff=datetime.fromtimestamp(split.cutoff, tz=UTC).isoformat(),
        train_interactions=len(split.train),
        test_users=len(split.test),
        evaluated_users=len(users),
        results=results,
    )


def evaluate_from_database(
    *,
    k: int = DEFAULT_K,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    max_users: int = DEFAULT_MAX_EVAL_USERS,
    weights: BlendWeights | None = None,
) -> Evaluation:
    """`evaluate_engines` on the current catalogue and interaction log."""
    items = read_catalogue()
    interactions = read_interactions(before=timezone.now(), item_ids={it.id for it in items})
    return evaluate_engines(
        items=items,
        interactions=interactions,
        k=k,
        test_fraction=test_fraction,
        max_users=max_users,
        weights=weights,
    )


def store_evaluation(*, evaluation: Evaluation) -> list[ModelVersion]:
    """Attach `evaluation` to the active versions (it replaces their previous one)."""
    with transaction.atomic():
        versions = list(ModelVersion.objects.filter(is_active=True).defer("artifact"))
        for version in versions:
            version.metrics = evaluation.as_json()
            version.save(update_fields=["metrics"])
    return versions


# --- training ------------------------------------------------------------------------


def train_models(
    *,
    weights: BlendWeights | Mapping[str, float] | None = None,
    k: int = DEFAULT_K,
    test_fraction: float = DEFAULT_TEST_FRACTION,
    max_eval_users: int = DEFAULT_MAX_EVAL_USERS,
    evaluate_first: bool = True,
    activate: bool = True,
) -> TrainingResult:
    """Train v1 (popularity) and v2 (ensemble) on everything before now, store and
    (by default) activate them. DomainError (conflict) when the catalogue is empty."""
    if weights is not None and not isinstance(weights, BlendWeights):
        weights = BlendWeights(**weights)
    timings: dict[str, float] = {}
    cutoff = timezone.now()
    started = time.perf_counter()

    items = read_catalogue()
    if not items:
        raise DomainError("The catalogue has no active item to train on.", code="conflict")
    interactions = read_interactions(before=cutoff, item_ids={it.id for it in items})
    timings["read"] = time.perf_counter() - started

    mark = time.perf_counter()
    if evaluate_first:
        evaluation = evaluate_engines(
            items=items,
            interactions=interactions,
            k=k,
            test_fraction=test_fraction,
            max_users=max_eval_users,
            weights=weights,
        )
    else:
        evaluation = Evaluation(k, test_fraction, None, 0, 0, 0, skipped="not requested")
    timings["evaluate"] = time.perf_counter() - mark

    mark = time.perf_counter()
    data = TrainingData.build(items, interactions)
    ensemble = EnsembleEngine(weights=weights).fit_data(data)
    timings["fit"] = time.perf_counter() - mark

    mark = time.perf_counter()
    artifacts = {
        ModelVersion.Engine.POPULARITY: (ensemble.popularity, ensemble.popularity._params()),
        ModelVersion.Engine.ENSEMBLE: (ensemble, ensemble._params()),
    }
    fit_seconds = timings["read"] + timings["fit"]
    versions: dict[str, ModelVersion] = {}
    for name, (engine, params) in artifacts.items():
        blob = engine.to_bytes()
        versions[name] = ModelVersion.objects.create(
            engine=name,
            parameters=params,
            training_cutoff=cutoff,
            n_items=data.n_items,
            n_users=data.n_users,
            n_interactions=len(interactions),
            metrics=evaluation.as_json(),
            training_seconds=round(fit_seconds, 3),
            artifact=blob,
            artifact_bytes=len(blob),
        )
    timings["store"] = time.perf_counter() - mark

    if activate:
        activate_versions(versions=list(versions.values()))
        prune_versions()
    timings["total"] = time.perf_counter() - started
    logger.info(
        "trained recommendation models %s on %d items / %d interactions in %.1f s",
        {str(n): v.id for n, v in versions.items()},
        data.n_items,
        len(interactions),
        timings["total"],
    )
    return TrainingResult(versions=versions, evaluation=evaluation, timings=timings)


def activate_versions(*, versions: Sequence[ModelVersion]) -> None:
    """Make each version the active one of its engine, all in one transaction.

    Two trainings finishing at the same moment can both try to activate: the partial
    unique constraint refuses the second insert of an active row, and the retry (a new
    statement snapshot) sees and deactivates the winner's row, so the last one wins."""
    now = timezone.now()
    for attempt in range(3):
        try:
            with transaction.atomic():
                for version in versions:
                    ModelVersion.objects.filter(engine=version.engine, is_active=True).exclude(
                        id=version.id
                    ).update(is_active=False)
                    ModelVersion.objects.filter(id=version.id).update(
                        is_active=True, activated_at=now
                    )
            break
        except IntegrityError:
            if attempt == 2:
                raise
    for version in versions:
        version.is_active, version.activated_at = True, now


def prune_versions(*, keep: int = KEEP_INACTIVE) -> int:
    """Delete inactive versions beyond the newest `keep` of each engine; returns how many."""
    deleted = 0
    for engine in ModelVersion.Engine.values:
        old = list(
            ModelVersion.objects.filter(engine=engine, is_active=False)
            .order_by("-created_at", "-id")
            .values_list("id", flat=True)[keep:]
        )
        if old:
            deleted += ModelVersion.objects.filter(id__in=old).delete()[0]
    return deleted
