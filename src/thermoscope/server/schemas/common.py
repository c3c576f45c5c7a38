"""Shared pieces: strict request base, pagination and job answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class Request(BaseModel):
    """Base of request bodies: unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="items in the whole list")
    offset: int = Field(description="index of the first item of this page")
    limit: int = Field(description="page size asked for")


class Items(BaseModel, Generic[T]):
    """A short, unpaginated list."""

    items: list[T]


class JobAccepted(BaseModel):
    """A background job was queued."""

    job_id: str


class JobOut(BaseModel):
    """A background job and its progress."""

    id: str
    kind: str
    state: str = Field(description="queued, running, done or failed")
    progress: float = Field(description="0..1")
    message: str
    result: dict[str, Any] | None
    result_url: str | None
    error: str | None
    created_at: datetime
    updated_at: datetime


class Health(BaseModel):
    """The server is up."""

    status: str
    version: str


class Palette(BaseModel):
    """A palette as 256 RGB colours, coldest first."""

    name: str
    colors: list[list[int]]
