"""Recommendation engines (pure numpy / scipy; no Django).

``load_engine(blob)`` restores any engine of this package from the bytes of ``to_bytes()``,
dispatching on the engine name stored in the artifact's metadata.
"""

from __future__ import annotations

from .base import (
    DEFAULT_WEIGHTS,
    ArtifactError,
    Engine,
    IndexedEngine,
    Interaction,
    Item,
    Scored,
    TrainingData,
    unpack_artifact,
)
from .collaborative import ItemKNNEngine
from .content import ContentEngine
from .ensemble import BlendWeights, EnsembleEngine
from .popularity import PopularityEngine, RandomEngine

ENGINES: dict[str, type[IndexedEngine]] = {
    cls.name: cls
    for cls in (PopularityEngine, RandomEngine, ItemKNNEngine, ContentEngine, EnsembleEngine)
}


def load_engine(data: bytes) -> IndexedEngine:
    """Restore an engine from :meth:`Engine.to_bytes` output, whatever its class."""
    meta, arrays = unpack_artifact(data)
    cls = ENGINES.get(str(meta.get("engine")))
    if cls is None:
        raise ArtifactError(f"unknown engine {meta.get('engine')!r}")
    return cls.restore(meta, arrays)


__all__ = [
    "DEFAULT_WEIGHTS",
    "ENGINES",
    "ArtifactError",
    "BlendWeights",
    "ContentEngine",
    "Engine",
    "EnsembleEngine",
    "IndexedEngine",
    "Interaction",
    "Item",
    "ItemKNNEngine",
    "PopularityEngine",
    "RandomEngine",
    "Scored",
    "TrainingData",
    "load_engine",
]
