"""The WebDAV, CalDAV and CardDAV engine's HTTP routes (issue 5): /dav/..., /.well-known/caldav and
/.well-known/carddav, and PROPFIND on / (so a client given only ``https://host/`` finds the
principal, RFC 6764 §6 step 4 and RFC 5397).
"""

from __future__ import annotations

from starlette.routing import BaseRoute, Route

from hirondelle.dav import engine
from hirondelle.services import Services


def routes(services: Services) -> list[BaseRoute]:
    """The routes this part adds to the node's HTTP application."""
    handle = engine.endpoint(services)
    redirect = engine.well_known(services)
    every = [*engine.METHODS]
    return [
        Route("/.well-known/caldav", redirect, methods=every),
        Route("/.well-known/carddav", redirect, methods=every),
        Route("/dav", handle, methods=every),
        Route("/dav/{path:path}", handle, methods=every),
        # GET / stays the status page (web/app.py); DAV methods on / reach the engine.
        Route("/", handle, methods=["OPTIONS", "PROPFIND", "REPORT"]),
    ]
