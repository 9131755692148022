"""Tests of the pure recommendation engines (no database, no Django)."""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from recommendations.demo_data import DemoData, generate_demo_data
from recommendations.engines import (
    ENGINES,
    ArtifactError,
    BlendWeights,
    ContentEngine,
    Engine,
    EnsembleEngine,
    IndexedEngine,
    Interaction,
    Item,
    ItemKNNEngine,
    PopularityEngine,
    RandomEngine,
    Scored,
    TrainingData,
    load_engine,
)
from recommendations.engines.base import BLOCKING_KINDS, to_epoch_seconds
from recommendations.engines.collaborative import item_neighbors
from recommendations.engines.content import tag_token, tokenize
from recommendations.engines.ensemble import normalize
from recommendations.engines.evaluation import (
    TimeSplit,
    catalogue_coverage,
    dcg_at_k,
    evaluate,
    format_table,
    ndcg_at_k,
    precision_at_k,
    recall_at_k,
    time_split,
)

K = 10
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# fixtures: one demo data set, one split, engines fitted once per module
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo() -> DemoData:
    return generate_demo_data(seed=0)


@pytest.fixture(scope="module")
def split(demo: DemoData) -> TimeSplit:
    return time_split(demo.interactions, test_fraction=0.2)


@pytest.fixture(scope="module")
def fitted(demo: DemoData, split: TimeSplit) -> dict[str, IndexedEngine]:
    data = TrainingData.build(demo.items, split.train)
    return {
        "random": RandomEngine(seed=1).fit_data(data),
        "popularity": PopularityEngine().fit_data(data),
        "cf": ItemKNNEngine().fit_data(data),
        "content": ContentEngine().fit_data(data),
        "ensemble": EnsembleEngine().fit_data(data),
    }


@pytest.fixture(scope="module")
def results(
    fitted: dict[str, IndexedEngine], split: TimeSplit, demo: DemoData
) -> dict[str, dict[str, float]]:
    return evaluate(fitted, split.train, split.test, K, items=demo.items)


def warm_users(engine: IndexedEngine, split: TimeSplit, n: int = 40) -> list[str]:
    return [u for u in sorted(split.test) if engine.knows_user(u)][:n]


# ---------------------------------------------------------------------------------------------
# quality on the held-out (time-based) split
# ---------------------------------------------------------------------------------------------


def test_ensemble_beats_popularity_on_held_out_split(
    results: dict[str, dict[str, float]], split: TimeSplit
) -> None:
    print(
        f"\ncut-off {datetime.fromtimestamp(split.cutoff, UTC):%Y-%m-%d %H:%M} UTC, "
        f"{len(split.train)} train interactions, {len(split.test)} test users"
    )
    print(format_table(results))
    assert results["ensemble"][f"ndcg@{K}"] >= 1.2 * results["popularity"][f"ndcg@{K}"]
    assert results["ensemble"][f"recall@{K}"] > results["popularity"][f"recall@{K}"]


@pytest.mark.parametrize("name", ["cf", "content"])
def test_cf_and_content_beat_random(results: dict[str, dict[str, float]], name: str) -> None:
    for metric in (f"ndcg@{K}", f"precision@{K}", f"recall@{K}"):
        assert results[name][metric] > 2 * results["random"][metric], metric


def test_evaluate_accepts_factories(demo: DemoData, split: TimeSplit) -> None:
    out = evaluate(
        {"pop": PopularityEngine, "pop14": lambda: PopularityEngine(half_life_days=14)},
        split.train,
        split.test,
        5,
        items=demo.items,
    )
    assert set(out) == {"pop", "pop14"}
    assert set(out["pop"]) == {"precision@5", "recall@5", "ndcg@5", "coverage", "users"}
    with pytest.raises(ValueError, match="items are required"):
        evaluate({"pop": PopularityEngine}, split.train, split.test, 5)


# ---------------------------------------------------------------------------------------------
# serving guarantees
# ---------------------------------------------------------------------------------------------


