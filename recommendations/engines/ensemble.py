"""v2 ensemble: blend of collaborative, content and popularity scores.

For a user ``u`` each component ``c`` that has a signal yields a score vector ``s_c`` over the
catalogue, normalised to ``[0, 1]`` (``minmax``: ``(s - min) / (max - min)``; ``rank``: average
rank / (n - 1)). The blended score is::

    score(u, j) = Σ_c w_c · ŝ_c(j) / Σ_c w_c        (sums over components with a signal)

Components without a signal (unknown user for CF, no history nor context for content, or a
constant vector, which carries no ranking information) drop out and the remaining weights are
renormalised. Hence a cold-start user is served from content (when a context/tags hint is given)
and popularity, and a known user mostly from CF.

Guarantees: items the user dismissed, adopted or completed (and ``exclude``) are never returned;
popularity scores every item, so exactly ``k`` items are returned whenever the catalogue has
``k`` non-excluded items.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from scipy.stats import rankdata

from .base import FloatArray, IndexedEngine, Scored, TrainingData
from .collaborative import ItemKNNEngine
from .content import ContentEngine, Context
from .popularity import PopularityEngine

Normalization = Literal["minmax", "rank"]

#: sub-engine arrays that are identical across components and stored once in an artifact
_SHARED_PREFIXES = ("ratings.",)


@dataclass(frozen=True, slots=True)
class BlendWeights:
    """Relative weight of each component (need not sum to 1; must be ≥ 0)."""

    cf: float = 0.6
    content: float = 0.3
    popularity: float = 0.1

    def __post_init__(self) -> None:
        if min(self.cf, self.content, self.popularity) < 0:
            raise ValueError("blend weights must be >= 0")
        if self.cf + self.content + self.popularity <= 0:
            raise ValueError("at least one blend weight must be > 0")


def normalize(scores: FloatArray, method: Normalization = "minmax") -> FloatArray | None:
    """Scores mapped to ``[0, 1]``; ``None`` when the vector is constant (no information)."""
    if scores.size == 0:
        return None
    lo, hi = float(scores.min()), float(scores.max())
    if hi <= lo:
        return None
    if method == "minmax":
        return (scores - lo) / (hi - lo)
    if method == "rank":
        # average ranks keep tied items tied (e.g. the many zeros of a CF vector)
        return np.asarray((rankdata(scores, method="average") - 1.0) / (scores.size - 1))
    raise ValueError(f"unknown normalization {method!r}")


class EnsembleEngine(IndexedEngine):
    """Weighted blend of CF (:class:`ItemKNNEngine`), content and popularity scores."""

    name: ClassVar[str] = "ensemble"
    require_positive: ClassVar[bool] = False

    def __init__(
        self,
        weights: BlendWeights | Mapping[str, float] | None = None,
        normalization: Normalization = "minmax",
        cf: ItemKNNEngine | Mapping[str, Any] | None = None,
        content: ContentEngine | Mapping[str, Any] | None = None,
        popularity: PopularityEngine | Mapping[str, Any] | None = None,
    ) -> None:
        """Sub-engines may be given as (unfitted) instances or as constructor-kwargs mappings."""
        super().__init__()
        if weights is None:
            weights = BlendWeights()
        elif not isinstance(weights, BlendWeights):
            weights = BlendWeights(**weights)
        if normalization not in ("minmax", "rank"):
            raise ValueError(f"unknown normalization {normalization!r}")
        self.weights: BlendWeights = weights
        self.normalization: Normalization = normalization
        self.cf = cf if isinstance(cf, ItemKNNEngine) else ItemKNNEngine(**(cf or {}))
        self.content = (
            content if isinstance(content, ContentEngine) else ContentEngine(**(content or {}))
        )
        self.popularity = (
            popularity
            if isinstance(popularity, PopularityEngine)
            else PopularityEngine(**(popularity or {}))
        )

    def _components(self) -> dict[str, IndexedEngine]:
        return {"cf": self.cf, "content": self.content, "popularity": self.popularity}

    def _fit(self, data: TrainingData) -> None:
        # one TrainingData for all: the event log is indexed once, ratings/blocked are shared
        for engine in self._components().values():
            engine.fit_data(data)

    # ---- serving ----------------------------------------------------------------------------
    def component_scores(
        self, user_id: str, context: Context = None
    ) -> dict[str, FloatArray | None]:
        """Raw (un-normalised) score vector of each component, ``None`` where no signal."""
        self._check_fitted()
        w = self.weights
        return {
            "cf": self.cf.scores(user_id) if w.cf > 0 else None,
            "content": self.content.scores(user_id, context) if w.content > 0 else None,
            "popularity": self.popularity.scores(user_id) if w.popularity > 0 else None,
        }

    def _blend(self, parts: Mapping[str, FloatArray | None]) -> FloatArray | None:
        weights = asdict(self.weights)
        total = 0.0
        blended: FloatArray | None = None
        for name, raw in parts.items():
            if raw is None or weights[name] <= 0:
                continue
            norm = normalize(raw, self.normalization)
            if norm is None:
                continue
            blended = weights[name] * norm if blended is None else blended + weights[name] * norm
            total += weights[name]
        return None if blended is None else blended / total

    def scores(self, user_id: str, context: Context = None) -> FloatArray:
        """Blended score vector in ``[0, 1]`` (see module docstring)."""
        blended = self._blend(self.component_scores(user_id, context))
        if blended is None:
            # e.g. a catalogue nobody interacted with yet: every item ties at 0, still serve k
            return np.zeros(self.n_items, dtype=np.float64)
        return blended

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        exclude: AbstractSet[int] = frozenset(),
        context: Context = None,
    ) -> list[Scored]:
        """Exactly ``min(k, available)`` items; ``context`` (text or tags) helps cold starts."""
        self._check_fitted()
        return self._top_k(
            self.scores(user_id, context), k, self._banned(user_id, exclude), False
        )

    def similar(self, item_id: int, k: int = 10) -> list[Scored]:
        """Blend of CF neighbours, content cosine and popularity (same weights), item excluded."""
        self._check_fitted()
        j = self._item_pos.get(item_id)
        if j is None:
            return []
        parts = {
            "cf": self.cf.similarity_row(item_id),
            "content": self.content.similarity_row(item_id),
            "popularity": self.popularity.popularity,
        }
        blended = self._blend(parts)
        if blended is None:
            blended = np.zeros(self.n_items, dtype=np.float64)
        return self._top_k(blended, k, np.array([j], dtype=np.int64), False)

    # ---- serialisation ----------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {
            "weights": asdict(self.weights),
            "normalization": self.normalization,
            "cf": self.cf._params(),
            "content": self.content._params(),
            "popularity": self.popularity._params(),
        }

    def _engine_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        # Sub-engines share this engine's index; arrays that are the same object in several
        # components (the ratings matrix of CF and content) are written once.
        arrays: dict[str, np.ndarray] = {}
        meta: dict[str, Any] = {}
        for name, engine in self._components().items():
            sub_meta, sub_arrays = engine._engine_state()
            meta[name] = sub_meta
            for key, arr in sub_arrays.items():
                if key.startswith(_SHARED_PREFIXES):
                    arrays.setdefault(f"shared.{key}", arr)
                else:
                    arrays[f"{name}.{key}"] = arr
        return meta, arrays

    def _load_engine_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        shared = {
            k.removeprefix("shared."): v for k, v in arrays.items() if k.startswith("shared.")
        }
        for name, engine in self._components().items():
            prefix = f"{name}."
            sub = {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}
            sub.update(shared)
            engine._set_index(self.item_ids, self.user_ids, self._blocked)
            engine._load_engine_state(meta.get(name, {}), sub)
            engine._fitted = True
