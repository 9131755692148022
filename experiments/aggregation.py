"""Sufficient statistics per variant, computed in the database.

One query per metric: per exposed unit, the metric's value from events at or
after the unit's exposure (binomial: any event → 1; mean: the sum), optionally
the pre-exposure value for CUPED, then count / sum / sum of squares (and the
covariate sums) per variant. No raw event reaches Python. The SQL is the same
on PostgreSQL and SQLite except for two expressions (date arithmetic, JSON
field access), chosen by `_dialect`.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DataError, connection, transaction
from django.db.models import Count

from common.errors import DomainError
from experiments.models import Exposure, Metric

OTHER_SEGMENT = "other"
MAX_SEGMENTS = 20
# Sums beyond this cannot go through the statistics (their squares, and the
# fourth powers of the standard errors, would overflow a double). Values that
# pass ingestion (±1e15) stay far below it.
MAX_SAFE_SUM = 1e100

logger = logging.getLogger(__name__)


class UnusableData(DomainError):
    """Stored data that the analysis cannot use (e.g. event values whose sums
    overflow, stored before ingestion bounded them): a 409 for the API; the
    periodic task logs it and goes on with the other experiments."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="conflict")


@dataclass(frozen=True)
class ArmSums:
    n: int
    total: float
    squares: float
    x_total: float | None = None
    x_squares: float | None = None
    xy: float | None = None


def _dialect() -> dict[str, str]:
    if connection.vendor == "postgresql":
        return {
            "minus_seconds": "({col} - %s * interval '1 second')",
            "json_text": "({col} ->> %s)",
        }
    return {
        # Django stores SQLite date-times as text; same shape, so text order is time order.
        "minus_seconds": "strftime('%%Y-%%m-%%d %%H:%%M:%%f', {col}, '-' || %s || ' seconds')",
        "json_text": "CAST(json_extract({col}, '$.\"' || %s || '\"') AS TEXT)",
    }


def _scope(
    experiment_id: int, exclude_stage: str | None, upto: datetime | None
) -> tuple[str, list[Any], str, list[Any]]:
    where, params = "e.experiment_id = %s", [experiment_id]
    if exclude_stage:
        where += " AND e.stage <> %s"
        params.append(exclude_stage)
    event_bound, event_params = "", []
    if upto is not None:
        where += " AND e.exposed_at <= %s"
        params.append(upto)
        event_bound = " AND ev.timestamp <= %s"
        event_params = [upto]
    return where, params, event_bound, event_params


