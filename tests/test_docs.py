"""The user docs cannot drift: every command, option, format and palette is documented."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer.main

import thermoscope.io as tio
from thermoscope.cli.main import app
from thermoscope.render import PALETTES

ROOT = Path(__file__).resolve().parents[1]
CLI_DOC = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
FORMATS_DOC = (ROOT / "docs" / "formats.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
COMMANDS = {
    f"{name} {sub}" if sub else name: command
    for name, group in typer.main.get_command(app).commands.items()  # type: ignore[attr-defined]
    for sub, command in (getattr(group, "commands", None) or {"": group}).items()
}


ALL_DOCS = "\n".join(p.read_text(encoding="utf-8") for p in sorted((ROOT / "docs").glob("*.md")))


def section(name: str) -> str:
    """The text of ``## `thermoscope NAME` `` (in any docs page) up to the next such heading.

    A sub-command without a heading of its own is looked up in its group's section, which must
    then show its usage line.
    """
    for candidate in (name, name.split(" ")[0]):
        pattern = rf"^##+ `thermoscope {re.escape(candidate)}`$(.*?)(?=^##+ |\Z)"
        for match in re.finditer(pattern, ALL_DOCS, re.M | re.S):
            if candidate == name or f"thermoscope {name} " in match.group(1):
                return match.group(1)
    raise AssertionError(f"docs/ has no section for `thermoscope {name}`")


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_and_option_is_documented(name: str) -> None:
    text = section(name)
    command = COMMANDS[name]
    for param in command.params:
        if param.param_type_name == "option":
            flags = [f for f in param.opts if f.startswith("--")]
            assert any(f in text for f in flags), f"{name}: option {flags} undocumented"
        else:
            shown = param.metavar or (param.name or "").upper()
            assert shown in text, f"{name}: argument {shown} undocumented"


def test_every_palette_is_documented() -> None:
    for name in PALETTES:
        assert f"`{name}`" in CLI_DOC


def test_every_format_is_documented() -> None:
    for item in [*tio.readers(), *tio.writers()]:
        assert f"`{item.name}`" in FORMATS_DOC, f"format {item.name} undocumented"
        for suffix in item.suffixes:
            assert suffix in FORMATS_DOC


def test_readme_opens_with_the_two_commands() -> None:
    first_block = re.search(r"```(?:\w+)?\n(.*?)```", README, re.S)
    assert first_block
    lines = [
        line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()
    ]
    assert lines == ["make demo", "make test"]
    assert README.index("make demo") < README.index("##")  # before any section


def test_ci_runs_exactly_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    commands = [
        line for line in script.splitlines() if line and not line.startswith(("#", "set ", "cd "))
    ]
    assert commands == ["make test"]


RECIPES_DOC = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")


def _recipe_models() -> dict[str, list[str]]:
    """Every pydantic model a recipe is made of, with its field names."""
    import typing

    import pydantic

    from thermoscope.recipes import schema

    found: dict[str, list[str]] = {}

    def models_in(annotation: object) -> list[type[pydantic.BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, pydantic.BaseModel):
            return [annotation]
        return [m for arg in typing.get_args(annotation) for m in models_in(arg)]

    def walk(model: type[pydantic.BaseModel]) -> None:
        if model.__name__ in found:
            return
        found[model.__name__] = list(model.model_fields)
        for info in model.model_fields.values():
            for inner in models_in(info.annotation):
                walk(inner)

    walk(schema.Recipe)
    for rule in schema.RULE_TYPES.values():
        walk(rule)
    return found


def test_every_recipe_rule_type_is_documented() -> None:
    from thermoscope.recipes.schema import RULE_TYPES

    for name in RULE_TYPES:
        assert f"| `{name}` |" in RECIPES_DOC, f"rule type {name} undocumented"


@pytest.mark.parametrize(("model", "fields"), sorted(_recipe_models().items()))
def test_every_recipe_setting_is_documented(model: str, fields: list[str]) -> None:
    for name in fields:
        assert f"`{name}`" in RECIPES_DOC, f"{model}.{name} undocumented in docs/recipes.md"
