"""QC recipes: the validated schema of a product's checks and the inspection engine."""

from thermoscope.recipes.alignment import read_reference_frame
from thermoscope.recipes.engine import (
    InspectionError,
    InspectionPlan,
    compile_recipe,
    inspect,
)
from thermoscope.recipes.record import RecordPlan, compile_record, inspect_record
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
    "InspectionError",
    "InspectionPlan",
    "Limits",
    "Recipe",
    "RecipeError",
    "RecordPlan",
    "RegionSpec",
    "compile_recipe",
    "compile_record",
    "inspect",
    "inspect_record",
    "load_recipe",
    "parse_recipe",
    "read_reference_frame",
    "recipe_json_schema",
]
