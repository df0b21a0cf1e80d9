"""The webmail's small session API (issues 6 and 8): sign-in, second factor, sign-out,
sessions, password reset, second-factor enrolment. The contract (shared with the webmail
and JMAP engineers) is docs/architecture.md "Session API"; the rules live in
:mod:`hirondelle.identity.web_sessions`, :mod:`~hirondelle.identity.second_factor` and
:mod:`~hirondelle.identity.password_reset`.

- The cookie ``hirondelle_session`` (RFC 6265 §4.1) is HttpOnly, SameSite=Strict, Path=/,
  Secure over TLS; it carries Max-Age only with "stay signed in", so by default it dies
  with the browser.
- Every state-changing request the cookie authenticates carries ``X-CSRF-Token`` (403
  ``{"error":"csrf"}`` otherwise); SameSite=Strict is the first line, this the second.
  Bodies must be JSON (``Content-Type: application/json``), which a cross-site HTML form
  cannot send.
- Every answer has ``Cache-Control: no-store`` (RFC 9111 §5.2.2.5): tokens and account
  data must not stay in a shared cache.
- A password is accepted only over TLS or on a loopback socket
  (:func:`hirondelle.web.http_auth.is_secure`), as for HTTP Basic.
"""

from __future__ import annotations

import datetime
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from hirondelle.errors import Reason, Refused
from hirondelle.identity.password_policy import WeakPassword
from hirondelle.identity.password_reset import InvalidResetToken
from hirondelle.identity.web_offline import WebOfflinePolicy
from hirondelle.identity.web_sessions import (
    STAY_SIGNED_IN_SECONDS,
    SignIn,
    SignInStatus,
    WebSession,
)
from hirondelle.services import Services
from hirondelle.web.http_auth import is_secure

log = logging.getLogger(__name__)

COOKIE = "hirondelle_session"
CSRF_HEADER = "x-csrf-token"
MAX_BODY = 64 * 1024
NO_STORE = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class BadRequest(Exception):
    """The body is not what the endpoint takes: 400 {"error": "invalid-request"}."""


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers={**NO_STORE, **(headers or {})})


def _error(error: str, status: int, **extra: Any) -> Response:
    return _json({"error": error, **extra}, status)


def _no_content(headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=204, headers={**NO_STORE, **(headers or {})})


