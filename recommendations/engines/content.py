"""Content-based recommendations from TF-IDF vectors of title + description + tags.

Vectorisation (implemented with scipy.sparse, no scikit-learn)
---------------------------------------------------------------
* tokens: lower-cased ``[a-z0-9]+`` words (keeping ``+``/``#`` suffixes, e.g. ``c++``), English
  stop words removed; each tag also yields a whole-tag token ``tag:<slug>``.
* term weight in a document: ``tf = title_weight·n_title + n_description + n_tag_words
  + tag_weight·n_tag_token`` — tags are curated, so they are weighted up.
* ``tfidf = (1 + ln tf) · idf`` with smoothed ``idf = ln((1 + N) / (1 + df)) + 1``;
  each item vector is L2-normalised, so a dot product is a cosine.

Scoring
-------
User profile ``p_u = Σ_i r_ui x_i / Σ_i r_ui`` (weighted mean of the vectors of the items the user
had positive interactions with, ``r_ui`` as in :class:`~.base.TrainingData`);
``score(u, j) = cos(p_u, x_j) = x_j · p_u / ‖p_u‖``. A free-text / tag *context* (for cold-start
users) is vectorised the same way and used as, or averaged into, the profile.
"""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar, Final

import numpy as np
import scipy.sparse as sp

from .base import (
    FloatArray,
    IndexedEngine,
    Item,
    Scored,
    TrainingData,
    csr_from_arrays,
    csr_to_arrays,
    gather_rows,
)

_TOKEN_RE: Final = re.compile(r"[a-z0-9]+[+#]*")

STOP_WORDS: Final[frozenset[str]] = frozenset(
    {
        "a", "about", "after", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been",
        "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "for",
        "from", "had", "has", "have", "having", "he", "her", "here", "his", "how", "i", "if", "in",
        "into", "is", "it", "its", "just", "me", "more", "most", "my", "no", "nor", "not", "now",
        "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own", "same",
        "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then",
        "there", "these", "they", "this", "those", "through", "to", "too", "under", "until", "up",
        "very", "was", "we", "were", "what", "when", "where", "which", "while", "who", "whom",
        "why", "will", "with", "would", "you", "your", "yours",
    }
)

#: What a context hint may be: free text, or a sequence of tags.
Context = str | Sequence[str] | None


