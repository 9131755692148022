"""Offline evaluation: time-based split, ranking metrics and a comparison table.

Protocol
--------
:func:`time_split` trains on every interaction strictly before a cut-off; the test set of a user
is the set of items with a *positive* interaction at or after the cut-off. With
``exclude_seen=True`` (default) items the user already interacted with before the cut-off are
removed from the test set, and :func:`evaluate` excludes them from the recommendations too: the
task measured is "predict what the user will engage with next, among things they have not seen".

Metrics (binary relevance, ``rec`` = recommended list, ``rel`` = relevant set)
------------------------------------------------------------------------------
* ``precision@k = |rec[:k] ∩ rel| / k``
* ``recall@k    = |rec[:k] ∩ rel| / |rel|``
* ``ndcg@k      = DCG / IDCG`` with ``DCG = Σ_{r=1..k} [rec_r ∈ rel] / log2(r + 1)`` and
  ``IDCG = Σ_{r=1..min(k, |rel|)} 1 / log2(r + 1)``
* ``coverage    = |∪_u rec_u[:k]| / |catalogue|``

Per-user metrics are averaged over users with a non-empty test set (cold-start users included:
they are part of what a production engine has to serve).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime

import numpy as np

from .base import POSITIVE_KINDS, Engine, Interaction, Item, to_epoch_seconds

EngineOrFactory = Engine | Callable[[], Engine]


@dataclass(frozen=True)
class TimeSplit:
    """Result of :func:`time_split`."""

    train: tuple[Interaction, ...]
    test: dict[str, frozenset[int]]
    cutoff: float


def time_split(
    interactions: Iterable[Interaction],
    cutoff: float | datetime | None = None,
    test_fraction: float = 0.2,
    exclude_seen: bool = True,
) -> TimeSplit:
    """Split by time at ``cutoff`` (default: the ``1 - test_fraction`` quantile of timestamps).

    ``train`` = interactions with ``timestamp < cutoff``; ``test[user]`` = items with a positive
    interaction at/after the cut-off (minus items seen in train if ``exclude_seen``). Users with an
    empty test set are omitted from ``test``.
    """
    events = list(interactions)
    stamps = np.asarray([to_epoch_seconds(e.timestamp) for e in events], dtype=np.float64)
    if cutoff is None:
        if not 0 < test_fraction < 1:
            raise ValueError("test_fraction must be in (0, 1)")
        if not events:
            raise ValueError("no interactions to split")
        cut = float(np.quantile(stamps, 1.0 - test_fraction))
    else:
        cut = to_epoch_seconds(cutoff)
    train = tuple(e for e, t in zip(events, stamps, strict=True) if t < cut)
    seen: dict[str, set[int]] = defaultdict(set)
    for e in train:
        seen[e.user_id].add(e.item_id)
    test: dict[str, set[int]] = defaultdict(set)
    for e, t in zip(events, stamps, strict=True):
        if t >= cut and e.kind in POSITIVE_KINDS and e.weight > 0:
            if exclude_seen and e.item_id in seen.get(e.user_id, ()):
                continue
            test[e.user_id].add(e.item_id)
    return TimeSplit(
        train=train, test={u: frozenset(s) for u, s in test.items() if s}, cutoff=cut
    )


def _hits(recommended: Sequence[int], relevant: AbstractSet[int], k: int) -> list[bool]:
    # a duplicated relevant item is credited once
    seen: set[int] = set()
    out = []
    for item in recommended[:k]:
        out.append(item in relevant and item not in seen)
        seen.add(item)
    return out


def precision_at_k(recommended: Sequence[int], relevant: AbstractSet[int], k: int) -> float:
    """``|rec[:k] ∩ rel| / k`` (a short list is not rewarded: the denominator stays ``k``)."""
    if k <= 0:
        raise ValueError("k must be positive")
    return sum(_hits(recommended, relevant, k)) / k


def recall_at_k(recommended: Sequence[int], relevant: AbstractSet[int], k: int) -> float:
    """``|rec[:k] ∩ rel| / |rel|``; 0.0 when ``rel`` is empty."""
    if k <= 0:
        raise ValueError("k must be positive")
    if not relevant:
        return 0.0
    return sum(_hits(recommended, relevant, k)) / len(relevant)


def dcg_at_k(recommended: Sequence[int], relevant: AbstractSet[int], k: int) -> float:
    """``Σ_{r=1..k} [rec_r ∈ rel] / log2(r + 1)``."""
    return sum(
        1.0 / math.log2(rank + 1)
        for rank, hit in enumerate(_hits(recommended, relevant, k), start=1)
        if hit
    )


def ndcg_at_k(recommended: Sequence[int], relevant: AbstractSet[int], k: int) -> float:
    """``DCG@k / IDCG@k`` with ``IDCG = Σ_{r=1..min(k,|rel|)} 1/log2(r+1)``; 0.0 if no ``rel``."""
    if k <= 0:
        raise ValueError("k must be positive")
    if not relevant:
        return 0.0
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg_at_k(recommended, relevant, k) / ideal


def catalogue_coverage(recommendations: Iterable[Sequence[int]], n_items: int, k: int) -> float:
    """Fraction of the catalogue appearing in at least one top-``k`` list."""
    if n_items <= 0:
        return 0.0
    shown: set[int] = set()
    for rec in recommendations:
        shown.update(rec[:k])
    return len(shown) / n_items


def _resolve(
    engines: Mapping[str, EngineOrFactory] | EngineOrFactory,
) -> list[tuple[str, EngineOrFactory]]:
    if isinstance(engines, Mapping):
        return list(engines.items())
    name = getattr(engines, "name", None) or getattr(engines, "__name__", "engine")
    return [(str(name), engines)]


def evaluate(
    engines: Mapping[str, EngineOrFactory] | EngineOrFactory,
    train: Sequence[Interaction],
    test: Mapping[str, AbstractSet[int]],
    k: int = 10,
    *,
    items: Sequence[Item] | None = None,
    exclude_seen: bool = True,
) -> dict[str, dict[str, float]]:
    """Metrics of each engine on ``test`` → ``{name: {precision@k, recall@k, ndcg@k, coverage,
    users}}``.

    ``engines`` maps names to fitted engines or to zero-argument factories; a factory's engine is
    fitted on ``(items, train)`` (so ``items`` is then required). A single engine/factory may be
    passed instead of a mapping. With ``exclude_seen`` the items each user interacted with in
    ``train`` are passed as ``exclude`` (matching ``time_split(exclude_seen=True)``).
    Coverage is relative to ``items`` if given, else to the engine's catalogue
    (``item_ids``), else to the items present in ``train`` ∪ ``test``.
    """
    seen: dict[str, set[int]] = defaultdict(set)
    if exclude_seen:
        for e in train:
            seen[e.user_id].add(e.item_id)
    users = sorted(u for u, rel in test.items() if rel)
    results: dict[str, dict[str, float]] = {}
    for name, entry in _resolve(engines):
        # an engine *class* also passes the runtime protocol check: treat classes as factories
        if isinstance(entry, Engine) and not isinstance(entry, type):
            engine = entry
        else:
            if items is None:
                raise ValueError(f"items are required to fit engine factory {name!r}")
            engine = entry().fit(items, train)
        if items is not None:
            n_items = len(items)
        elif hasattr(engine, "item_ids"):
            n_items = len(engine.item_ids)
        else:
            n_items = len({e.item_id for e in train} | {i for s in test.values() for i in s})
        lists: list[list[int]] = []
        p = r = n = 0.0
        for user in users:
            rec = [s.item_id for s in engine.recommend(user, k, exclude=seen.get(user, set()))]
            lists.append(rec)
            rel = test[user]
            p += precision_at_k(rec, rel, k)
            r += recall_at_k(rec, rel, k)
            n += ndcg_at_k(rec, rel, k)
        count = max(len(users), 1)
        results[name] = {
            f"precision@{k}": p / count,
            f"recall@{k}": r / count,
            f"ndcg@{k}": n / count,
            "coverage": catalogue_coverage(lists, n_items, k),
            "users": float(len(users)),
        }
    return results


def format_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """Plain-text table of :func:`evaluate` output, one row per engine."""
    if not results:
        return "(no results)"
    columns = list(next(iter(results.values())).keys())
    header = ["engine", *columns]
    rows = [
        [name, *(f"{m[c]:.0f}" if c == "users" else f"{m[c]:.4f}" for c in columns)]
        for name, m in results.items()
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), sep, *(line(r) for r in rows)])
