"""Security headers on every response: a Content-Security-Policy that allows the UI's own
scripts and styles only (no inline script, no framing), ``X-Frame-Options``,
``X-Content-Type-Options``, ``Referrer-Policy`` and, when served over HTTPS, HSTS."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The UI loads its ES modules, style sheets, images and API answers from its own origin; it
#: draws frames on canvases (``data:``/``blob:`` images for downloads), and nobody may frame it.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)

#: HSTS for a year, sent only when the server is configured for HTTPS (``cookie_secure``).
HSTS = "max-age=31536000"


def security_headers(*, https: bool) -> list[tuple[bytes, bytes]]:
    """The headers added to every response (``https``: also Strict-Transport-Security)."""
    headers = [
        (b"content-security-policy", CONTENT_SECURITY_POLICY.encode("ascii")),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cross-origin-opener-policy", b"same-origin"),
    ]
    if https:
        headers.append((b"strict-transport-security", HSTS.encode("ascii")))
    return headers


class SecurityHeaders:
    """ASGI middleware adding ``security_headers`` to every HTTP response (those a route
    already set are kept)."""

    def __init__(self, app: ASGIApp, *, https: bool) -> None:
        self.app = app
        self.headers = security_headers(https=https)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                present = {name.lower() for name, _ in headers}
                headers.extend(h for h in self.headers if h[0] not in present)
            await send(message)

        await self.app(scope, receive, send_with_headers)