def test_engines_satisfy_protocol(fitted: dict[str, IndexedEngine]) -> None:
    for name, engine in fitted.items():
        assert isinstance(engine, Engine)
        assert ENGINES[engine.name] is type(engine), name


def test_cold_start_users_get_k_results(fitted: dict[str, IndexedEngine], demo: DemoData) -> None:
    ensemble = fitted["ensemble"]
    assert isinstance(ensemble, EnsembleEngine)
    recs = ensemble.recommend("never-seen-user", K)
    assert len(recs) == K and len({r.item_id for r in recs}) == K
    # cold start without hint = popularity order
    assert [r.item_id for r in recs] == [
        r.item_id for r in fitted["popularity"].recommend("never-seen-user", K)
    ]
    # a context hint steers the cold start through the content model
    hinted = ensemble.recommend("never-seen-user", K, context="machine learning with pytorch")
    assert len(hinted) == K
    fields = [demo.item_meta[r.item_id].field for r in hinted]
    assert fields.count("machine-learning") >= 7
    by_tags = ensemble.recommend("never-seen-user", K, context=["ux-design", "figma"])
    assert sum(demo.item_meta[r.item_id].field == "ux-design" for r in by_tags) >= 7
    # CF alone has nothing to say about a stranger; content needs a hint
    assert fitted["cf"].recommend("never-seen-user", K) == []
    assert fitted["content"].recommend("never-seen-user", K) == []
    content = fitted["content"]
    assert isinstance(content, ContentEngine)
    assert len(content.recommend("never-seen-user", K, context="kubernetes")) == K


def test_ensemble_returns_exactly_k_when_catalogue_allows(
    fitted: dict[str, IndexedEngine], split: TimeSplit, demo: DemoData
) -> None:
    ensemble = fitted["ensemble"]
    n_items = len(demo.items)
    for user in warm_users(ensemble, split):
        recs = ensemble.recommend(user, K)
        assert len(recs) == K
        assert all(0.0 <= r.score <= 1.0 for r in recs)
        assert [r.score for r in recs] == sorted((r.score for r in recs), reverse=True)
        everything = ensemble.recommend(user, n_items + 50)
        assert len(everything) == n_items - len(ensemble.blocked_items(user))
    # asking for more than what is left returns what is left
    all_but_three = {it.id for it in demo.items[3:]}
    recs = ensemble.recommend("stranger", K, exclude=all_but_three)
    assert {r.item_id for r in recs} == {it.id for it in demo.items[:3]}
    assert ensemble.recommend("stranger", 0) == []


def test_dismissed_and_adopted_items_are_never_recommended(
    fitted: dict[str, IndexedEngine], split: TimeSplit
) -> None:
    blocked: dict[str, set[int]] = {}
    for ev in split.train:
        if ev.kind in BLOCKING_KINDS:
            blocked.setdefault(ev.user_id, set()).add(ev.item_id)
    dismissers = sorted(u for u, items in blocked.items() if items)[:80]
    assert len(dismissers) >= 40
    for name, engine in fitted.items():
        for user in dismissers:
            assert engine.blocked_items(user) == blocked[user]
            recs = {r.item_id for r in engine.recommend(user, 60)}
            assert not recs & blocked[user], (name, user)
            extra = {r.item_id for r in engine.recommend(user, 3)}
            assert not {r.item_id for r in engine.recommend(user, 60, exclude=extra)} & extra


def test_similar_items_are_mostly_of_the_same_field(
    fitted: dict[str, IndexedEngine], demo: DemoData
) -> None:
    sample = demo.items[::6]
    for name in ("cf", "content", "ensemble"):
        engine = fitted[name]
        same = total = 0
        for item in sample:
            sims = engine.similar(item.id, K)
            assert item.id not in {s.item_id for s in sims}
            field = demo.item_meta[item.id].field
            same += sum(demo.item_meta[s.item_id].field == field for s in sims)
            total += len(sims)
        assert total > 0.8 * K * len(sample), name
        assert same / total >= 0.7, (name, same / total)
    assert len(fitted["ensemble"].similar(demo.items[0].id, K)) == K
    assert fitted["cf"].similar(-1, K) == []


