"""What every response tells the browser: a Content-Security-Policy with no inline script, no
framing, no type sniffing, no full referrer; the session cookie marked Secure whenever the
request came over HTTPS (or BOARD_HTTPS_ONLY says so); and a non-secret tag of the current
session, which the officer's service worker keys its kept pages to.

The pages load scripts and styles only from this server (htmx, Leaflet and the project's glue
under /vendor and /static), so scripts need no 'unsafe-inline' and no eval; photos and optional
map tiles are images from other hosts, so images may come from anywhere.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from base64 import b64decode
from collections.abc import Awaitable
from typing import Any

from itsdangerous.exc import BadSignature
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import Session, SessionMiddleware
from starlette.requests import HTTPConnection, Request
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

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        # Not a coroutine for a live socket: no frame of this kept for its hours.
        if scope["type"] != "http":
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


#: A non-secret name of the browser's current session (an HMAC of its secret), sent as a
#: header on every page and kept in a cookie scripts can read. The officer's service worker
#: (static/sw.js) keeps pages under this name and serves them only while the cookie still
#: holds it: a page kept for one session is never shown in another, however the first ended.
TAG_HEADER = "X-Board-Session"
TAG_COOKIE = "board_tag"
_UNTAGGED = ("/static/", "/vendor/")  # the same for everyone, and cacheable


def session_tag(secret_key: str, sid: str) -> str:
    return hmac.new(secret_key.encode(), b"offline-tag:" + sid.encode(),
                    hashlib.sha256).hexdigest()[:32]


class SessionTag:
    """Names the session on each response (header) and keeps the tag cookie in step with it:
    set when a session starts, deleted once there is none (logged out, or found ended).
    Runs inside the session middleware, so it sees the session as the handler left it."""

    def __init__(self, app: ASGIApp, secret_key: str) -> None:
        self.app = app
        self.secret_key = secret_key

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] != "http" or scope["path"].startswith(_UNTAGGED):
            return self.app(scope, receive, send)
        return self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_tag(message: Message) -> None:
            if message["type"] == "http.response.start":
                sid = (scope.get("session") or {}).get("sid")
                tag = session_tag(self.secret_key, sid) if isinstance(sid, str) else ""
                headers = MutableHeaders(scope=message)
                headers[TAG_HEADER] = tag
                had = Request(scope).cookies.get(TAG_COOKIE)
                secure = "; secure" if scope.get("scheme") in ("https", "wss") else ""
                if tag and had != tag:
                    headers.append("set-cookie", f"{TAG_COOKIE}={tag}; path=/; "
                                   f"max-age={COOKIE_MAX_AGE}; samesite=strict{secure}")
                elif not tag and had is not None:
                    headers.append("set-cookie", f"{TAG_COOKIE}=; path=/; max-age=0; expires="
                                   f"Thu, 01 Jan 1970 00:00:00 GMT; samesite=strict{secure}")
            await send(message)

        await self.app(scope, receive, send_with_tag)


class Sessions:
    """Starlette's signed session cookie, marked Secure on HTTPS requests (as the scheme is
    seen behind a proxy that uvicorn trusts with --proxy-headers) or always with https_only.
    A socket's session is read from its cookie the same way, with no middleware frame kept
    for the socket's hours (a socket never sets a cookie)."""

    def __init__(self, app: ASGIApp, secret_key: str, https_only: bool = False,
                 **options: Any) -> None:
        options = {"session_cookie": "board_session", "same_site": "lax",
                   "max_age": COOKIE_MAX_AGE, **options}
        self.app = app
        tagged = SessionTag(app, secret_key)
        self.secure = SessionMiddleware(tagged, secret_key, https_only=True, **options)
        self.plain = (self.secure if https_only
                      else SessionMiddleware(tagged, secret_key, https_only=False, **options))

    def __call__(self, scope: Scope, receive: Receive, send: Send) -> Awaitable[None]:
        if scope["type"] == "websocket":
            scope["session"] = self._session(scope)
            return self.app(scope, receive, send)
        secure = scope.get("scheme") in ("https", "wss")
        return (self.secure if secure else self.plain)(scope, receive, send)

    def _session(self, scope: Scope) -> Session:
        """The session the cookie carries, as SessionMiddleware reads it (else an empty one)."""
        mw = self.plain
        cookie = HTTPConnection(scope).cookies.get(mw.session_cookie)
        if cookie is None:
            return Session()
        try:
            data = mw.signer.unsign(cookie.encode("utf-8"), max_age=mw.max_age)
            return Session(json.loads(b64decode(data)))
        except BadSignature:
            return Session()