def metric_sums(
    *,
    experiment_id: int,
    metric: Metric,
    exclude_stage: str | None = None,
    lookback: timedelta | None = None,
    upto: datetime | None = None,
    segment_attribute: str | None = None,
) -> dict[tuple[str | None, int], ArmSums]:
    """{(segment level or None, variant id): sums} for one metric.

    A unit's value is the sum of its events' values after exposure, or their
    mean for metrics aggregated by mean (a rating given several times).
    `lookback` adds the CUPED covariate: the same metric's value in the window
    [exposure − lookback, exposure). `upto` ignores events after that time
    (a stopped experiment). Units without post-exposure events count as 0,
    unless the metric is a mean with missing_as_zero off: then they are left out.
    """
    dialect = _dialect()
    where, scope_params, event_bound, event_params = _scope(experiment_id, exclude_stage, upto)
    binomial = metric.kind == Metric.Kind.BINOMIAL
    cuped = lookback is not None and lookback.total_seconds() > 0
    post = "ev.timestamp >= e.exposed_at"
    per_unit_mean = not binomial and metric.unit_aggregation == Metric.UnitAggregation.MEAN
    if binomial:
        y = f"MAX(CASE WHEN {post} THEN 1.0 ELSE 0.0 END)"
    elif per_unit_mean:
        y = f"AVG(CASE WHEN {post} THEN ev.value END)"
    else:
        y = f"SUM(CASE WHEN {post} THEN ev.value ELSE 0.0 END)"
    columns = [f"COALESCE({y}, 0.0) AS y"]
    lower_params: list[Any] = []
    lower = "e.exposed_at"
    if cuped:
        lower = dialect["minus_seconds"].format(col="e.exposed_at")
        lower_params = [lookback.total_seconds()]  # type: ignore[union-attr]
        pre = "ev.timestamp < e.exposed_at"
        if binomial:
            x = f"MAX(CASE WHEN {pre} THEN 1.0 ELSE 0.0 END)"
        elif per_unit_mean:
            x = f"AVG(CASE WHEN {pre} THEN ev.value END)"
        else:
            x = f"SUM(CASE WHEN {pre} THEN ev.value ELSE 0.0 END)"
        columns.append(f"COALESCE({x}, 0.0) AS x")
    segment_params: list[Any] = []
    segment = "NULL"
    if segment_attribute:
        segment = dialect["json_text"].format(col="e.attributes")
        segment_params = [segment_attribute]
    having = ""
    if not binomial and not metric.missing_as_zero:
        having = f" HAVING COUNT(CASE WHEN {post} THEN 1 END) > 0"
    outer = "COUNT(*), SUM(u.y), SUM(u.y * u.y)"
    if cuped:
        outer += ", SUM(u.x), SUM(u.x * u.x), SUM(u.x * u.y)"
    sql = (
        f"SELECT u.seg, u.variant_id, {outer} FROM ("
        f" SELECT e.variant_id, {segment} AS seg, {', '.join(columns)}"
        " FROM experiments_exposure e"
        " LEFT JOIN experiments_event ev ON ev.unit_id = e.unit_id AND ev.metric_id = %s"
        f" AND ev.timestamp >= {lower}{event_bound}"
        f" WHERE {where}"
        # Grouping by the exposure's key (one per unit) is narrower, hence faster,
        # than by (variant, unit); variant and segment depend on it functionally.
        f" GROUP BY e.id{having}"
        ") u GROUP BY u.seg, u.variant_id"
    )
    params = [*segment_params, metric.id, *lower_params, *event_params, *scope_params]
    result: dict[tuple[str | None, int], ArmSums] = {}
    try:
        # A savepoint: an overflow refused by PostgreSQL must not break the
        # caller's transaction.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
    except DataError as exc:
        raise _unusable(experiment_id, metric, f"the database refused the sums: {exc}") from exc
    for row in rows:
        if not all(
            v is None or (math.isfinite(float(v)) and abs(float(v)) <= MAX_SAFE_SUM)
            for v in row[3:]
        ):
            raise _unusable(experiment_id, metric, "the sums of its event values overflow")
        seg, variant_id, n, total, squares, *cov = row
        sums = ArmSums(int(n), float(total or 0), float(squares or 0))
        if cuped:
            sums = ArmSums(
                sums.n,
                sums.total,
                sums.squares,
                float(cov[0] or 0),
                float(cov[1] or 0),
                float(cov[2] or 0),
            )
        result[(seg, variant_id)] = sums
    return result


def _unusable(experiment_id: int, metric: Metric, why: str) -> UnusableData:
    logger.warning(
        "experiment %s, metric %s cannot be aggregated: %s", experiment_id, metric.key, why
    )
    return UnusableData(
        f"Metric '{metric.key}' cannot be analysed: {why} (events stored with values "
        "out of range; remove them, then analyse again)."
    )


def exposure_counts(
    *, experiment_id: int, exclude_stage: str | None = None, upto: datetime | None = None
) -> dict[int, int]:
    """Exposed units per variant id (the SRM check's observation)."""
    query = Exposure.objects.filter(experiment_id=experiment_id)
    if upto is not None:
        query = query.filter(exposed_at__lte=upto)
    if exclude_stage:
        query = query.exclude(stage=exclude_stage)
    rows = query.values("variant_id").annotate(n=Count("id")).values_list("variant_id", "n")
    return dict(rows)


def segment_levels(
    *, experiment_id: int, attribute: str, exclude_stage: str | None = None
) -> list[tuple[str | None, int]]:
    """Levels of an exposure attribute with their unit counts, largest first."""
    dialect = _dialect()
    where, params, _, _ = _scope(experiment_id, exclude_stage, None)
    level = dialect["json_text"].format(col="e.attributes")
    sql = (
        f"SELECT {level} AS seg, COUNT(*) AS n FROM experiments_exposure e WHERE {where}"
        " GROUP BY seg ORDER BY n DESC, seg"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [attribute, *params])
        return [(seg, int(n)) for seg, n in cursor.fetchall()]