async def _body(request: Request) -> dict[str, Any]:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest("the body must be application/json")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        raise BadRequest("body too large")
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY:
            raise BadRequest("body too large")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("not JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("not a JSON object")
    return data


def _string(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise BadRequest(f"{name} must be a string")
    return value


def _remote(request: Request) -> str:
    return request.client.host if request.client is not None else ""


def _user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:200]


def _cookie(request: Request, token: str, *, stay_signed_in: bool) -> str:
    parts = [f"{COOKIE}={token}", "Path=/", "HttpOnly", "SameSite=Strict"]
    if request.url.scheme == "https":
        parts.append("Secure")
    if stay_signed_in:
        parts.append(f"Max-Age={STAY_SIGNED_IN_SECONDS}")
    return "; ".join(parts)


def _cleared_cookie(request: Request) -> str:
    parts = [f"{COOKIE}=", "Path=/", "HttpOnly", "SameSite=Strict", "Max-Age=0"]
    if request.url.scheme == "https":
        parts.append("Secure")
    return "; ".join(parts)


def _time(us: int | None) -> str | None:
    """RFC 3339 UTC date-time, as JMAP's UTCDate (RFC 8620 §1.4)."""
    if us is None:
        return None
    moment = datetime.datetime.fromtimestamp(us / 1_000_000, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def routes(services: Services) -> list[BaseRoute]:
    """The routes this part adds to the node's HTTP application."""
    web = services.web_sessions
    factors = services.second_factors
    offline = WebOfflinePolicy(services.database)

    async def describe(session: WebSession) -> dict[str, Any]:
        account = session.account
        return {
            "account": {
                "address": account.address,
                "name": account.display_name,
                # The JMAP account id (jmap/ids.py: "A" + the store id).
                "accountId": f"A{account.id}",
            },
            "csrfToken": session.csrf_token,
            "webOffline": await offline.allowed(account.id),
        }

    async def answer_sign_in(request: Request, result: SignIn) -> Response:
        if result.status is SignInStatus.RATE_LIMITED:
            return _json(
                {"error": "rate-limited", "retryAfter": result.retry_after},
                429,
                {"Retry-After": str(result.retry_after)},
            )
        if result.status is SignInStatus.UNAVAILABLE:
            # RFC 9110 §15.6.4: a passing condition, not the client's fault.
            return _json(
                {"error": "directory-unavailable", "retryAfter": result.retry_after},
                503,
                {"Retry-After": str(result.retry_after)},
            )
        if result.status is SignInStatus.SECOND_FACTOR:
            return _json(
                {
                    "status": "second-factor",
                    "methods": list(result.methods),
                    "pending": result.pending,
                }
            )
        if result.status is SignInStatus.SIGNED_IN and result.session is not None:
            body = {"status": "signed-in", **await describe(result.session)}
            cookie = _cookie(request, result.token, stay_signed_in=result.session.stay_signed_in)
            return _json(body, 200, {"Set-Cookie": cookie})
        return _error("invalid-credentials", 401)

    async def current(request: Request) -> WebSession | None:
        token = request.cookies.get(COOKIE)
        if not token:
            return None
        return await web.resolve(token, remote=_remote(request))

    def csrf_ok(request: Request, session: WebSession) -> bool:
        given = request.headers.get(CSRF_HEADER, "")
        return hmac.compare_digest(given.encode("latin-1", "replace"), session.csrf_token.encode())

    Handler = Callable[[Request, WebSession], Awaitable[Response]]

    def authenticated(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """The one seam for the cookie check (401) and, on state-changing methods, the
        CSRF check (403); handlers then see a live session."""

        async def endpoint(request: Request) -> Response:
            session = await current(request)
            if session is None:
                return _error("unauthenticated", 401)
            if request.method not in ("GET", "HEAD") and not csrf_ok(request, session):
                return _error("csrf", 403)
            return await guarded(handler, request, session)

        return endpoint

    async def guarded(handler: Handler, request: Request, session: WebSession) -> Response:
        try:
            return await handler(request, session)
        except BadRequest:
            return _error("invalid-request", 400)
        except Refused as refused:
            status = {
                Reason.NOT_FOUND: 404,
                Reason.ALREADY_EXISTS: 409,
            }.get(refused.reason, 400)
            return _json({"error": refused.reason.value, "message": refused.message}, status)

    # -- sign-in -----------------------------------------------------------------------------

    async def sign_in(request: Request) -> Response:
        if not is_secure(request):
            return _error("tls-required", 403)
        try:
            data = await _body(request)
            address = _string(data, "address")
            password = _string(data, "password")
            stay = data.get("staySignedIn", False)
            if not isinstance(stay, bool):
                raise BadRequest("staySignedIn must be true or false")
        except BadRequest:
            return _error("invalid-request", 400)
        assert address is not None and password is not None
        result = await web.sign_in(
            address,
            password,
            stay_signed_in=stay,
            remote=_remote(request),
            user_agent=_user_agent(request),
        )
        return await answer_sign_in(request, result)

    async def second_factor(request: Request) -> Response:
        try:
            data = await _body(request)
            pending = _string(data, "pending")
            totp = _string(data, "totp", required=False)
            recovery = _string(data, "recoveryCode", required=False)
            webauthn = data.get("webauthn")
            if webauthn is not None and not isinstance(webauthn, dict):
                raise BadRequest("webauthn must be a PublicKeyCredential object")
            if sum(x is not None for x in (totp, recovery, webauthn)) != 1:
                raise BadRequest("give one of totp, recoveryCode, webauthn")
        except BadRequest:
            return _error("invalid-request", 400)
        assert pending is not None
        result = await web.second_factor(
            pending,
            totp=totp,
            recovery_code=recovery,
            webauthn=webauthn,
            remote=_remote(request),
            user_agent=_user_agent(request),
        )
        return await answer_sign_in(request, result)

    async def webauthn_sign_in_options(request: Request) -> Response:
        try:
            pending = _string(await _body(request), "pending")
        except BadRequest:
            return _error("invalid-request", 400)
        assert pending is not None
        options = await web.webauthn_options(pending)
        if options is None:
            return _error("invalid-credentials", 401)
        return Response(options, media_type="application/json", headers=NO_STORE)

    async def get_session(request: Request) -> Response:
        session = await current(request)
        if session is None:
            return _error("unauthenticated", 401)
        return _json(await describe(session))

    async def sign_out(request: Request) -> Response:
        session = await current(request)
        if session is not None:
            if not csrf_ok(request, session):
                return _error("csrf", 403)
            await web.revoke(session.account.id, session.id)
        return _no_content({"Set-Cookie": _cleared_cookie(request)})

    # -- sessions ------------------------------------------------------------------------------

    async def list_sessions(request: Request, session: WebSession) -> Response:
        items = await web.sessions(session.account.id, current=session.id)
        return _json(
            {
                "sessions": [
                    {
                        "id": str(item.id),
                        "created": _time(item.created_at),
                        "lastSeen": _time(item.last_seen_at),
                        "remote": item.remote,
                        "userAgent": item.user_agent,
                        "current": item.current,
                    }
                    for item in items
                ]
            }
        )

    async def end_session(request: Request, session: WebSession) -> Response:
        session_id = _path_id(request)
        if session_id is None or not await web.revoke(session.account.id, session_id):
            return _error("not-found", 404)
        headers = {"Set-Cookie": _cleared_cookie(request)} if session_id == session.id else {}
        return _no_content(headers)

    # -- password reset ------------------------------------------------------------------------

    async def password_reset(request: Request) -> Response:
        if not is_secure(request):
            return _error("tls-required", 403)
        try:
            data = await _body(request)
            token = _string(data, "token")
            password = _string(data, "password")
        except BadRequest:
            return _error("invalid-request", 400)
        assert token is not None and password is not None
        try:
            await services.password_resets.reset(token, password)
        except InvalidResetToken:
            return _error("invalid-token", 400)
        except WeakPassword as weak:
            return _error("weak-password", 400, reason=weak.rule, minLength=weak.min_length)
        except Refused:
            return _error("invalid-request", 400)
        return _no_content()

    # -- second-factor enrolment ---------------------------------------------------------------

    async def list_factors(request: Request, session: WebSession) -> Response:
        account_id = session.account.id
        items = await factors.factors(account_id)
        return _json(
            {
                "factors": [
                    {
                        "id": str(f.id),
                        "kind": f.kind,
                        "label": f.label,
                        "created": _time(f.created_at),
                        "lastUsed": _time(f.last_used_at),
                    }
                    for f in items
                ],
                "recoveryCodesLeft": await factors.remaining_recovery_codes(account_id),
            }
        )

    async def begin_totp(request: Request, session: WebSession) -> Response:
        enrolment = await factors.begin_totp(session.account)
        return _json(
            {
                "secret": enrolment.secret,
                "otpauthUri": enrolment.otpauth_uri,
                "qrSvg": enrolment.qr_svg,
            }
        )

    async def confirm_totp(request: Request, session: WebSession) -> Response:
        code = _string(await _body(request), "code")
        assert code is not None
        codes = await factors.confirm_totp(session.account, code)
        return _json({"recoveryCodes": codes})

    async def remove_factor(request: Request, session: WebSession) -> Response:
        factor_id = _path_id(request)
        if factor_id is None:
            return _error("not-found", 404)
        await factors.remove(session.account.id, factor_id)
        return _no_content()

    async def webauthn_registration_options(request: Request, session: WebSession) -> Response:
        options = await factors.webauthn_registration_options(session.account, session.id)
        return Response(options, media_type="application/json", headers=NO_STORE)

    async def register_webauthn(request: Request, session: WebSession) -> Response:
        data = await _body(request)
        label = _string(data, "label")
        assert label is not None
        factor, codes = await factors.register_webauthn(
            session.account,
            session.id,
            session.registration_challenge,
            data.get("credential"),
            label,
        )
        return _json(
            {
                "id": str(factor.id),
                "kind": factor.kind,
                "label": factor.label,
                "recoveryCodes": codes,
            }
        )

    return [
        Route("/api/session", sign_in, methods=["POST"]),
        Route("/api/session", get_session, methods=["GET"]),
        Route("/api/session", sign_out, methods=["DELETE"]),
        Route("/api/session/second-factor", second_factor, methods=["POST"]),
        Route("/api/session/webauthn/options", webauthn_sign_in_options, methods=["POST"]),
        Route("/api/sessions", authenticated(list_sessions), methods=["GET"]),
        Route("/api/sessions/{id}", authenticated(end_session), methods=["DELETE"]),
        Route("/api/password-reset", password_reset, methods=["POST"]),
        Route("/api/second-factors", authenticated(list_factors), methods=["GET"]),
        Route("/api/second-factor/totp", authenticated(begin_totp), methods=["POST"]),
        Route("/api/second-factor/totp/confirm", authenticated(confirm_totp), methods=["POST"]),
        Route(
            "/api/second-factor/webauthn/options",
            authenticated(webauthn_registration_options),
            methods=["POST"],
        ),
        Route("/api/second-factor/webauthn", authenticated(register_webauthn), methods=["POST"]),
        Route("/api/second-factor/{id}", authenticated(remove_factor), methods=["DELETE"]),
    ]


def _path_id(request: Request) -> int | None:
    text = request.path_params.get("id", "")
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 9:
        return None
    return int(text)
