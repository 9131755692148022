"""Non-personalised baselines: weighted popularity (optionally time-decayed) and random.

Popularity score of item ``i``::

    pop(i) = Σ_{positive events e on i} w_e · 2^(-(t_ref - t_e) / half_life)

with ``t_ref`` the latest timestamp of the training log (not "now", so a given log always yields
the same model) and no decay factor when ``half_life_days`` is ``None``. Dismisses never add to
popularity. Every item gets a score (0 for never-touched items), so popularity always fills ``k``
slots when the catalogue allows; that is why the ensemble uses it as its fallback.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from .base import FloatArray, IndexedEngine, Scored, TrainingData

_DAY = 86_400.0


class PopularityEngine(IndexedEngine):
    """Most popular items first, minus the user's blocked / excluded items."""

    name: ClassVar[str] = "popularity"
    require_positive: ClassVar[bool] = False

    def __init__(self, half_life_days: float | None = None) -> None:
        super().__init__()
        if half_life_days is not None and half_life_days <= 0:
            raise ValueError("half_life_days must be positive")
        self.half_life_days = half_life_days
        self._pop: FloatArray = np.empty(0, dtype=np.float64)

    def _fit(self, data: TrainingData) -> None:
        mask = data.positive_mask
        w = data.weight[mask].astype(np.float64)
        if self.half_life_days is not None and mask.any():
            t = data.timestamp[mask]
            # relative to the newest event of the log, so retraining on the same log is stable
            w *= np.exp2(-(t.max() - t) / (self.half_life_days * _DAY))
        self._pop = np.bincount(data.item_idx[mask], weights=w, minlength=data.n_items).astype(
            np.float64
        )

    @property
    def popularity(self) -> FloatArray:
        """Popularity score per catalogue position (read-only view)."""
        v = self._pop.view()
        v.flags.writeable = False
        return v

    def scores(self, user_id: str) -> FloatArray:
        """Same vector for every user (blocked items are removed by ``recommend``)."""
        return self.popularity

    def similar(self, item_id: int, k: int = 10) -> list[Scored]:
        """Popularity has no notion of similarity: the most popular *other* items."""
        self._check_fitted()
        j = self._item_pos.get(item_id)
        banned = np.array([] if j is None else [j], dtype=np.int64)
        return self._top_k(self._pop, k, banned, require_positive=False)

    def _params(self) -> dict[str, Any]:
        return {"half_life_days": self.half_life_days}

    def _engine_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        return {}, {"popularity": self._pop}

    def _load_engine_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self._pop = arrays["popularity"]


class RandomEngine(IndexedEngine):
    """Uniformly random items: the floor any real engine must beat.

    Deterministic per (seed, user) so evaluations are reproducible (crc32 of the user id seeds
    a numpy Generator; Python's ``hash`` is salted per process).
    """

    name: ClassVar[str] = "random"
    require_positive: ClassVar[bool] = False

    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        self.seed = seed

    def _fit(self, data: TrainingData) -> None:
        pass

    def _rng(self, key: str) -> np.random.Generator:
        return np.random.default_rng([self.seed, zlib.crc32(key.encode())])

    def scores(self, user_id: str) -> FloatArray:
        return self._rng(user_id).random(self.n_items)

    def similar(self, item_id: int, k: int = 10) -> list[Scored]:
        self._check_fitted()
        j = self._item_pos.get(item_id)
        banned = np.array([] if j is None else [j], dtype=np.int64)
        return self._top_k(self._rng(f"item:{item_id}").random(self.n_items), k, banned, False)

    def _params(self) -> dict[str, Any]:
        return {"seed": self.seed}
