"""Who is making a JMAP request (RFC 8620 §1.7: authentication is the transport's).

Two ways in, both ending at the one login gate with the account's web switch obeyed:

- HTTP Basic (RFC 7617) with an app password (or the password of an account without a
  second factor), for clients: :mod:`hirondelle.web.http_auth` with protocol ``jmap``
  (refused over plain HTTP unless the socket is loopback);
- the webmail's session cookie (/tmp/briefs/session-api.md), resolved by
  :meth:`hirondelle.identity.web_sessions.WebSessionService.resolve`, which refuses a
  session of an account that is disabled or switched off for the web.

CSRF: a cookie-authenticated POST (API calls, uploads) must carry ``X-CSRF-Token``
(403 ``{"error":"csrf"}`` otherwise). GET requests (session resource, download,
EventSource) change nothing and are not asked for it: a browser's EventSource and a
download link cannot send headers, and the cookie is SameSite=Strict.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from hirondelle.services import Services
from hirondelle.store.directory import Account
from hirondelle.web import http_auth

COOKIE = "hirondelle_session"
CSRF_HEADER = "x-csrf-token"


def remote_of(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def _json_error(error: str, status: int) -> Response:
    return JSONResponse({"error": error}, status_code=status, headers={"Cache-Control": "no-store"})


async def authenticate(services: Services, request: Request) -> Account | Response:
    """The account the request acts for, or the response to send instead."""
    if request.headers.get("authorization") is None:
        token = request.cookies.get(COOKIE)
        if token:
            session = await services.web_sessions.resolve(token, remote=remote_of(request))
            if session is None:
                return _json_error("session", 401)
            if request.method not in ("GET", "HEAD"):
                given = request.headers.get(CSRF_HEADER, "")
                if not hmac.compare_digest(
                    given.encode("latin-1", "replace"), session.csrf_token.encode()
                ):
                    return _json_error("csrf", 403)
            return session.account
    return await http_auth.authenticate(request, services.authenticator, protocol="jmap")
