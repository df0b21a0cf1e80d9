"""The JMAP HTTP routes (issue 7): /.well-known/jmap, the API endpoint, upload, download and the
EventSource.

RFC 8620 §2 (session resource, and §2.2 its well-known URL), §3.1-§3.6.1 (the API
endpoint and request-level errors as RFC 7807 problem documents), §6.1 (upload), §6.2
(download), §7.3 (EventSource). Limits (§2 core capability) are enforced here:
maxSizeRequest, maxConcurrentRequests, maxSizeUpload, maxConcurrentUpload.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from urllib.parse import quote

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from hirondelle.jmap import api, auth, blobs, ids, push
from hirondelle.jmap.errors import RequestError
from hirondelle.jmap.session import limits_for, session_resource
from hirondelle.jmap.standard import parse_state
from hirondelle.services import Services
from hirondelle.store.directory import Account

log = logging.getLogger(__name__)

NO_STORE = {"Cache-Control": "no-store"}
_TYPE = re.compile(r"^[A-Za-z0-9!#$&^_.+-]{1,127}/[A-Za-z0-9!#$&^_.+-]{1,127}(;.{0,120})?$")


def problem(error: RequestError) -> Response:
    """RFC 7807 problem document for a request-level error (RFC 8620 §3.6.1)."""
    return JSONResponse(
        error.to_json(),
        status_code=error.status,
        media_type="application/problem+json",
        headers=NO_STORE,
    )


class _Slots:
    """Per-account counters of requests in flight (maxConcurrentRequests/Upload)."""

    def __init__(self) -> None:
        self._in_flight: dict[int, int] = defaultdict(int)

    @asynccontextmanager
    async def take(self, account_id: int, limit: int, name: str) -> AsyncIterator[None]:
        if self._in_flight[account_id] >= limit:
            raise RequestError(
                "limit", f"at most {limit} at once; retry when one is answered", limit=name
            )
        self._in_flight[account_id] += 1
        try:
            yield
        finally:
            self._in_flight[account_id] -= 1
            if not self._in_flight[account_id]:
                del self._in_flight[account_id]


async def _body(request: Request, limit: int, name: str, *, status: int = 400) -> bytes:
    """The request body, refused as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise RequestError(
            "limit", f"the body is larger than {name} ({limit})", status=status, limit=name
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(
                "limit", f"the body is larger than {name} ({limit})", status=status, limit=name
            )
        chunks.append(chunk)
    return b"".join(chunks)


def routes(services: Services) -> list[BaseRoute]:
    """The routes this part adds to the node's HTTP application."""
    limits = limits_for(services.settings)
    requests = _Slots()
    uploads = _Slots()

    def authenticated(
        handler: Callable[[Request, Account], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            found = await auth.authenticate(services, request)
            if isinstance(found, Response):
                return found
            try:
                return await handler(request, found)
            except RequestError as error:
                return problem(error)
            except ClientDisconnect:
                return Response(status_code=400)

        return endpoint

    def base_url(request: Request) -> str:
        return str(request.base_url)

    async def session(request: Request, account: Account) -> Response:
        """RFC 8620 §2."""
        state = await api.session_state(services, account)
        return JSONResponse(
            session_resource(services.settings, account, base_url=base_url(request), state=state),
            headers=NO_STORE,
        )

    async def api_endpoint(request: Request, account: Account) -> Response:
        """RFC 8620 §3.1: POST of a Request object."""
        async with requests.take(
            account.id, limits.max_concurrent_requests, "maxConcurrentRequests"
        ):
            body = await _body(request, limits.max_size_request, "maxSizeRequest")
            answer = await api.run(services, account, body, limits=limits)
        return JSONResponse(answer, headers=NO_STORE)

    async def upload(request: Request, account: Account) -> Response:
        """RFC 8620 §6.1: POST the bytes; 201 only once they are durable."""
        if request.path_params["account_id"] != ids.account(account.id):
            raise RequestError("notFound", "no such account", status=404)
        content_type = request.headers.get("content-type", "application/octet-stream")
        if not _TYPE.match(content_type):
            content_type = "application/octet-stream"
        async with uploads.take(account.id, limits.max_concurrent_upload, "maxConcurrentUpload"):
            data = await _body(request, limits.max_size_upload, "maxSizeUpload", status=413)
            blob_id = await blobs.upload(services, account.id, data, content_type)
        return JSONResponse(
            {
                "accountId": ids.account(account.id),
                "blobId": blob_id,
                "type": content_type,
                "size": len(data),
            },
            status_code=201,
            headers=NO_STORE,
        )

    async def download(request: Request, account: Account) -> Response:
        """RFC 8620 §6.2: the blob, with the name and type the client chose."""
        params = request.path_params
        if params["account_id"] != ids.account(account.id):
            return Response(status_code=404, headers=NO_STORE)
        blob = await blobs.find(services, account.id, params["blob_id"])
        if blob is None:
            return Response(status_code=404, headers=NO_STORE)
        wanted = request.query_params.get("type") or blob.type or "application/octet-stream"
        media_type = wanted if _TYPE.match(wanted) else "application/octet-stream"
        name = params["name"]
        headers = {
            # RFC 6266 with RFC 8187 for non-ASCII names; the blob never changes, so
            # caching is safe (RFC 8620 §6.2 recommends it).
            "Content-Disposition": "attachment; filename*=UTF-8''" + quote(name, safe=""),
            "Cache-Control": "private, immutable, max-age=31536000",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        }
        if blob.data is not None:
            # Derived blobs (a decoded part): the length is that of the bytes sent.
            return Response(blob.data, media_type=media_type, headers=headers)
        assert blob.hash is not None
        return StreamingResponse(
            services.blobs.stream(blob.hash),
            media_type=media_type,
            headers={**headers, "Content-Length": str(blob.size)},
        )

    async def event_source(request: Request, account: Account) -> Response:
        """RFC 8620 §7.3; resumption from ``Last-Event-ID`` (HTML "Server-sent events":
        a reconnecting EventSource sends the id of the last event it saw)."""
        query = request.query_params
        raw_types = query.get("types", "*")
        types = None if raw_types == "*" else {t for t in raw_types.split(",") if t}
        closeafter = query.get("closeafter", "no")
        ping_text = query.get("ping", "0")
        if closeafter not in ("state", "no") or not ping_text.isdigit():
            raise RequestError(
                "invalidArguments", "closeafter is state or no; ping is an UnsignedInt"
            )
        # An id this server did not give (or from another account) is not an error: it
        # names no point of this account's journal, so every type is reported changed.
        last_event_id = request.headers.get("last-event-id")
        resume = None
        if last_event_id is not None and last_event_id.strip():
            resume = parse_state(last_event_id.strip())
            if resume is None:
                resume = -1
        stream = push.events(
            services,
            account.id,
            types=types,
            close_after_state=closeafter == "state",
            ping=int(ping_text[:6]),
            last_event_id=resume,
            stopping=getattr(request.app.state, "stopping", None),
        )
        return StreamingResponse(
            stream,
            media_type="text/event-stream",
            headers={**NO_STORE, "X-Accel-Buffering": "no"},
        )

    return [
        Route("/.well-known/jmap", authenticated(session), methods=["GET"]),
        Route("/jmap/session", authenticated(session), methods=["GET"]),
        Route("/jmap/api", authenticated(api_endpoint), methods=["POST"]),
        Route("/jmap/api/", authenticated(api_endpoint), methods=["POST"]),
        Route("/jmap/upload/{account_id}/", authenticated(upload), methods=["POST"]),
        Route("/jmap/upload/{account_id}", authenticated(upload), methods=["POST"]),
        Route(
            "/jmap/download/{account_id}/{blob_id}/{name}",
            authenticated(download),
            methods=["GET"],
        ),
        Route("/jmap/eventsource/", authenticated(event_source), methods=["GET"]),
        Route("/jmap/eventsource", authenticated(event_source), methods=["GET"]),
    ]
