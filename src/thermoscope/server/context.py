"""What every route needs, built once per app: settings, database, blob store, passwords,
the job runner and the pipelines of the projects' recipes."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thermoscope.annotations import LabelSchema
from thermoscope.pipeline import Pipeline
from thermoscope.recipes import parse_recipe
from thermoscope.server.auth import Passwords
from thermoscope.server.db import Database
from thermoscope.server.settings import Settings
from thermoscope.storage import BlobStore

if TYPE_CHECKING:
    from thermoscope.server.jobs import JobRunner


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
    _recipes_lock: threading.Lock = field(default_factory=threading.Lock)

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
