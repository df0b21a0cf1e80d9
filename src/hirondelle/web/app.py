"""The HTTP application of a node: health and status now; DAV, JMAP and the webmail
mount here as they land (one Starlette app on the ``http``/``https`` listeners)."""

from __future__ import annotations

import html
import time

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from hirondelle import __version__
from hirondelle.services import Services
from hirondelle.store import directory

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def create_app(services: Services, *, listeners: dict[str, str]) -> Starlette:
    started = time.time()

    async def health(_request: Request) -> Response:
        """Liveness and store reachability, for load balancers and `doctor`."""
        try:
            await services.database.read(lambda conn: directory.list_domains(conn)[:1])
        except Exception:
            return JSONResponse(
                {"status": "unavailable", "store": "unreachable"},
                status_code=503,
                headers=SECURITY_HEADERS,
            )
        return JSONResponse({"status": "ok", "version": __version__}, headers=SECURITY_HEADERS)

    async def status(request: Request) -> Response:
        """A page for people: what runs here, in French and English."""
        wants_french = request.headers.get("accept-language", "").lower().startswith("fr")
        uptime = int(time.time() - started)
        rows = "".join(
            f"<tr><td>{html.escape(name)}</td><td>{html.escape(address)}</td></tr>"
            for name, address in listeners.items()
        )
        if wants_french:
            title, running, service, address = (
                "Hirondelle",
                "Hirondelle fonctionne",
                "Service",
                "Adresse",
            )
            up = f"Démarré il y a {uptime} s. Version {__version__}."
        else:
            title, running, service, address = (
                "Hirondelle",
                "Hirondelle is running",
                "Service",
                "Address",
            )
            up = f"Up for {uptime} s. Version {__version__}."
        body = (
            f'<!doctype html><html lang="{"fr" if wants_french else "en"}">'
            '<head><meta charset="utf-8">'
            f"<title>{title}</title></head><body><h1>{running}</h1><p>{up}</p>"
            f"<table><thead><tr><th>{service}</th><th>{address}</th></tr></thead><tbody>{rows}</tbody></table>"
            "</body></html>"
        )
        return HTMLResponse(
            body, headers={**SECURITY_HEADERS, "Content-Language": "fr" if wants_french else "en"}
        )

    from hirondelle.dav import http as dav_http
    from hirondelle.jmap import http as jmap_http
    from hirondelle.web import assets, session_api

    return Starlette(
        routes=[
            Route("/healthz", health),
            *dav_http.routes(services),
            *jmap_http.routes(services),
            *session_api.routes(services),
            # The webmail's shell serves "/" once it is built; the status page until then.
            *assets.routes(services),
            Route("/", status),
        ]
    )
