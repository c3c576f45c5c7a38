"""The one error type routes raise: an HTTP status, a clear message and optional extra keys."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A client error answered as ``{"detail": message, **extra}`` with ``status``."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.extra = extra or {}
        self.headers = headers

    def body(self) -> dict[str, Any]:
        """The JSON body of the answer."""
        return {"detail": self.detail, **self.extra}


def not_found(what: str) -> ApiError:
    """404 for ``what`` (also used for things in projects the caller cannot see)."""
    return ApiError(404, f"{what} not found")


def forbidden(detail: str) -> ApiError:
    """403 with ``detail``."""
    return ApiError(403, detail)
