"""Sufficient statistics per variant, computed in the database.

One query per metric: per exposed unit, the metric's value from events at or
after the unit's exposure (binomial: any event → 1; mean: the sum), optionally
the pre-exposure value for CUPED, then count / sum / sum of squares (and the
covariate sums) per variant. No raw event reaches Python.

Mean metrics are summed *shifted*: Σ(y − c), Σ(y − c)² with c the pooled mean of
the per-unit values (same query, a second pass over the per-unit rows). Plain
Σy² − (Σy)²/n cancels almost every digit when values are large next to their
spread (1e7 ± 1 leaves nothing); shifted sums keep the variance exact to rounding.
The SQL is the same on PostgreSQL and SQLite except for two expressions (date
arithmetic, JSON field access), chosen by `_dialect`.
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
    """Sums over one arm's units of y − shift (and x − x_shift for CUPED):
    total = Σ(y − c), squares = Σ(y − c)², x_total = Σ(x − c_x),
    x_squares = Σ(x − c_x)², xy = Σ(x − c_x)(y − c). The shifts are the same
    for every arm and segment of one query, so the sums of several rows add up."""

    n: int
    total: float
    squares: float
    x_total: float | None = None
    x_squares: float | None = None
    xy: float | None = None
    shift: float = 0.0
    x_shift: float = 0.0
    # The unit-value cap applied (capped metrics), else None.
    cap: float | None = None

    @property
    def mean(self) -> float:
        """c + Σ(y − c)/n."""
        return self.shift + self.total / self.n

    def unshifted(self) -> ArmSums:
        """The plain sums Σy = Σ(y − c) + nc and Σy² = Σ(y − c)² + 2cΣ(y − c) + nc²
        (for reading and tests; the statistics take the shifted ones)."""
        c = self.shift
        return ArmSums(
            self.n,
            self.total + self.n * c,
            self.squares + 2 * c * self.total + self.n * c * c,
        )


def cuped_lookback(days: int | None) -> timedelta | None:
    """The CUPED pre-exposure window of an experiment (0 days: CUPED off)."""
    return timedelta(days=days) if days else None


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


def _unit_value(metric: Metric, condition: str) -> str:
    """One unit's value of `metric` from its events matching `condition`:
    binomial → 1 if any, per-unit-mean metrics → their mean, else their sum."""
    if metric.kind == Metric.Kind.BINOMIAL:
        return f"MAX(CASE WHEN {condition} THEN 1.0 ELSE 0.0 END)"
    if metric.unit_aggregation == Metric.UnitAggregation.MEAN:
        return f"AVG(CASE WHEN {condition} THEN ev.value END)"
    return f"SUM(CASE WHEN {condition} THEN ev.value ELSE 0.0 END)"


def _cap_cte(metric: Metric) -> tuple[str, list[Any]]:
    """The `k` CTE with the unit-value cap c of a capped metric (over `u0`):
    a fixed value, or the percentile p of the per-unit values of every arm
    together, as percentile_disc computes it — the smallest value whose share
    of units at or below it is ≥ p (numpy's 'inverted_cdf')."""
    if metric.cap_kind == Metric.Cap.FIXED:
        return "k AS (SELECT CAST(%s AS DOUBLE PRECISION) AS c)", [metric.cap_value]
    p = metric.cap_value
    if connection.vendor == "postgresql":
        return "k AS (SELECT percentile_disc(%s) WITHIN GROUP (ORDER BY y) AS c FROM u0)", [p]
    # SQLite has no percentile: the value at rank ⌈p·n⌉ (1-based) of the sorted values.
    rank = (
        "(SELECT MAX(CAST(%s * COUNT(*) AS INTEGER)"
        " + (%s * COUNT(*) > CAST(%s * COUNT(*) AS INTEGER)) - 1, 0) FROM u0)"
    )
    return f"k AS (SELECT y AS c FROM u0 ORDER BY y LIMIT 1 OFFSET {rank})", [p, p, p]


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
    A capped metric's unit values (and covariate) are min(value, c), with c the
    metric's fixed cap or its percentile over the units of this query
    (`ArmSums.cap` says which c was used).
    """
    if metric.kind == Metric.Kind.RATIO:
        raise ValueError("ratio metrics are aggregated by ratio_sums")
    dialect = _dialect()
    where, scope_params, event_bound, event_params = _scope(experiment_id, exclude_stage, upto)
    binomial = metric.kind == Metric.Kind.BINOMIAL
    cuped = lookback is not None and lookback.total_seconds() > 0
    post = "ev.timestamp >= e.exposed_at"
    columns = [f"COALESCE({_unit_value(metric, post)}, 0.0) AS y"]
    lower_params: list[Any] = []
    lower = "e.exposed_at"
    if cuped:
        lower = dialect["minus_seconds"].format(col="e.exposed_at")
        lower_params = [lookback.total_seconds()]  # type: ignore[union-attr]
        columns.append(f"COALESCE({_unit_value(metric, 'ev.timestamp < e.exposed_at')}, 0.0) AS x")
    segment_params: list[Any] = []
    segment = "NULL"
    if segment_attribute:
        segment = dialect["json_text"].format(col="e.attributes")
        segment_params = [segment_attribute]
    having = ""
    if not binomial and not metric.missing_as_zero:
        having = f" HAVING COUNT(CASE WHEN {post} THEN 1 END) > 0"
    capped = bool(metric.cap_kind) and not binomial
    cap_sql, cap_params = _cap_cte(metric) if capped else ("k AS (SELECT NULL AS c)", [])
    least = "LEAST" if connection.vendor == "postgresql" else "MIN"
    unit_columns = "u0.variant_id, u0.seg, "
    if capped:
        unit_columns += f"{least}(u0.y, k.c) AS y" + (f", {least}(u0.x, k.c) AS x" if cuped else "")
    else:
        unit_columns += "u0.y" + (", u0.x" if cuped else "")
    units = (
        "WITH u0 AS ("
        f" SELECT e.variant_id, {segment} AS seg, {', '.join(columns)}"
        " FROM experiments_exposure e"
        " LEFT JOIN experiments_event ev ON ev.unit_id = e.unit_id AND ev.metric_id = %s"
        f" AND ev.timestamp >= {lower}{event_bound}"
        f" WHERE {where}"
        # Grouping by the exposure's key (one per unit) is narrower, hence faster,
        # than by (variant, unit); variant and segment depend on it functionally.
        f" GROUP BY e.id{having}"
        f"), {cap_sql},"
        f" u AS (SELECT {unit_columns}, k.c AS c FROM u0 CROSS JOIN k)"
    )
    params = [
        *segment_params,
        metric.id,
        *lower_params,
        *event_params,
        *scope_params,
        *cap_params,
    ]
    group = " FROM u GROUP BY u.seg, u.variant_id"
    if binomial:
        # 0/1 values: plain sums are exact, no shift needed (one pass).
        outer = "COUNT(*), SUM(u.y), SUM(u.y * u.y)"
        if cuped:
            outer += ", SUM(u.x), SUM(u.x * u.x), SUM(u.x * u.y)"
        sql = f"{units} SELECT u.seg, u.variant_id, {outer}, 0.0, 0.0, MAX(u.c){group}"
        rows = _fetch(sql, params, experiment_id=experiment_id, metric=metric)
    elif connection.vendor == "postgresql" and metric.cap_kind != Metric.Cap.PERCENTILE:
        # One pass: PostgreSQL's AVG / VAR_SAMP / COVAR_SAMP on float8 are
        # numerically stable (Youngs–Cramer); the common shift is applied below.
        outer = "COUNT(*), AVG(u.y), COALESCE(VAR_SAMP(u.y), 0)"
        if cuped:
            outer += ", AVG(u.x), COALESCE(VAR_SAMP(u.x), 0), COALESCE(COVAR_SAMP(u.x, u.y), 0)"
        sql = f"{units} SELECT u.seg, u.variant_id, {outer}, MAX(u.c){group}"
        rows = _shift_moments(_fetch(sql, params, experiment_id=experiment_id, metric=metric))
    else:
        # Two passes over the per-unit values: their pooled mean, then the sums
        # around it (SQLite has no variance aggregate; a percentile cap reads the
        # values twice anyway).
        ref = "AVG(y) AS cy, " + ("AVG(x) AS cx" if cuped else "MIN(0.0) AS cx")
        dy, dx = "(u.y - r.cy)", "(u.x - r.cx)"
        outer = f"COUNT(*), SUM({dy}), SUM({dy} * {dy})"
        if cuped:
            outer += f", SUM({dx}), SUM({dx} * {dx}), SUM({dx} * {dy})"
        sql = (
            f"{units}, r AS (SELECT {ref} FROM u)"
            f" SELECT u.seg, u.variant_id, {outer}, MAX(r.cy), MAX(r.cx), MAX(u.c)"
            " FROM u CROSS JOIN r GROUP BY u.seg, u.variant_id"
        )
        rows = _fetch(sql, params, experiment_id=experiment_id, metric=metric)
    result: dict[tuple[str | None, int], ArmSums] = {}
    for row in rows:
        seg, variant_id, n, total, squares, *rest = row
        *cov, shift, x_shift, cap = rest
        covariate: tuple[float | None, float | None, float | None] = (None, None, None)
        if cuped:
            covariate = (float(cov[0] or 0), float(cov[1] or 0), float(cov[2] or 0))
        result[(seg, variant_id)] = ArmSums(
            int(n),
            float(total or 0),
            float(squares or 0),
            *covariate,
            shift=float(shift or 0),
            x_shift=float(x_shift or 0) if cuped else 0.0,
            cap=None if cap is None else float(cap),
        )
    return result


def _shift_moments(rows: list[Any]) -> list[Any]:
    """Rows of (seg, variant, n, m_y, v_y[, m_x, v_x, c_xy], cap) per group as the
    shifted sums of the other paths, with one shift for all groups — the pooled
    means c_y = Σ n m_y / Σ n (and c_x) — so that arms and segments still add up:
        Σ(y − c) = n (m_y − c),  Σ(y − c)² = (n − 1) v_y + n (m_y − c)²,
        Σ(x − c_x)(y − c) = (n − 1) c_xy + n (m_x − c_x)(m_y − c)
    (Chan et al.'s pairwise combination; no cancellation when the means are close)."""
    if not rows:
        return []
    cuped = len(rows[0]) == 9
    count = sum(int(r[2]) for r in rows)
    c_y = sum(int(r[2]) * float(r[3]) for r in rows) / count
    c_x = sum(int(r[2]) * float(r[5]) for r in rows) / count if cuped else 0.0
    out = []
    for row in rows:
        seg, variant_id, n, m_y, v_y, *rest = row
        n, m_y, v_y = int(n), float(m_y), float(v_y)
        dy = m_y - c_y
        shifted = [seg, variant_id, n, n * dy, (n - 1) * v_y + n * dy * dy]
        if cuped:
            m_x, v_x, c_xy = (float(v) for v in rest[:3])
            dx = m_x - c_x
            shifted += [n * dx, (n - 1) * v_x + n * dx * dx, (n - 1) * c_xy + n * dx * dy]
        out.append((*shifted, c_y, c_x, rest[-1]))
    return out


def _fetch(sql: str, params: list[Any], *, experiment_id: int, metric: Metric) -> list[Any]:
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
            for v in row[2:]
        ):
            raise _unusable(experiment_id, metric, "the sums of its event values overflow")
    return rows


@dataclass(frozen=True)
class RatioSums:
    """One arm of a ratio metric, per unit numerator y and denominator z, shifted
    by their pooled means c_y, c_z: n, Σ(y − c_y), Σ(z − c_z), Σ(y − c_y)²,
    Σ(z − c_z)², Σ(y − c_y)(z − c_z)."""

    n: int
    y_total: float
    z_total: float
    y_squares: float
    z_squares: float
    yz: float
    y_shift: float = 0.0
    z_shift: float = 0.0


def ratio_sums(
    *,
    experiment_id: int,
    metric: Metric,
    exclude_stage: str | None = None,
    upto: datetime | None = None,
) -> dict[int, RatioSums]:
    """{variant id: sums} of a ratio metric: per exposed unit its numerator
    metric's value and its denominator metric's value after exposure (each as
    `_unit_value` computes it for its own kind), then the sums the delta
    method needs. One query; no CUPED, no segments."""
    numerator, denominator = metric.numerator, metric.denominator
    if numerator is None or denominator is None:
        raise ValueError(f"metric {metric.key} is not a ratio metric")
    where, scope_params, event_bound, event_params = _scope(experiment_id, exclude_stage, upto)
    post = "ev.timestamp >= e.exposed_at"
    y = _unit_value(numerator, f"{post} AND ev.metric_id = %s")
    z = _unit_value(denominator, f"{post} AND ev.metric_id = %s")
    units = (
        "WITH u AS ("
        f" SELECT e.variant_id, COALESCE({y}, 0.0) AS y, COALESCE({z}, 0.0) AS z"
        " FROM experiments_exposure e"
        " LEFT JOIN experiments_event ev ON ev.unit_id = e.unit_id"
        f" AND ev.metric_id IN (%s, %s) AND ev.timestamp >= e.exposed_at{event_bound}"
        f" WHERE {where} GROUP BY e.id)"
    )
    if connection.vendor == "postgresql":
        # One pass, each arm shifted by its own means (the arms are not pooled):
        # Σ(y − m_y) = 0, Σ(y − m_y)² = (n − 1) v_y, Σ(y − m_y)(z − m_z) = (n − 1) c_yz.
        sql = (
            f"{units} SELECT u.variant_id, COUNT(*), 0.0, 0.0,"
            " COALESCE(VAR_SAMP(u.y), 0) * (COUNT(*) - 1), COALESCE(VAR_SAMP(u.z), 0)"
            " * (COUNT(*) - 1), COALESCE(COVAR_SAMP(u.y, u.z), 0) * (COUNT(*) - 1),"
            " AVG(u.y), AVG(u.z) FROM u GROUP BY u.variant_id"
        )
    else:
        dy, dz = "(u.y - r.cy)", "(u.z - r.cz)"
        sql = (
            f"{units}, r AS (SELECT AVG(y) AS cy, AVG(z) AS cz FROM u)"
            f" SELECT u.variant_id, COUNT(*), SUM({dy}), SUM({dz}), SUM({dy} * {dy}),"
            f" SUM({dz} * {dz}), SUM({dy} * {dz}), MAX(r.cy), MAX(r.cz)"
            " FROM u CROSS JOIN r GROUP BY u.variant_id"
        )
    params = [
        numerator.id,
        denominator.id,
        numerator.id,
        denominator.id,
        *event_params,
        *scope_params,
    ]
    rows = _fetch(sql, params, experiment_id=experiment_id, metric=metric)
    return {
        int(variant_id): RatioSums(int(n), *(float(v or 0) for v in sums))
        for variant_id, n, *sums in rows
    }


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
    *,
    experiment_id: int,
    attribute: str,
    exclude_stage: str | None = None,
    upto: datetime | None = None,
) -> list[tuple[str | None, int]]:
    """Levels of an exposure attribute with their unit counts (exposed up to
    `upto` when given), largest first."""
    dialect = _dialect()
    where, params, _, _ = _scope(experiment_id, exclude_stage, upto)
    level = dialect["json_text"].format(col="e.attributes")
    sql = (
        f"SELECT {level} AS seg, COUNT(*) AS n FROM experiments_exposure e WHERE {where}"
        " GROUP BY seg ORDER BY n DESC, seg"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [attribute, *params])
        return [(seg, int(n)) for seg, n in cursor.fetchall()]