def test_recommendations_follow_user_cluster(
    fitted: dict[str, IndexedEngine], split: TimeSplit, demo: DemoData
) -> None:
    ensemble = fitted["ensemble"]
    hits = total = 0
    for user in warm_users(ensemble, split, 100):
        field = demo.users[user].field
        recs = ensemble.recommend(user, K)
        hits += sum(demo.item_meta[r.item_id].field == field for r in recs)
        total += len(recs)
    assert hits / total > 0.6


# ---------------------------------------------------------------------------------------------
# serialisation
# ---------------------------------------------------------------------------------------------


def test_serialisation_round_trip_gives_identical_results(
    fitted: dict[str, IndexedEngine], split: TimeSplit, demo: DemoData
) -> None:
    users = [*warm_users(fitted["cf"], split, 25), "never-seen-user"]
    probe_items = [it.id for it in demo.items[::25]]
    for name, engine in fitted.items():
        blob = engine.to_bytes()
        assert isinstance(blob, bytes) and blob[:2] == b"PK"  # a zip (npz) archive, not pickle
        restored = type(engine).from_bytes(blob)
        assert type(restored) is type(engine)
        generic = load_engine(blob)
        for user in users:
            expected = engine.recommend(user, K)
            assert restored.recommend(user, K) == expected, (name, user)
            assert generic.recommend(user, K) == expected, (name, user)
        for item_id in probe_items:
            assert restored.similar(item_id, K) == engine.similar(item_id, K), (name, item_id)
    ensemble, content = fitted["ensemble"], fitted["content"]
    assert isinstance(ensemble, EnsembleEngine) and isinstance(content, ContentEngine)
    restored_ens = EnsembleEngine.from_bytes(ensemble.to_bytes())
    assert restored_ens.weights == ensemble.weights
    assert restored_ens.recommend("x", K, context="startup fundraising") == ensemble.recommend(
        "x", K, context="startup fundraising"
    )


