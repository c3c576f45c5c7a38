"""Browser-test fixtures; they live in ``web_support`` so tests import its names unambiguously
(several ``conftest`` modules exist, and ``from conftest import`` would pick whichever loaded
first)."""

from web_support import browser, live, module_page, static_url

__all__ = ["browser", "live", "module_page", "static_url"]
