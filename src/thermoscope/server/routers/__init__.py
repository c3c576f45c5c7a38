"""The API routers, mounted under ``/api/v1`` by ``create_app``."""
