"""What every route needs, built once per app: settings, database, blob store, passwords,
the job runner and compiled recipes."""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from thermoscope.annotations import LabelSchema
from thermoscope.core import regions as core_regions
from thermoscope.recipes import InspectionPlan, Recipe, compile_recipe, parse_recipe
from thermoscope.server.auth import Passwords
from thermoscope.server.db import Database
from thermoscope.server.settings import Settings
from thermoscope.server.storage import BlobStore

if TYPE_CHECKING:
    from thermoscope.server.jobs import JobRunner


@dataclass(frozen=True, slots=True)
class CompiledRecipe:
    """A project's recipe ready to inspect frames and label the drafts."""

    recipe: Recipe
    plan: InspectionPlan
    regions: dict[str, core_regions.Region]
    kinds: dict[str, str]


@dataclass(slots=True)
class ServerContext:
    """The shared state of one app."""

    settings: Settings
    db: Database
    blobs: BlobStore
    passwords: Passwords
    jobs: JobRunner | None = None
    _recipes: dict[str, CompiledRecipe] = field(default_factory=dict)
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

    def compiled_recipe(self, text: str) -> CompiledRecipe:
        """The compiled form of a stored recipe text (kept while the server runs)."""
        key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        with self._recipes_lock:
            found = self._recipes.get(key)
        if found is not None:
            return found
        recipe = parse_recipe(text)
        compiled = CompiledRecipe(
            recipe,
            compile_recipe(recipe),
            {spec.name: spec.to_region() for spec in recipe.regions},
            {rule.label: rule.type for rule in recipe.rules},
        )
        with self._recipes_lock:
            self._recipes[key] = compiled
        return compiled