def test_artifacts_are_checked_on_load(fitted: dict[str, IndexedEngine]) -> None:
    blob = fitted["cf"].to_bytes()
    with pytest.raises(ArtifactError, match="engine 'cf'"):
        ContentEngine.from_bytes(blob)
    with pytest.raises(ArtifactError):
        load_engine(b"definitely not an artifact")
    with pytest.raises(ArtifactError):
        ItemKNNEngine.from_bytes(blob[: len(blob) // 2])
    with pytest.raises(RuntimeError, match="not fitted"):
        ItemKNNEngine().to_bytes()


def test_ensemble_artifact_stores_shared_ratings_once(fitted: dict[str, IndexedEngine]) -> None:
    import io

    with np.load(io.BytesIO(fitted["ensemble"].to_bytes()), allow_pickle=False) as npz:
        names = set(npz.files)
    assert "shared.ratings.data" in names
    assert not any(n.startswith(("cf.ratings", "content.ratings")) for n in names)


def test_engines_module_does_not_import_django() -> None:
    code = (
        "import sys, recommendations.engines, recommendations.engines.evaluation, "
        "recommendations.demo_data; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('django', 'rest_framework')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# ---------------------------------------------------------------------------------------------
# engine internals on small hand-made data
# ---------------------------------------------------------------------------------------------


def _items(n: int) -> list[Item]:
    return [Item(i, "article", f"item {i}", "", ()) for i in range(1, n + 1)]


def test_training_data_indexing_and_ratings() -> None:
    log = [
        Interaction.create("a", 1, "view", 0.0),
        Interaction.create("a", 1, "click", 1.0),
        Interaction.create("a", 2, "dismiss", 2.0),
        Interaction.create("b", 2, "adopt", datetime(2024, 1, 1)),  # naive → UTC
        Interaction.create("b", 99, "view", 3.0),  # unknown item: dropped
    ]
    data = TrainingData.build(_items(3), log)
    assert data.dropped == 1
    assert data.user_ids == ("a", "b")
    r = data.ratings.toarray()
    assert r[0, 0] == pytest.approx(math.log1p(1.0 + 2.0))  # view + click summed, damped
    assert r[0, 1] == 0.0  # a dismiss is not a positive signal
    assert r[1, 1] == pytest.approx(math.log1p(4.0))
    assert data.blocked.toarray().tolist() == [[0, 1, 0], [0, 1, 0]]
    assert data.timestamp[3] == datetime(2024, 1, 1, tzinfo=UTC).timestamp()
    assert Interaction.create("a", 1, "complete", 0.0).weight == 5.0
    with pytest.raises(ValueError, match="unknown interaction kind"):
        TrainingData.build(_items(1), [Interaction("a", 1, "like", 1.0, 0.0)])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="duplicate"):
        TrainingData.build([*_items(2), *_items(1)], [])


def test_item_neighbors_match_brute_force_cosine() -> None:
    rng = np.random.default_rng(0)
    dense = rng.random((60, 25)) * (rng.random((60, 25)) < 0.2)
    dense[:, 7] = 0.0  # an item nobody touched
    ratings = sp.csr_matrix(dense.astype(np.float32))
    for shrinkage, n in ((0.0, 5), (2.0, 3)):
        w = item_neighbors(ratings, n_neighbors=n, shrinkage=shrinkage, block_rows=4).toarray()
        norms = np.linalg.norm(dense, axis=0)
        sim = dense.T @ dense / (np.outer(norms, norms) + shrinkage + 1e-300)
        np.fill_diagonal(sim, 0.0)
        for i in range(25):
            expected = {j for j in np.argsort(-sim[i])[:n] if sim[i, j] > 0}
            assert set(np.flatnonzero(w[i])) == expected
            for j in expected:
                assert w[i, j] == pytest.approx(sim[i, j], rel=1e-5)
        assert not w[7].any() and not w[:, 7].any()


def test_cf_scores_are_neighbour_sums() -> None:
    # a and b like items 1 and 2 together; c likes 3 and 4; d liked item 1 only
    log = [
        Interaction.create(u, i, "click", float(t))
        for t, (u, i) in enumerate(
            [("a", 1), ("a", 2), ("b", 1), ("b", 2), ("c", 3), ("c", 4), ("d", 1)]
        )
    ]
    cf = ItemKNNEngine(n_neighbors=2).fit(_items(4), log)
    recs = cf.recommend("d", 5)
    assert recs[0].item_id == 2  # the co-liked item comes first
    assert 3 not in {r.item_id for r in recs} and 4 not in {r.item_id for r in recs}
    assert cf.similar(3, 5) == [Scored(4, pytest.approx(1.0))]  # type: ignore[arg-type]


def test_content_tfidf_vectors() -> None:
    assert tokenize("The C++ and C# way, for Beginners!") == ["c++", "c#", "way", "beginners"]
    assert tag_token("Machine Learning") == "tag:machine-learning"
    items = [
        Item(1, "course", "Kubernetes basics", "Run containers in production", ("devops",)),
        Item(2, "article", "Kubernetes at scale", "Operate clusters", ("devops",)),
        Item(3, "mentor", "Ana Diaz, Designer", "Figma and research", ("ux-design",)),
    ]
    content = ContentEngine().fit(items, [Interaction.create("u", 1, "view", 0.0)])
    norms = np.sqrt(np.asarray(content.vectors.multiply(content.vectors).sum(axis=1))).ravel()
    assert norms == pytest.approx([1.0, 1.0, 1.0])
    assert [s.item_id for s in content.similar(1, 5)] == [2]  # 3 shares nothing with 1
    # a viewed item may come back (only adopt/complete/dismiss block it); 3 is unrelated
    assert [r.item_id for r in content.recommend("u", 5)] == [1, 2]
    assert [r.item_id for r in content.recommend("u", 5, exclude={1})] == [2]
    assert [r.item_id for r in content.recommend("x", 5, context=["ux-design"])] == [3]
    assert content.recommend("x", 5, context="zzz unknown words") == []


def test_popularity_decay_and_similar() -> None:
    day = 86_400.0
    log = [Interaction.create("u1", 1, "view", 0.0), Interaction.create("u2", 1, "view", 0.0)]
    log += [Interaction.create("u3", 2, "view", 30 * day)]
    plain = PopularityEngine().fit(_items(3), log)
    assert [r.item_id for r in plain.recommend("u9", 3)] == [1, 2, 3]
    decayed = PopularityEngine(half_life_days=7).fit(_items(3), log)
    assert [r.item_id for r in decayed.recommend("u9", 3)] == [2, 1, 3]
    assert [s.item_id for s in plain.similar(1, 2)] == [2, 3]
    with pytest.raises(ValueError):
        PopularityEngine(half_life_days=0)


def test_normalize_and_blend_weights() -> None:
    assert normalize(np.array([2.0, 4.0, 3.0])) == pytest.approx([0.0, 1.0, 0.5])
    assert normalize(np.array([0.0, 5.0, 5.0, 10.0]), "rank") == pytest.approx([0.0, 0.5, 0.5, 1.0])
    assert normalize(np.ones(4)) is None
    with pytest.raises(ValueError):
        BlendWeights(cf=-1)
    with pytest.raises(ValueError):
        BlendWeights(0, 0, 0)
    engine = EnsembleEngine({"cf": 1.0, "content": 0.0, "popularity": 0.0}, normalization="rank")
    assert engine.weights == BlendWeights(1.0, 0.0, 0.0)


def test_rank_ensemble_round_trip(demo: DemoData, split: TimeSplit) -> None:
    engine = EnsembleEngine(
        {"cf": 0.5, "content": 0.4, "popularity": 0.1},
        normalization="rank",
        cf={"n_neighbors": 20},
        popularity={"half_life_days": 10.0},
    ).fit(demo.items, split.train)
    restored = load_engine(engine.to_bytes())
    assert isinstance(restored, EnsembleEngine)
    assert restored.cf.n_neighbors == 20 and restored.popularity.half_life_days == 10.0
    for user in warm_users(engine, split, 10):
        assert restored.recommend(user, K) == engine.recommend(user, K)
        assert len(engine.recommend(user, K)) == K


# ---------------------------------------------------------------------------------------------
# evaluation: metrics on hand-computed examples
# ---------------------------------------------------------------------------------------------


def test_precision_recall_hand_computed() -> None:
    rec, rel = [1, 2, 3, 4, 5], {1, 3, 6}
    assert precision_at_k(rec, rel, 5) == pytest.approx(2 / 5)
    assert recall_at_k(rec, rel, 5) == pytest.approx(2 / 3)
    assert precision_at_k(rec, rel, 2) == pytest.approx(1 / 2)
    assert recall_at_k(rec, rel, 2) == pytest.approx(1 / 3)
    assert precision_at_k([1], rel, 5) == pytest.approx(1 / 5)  # short list: denominator stays k
    assert recall_at_k(rec, set(), 5) == 0.0
    assert precision_at_k([1, 1, 1], {1}, 3) == pytest.approx(1 / 3)  # duplicates count once


def test_ndcg_hand_computed() -> None:
    # hits at ranks 1 and 3: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5 = 1.5
    # |rel| = 3 → IDCG = 1 + 1/log2(3) + 1/log2(4) = 2.1309297535714575
    assert dcg_at_k([1, 2, 3, 4, 5], {1, 3, 6}, 5) == pytest.approx(1.5)
    assert ndcg_at_k([1, 2, 3, 4, 5], {1, 3, 6}, 5) == pytest.approx(1.5 / 2.1309297535714575)
    assert ndcg_at_k([1, 2, 3, 4, 5], {1, 3, 6}, 5) == pytest.approx(0.7039180890341348)
    # single relevant item at rank 5: 1/log2(6) / 1
    assert ndcg_at_k([1, 2, 3, 4, 5], {5}, 5) == pytest.approx(0.38685280723454163)
    # k < |rel|: IDCG uses min(k, |rel|) = 3 positions; hits at ranks 2 and 3
    # DCG = 1/log2(3) + 1/log2(4) = 1.1309297535714575
    assert ndcg_at_k([9, 1, 2], {1, 2, 3, 4}, 3) == pytest.approx(
        1.1309297535714575 / 2.1309297535714575
    )
    assert ndcg_at_k([3, 1], {1, 3}, 2) == pytest.approx(1.0)  # perfect ranking
    assert ndcg_at_k([7, 8], {1, 3}, 2) == 0.0
    assert ndcg_at_k([1], set(), 5) == 0.0
    with pytest.raises(ValueError):
        ndcg_at_k([1], {1}, 0)


def test_catalogue_coverage() -> None:
    assert catalogue_coverage([[1, 2], [2, 3]], 10, 2) == pytest.approx(0.3)
    assert catalogue_coverage([[1, 2, 3, 4]], 10, 2) == pytest.approx(0.2)  # only top-k counts
    assert catalogue_coverage([], 0, 2) == 0.0


def test_time_split_hand_made() -> None:
    log = [
        Interaction.create("a", 1, "view", 1.0),
        Interaction.create("a", 2, "view", 5.0),
        Interaction.create("a", 1, "adopt", 6.0),  # seen before the cut-off: not a test target
        Interaction.create("a", 3, "dismiss", 7.0),  # not positive
        Interaction.create("b", 4, "click", 8.0),  # cold-start user in test
        Interaction.create("c", 1, "view", 2.0),  # no test interactions
    ]
    s = time_split(log, cutoff=5.0)
    assert s.cutoff == 5.0
    assert [(e.user_id, e.item_id) for e in s.train] == [("a", 1), ("c", 1)]
    assert s.test == {"a": frozenset({2}), "b": frozenset({4})}
    assert time_split(log, cutoff=5.0, exclude_seen=False).test["a"] == frozenset({1, 2})
    q = time_split(log, test_fraction=0.5)
    assert all(to_epoch_seconds(e.timestamp) < q.cutoff for e in q.train)


class _Fixed:
    """Minimal Engine returning a fixed list per user (for evaluate() arithmetic)."""

    name: ClassVar[str] = "fixed"

    def __init__(self, lists: dict[str, list[int]]) -> None:
        self.lists = lists
        self.item_ids = list(range(1, 11))
        self.excludes: dict[str, AbstractSet[int]] = {}

    def fit(self, items: Any, interactions: Any) -> _Fixed:
        return self

    def recommend(
        self, user_id: str, k: int = 10, exclude: AbstractSet[int] = frozenset()
    ) -> list[Scored]:
        self.excludes[user_id] = exclude
        return [Scored(i, 1.0) for i in self.lists.get(user_id, []) if i not in exclude][:k]

    def similar(self, item_id: int, k: int = 10) -> list[Scored]:
        return []

    def to_bytes(self) -> bytes:
        return b""

    @classmethod
    def from_bytes(cls, data: bytes) -> _Fixed:
        return cls({})


def test_evaluate_arithmetic_and_table() -> None:
    engine = _Fixed({"a": [1, 2, 3], "b": [4, 5, 6]})
    train = [Interaction.create("a", 1, "view", 0.0)]  # excluded for a when exclude_seen
    test = {"a": {2, 9}, "b": {6}, "c": set()}
    factory: Callable[[], Engine] = lambda: engine  # noqa: E731
    out = evaluate({"fixed": engine, "factory": factory}, train, test, 2, items=_items(10))
    m = out["fixed"]
    # a gets [2, 3]: P = 1/2, R = 1/2, nDCG = 1 / (1 + 1/log2(3)); b gets [4, 5]: all zero
    assert m["precision@2"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["recall@2"] == pytest.approx((0.5 + 0.0) / 2)
    assert m["ndcg@2"] == pytest.approx((1 / (1 + 1 / math.log2(3))) / 2)
    assert m["coverage"] == pytest.approx(4 / 10)
    assert m["users"] == 2
    assert engine.excludes["a"] == {1} and not engine.excludes["b"]
    assert out["factory"] == m
    table = format_table(out)
    lines = table.splitlines()
    assert lines[0].split() == ["engine", "precision@2", "recall@2", "ndcg@2", "coverage", "users"]
    assert lines[2].split()[0] == "fixed" and "0.2500" in lines[2]
