"""Serving recommendations and similar items from the active trained models.

Which engine answers (`version` in the answer says which):

* canary route → the active ensemble (`v2-ensemble-<id>`), with the experiment variant's
  blend weights when its payload sets them;
* stable route, or no ensemble trained → the active popularity model (`v1-popularity-<id>`);
* nothing trained yet → popularity counted live from the interaction table
  (`v0-popularity-live`), cached in process for LIVE_POPULARITY_SECONDS. We do not train
  on the fly inside a request: on a large log that takes seconds (see bench/README.md);
  the nightly beat task, the admin's "Train now" and `seed_recommendations` train.

Always, whatever the engine: items the user adopted, completed or dismissed — read from the
database on each request, so feedback given since the last training counts at once — and
retired (inactive) items are never returned. A user the model has never seen (cold start)
gets content results when the request carries a context, and popularity otherwise.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import Sum

from common.errors import DomainError
from experiments.services.assignment import get_compiled
from recommendations import model_store, selectors
from recommendations.engines import BlendWeights, EnsembleEngine, Scored
from recommendations.engines.base import POSITIVE_KINDS
from recommendations.models import Interaction, ModelVersion
from rollout.config_cache import get_rollout

logger = logging.getLogger(__name__)

STABLE, CANARY = "stable", "canary"
LIVE_POPULARITY_LABEL = "v0-popularity-live"
LIVE_POPULARITY_SECONDS = 60.0
_LIVE_POPULARITY_TOP = 1000
MAX_K = 100
#: extra candidates asked of a model, for items deleted since it was trained (an item
#: nobody interacted with may be deleted; the answer drops it and still holds k items)
_SLACK = 5

#: what the content engine accepts as a cold-start hint: free text or a list of tags
Context = str | Sequence[str] | None


@dataclass(frozen=True, slots=True)
class RecommendedItem:
    item_id: int
    kind: str
    title: str
    score: float


@dataclass(frozen=True, slots=True)
class Recommendations:
    user_id: str
    version: str
    items: list[RecommendedItem]


# --- weights from the experiment variant -------------------------------------------------


def weights_for_route(route: Any) -> BlendWeights | None:
    """Blend weights set by the payload of the route's experiment variant, if any.

    The payload may hold ``{"weights": {"cf": 0.5, "content": 0.4, "popularity": 0.1}}``
    (missing components take the default). A malformed payload is logged and ignored: a
    typo in an experiment must not fail the mentee's request."""
    if getattr(route, "variant", None) is None or getattr(route, "rollout", None) is None:
        return None
    config = get_rollout(route.rollout)
    if config is None or not config.experiment_key:
        return None
    try:
        variant = get_compiled(config.experiment_key).variant_by_key.get(route.variant)
    except DomainError:
        return None
    payload = variant.payload if variant is not None else None
    raw = payload.get("weights") if isinstance(payload, Mapping) else None
    if raw is None:
        return None
    try:
        if not isinstance(raw, Mapping):
            raise TypeError("weights must be an object")
        return BlendWeights(**{str(k): float(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        logger.warning(
            "ignoring blend weights of %s/%s: %s", config.experiment_key, route.variant, exc
        )
        return None


_weighted: dict[tuple[int, BlendWeights], EnsembleEngine] = {}
_weighted_lock = threading.Lock()


def _with_weights(model: model_store.LoadedModel, weights: BlendWeights) -> EnsembleEngine:
    """The loaded ensemble with other blend weights, sharing its trained components.

    A shallow copy: the cached engine is shared by every request thread and must not be
    changed, while the components' arrays are read-only at serving time."""
    engine = model.engine
    assert isinstance(engine, EnsembleEngine)
    if weights == engine.weights:
        return engine
    key = (model.version_id, weights)
    clone = _weighted.get(key)
    if clone is None:
        clone = copy.copy(engine)
        clone.weights = weights
        with _weighted_lock:
            if len(_weighted) > 64:  # old versions' clones go with the rest
                _weighted.clear()
            _weighted[key] = clone
    return clone


# --- live popularity (nothing trained yet) ----------------------------------------------

_live: tuple[float, list[tuple[int, float]]] | None = None


def _live_popularity() -> list[tuple[int, float]]:
    global _live
    now = time.monotonic()
    if _live is not None and now - _live[0] < LIVE_POPULARITY_SECONDS:
        return _live[1]
    ranked = list(
        Interaction.objects.filter(kind__in=sorted(POSITIVE_KINDS), weight__gt=0)
        .values("item_id")
        .annotate(score=Sum("weight"))
        .order_by("-score", "item_id")
        .values_list("item_id", "score")[:_LIVE_POPULARITY_TOP]
    )
    _live = (now, [(int(i), float(s)) for i, s in ranked])
    return _live[1]


def _serve_live_popularity(k: int, banned: set[int]) -> list[Scored]:
    items = model_store.catalogue().items
    out: list[Scored] = []
    seen: set[int] = set()
    for item_id, score in _live_popularity():
        if item_id in items and item_id not in banned:
            out.append(Scored(item_id, score))
            seen.add(item_id)
            if len(out) == k:
                return out
    for item_id in sorted(items):  # a catalogue nobody touched yet: fill in id order
        if item_id not in banned and item_id not in seen:
            out.append(Scored(item_id, 0.0))
            if len(out) == k:
                break
    return out


def forget() -> None:
    """Drop the process caches of this module (tests)."""
    global _live
    _live = None
    with _weighted_lock:
        _weighted.clear()


# --- the services ------------------------------------------------------------------------


def _render(scored: list[Scored], k: int) -> list[RecommendedItem]:
    meta = model_store.catalogue().items
    out = []
    for s in scored:
        entry = meta.get(s.item_id)
        if entry is not None:  # an item retired since the catalogue snapshot
            out.append(RecommendedItem(s.item_id, entry[0], entry[1], round(s.score, 6)))
    return out[:k]


def recommend(
    *,
    user_id: str,
    k: int = 10,
    version: str = STABLE,
    context: Context = None,
    weights: BlendWeights | None = None,
) -> Recommendations:
    """Top `k` items for `user_id` from the engine of `version` (stable/canary); see the
    module docstring for which engine answers and what is never returned."""
    if not 1 <= k <= MAX_K:
        raise DomainError(f"k must be between 1 and {MAX_K}.", field="k")
    snapshot = model_store.catalogue()
    banned = selectors.blocked_item_ids(user_id) | snapshot.inactive
    if version == CANARY:
        model = model_store.active_model(ModelVersion.Engine.ENSEMBLE)
        if model is not None:
            engine = _with_weights(model, weights) if weights is not None else model.engine
            assert isinstance(engine, EnsembleEngine)
            scored = engine.recommend(
                user_id, k + _SLACK, exclude=banned, context=context or None
            )
            return Recommendations(user_id, model.label, _render(scored, k))
    model = model_store.active_model(ModelVersion.Engine.POPULARITY)
    if model is not None:
        scored = model.engine.recommend(user_id, k + _SLACK, exclude=banned)
        return Recommendations(user_id, model.label, _render(scored, k))
    return Recommendations(
        user_id, LIVE_POPULARITY_LABEL, _render(_serve_live_popularity(k, banned), k)
    )


def _tag_neighbours(item_id: int, k: int) -> list[Scored]:
    """Jaccard overlap of tags over the active catalogue: items without a trained model
    (nothing trained yet, or the item is newer than the model)."""
    items = model_store.catalogue().items
    own = items.get(item_id)
    if own is None or not own[2]:
        return []
    tags = own[2]
    scored = []
    for other, (_, _, other_tags) in items.items():
        if other == item_id or not other_tags:
            continue
        common = len(tags & other_tags)
        if common:
            scored.append(Scored(other, common / len(tags | other_tags)))
    scored.sort(key=lambda s: (-s.score, s.item_id))
    return scored[:k]


def similar_items(*, item_id: int, k: int = 10) -> list[RecommendedItem]:
    """Items related to `item_id` (never itself, never a retired item): the active
    ensemble's blend of CF neighbours, content and popularity, or tag overlap when no
    model knows the item. DomainError not_found for an unknown item."""
    if not 1 <= k <= MAX_K:
        raise DomainError(f"k must be between 1 and {MAX_K}.", field="k")
    if not selectors.item_exists(item_id):
        raise DomainError(f"Unknown item {item_id}.", code="not_found", field="item_id")
    inactive = model_store.catalogue().inactive
    scored: list[Scored] = []
    model = model_store.active_model(ModelVersion.Engine.ENSEMBLE)
    if model is not None:
        scored = model.engine.similar(item_id, k + _SLACK + len(inactive))
        scored = [s for s in scored if s.item_id not in inactive]
    if not scored:
        scored = _tag_neighbours(item_id, k)
    return _render(scored, k)
