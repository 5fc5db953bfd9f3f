"""Who may talk to the studio: the Host header, the origin of state-changing requests and an
optional access token (issue 30). See ``docs/studio-security.md``.

Three checks, outermost first, each a small ASGI layer in front of the app:

1. **Host** (Starlette's ``TrustedHostMiddleware``): the ``Host`` header must name the bound
   address or a loopback name (``localhost``, ``127.0.0.1``, ``[::1]``), else HTTP 400. This
   stops DNS rebinding: a page on ``evil.example`` whose name is re-pointed at 127.0.0.1
   still sends ``Host: evil.example``.
2. **Origin** (:class:`OriginGuard`): a POST, PUT, PATCH or DELETE whose ``Origin`` header does
   not match its ``Host`` (or is ``null``), or whose ``Sec-Fetch-Site`` is ``cross-site`` or
   ``same-site``, gets HTTP 403: another web page cannot upload into the data folder or start
   jobs. Requests without these headers (curl, scripts) are not browsers' and pass.
3. **Token** (:class:`TokenGuard`, only when a token is set): every request needs it, as the
   cookie ``atelier_token`` (set when the page is opened with ``?token=TOKEN``), the header
   ``Authorization: Bearer TOKEN`` or ``X-Atelier-Token: TOKEN``, or the query ``?token=``.
   Missing: HTTP 401; wrong: HTTP 403. Compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Iterable, Optional
from urllib.parse import parse_qsl, urlencode, urlsplit

from starlette.datastructures import Headers
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

__all__ = ["COOKIE", "LOOPBACK_HOSTS", "OriginGuard", "TokenGuard", "allowed_hosts_for", "new_token"]

#: Host names that always reach a studio bound to this machine.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
#: The cookie that carries the token after the page was opened with ``?token=``.
COOKIE = "atelier_token"
_SAFE = ("GET", "HEAD", "OPTIONS")


def new_token() -> str:
    """A fresh random token (48 hex digits, 192 bits)."""
    return secrets.token_hex(24)


def allowed_hosts_for(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The Host names a studio bound to ``host`` answers: the loopback names, ``host`` itself
    (IPv6 in brackets) and ``extra``. A wildcard bind (``0.0.0.0``, ``::``) answers any Host
    (``["*"]``) unless ``extra`` names some; the token then guards it."""
    extra = [h.lower() for h in extra if h]
    if host in ("0.0.0.0", "::", "") and not extra:
        return ["*"]
    names = list(LOOPBACK_HOSTS) + extra
    if host not in ("0.0.0.0", "::", ""):
        names.append(f"[{host}]" if ":" in host and not host.startswith("[") else host.lower())
    return sorted(set(names))


async def _send(response, scope, receive, send) -> None:
    await response(scope, receive, send)


class OriginGuard:
    """Refuses cross-origin state-changing requests with HTTP 403 (see the module docstring)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] in _SAFE:
            return await self.app(scope, receive, send)
        headers = Headers(scope=scope)
        why = None
        site = headers.get("sec-fetch-site")
        if site in ("cross-site", "same-site"):
            why = f"a {site} request"
        origin = headers.get("origin")
        if why is None and origin is not None:
            netloc = urlsplit(origin).netloc.lower() if origin != "null" else ""
            if not netloc or netloc != headers.get("host", "").lower():
                why = f"a request from the page {origin}"
        if why is not None:
            detail = f"{why} may not change the studio's data; open the studio's own page instead"
            return await _send(JSONResponse({"detail": detail}, status_code=403), scope, receive, send)
        return await self.app(scope, receive, send)


class TokenGuard:
    """Lets through only requests that carry ``token`` (see the module docstring)."""

    def __init__(self, app, token: str):
        self.app, self.token = app, token

    def _given(self, scope) -> tuple[Optional[str], bool]:
        headers = Headers(scope=scope)
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:].strip(), False
        if headers.get("x-atelier-token"):
            return headers["x-atelier-token"], False
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        if "token" in query:
            return query["token"], True
        for part in headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == COOKIE:
                return value, False
        return None, False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        given, in_query = self._given(scope)
        if given is None or not hmac.compare_digest(given.encode(), self.token.encode()):
            status = 401 if given is None else 403
            detail = ("this studio needs its access token: open the URL with ?token= that `atelier studio` printed, "
                      "or send the header Authorization: Bearer TOKEN") if given is None else "wrong access token"
            if scope["path"].startswith("/api") or scope["path"] == "/openapi.json":
                response = JSONResponse({"detail": detail}, status_code=status)
            else:
                response = HTMLResponse(f"<!doctype html><title>Atelier Studio</title><p>{detail}.</p>", status_code=status)
            return await _send(response, scope, receive, send)
        if in_query and scope["method"] == "GET" and not scope["path"].startswith("/api"):
            # the page: keep the token in a cookie and take it out of the address bar
            rest = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1")) if k != "token"]
            response = RedirectResponse(scope["path"] + (f"?{urlencode(rest)}" if rest else ""), status_code=303)
            response.set_cookie(COOKIE, self.token, httponly=True, samesite="lax", path="/")
            return await _send(response, scope, receive, send)
        return await self.app(scope, receive, send)
