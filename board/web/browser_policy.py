"""What every response tells the browser: a Content-Security-Policy with no inline script, no
framing, no type sniffing, no full referrer; and the session cookie marked Secure whenever the
request came over HTTPS (or BOARD_HTTPS_ONLY says so).

The pages load scripts and styles only from this server (htmx, Leaflet and the project's glue
under /vendor and /static), so scripts need no 'unsafe-inline' and no eval; photos and optional
map tiles are images from other hosts, so images may come from anywhere.
"""

from __future__ import annotations

from typing import Any

from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    # Leaflet and htmx position and animate elements with inline styles; styles cannot run code
    "style-src 'self' 'unsafe-inline'",
    "img-src * data: blob:",
    "connect-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])
HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
#: A session cookie lives this long in the browser; the server decides when a session ends
#: (board/sessions.py), and a wall's session lasts as long as its token.
COOKIE_MAX_AGE = 400 * 24 * 3600


class SecurityHeaders:
    """Adds the headers above to every HTTP response that does not set them itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


class Sessions:
    """Starlette's signed session cookie, marked Secure on HTTPS requests (as the scheme is
    seen behind a proxy that uvicorn trusts with --proxy-headers) or always with https_only."""

    def __init__(self, app: ASGIApp, secret_key: str, https_only: bool = False,
                 **options: Any) -> None:
        options = {"session_cookie": "board_session", "same_site": "lax",
                   "max_age": COOKIE_MAX_AGE, **options}
        self.secure = SessionMiddleware(app, secret_key, https_only=True, **options)
        self.plain = (self.secure if https_only
                      else SessionMiddleware(app, secret_key, https_only=False, **options))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secure = scope.get("scheme") in ("https", "wss")
        await (self.secure if secure else self.plain)(scope, receive, send)
