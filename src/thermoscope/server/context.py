"""What every route needs, built once per app: settings, database, blob store, passwords,
the job runner, the pipelines of the projects' recipes and their loaded models."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thermoscope.annotations import LabelSchema
from thermoscope.models.errors import ModelError
from thermoscope.models.runtime import LoadedModel
from thermoscope.pipeline import Pipeline
from thermoscope.recipes import parse_recipe
from thermoscope.server.auth import Passwords
from thermoscope.server.db import Database
from thermoscope.server.db.models import ModelRelease
from thermoscope.server.releases import RecordingModel, load_zip
from thermoscope.server.settings import Settings
from thermoscope.storage import BlobStore

if TYPE_CHECKING:
    from thermoscope.server.jobs import JobRunner

#: Loaded models kept in memory (the oldest is dropped first).
MODELS_KEPT = 8
#: Seconds before a release that failed to load is tried again.
RETRY_REFUSED_S = 60.0


@dataclass(slots=True)
class ServerContext:
    """The shared state of one app."""

    settings: Settings
    db: Database
    blobs: BlobStore
    passwords: Passwords
    jobs: JobRunner | None = None
    _recipes: dict[str, Pipeline] = field(default_factory=dict)
    _schemas: dict[str, LabelSchema] = field(default_factory=dict)
    _models: dict[str, LoadedModel] = field(default_factory=dict)
    _refused: dict[str, tuple[float, str]] = field(default_factory=dict)
    _recipes_lock: threading.Lock = field(default_factory=threading.Lock)
    #: Ingests this process decodes, inspects and stores at once (``ingest_concurrency``);
    #: the others wait, so a burst of uploads leaves CPU to the interactive requests.
    ingest_slots: threading.BoundedSemaphore = field(init=False)

    def __post_init__(self) -> None:
        self.ingest_slots = threading.BoundedSemaphore(self.settings.ingest_concurrency)

    def label_schema(self, data: dict[str, Any]) -> LabelSchema:
        """The parsed form of a stored label schema (kept while the server runs)."""
        key = json.dumps(data, sort_keys=True)
        found = self._schemas.get(key)
        if found is None:
            found = LabelSchema.from_dict(data)
            with self._recipes_lock:
                if len(self._schemas) > 1000:
                    self._schemas.clear()
                self._schemas[key] = found
        return found

    def compiled_recipe(self, text: str) -> Pipeline:
        """The pipeline of a stored recipe text, compiled once (kept while the server runs)."""
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with self._recipes_lock:
            found = self._recipes.get(key)
        if found is not None:
            return found
        compiled = Pipeline(parse_recipe(text))
        with self._recipes_lock:
            self._recipes[key] = compiled
        return compiled

    def loaded_model(self, release: ModelRelease) -> LoadedModel:
        """A stored release loaded with ``models.runtime.load_model`` (verified again), kept
        while the server runs (by the zip's SHA-256: a version is never replaced).

        Raises:
            ModelError: the release is refused now (expired, key no longer trusted) or does
                not load (the refusal is remembered for ``RETRY_REFUSED_S`` seconds).
        """
        with self._recipes_lock:
            found = self._models.get(release.sha256)
            refused = self._refused.get(release.sha256)
        if found is not None:
            return found
        if refused is not None and time.monotonic() < refused[0]:
            raise ModelError(refused[1])
        try:
            loaded = load_zip(
                self.blobs.get(release.blob_key), self.settings, signed=release.signed
            )
        except ModelError as exc:  # not tried again for a while (not on every ingest)
            with self._recipes_lock:
                self._refused[release.sha256] = (time.monotonic() + RETRY_REFUSED_S, str(exc))
            raise
        with self._recipes_lock:
            if len(self._models) >= MODELS_KEPT:
                self._models.pop(next(iter(self._models)))
            self._models[release.sha256] = loaded
        return loaded

    def pipeline(
        self, recipe_text: str | None, model: LoadedModel | None
    ) -> tuple[Pipeline, RecordingModel | None]:
        """``Pipeline(recipe, model)`` for one inspection: the recipe compiled once (shared
        plan), the model wrapped so that its prediction (heat map, score) is kept."""
        recorder = None if model is None else RecordingModel(model)
        if recipe_text is None:
            return Pipeline(None, recorder), recorder
        base = self.compiled_recipe(recipe_text)
        if recorder is None:
            return base, None
        return Pipeline(base.recipe, recorder, plan=base.plan), recorder
