"""Item–item collaborative filtering on implicit feedback.

Model
-----
``R`` is the users × items matrix of damped positive feedback, ``r_ui = log1p(Σ weights)``
(see :class:`~recommendations.engines.base.TrainingData`). Item similarity is the (optionally
shrunk) cosine between item columns::

    sim(i, j) = (R[:, i] · R[:, j]) / (‖R[:, i]‖ · ‖R[:, j]‖ + shrinkage)

Only the ``n_neighbors`` most similar items of each item are kept (positive similarities only), in
the sparse neighbour matrix ``W`` (row ``i`` = neighbours of ``i``). That bounds memory to
``n_items × n_neighbors`` entries whatever the density of ``RᵀR``.

Scoring: ``score(u, j) = Σ_i r_ui · W[i, j]``, i.e. the sparse user row times ``W``. Serving cost
is ``O(|items of u| × n_neighbors + n_items)``; the top-k is taken with ``argpartition``.

Training computes ``RᵀR`` in blocks of ``block_rows`` item rows and prunes each block to its
top-N immediately, so peak memory is one sparse block, never the full item × item product.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp

from .base import (
    FloatArray,
    IndexedEngine,
    Scored,
    TrainingData,
    csr_from_arrays,
    csr_to_arrays,
    gather_rows,
)


def item_neighbors(
    ratings: sp.csr_matrix,
    n_neighbors: int = 50,
    shrinkage: float = 0.0,
    block_rows: int = 1024,
) -> sp.csr_matrix:
    """Top-``n_neighbors`` cosine neighbour matrix (items × items, float32, rows sorted desc).

    ``ratings`` is users × items. Self-similarity is excluded; only positive similarities are
    kept; ties are broken by ascending item position so the result is deterministic.

    The co-occurrence product ``RᵀR`` is computed ``block_rows`` item rows at a time and pruned
    to the top-N right away, so memory is bounded by one sparse block (never ``n_items²``).
    Selection stays sparse: sorting the block's non-zeros by (row, -similarity) is far cheaper
    than a dense per-row ``argpartition`` on mostly-zero rows.
    """
    n_items = ratings.shape[1]
    x = sp.csr_matrix(ratings.T, dtype=np.float32)  # items × users
    xt = sp.csr_matrix(ratings, dtype=np.float32)  # users × items
    norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1), dtype=np.float64).ravel())
    counts = np.zeros(n_items, dtype=np.int64)
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    for start in range(0, n_items, max(1, block_rows)):
        stop = min(start + max(1, block_rows), n_items)
        block = (x[start:stop] @ xt).tocoo()  # raw co-occurrence dot products
        rows = block.row.astype(np.int64)
        c = block.col.astype(np.int64)
        denom = norms[rows + start] * norms[c] + shrinkage
        sims = np.divide(block.data, denom, out=np.zeros(len(c)), where=denom > 0)
        keep = (sims > 0) & (c != rows + start)  # an item is not its own neighbour
        rows, c, sims = rows[keep], c[keep], sims[keep]
        order = np.lexsort((c, -sims, rows))  # by row, then similarity desc, then item
        rows, c, sims = rows[order], c[order], sims[order]
        row_start = np.searchsorted(rows, np.arange(stop - start))
        rank = np.arange(len(rows)) - row_start[rows]
        top = rank < n_neighbors
        counts[start:stop] = np.bincount(rows[top], minlength=stop - start)
        cols.append(c[top].astype(np.int32))
        vals.append(sims[top].astype(np.float32))
    indptr = np.zeros(n_items + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    if not cols:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    return sp.csr_matrix(
        (np.concatenate(vals), np.concatenate(cols), indptr), shape=(n_items, n_items)
    )


class ItemKNNEngine(IndexedEngine):
    """Item-based k-nearest-neighbour CF (see module docstring for formulas)."""

    name: ClassVar[str] = "cf"
    require_positive: ClassVar[bool] = True

    def __init__(
        self, n_neighbors: int = 50, shrinkage: float = 0.0, block_rows: int = 1024
    ) -> None:
        super().__init__()
        if n_neighbors < 1:
            raise ValueError("n_neighbors must be >= 1")
        self.n_neighbors = n_neighbors
        self.shrinkage = shrinkage
        self.block_rows = block_rows
        self._ratings = sp.csr_matrix((0, 0), dtype=np.float32)
        self._neighbors = sp.csr_matrix((0, 0), dtype=np.float32)

    def _fit(self, data: TrainingData) -> None:
        self._ratings = data.ratings
        self._neighbors = item_neighbors(
            data.ratings, self.n_neighbors, self.shrinkage, self.block_rows
        )

    @property
    def neighbors(self) -> sp.csr_matrix:
        """The items × items top-N similarity matrix."""
        return self._neighbors

    def scores(self, user_id: str) -> FloatArray | None:
        """``r_u · W`` as a dense vector; ``None`` for unknown users or users with no neighbours."""
        self._check_fitted()
        u = self._user_pos.get(user_id)
        if u is None:
            return None
        r = self._ratings
        lo, hi = r.indptr[u], r.indptr[u + 1]
        if lo == hi:
            return None
        cols, vals = gather_rows(self._neighbors, r.indices[lo:hi], r.data[lo:hi])
        if cols.size == 0:
            return None
        return np.bincount(cols, weights=vals, minlength=self.n_items).astype(np.float64)

    def similar(self, item_id: int, k: int = 10) -> list[Scored]:
        """The item's stored neighbours (at most ``n_neighbors``), by decreasing cosine."""
        self._check_fitted()
        j = self._item_pos.get(item_id)
        if j is None or k <= 0:
            return []
        w = self._neighbors
        lo, hi = w.indptr[j], min(w.indptr[j + 1], w.indptr[j] + k)  # rows are sorted desc
        return [
            Scored(int(self.item_ids[c]), float(v))
            for c, v in zip(w.indices[lo:hi], w.data[lo:hi], strict=True)
        ]

    def similarity_row(self, item_id: int) -> FloatArray | None:
        """Dense neighbour similarities of one item (zeros outside its top-N), or ``None``."""
        j = self._item_pos.get(item_id)
        if j is None:
            return None
        out = np.zeros(self.n_items, dtype=np.float64)
        w = self._neighbors
        lo, hi = w.indptr[j], w.indptr[j + 1]
        out[w.indices[lo:hi]] = w.data[lo:hi]
        return out

    def _params(self) -> dict[str, Any]:
        return {
            "n_neighbors": self.n_neighbors,
            "shrinkage": self.shrinkage,
            "block_rows": self.block_rows,
        }

    def _engine_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays = csr_to_arrays("ratings", self._ratings)
        arrays.update(csr_to_arrays("neighbors", self._neighbors))
        return {}, arrays

    def _load_engine_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self._ratings = csr_from_arrays("ratings", arrays)
        self._neighbors = csr_from_arrays("neighbors", arrays)
