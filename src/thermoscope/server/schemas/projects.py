"""Projects, label schemas, recipes and members."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from thermoscope.server.schemas.common import Request

RoleName = Annotated[str, StringConstraints(pattern="^(admin|annotator|reviewer|viewer)$")]


class RecipeOut(BaseModel):
    """A project's recipe."""

    name: str
    version: str
    product: str
    text: str = Field(description="the YAML or JSON as stored")


class ProjectIn(Request):
    """A new project."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]
    label_schema: dict[str, Any] | None = Field(
        default=None, description="LabelSchema.to_dict(); default no labels"
    )
    recipe: str | dict[str, Any] | None = Field(
        default=None, description="the recipe as YAML/JSON text or a JSON object"
    )


class ProjectOut(BaseModel):
    """A project as a member sees it."""

    id: int
    name: str
    label_schema: dict[str, Any]
    recipe: RecipeOut | None
    role: str
    frame_count: int
    created_at: datetime


class MemberIn(Request):
    """A member's role."""

    role: RoleName


class MemberOut(BaseModel):
    """A member of a project."""

    username: str
    role: str
