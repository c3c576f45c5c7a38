"""The annotation server: ``create_app(settings)`` builds the FastAPI app (see docs/api.md)."""

from thermoscope.server.app import create_app
from thermoscope.server.settings import Settings

__all__ = ["Settings", "create_app"]
