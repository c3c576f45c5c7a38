"""Accounts, sessions and tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from thermoscope.server.auth import SCOPES
from thermoscope.server.schemas.common import Request

Username = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]
Password = Annotated[str, StringConstraints(min_length=8, max_length=256)]
Scope = Annotated[str, StringConstraints(pattern="^(" + "|".join(SCOPES) + ")$")]


class UserOut(BaseModel):
    """A user."""

    id: int
    username: str
    is_admin: bool
    disabled: bool = Field(default=False, description="a disabled user cannot log in")


class LoginIn(Request):
    """Log-in form."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    password: Annotated[str, StringConstraints(min_length=1, max_length=256)]


class LoginOut(BaseModel):
    """A logged-in browser: its user and the CSRF token for writes."""

    user: UserOut
    csrf_token: str


class ProjectRole(BaseModel):
    """A project the user belongs to and the role there."""

    id: int
    name: str
    role: str


class MeOut(BaseModel):
    """Who is calling."""

    user: UserOut
    csrf_token: str | None = Field(description="null when called with an API token")
    scopes: list[str] | None = Field(description="the token's scopes; null for a session")
    projects: list[ProjectRole]


class TokenIn(Request):
    """A new API token."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))
    expires_in_s: int = Field(default=30 * 24 * 3600, ge=60, le=365 * 24 * 3600)


class TokenOut(BaseModel):
    """An API token (its text only right after creation)."""

    id: int
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    token: str | None = None


class UserIn(Request):
    """A new user."""

    username: Username
    password: Password
    is_admin: bool = False


class UserPatch(Request):
    """Changes to a user by a site administrator (absent fields stay as they are)."""

    disabled: bool | None = Field(
        default=None, description="true ends the user's sessions and API tokens"
    )
    password: Password | None = Field(
        default=None, description="a new password (ends the user's sessions)"
    )
    is_admin: bool | None = None


class PasswordChange(Request):
    """A user's change of their own password."""

    old_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class Ended(BaseModel):
    """How many sessions or tokens were ended."""

    ended: int
