"""QC recipes: the validated schema of a product's checks and the inspection engine."""

from thermoscope.recipes.schema import (
    Limits,
    Recipe,
    RecipeError,
    RegionSpec,
    load_recipe,
    parse_recipe,
    recipe_json_schema,
)

__all__ = [
    "Limits",
    "Recipe",
    "RecipeError",
    "RegionSpec",
    "load_recipe",
    "parse_recipe",
    "recipe_json_schema",
]
