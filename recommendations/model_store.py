"""What a serving process keeps in memory: the active trained models and a catalogue
snapshot.

Models: each process loads the active artifact of an engine once and keeps it, keyed by
its ModelVersion id. At most every REFRESH_SECONDS a request asks the database which
version is active (one indexed query); when another one has been activated it is loaded
(under a per-engine lock, so a busy process loads it once) and replaces the old one. A
new model therefore reaches every process within REFRESH_SECONDS plus its load time
(≈ 0.15 s for 10 000 items / 100 000 users), and a broken artifact never replaces a
working model.

Catalogue: kind and title of every active item (for the answers) and the ids of the
inactive ones (never served, even by a model trained before they were retired). It is
reloaded when its fingerprint — count, active count, newest `updated_at` — changes, or
after CATALOGUE_MAX_AGE_SECONDS (queryset `.update()` does not touch `updated_at`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from django.db.models import Count, Max, Q

from recommendations.engines import ArtifactError, IndexedEngine, load_engine
from recommendations.models import ContentItem, ModelVersion

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 5.0
CATALOGUE_MAX_AGE_SECONDS = 300.0


@dataclass(frozen=True)
class LoadedModel:
    version_id: int
    engine_name: str
    label: str
    engine: IndexedEngine


@dataclass
class _Slot:
    model: LoadedModel | None
    checked_at: float
    lock: threading.Lock = field(default_factory=threading.Lock)


_slots: dict[str, _Slot] = {}
_slots_lock = threading.Lock()


def _slot(engine: str) -> _Slot:
    slot = _slots.get(engine)
    if slot is None:
        with _slots_lock:
            slot = _slots.setdefault(engine, _Slot(model=None, checked_at=float("-inf")))
    return slot


def _load(version_id: int) -> LoadedModel | None:
    row = ModelVersion.objects.filter(id=version_id).values_list("engine", "artifact").first()
    if row is None:  # deleted between the two queries
        return None
    engine_name, blob = row
    engine = load_engine(bytes(blob))
    label = ModelVersion(id=version_id, engine=engine_name).label
    return LoadedModel(version_id, engine_name, label, engine)


def active_model(engine: str) -> LoadedModel | None:
    """The active model of `engine` (a ModelVersion.Engine value), loaded; None if none."""
    slot = _slot(engine)
    now = time.monotonic()
    if now - slot.checked_at < REFRESH_SECONDS:
        return slot.model
    with slot.lock:
        if time.monotonic() - slot.checked_at < REFRESH_SECONDS:
            return slot.model  # another thread refreshed it while this one waited
        active_id = (
            ModelVersion.objects.filter(engine=engine, is_active=True)
            .values_list("id", flat=True)
            .first()
        )
        model = slot.model
        if active_id is None:
            model = None
        elif model is None or model.version_id != active_id:
            try:
                model = _load(active_id) or model
            except ArtifactError:
                # keep serving what works; the next check tries again
                logger.exception("could not load %s model version %s", engine, active_id)
        slot.model, slot.checked_at = model, time.monotonic()
    return slot.model


# --- catalogue ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogueSnapshot:
    #: active items: id → (kind, title, tags)
    items: dict[int, tuple[str, str, frozenset[str]]]
    #: ids of retired items
    inactive: frozenset[int]
    fingerprint: tuple[object, ...]


_catalogue: CatalogueSnapshot | None = None
_catalogue_checked_at = float("-inf")
_catalogue_loaded_at = float("-inf")
_catalogue_lock = threading.Lock()


def _fingerprint() -> tuple[object, ...]:
    agg = ContentItem.objects.aggregate(
        n=Count("id"), active=Count("id", filter=Q(active=True)), changed=Max("updated_at")
    )
    return (agg["n"], agg["active"], agg["changed"])


def _load_catalogue(fingerprint: tuple[object, ...]) -> CatalogueSnapshot:
    items: dict[int, tuple[str, str, frozenset[str]]] = {}
    inactive: set[int] = set()
    rows = ContentItem.objects.values_list("id", "kind", "title", "tags", "active")
    for item_id, kind, title, tags, active in rows.iterator(chunk_size=5000):
        if active:
            items[item_id] = (kind, title, frozenset(str(t) for t in tags or ()))
        else:
            inactive.add(item_id)
    return CatalogueSnapshot(items, frozenset(inactive), fingerprint)


def catalogue() -> CatalogueSnapshot:
    """The catalogue snapshot, at most REFRESH_SECONDS behind the database."""
    global _catalogue, _catalogue_checked_at, _catalogue_loaded_at
    now = time.monotonic()
    current = _catalogue
    if current is not None and now - _catalogue_checked_at < REFRESH_SECONDS:
        return current
    with _catalogue_lock:
        current = _catalogue
        if current is not None and time.monotonic() - _catalogue_checked_at < REFRESH_SECONDS:
            return current
        fingerprint = _fingerprint()
        stale = time.monotonic() - _catalogue_loaded_at >= CATALOGUE_MAX_AGE_SECONDS
        if current is None or current.fingerprint != fingerprint or stale:
            current = _load_catalogue(fingerprint)
            _catalogue, _catalogue_loaded_at = current, time.monotonic()
        _catalogue_checked_at = time.monotonic()
    return current


def forget() -> None:
    """Drop every model and the catalogue (tests; a new process starts like this)."""
    global _catalogue, _catalogue_checked_at, _catalogue_loaded_at
    with _slots_lock:
        _slots.clear()
    with _catalogue_lock:
        _catalogue = None
        _catalogue_checked_at = _catalogue_loaded_at = float("-inf")