def _norm(v: FloatArray) -> float:
    """Euclidean norm without BLAS.

    ``np.linalg.norm`` goes through BLAS ``dot``, which a multi-threaded OpenBLAS parallelises
    above ~10k elements (vocabulary-sized vectors); on a busy 2-core host the thread hand-off
    stalled 5 % of requests by 20-30 ms. A plain ufunc reduction is single-threaded and fast.
    """
    return float(np.sqrt(np.square(v).sum()))


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` without stop words and one-letter tokens."""
    return [
        t
        for t in _TOKEN_RE.findall(text.lower())
        if t not in STOP_WORDS and (len(t) > 1 or not t.isalnum())
    ]


def tag_token(tag: str) -> str:
    """Whole-tag token: ``"Machine Learning"`` → ``"tag:machine-learning"``."""
    return "tag:" + "-".join(_TOKEN_RE.findall(tag.lower()))


class ContentEngine(IndexedEngine):
    """TF-IDF content-based recommender (see module docstring for formulas)."""

    name: ClassVar[str] = "content"
    require_positive: ClassVar[bool] = True

    def __init__(self, title_weight: float = 2.0, tag_weight: float = 3.0) -> None:
        super().__init__()
        self.title_weight = title_weight
        self.tag_weight = tag_weight
        self.vocabulary: tuple[str, ...] = ()
        self._vocab_pos: dict[str, int] = {}
        self._idf: FloatArray = np.empty(0, dtype=np.float64)
        self._vectors = sp.csr_matrix((0, 0), dtype=np.float64)
        self._ratings = sp.csr_matrix((0, 0), dtype=np.float32)

    # ---- vectorisation ----------------------------------------------------------------------
    def _term_counts(self, title: str, description: str, tags: Sequence[str]) -> dict[str, float]:
        """Weighted term frequencies of one document (see module docstring)."""
        counts: defaultdict[str, float] = defaultdict(float)
        for t in tokenize(title):
            counts[t] += self.title_weight
        for t in tokenize(description):
            counts[t] += 1.0
        for tag in tags:
            for t in tokenize(tag):
                counts[t] += 1.0
            tok = tag_token(tag)
            if tok != "tag:":
                counts[tok] += self.tag_weight
        return counts

    def _item_counts(self, item: Item) -> dict[str, float]:
        return self._term_counts(item.title, item.description, item.tags)

    def _vectorize(self, counts: Mapping[str, float]) -> tuple[np.ndarray, np.ndarray]:
        """Known-vocabulary columns and L2-normalised tf-idf values of one document."""
        cols = [self._vocab_pos[t] for t in counts if t in self._vocab_pos]
        if not cols:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        idx = np.asarray(cols, dtype=np.int64)
        tf = np.asarray([counts[self.vocabulary[c]] for c in cols], dtype=np.float64)
        vals = (1.0 + np.log(tf)) * self._idf[idx]
        return idx, vals / _norm(vals)

    def context_vector(self, context: Context) -> FloatArray | None:
        """Dense unit vector of a free-text or tag-list hint (``None`` if nothing is known)."""
        if context is None:
            return None
        if isinstance(context, str):
            counts = self._term_counts("", context, ())
        else:
            counts = self._term_counts("", "", tuple(context))
        idx, vals = self._vectorize(counts)
        if idx.size == 0:
            return None
        out = np.zeros(len(self.vocabulary), dtype=np.float64)
        out[idx] = vals
        return out

    def _fit(self, data: TrainingData) -> None:
        docs = [self._item_counts(it) for it in data.items]
        df: Counter[str] = Counter()
        for d in docs:
            df.update(d.keys())
        self.vocabulary = tuple(sorted(df))
        self._vocab_pos = {t: n for n, t in enumerate(self.vocabulary)}
        n_docs = len(docs)
        self._idf = np.asarray(
            [math.log((1 + n_docs) / (1 + df[t])) + 1.0 for t in self.vocabulary],
            dtype=np.float64,
        )
        indptr = [0]
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for d in docs:
            idx, vals = self._vectorize(d)
            order = np.argsort(idx)
            indices.append(idx[order])
            values.append(vals[order])
            indptr.append(indptr[-1] + idx.size)
        self._vectors = sp.csr_matrix(
            (
                np.concatenate(values) if values else np.empty(0),
                np.concatenate(indices).astype(np.int32) if indices else np.empty(0, np.int32),
                np.asarray(indptr, dtype=np.int64),
            ),
            shape=(n_docs, len(self.vocabulary)),
        )
        self._ratings = data.ratings

    @property
    def vectors(self) -> sp.csr_matrix:
        """items × vocabulary L2-normalised TF-IDF matrix."""
        return self._vectors

    # ---- serving ----------------------------------------------------------------------------
    def profile(self, user_id: str) -> FloatArray | None:
        """Weighted mean of the user's positive items' vectors (dense), ``None`` if unknown."""
        u = self._user_pos.get(user_id)
        if u is None:
            return None
        r = self._ratings
        lo, hi = r.indptr[u], r.indptr[u + 1]
        if lo == hi:
            return None
        w = r.data[lo:hi].astype(np.float64)
        cols, vals = gather_rows(self._vectors, r.indices[lo:hi], w)
        summed = np.bincount(cols, weights=vals, minlength=len(self.vocabulary))
        return np.asarray(summed, dtype=np.float64) / float(w.sum())

    def scores(self, user_id: str, context: Context = None) -> FloatArray | None:
        """Cosine of every item with the user profile (and/or the context hint).

        With both a profile and a context, the query is the sum of their unit vectors (equal
        say to history and to the stated intent).
        """
        self._check_fitted()
        query: FloatArray | None = None
        p = self.profile(user_id)
        if p is not None:
            norm = _norm(p)
            if norm > 0:
                query = p / norm
        c = self.context_vector(context)
        if c is not None:
            query = c if query is None else query + c
        if query is None:
            return None
        norm = _norm(query)
        if norm == 0:
            return None
        return np.asarray(self._vectors @ (query / norm), dtype=np.float64)

    def recommend(
        self,
        user_id: str,
        k: int = 10,
        exclude: AbstractSet[int] = frozenset(),
        context: Context = None,
    ) -> list[Scored]:
        """Top ``k`` by cosine with the profile; ``context`` serves users without history."""
        s = self.scores(user_id, context)
        if s is None:
            return []
        return self._top_k(s, k, self._banned(user_id, exclude), self.require_positive)

    def similarity_row(self, item_id: int) -> FloatArray | None:
        """Cosine of every item with ``item_id`` (dense), or ``None`` if unknown."""
        self._check_fitted()
        j = self._item_pos.get(item_id)
        if j is None:
            return None
        v = self._vectors
        x = np.zeros(len(self.vocabulary), dtype=np.float64)
        lo, hi = v.indptr[j], v.indptr[j + 1]
        x[v.indices[lo:hi]] = v.data[lo:hi]
        return np.asarray(v @ x, dtype=np.float64)

    def similar(self, item_id: int, k: int = 10) -> list[Scored]:
        """Items with the highest content cosine to ``item_id`` (positive cosines only)."""
        s = self.similarity_row(item_id)
        if s is None:
            return []
        banned = np.array([self._item_pos[item_id]], dtype=np.int64)
        return self._top_k(s, k, banned, require_positive=True)

    # ---- serialisation ----------------------------------------------------------------------
    def _params(self) -> dict[str, Any]:
        return {"title_weight": self.title_weight, "tag_weight": self.tag_weight}

    def _engine_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        arrays: dict[str, np.ndarray] = {
            "vocabulary": np.asarray(self.vocabulary, dtype=np.str_).reshape(-1),
            "idf": self._idf,
        }
        arrays.update(csr_to_arrays("vectors", self._vectors))
        arrays.update(csr_to_arrays("ratings", self._ratings))
        return {}, arrays

    def _load_engine_state(self, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> None:
        self.vocabulary = tuple(str(t) for t in arrays["vocabulary"].tolist())
        self._vocab_pos = {t: n for n, t in enumerate(self.vocabulary)}
        self._idf = arrays["idf"]
        self._vectors = csr_from_arrays("vectors", arrays)
        self._ratings = csr_from_arrays("ratings", arrays)
