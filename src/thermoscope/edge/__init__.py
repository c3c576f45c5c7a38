"""The edge agent beside a production line: per-part inspection through ``thermoscope.pipeline``,
PLC and MQTT actuators, a durable outbox that works offline, delivery to the annotation server,
and a local status page.

Every error the edge layer raises on purpose is an ``EdgeError`` that names what failed (a file,
a setting, a topic, a URL) and why.
"""

from __future__ import annotations

from thermoscope.core.errors import ThermoscopeError


class EdgeError(ThermoscopeError):
    """An edge operation failed; the message names the file, field, topic or URL and the reason."""


__all__ = ["EdgeError"]
